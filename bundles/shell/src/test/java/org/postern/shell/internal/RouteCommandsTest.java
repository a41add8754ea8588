package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.postern.shell.internal.RelayCommandsTest.complete;
import static org.postern.shell.internal.RelayCommandsTest.refused;

import java.util.List;

import org.junit.Test;

/** route-list, route-add, route-remove against a ConfigAdmin in memory. */
public class RouteCommandsTest {

    private final FakeConfigAdmin cm = FakeConfigAdmin.router(
            "local.domains", "example.org",
            "routes", "example.com = [192.0.2.5]:2525 tls=verify auth=smarthost, example.net = mx",
            "relayhost", "");

    {
        // the smtp transport knows the credentials "smarthost", not "relay1"
        cm.others.put("org.postern.delivery.smtp", java.util.Map.of("auth.smarthost.username", "me@example.net",
                "auth.smarthost.password", "secret"));
    }

    private RouteAddCommand add(String domain, String... target) {
        RouteAddCommand command = new RouteAddCommand();
        command.configAdmin = cm.service();
        command.domain = domain;
        command.target = List.of(target);
        return command;
    }

    private RouteRemoveCommand remove(String... domains) {
        RouteRemoveCommand command = new RouteRemoveCommand();
        command.configAdmin = cm.service();
        command.domains = List.of(domains);
        return command;
    }

    private String list(FakeConfigAdmin admin) throws Exception {
        RouteListCommand command = new RouteListCommand();
        command.configAdmin = admin.service();
        command.noFormat = true;
        return Fakes.stdout(command::execute);
    }

    @Test
    public void listShowsEachRoute() throws Exception {
        assertEquals(List.of(List.of("example.com", "[192.0.2.5]:2525", "verify", "smarthost"),
                List.of("example.net", "mx", "(default)", "")), Fakes.rows(list(cm)));
    }

    @Test
    public void listShowsTheRelayHostAndBadEntries() throws Exception {
        FakeConfigAdmin other = FakeConfigAdmin.router("routes", new String[] {"example.com = host:0", "* = a.example b.example:26"},
                "relayhost", "[192.0.2.1]:587");
        assertEquals(List.of(List.of("example.com", "example.com = host:0", "INVALID: next hop 'host:0': bad port '0'", ""),
                List.of("*", "a.example:25 b.example:26", "(default)", ""),
                List.of("(relayhost)", "[192.0.2.1]:587", "(default)", "")), Fakes.rows(list(other)));
        RouteListCommand command = new RouteListCommand();
        command.configAdmin = new FakeConfigAdmin(RouterConfig.PID, null).service();
        assertEquals(RouteListCommand.NONE + "\n", Fakes.stdout(command::execute));
    }

    @Test
    public void addWritesTheCanonicalEntry() throws Exception {
        RouteAddCommand smarthost = add("Bücher.Example", "[192.0.2.6]:2525", "relay.example");
        smarthost.tls = "ENCRYPT";
        smarthost.auth = "relay1";
        assertEquals("Added route xn--bcher-kva.example = [192.0.2.6]:2525 relay.example:25 tls=encrypt auth=relay1\n"
                + "The password goes only over TLS, but without --tls verify any certificate is taken: whoever can "
                + "intercept the connection can have it.\n"
                + "No credentials 'relay1' in org.postern.delivery.smtp yet: mail on this route waits (4.3.5) until "
                + "auth.relay1.username and auth.relay1.password are set "
                + "(config:property-set -p org.postern.delivery.smtp auth.relay1.username ...).\n",
                Fakes.stdout(smarthost::execute));
        assertEquals("Added route example.info = mx\n", Fakes.stdout(add("example.info.", "MX")::execute));
        assertEquals("example.com = [192.0.2.5]:2525 tls=verify auth=smarthost, example.net = mx, "
                + "xn--bcher-kva.example = [192.0.2.6]:2525 relay.example:25 tls=encrypt auth=relay1, example.info = mx",
                cm.get("routes"));
        assertEquals(2, cm.updates.size());
    }

    @Test
    public void optionsAfterTheTargetCountToo() throws Exception {
        // The form of the documentation: Karaf alone would take --tls as a next hop.
        assertEquals("Added route example.info = [192.0.2.5]:2525 tls=verify auth=smarthost\n",
                Fakes.stdout(add("example.info", "[192.0.2.5]:2525", "--tls", "verify", "--auth", "smarthost")::execute));
        assertEquals("Added route example.biz = [192.0.2.6] tls=none\n",
                Fakes.stdout(add("example.biz", "[192.0.2.6]", "--tls=none")::execute).replace(":25 ", " "));
        assertEquals("--tls needs a value", refused(cm, add("example.xyz", "[192.0.2.1]", "--tls")::execute));
        RouteAddCommand twice = add("example.xyz", "[192.0.2.1]", "--tls", "may");
        twice.tls = "none";
        assertEquals("--tls given twice", refused(cm, twice::execute));
        assertEquals("Unknown option --port: --tls and --auth only",
                refused(cm, add("example.xyz", "[192.0.2.1]", "--port", "26")::execute));
        assertEquals("Bad route: no target: give mx or next hops", refused(cm, add("example.xyz", "--tls", "may")::execute));
    }

