package org.postern.router.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.Test;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router.RouteException;
import org.postern.api.routing.TlsPolicy;

/** Local domains, routes, the relay host and their order; MX routing has {@link MxRoutingTest}. */
public class ConfiguredRouterTest {

    /** A Config as ConfigAdmin would hand it: given values, annotation defaults for the rest. */
    static ConfiguredRelayPolicy.Config config(Object... pairs) {
        Map<String, Object> values = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            values.put((String) pairs[i], pairs[i + 1]);
        }
        return (ConfiguredRelayPolicy.Config) Proxy.newProxyInstance(ConfiguredRelayPolicy.Config.class.getClassLoader(),
                new Class<?>[] {ConfiguredRelayPolicy.Config.class},
                (proxy, method, args) -> values.containsKey(method.getName())
                        ? values.get(method.getName()) : method.getDefaultValue());
    }

    static ConfiguredRouter router(ConfiguredRelayPolicy.Config config) {
        return router(config, null);
    }

    /** A router that keeps no answers, so that every call asks DNS again. */
    static ConfiguredRouter router(ConfiguredRelayPolicy.Config config, FakeDns dns) {
        ConfiguredRouter router = new ConfiguredRouter(System::nanoTime, 0);
        router.dns = dns;
        router.configure(config);
        return router;
    }

    static Route route(ConfiguredRouter router, String recipient) {
        try {
            return router.route(MailAddress.parse(recipient)).toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new AssertionError("no route for " + recipient + ": " + e.getCause(), e.getCause());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** A route answered from memory, without waiting. */
    private static Route now(ConfiguredRouter router, String recipient) {
        CompletableFuture<Route> stage = router.route(MailAddress.parse(recipient)).toCompletableFuture();
        assertTrue("answered from memory, at once", stage.isDone());
        return stage.join();
    }

    static RouteException failure(ConfiguredRouter router, String recipient) {
        try {
            Route route = router.route(MailAddress.parse(recipient)).toCompletableFuture().get(10, TimeUnit.SECONDS);
            fail("routed " + recipient + ": " + route);
            return null;
        } catch (ExecutionException e) {
            assertTrue(String.valueOf(e.getCause()), e.getCause() instanceof RouteException);
            return (RouteException) e.getCause();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static void assertFailure(RouteException e, String status, boolean permanent, String text) {
        assertEquals(e.getMessage(), status, e.status());
        assertEquals(e.getMessage(), permanent, e.permanent());
        assertTrue(e.getMessage(), e.getMessage().contains(text));
    }

    /** Runs the action and returns what it logged (slf4j-simple writes to System.err). */
    static String logOf(Runnable action) {
        PrintStream saved = System.err;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buffer, true, StandardCharsets.UTF_8));
        try {
            action.run();
        } finally {
            System.setErr(saved);
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }

    private static NextHop hop(String host, int port) {
        return new NextHop(host, port, 0);
    }

    @Test
    public void localDomainsGoToTheLocalTransport() {
        ConfiguredRouter router = router(config("local_domains", new String[] {"Example.ORG, bücher.example"},
                "relayhost", "[192.0.2.25]:2525"));
        Route local = now(router, "alice@example.org");
        assertEquals("maildir", local.transport());
        assertEquals("local", local.destination());
        assertEquals(List.of(), local.nextHops());
        assertEquals(TlsPolicy.NONE, local.tls());
        assertNull(local.credentialsId());
        assertEquals(local, now(router, "bob@EXAMPLE.org"));
        assertEquals("an IDN in U-labels is local too", local, now(router, "x@BÜCHER.example"));
        assertEquals("the bare postmaster is ours", local, now(router, "postmaster"));
    }

    @Test
    public void theLocalTransportIsConfigurable() {
        ConfiguredRouter router = router(config("local_transport", " lmtp "));
        assertEquals(new Route("lmtp", "local", List.of(), TlsPolicy.NONE, null), now(router, "root@localhost"));
        assertEquals("blank means maildir", "maildir",
                now(router(config("local_transport", "")), "root@localhost").transport());
    }

    @Test
    public void otherDomainsGoToTheRelayHost() {
        ConfiguredRouter router = router(config("relayhost", "[127.0.0.1]:2525"));
        Route relay = now(router, "bob@example.net");
        assertEquals(new Route("smtp", "[127.0.0.1]:2525", List.of(hop("127.0.0.1", 2525)), TlsPolicy.MAY, null), relay);
        assertEquals("every domain shares the destination", relay, now(router, "carol@elsewhere.example"));
        assertEquals("an address literal is not local", relay, now(router, "x@[127.0.0.1]"));
        assertEquals("maildir", now(router, "root@localhost").transport());
        assertEquals("the SMTP TLS policy applies", TlsPolicy.VERIFY,
                now(router(config("relayhost", "[127.0.0.1]", "smtp_tls_policy", "VERIFY")), "a@b.example").tls());
    }

    @Test
    public void aRelayHostNameIsResolvedToItsAddresses() {
        FakeDns dns = new FakeDns().host("relay.example", "192.0.2.7", "2001:db8::7");
        ConfiguredRouter router = router(config("relayhost", "Relay.Example:587"), dns);
        Route relay = route(router, "bob@example.net");
        assertEquals("relay.example:587", relay.destination());
        assertEquals(List.of(new NextHop("192.0.2.7", 587, 0, "relay.example"),
                new NextHop("2001:db8:0:0:0:0:0:7", 587, 0, "relay.example")), relay.nextHops());
        assertEquals("the name is kept for the TLS check", "relay.example", relay.nextHops().get(0).hostName());
        assertEquals(List.of("A relay.example"), dns.asked);
    }

    @Test
    public void withoutAResolverNonLocalMailWaits() {
        RouteException e = failure(router(config()), "bob@example.net");
        assertFailure(e, "4.4.3", false, "no DNS resolver");
        e = failure(router(config("relayhost", "relay.example")), "bob@example.net");
        assertFailure(e, "4.4.3", false, "no DNS resolver to look up relay.example:25");
        assertEquals("literals need no resolver", "smtp",
                now(router(config("routes", new String[] {"* = [192.0.2.1]"})), "bob@example.net").transport());
    }

    @Test
    public void aBadRelayHostDefersInsteadOfBouncing() {
        RouteException e = failure(router(config("relayhost", "2001:db8::1:25")), "bob@example.net");
        assertFailure(e, "4.3.5", false, "2001:db8::1:25");
        assertEquals("local mail still routes", "maildir", now(router(config("relayhost", "bad host")), "a@localhost")
                .transport());
    }

    @Test
    public void routesPerDomainWithTheirTlsAndCredentials() {
        FakeDns dns = new FakeDns().host("smart.example", "192.0.2.9").mx("example.org", 10, "mx.example.org")
                .host("mx.example.org", "192.0.2.20");
        ConfiguredRouter router = router(config(
                "routes", new String[] {"Example.COM = [192.0.2.5]:2525 tls=verify auth=smarthost",
                        "example.org = mx tls=encrypt", "bücher.example = smart.example [192.0.2.6]"},
                "relayhost", "[192.0.2.99]"), dns);

        assertEquals(new Route("smtp", "[192.0.2.5]:2525 auth=smarthost", List.of(hop("192.0.2.5", 2525)),
                TlsPolicy.VERIFY, "smarthost"), now(router, "a@example.com"));
        assertEquals("exact domains only", "[192.0.2.99]:25", now(router, "a@sub.example.com").destination());

        Route mx = route(router, "a@example.org");
        assertEquals(new Route("smtp", "example.org", List.of(new NextHop("192.0.2.20", 25, 10, "mx.example.org")),
                TlsPolicy.ENCRYPT, null), mx);

        Route idn = route(router, "a@BÜCHER.example");
        assertEquals("smart.example:25 [192.0.2.6]:25", idn.destination());
        assertEquals("hops in the configured order", List.of(new NextHop("192.0.2.9", 25, 0, "smart.example"),
                hop("192.0.2.6", 25)), idn.nextHops());
        assertEquals("the default TLS policy", TlsPolicy.MAY, idn.tls());
    }

    @Test
    public void theDefaultRouteComesBeforeTheRelayHost() {
        ConfiguredRouter router = new ConfiguredRouter();
        String log = logOf(() -> router.configure(config("routes", new String[] {"* = [192.0.2.1]:2525",
                "example.com = [192.0.2.2]"}, "relayhost", "[192.0.2.3]")));
        assertTrue(log, log.contains("relayhost '[192.0.2.3]' is not used"));
        assertEquals("[192.0.2.1]:2525", now(router, "a@example.net").destination());
        assertEquals("[192.0.2.1]:2525", now(router, "a@[203.0.113.1]").destination());
        assertEquals("[192.0.2.2]:25", now(router, "a@example.com").destination());
        assertEquals("maildir", now(router, "a@localhost").transport());

        FakeDns dns = new FakeDns().mx("example.net", 10, "mx.example.net").host("mx.example.net", "192.0.2.30");
        ConfiguredRouter mx = router(config("routes", new String[] {"* = mx tls=none"}, "relayhost", "[192.0.2.3]"),
                dns);
        assertEquals(new Route("smtp", "example.net", List.of(new NextHop("192.0.2.30", 25, 10, "mx.example.net")),
                TlsPolicy.NONE, null), route(mx, "a@example.net"));
    }

    @Test
    public void aBadRouteDefersItsDomainOnly() {
        ConfiguredRouter router = new ConfiguredRouter();
        String log = logOf(() -> router.configure(config(
                "routes", new String[] {"example.com = [192.0.2.5]:99999", "no equals sign",
                        "bad domain! = [192.0.2.1]", "example.org = mx auth=x", "example.net = [192.0.2.7]",
                        "example.net = [192.0.2.8]"},
                "relayhost", "[192.0.2.99]")));
        assertTrue(log, log.contains("ERROR") && log.contains("mail for example.com is deferred"));
        assertTrue(log, log.contains("ignoring 'no equals sign'"));
        assertTrue(log, log.contains("ignoring 'bad domain! = [192.0.2.1]'"));
        assertTrue(log, log.contains("a second entry for example.net"));
        assertFailure(failure(router, "a@example.com"), "4.3.5", false, "bad port '99999'");
        assertFailure(failure(router, "a@example.org"), "4.3.5", false, "credentials are never sent to MX hosts");
        assertEquals("the first entry wins", "[192.0.2.7]:25", now(router, "a@example.net").destination());
        assertEquals("other domains take the relay host", "[192.0.2.99]:25", now(router, "a@example.info").destination());
    }

    @Test
    public void aBadTlsPolicyDefersRatherThanSendingInClear() {
        ConfiguredRouter router = new ConfiguredRouter();
        String log = logOf(() -> router.configure(config("smtp_tls_policy", "verfy",
                "routes", new String[] {"example.com = [192.0.2.5]", "example.org = [192.0.2.6] tls=verify"})));
        assertTrue(log, log.contains("ERROR") && log.contains("bad TLS policy 'verfy'"));
        assertFailure(failure(router, "a@example.net"), "4.3.5", false, "smtp.tls.policy 'verfy' is not valid");
        assertFailure(failure(router, "a@example.com"), "4.3.5", false, "smtp.tls.policy");
        assertEquals("a route with its own tls= still goes", TlsPolicy.VERIFY, now(router, "a@example.org").tls());
        assertFailure(failure(router(config("smtp_tls_policy", "verfy", "relayhost", "[192.0.2.1]")), "a@example.net"),
                "4.3.5", false, "smtp.tls.policy");
    }

    @Test
    public void routeHopNamesThatDoNotResolveAreSkippedAndNeverBounce() {
        FakeDns dns = new FakeDns().host("good.example", "192.0.2.40").fail("slow.example");
        ConfiguredRouter router = router(config("routes", new String[] {
                "a.example = gone.example good.example:2525", "b.example = gone.example", "c.example = slow.example"}),
                dns);
        assertEquals(List.of(new NextHop("192.0.2.40", 2525, 0, "good.example")),
                route(router, "x@a.example").nextHops());
        assertFailure(failure(router, "x@b.example"), "4.4.3", false, "gone.example: host not found");
        assertFailure(failure(router, "x@c.example"), "4.4.3", false, "slow.example: DNS query slow.example: timed out");
    }

    @Test
    public void aNewConfigurationAppliesToTheNextRoute() {
        ConfiguredRouter router = router(config());
        router.configure(config("relayhost", "[192.0.2.1]:2525", "local_domains", new String[] {"example.net"}));
        assertEquals("maildir", now(router, "bob@example.net").transport());
        assertEquals("[192.0.2.1]:2525", now(router, "bob@example.com").destination());
        router.configure(config("routes", new String[] {"example.com = [192.0.2.2]"}));
        assertEquals("[192.0.2.2]:25", now(router, "bob@example.com").destination());
    }

    @Test
    public void beforeItsConfigurationNothingRoutes() {
        RouteException e = failure(new ConfiguredRouter(), "bob@example.net");
        assertFalse(e.permanent());
        assertEquals("local domains are unknown too", "4.3.5", failure(new ConfiguredRouter(), "root@localhost").status());
    }

    @Test
    public void aCallerCannotSpoilTheSharedAnswer() {
        ConfiguredRouter router = router(config("relayhost", "[192.0.2.1]"));
        router.route(MailAddress.parse("a@example.net")).toCompletableFuture().obtrudeValue(null);
        assertEquals("[192.0.2.1]:25", now(router, "a@example.net").destination());

        FakeDns dns = new FakeDns().mx("example.net", 10, "mx.example.net").host("mx.example.net", "192.0.2.30");
        ConfiguredRouter keeping = new ConfiguredRouter();
        keeping.dns = dns;
        keeping.configure(config());
        route(keeping, "a@example.net");
        keeping.route(MailAddress.parse("a@example.net")).toCompletableFuture().obtrudeValue(null);
        assertNotEquals(null, route(keeping, "a@example.net"));
    }
}