    @Test
    public void aDefaultRouteOutranksTheRelayHost() throws Exception {
        FakeConfigAdmin withRelayhost = FakeConfigAdmin.router("relayhost", "[192.0.2.1]");
        RouteAddCommand command = new RouteAddCommand();
        command.configAdmin = withRelayhost.service();
        command.domain = "*";
        command.target = List.of("[192.0.2.2]:2525");
        assertEquals("Added route * = [192.0.2.2]:2525\n"
                + "The relay host [192.0.2.1] is no longer used: the * route takes precedence.\n",
                Fakes.stdout(command::execute));
        assertEquals("* = [192.0.2.2]:2525", withRelayhost.get("routes"));
    }

    @Test
    public void badRoutesChangeNothing() throws Exception {
        assertEquals("Bad route: next hop 'host:99999': bad port '99999'", refused(cm, add("example.info", "host:99999")::execute));
        assertEquals("Bad route: next hop 'bad_host!': bad host 'bad_host!'", refused(cm, add("example.info", "bad_host!")::execute));
        assertEquals("Bad route: bad domain 'bad domain'", refused(cm, add("bad domain", "mx")::execute));
        assertEquals("Bad route: either mx or next hops, not both", refused(cm, add("example.info", "mx", "[192.0.2.1]")::execute));
        RouteAddCommand badTls = add("example.info", "[192.0.2.1]");
        badTls.tls = "sometimes";
        assertEquals("Bad route: bad TLS policy 'sometimes': one of none, may, encrypt, verify", refused(cm, badTls::execute));
        RouteAddCommand mxAuth = add("example.info", "mx");
        mxAuth.auth = "secret";
        assertEquals("Bad route: auth= needs fixed next hops: credentials are never sent to MX hosts",
                refused(cm, mxAuth::execute));
        RouteAddCommand badId = add("example.info", "[192.0.2.1]");
        badId.auth = "user:password";
        assertTrue(refused(cm, badId::execute).startsWith("Bad route: bad credentials id 'user:password'"));
        assertEquals("Bad target '[192.0.2.1],[192.0.2.2]': separate next hops with spaces",
                refused(cm, add("example.info", "[192.0.2.1],[192.0.2.2]")::execute));
        assertEquals("Bad route: an IPv6 address must be written in brackets: [2001:db8::1]:25",
                refused(cm, add("example.info", "2001:db8::1")::execute).replace("next hop '2001:db8::1': ", ""));
        assertEquals("There is a route for example.com already: example.com = [192.0.2.5]:2525 tls=verify "
                + "auth=smarthost (mta:route-remove example.com first)", refused(cm, add("EXAMPLE.com", "mx")::execute));
        assertEquals("example.org is a local domain: its mail is delivered here and a route would never apply "
                + "(see mta:domain-remove)", refused(cm, add("example.org", "mx")::execute));
    }

    @Test
    public void removeByDomain() throws Exception {
        assertEquals("Removed route example.com = [192.0.2.5]:2525 tls=verify auth=smarthost\n",
                Fakes.stdout(remove("Example.COM")::execute));
        assertEquals("example.net = mx", cm.get("routes"));
        assertEquals("No route for example.info (see mta:route-list)", refused(cm, remove("example.net", "example.info")::execute));
        assertEquals("example.net = mx", cm.get("routes"));
        Fakes.stdout(remove("example.net")::execute);
        assertEquals("", cm.get("routes"));
    }

    @Test
    public void aBadEntryWrittenByHandCanBeRemovedByItsDomain() throws Exception {
        FakeConfigAdmin broken = FakeConfigAdmin.router("routes", "example.com = host:0, * = mx");
        RouteRemoveCommand command = new RouteRemoveCommand();
        command.configAdmin = broken.service();
        command.domains = List.of("example.com", "*");
        assertEquals("Removed route example.com = host:0\nRemoved route * = mx\n", Fakes.stdout(command::execute));
        assertEquals("", broken.get("routes"));
    }

    @Test
    public void completers() {
        RouteDomainCompleter domains = new RouteDomainCompleter();
        domains.configAdmin = cm.service();
        assertEquals(List.of("example.com", "example.net"), complete(domains::complete, "ex"));
        assertEquals(List.of("verify"), complete(new TlsPolicyCompleter()::complete, "VE"));
        assertEquals(4, complete(new TlsPolicyCompleter()::complete, "").size());
    }
}
