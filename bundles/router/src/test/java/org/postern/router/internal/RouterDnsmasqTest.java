package org.postern.router.internal;

import static org.junit.Assert.assertEquals;
import static org.postern.router.internal.ConfiguredRouterTest.assertFailure;
import static org.postern.router.internal.ConfiguredRouterTest.config;
import static org.postern.router.internal.ConfiguredRouterTest.failure;
import static org.postern.router.internal.ConfiguredRouterTest.route;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;
import org.postern.api.dns.DnsResolver;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;
import org.postern.dns.internal.RealResolver;
import org.postern.testsupport.Dnsmasq;

/** The router with the real DNS bundle's resolver against a real dnsmasq on 127.0.0.1, nothing else asked. */
public class RouterDnsmasqTest {

    private static final int PORT = 2525;

    private static final String[] ZONE = {
            "--local=/test/", // names under .test it does not know are NXDOMAIN
            "--mx-host=pref.test,mx2.pref.test,20",
            "--mx-host=pref.test,mx1.pref.test,10",
            "--host-record=mx1.pref.test,127.0.0.2",
            "--host-record=mx2.pref.test,127.0.0.3,::3",
            "--mx-host=equal.test,a.equal.test,10",
            "--mx-host=equal.test,b.equal.test,10",
            "--host-record=a.equal.test,127.0.0.4",
            "--host-record=b.equal.test,127.0.0.5",
            "--mx-host=nullmx.test,.,0",
            "--host-record=implicit.test,127.0.0.6",
            "--mx-host=loop.test,mail.self.test,10",
            "--mx-host=backup.test,primary.backup.test,10",
            "--mx-host=backup.test,mail.self.test,20",
            "--host-record=primary.backup.test,127.0.0.10",
            "--host-record=mail.self.test,127.0.0.9",
            "--mx-host=cname.test,alias.cname.test,10",
            "--cname=alias.cname.test,mx1.pref.test",
            "--mx-host=ipmx.test,127.0.0.11,10",
            "--mx-host=ipmx.test,mx2.pref.test,20",
            "--mx-host=nohost.test,missing.nohost.test,10",
            "--host-record=relay.test,127.0.0.12",
    };

    private static Dnsmasq dnsmasq;
    private static DnsResolver resolver;

    @BeforeClass
    public static void start() throws Exception {
        dnsmasq = Dnsmasq.start(ZONE);
        resolver = RealResolver.start(dnsmasq.server(), 2000, 1);
    }

    @AfterClass
    public static void stop() throws Exception {
        if (resolver != null) {
            RealResolver.stop(resolver);
        }
        if (dnsmasq != null) {
            dnsmasq.close();
        }
    }

    private static ConfiguredRouter router(Object... pairs) {
        Object[] all = new Object[pairs.length + 4];
        all[0] = "smtp_port";
        all[1] = PORT;
        all[2] = "myhostname";
        all[3] = "mail.self.test";
        System.arraycopy(pairs, 0, all, 4, pairs.length);
        ConfiguredRouter router = new ConfiguredRouter(System::nanoTime, 0);
        router.dns = resolver;
        router.configure(config(all));
        return router;
    }

    private static NextHop hop(String ip, int preference, String name) {
        return new NextHop(ip, PORT, preference, name);
    }

    @Test
    public void mxHostsByPreference() {
        assertEquals(new Route("smtp", "pref.test", List.of(hop("127.0.0.2", 10, "mx1.pref.test"),
                hop("127.0.0.3", 20, "mx2.pref.test"), hop("0:0:0:0:0:0:0:3", 20, "mx2.pref.test")), TlsPolicy.MAY, null),
                route(router(), "user@pref.test"));
    }

    @Test
    public void equalPreferencesInBothOrders() {
        ConfiguredRouter router = router();
        Set<String> firsts = new HashSet<>();
        for (int i = 0; i < 100; i++) {
            List<NextHop> hops = route(router, "user@equal.test").nextHops();
            assertEquals(hops.toString(), 2, hops.size());
            firsts.add(hops.get(0).host());
        }
        assertEquals(Set.of("127.0.0.4", "127.0.0.5"), firsts);
    }

    @Test
    public void implicitMx() {
        assertEquals(List.of(hop("127.0.0.6", 0, "implicit.test")), route(router(), "user@implicit.test").nextHops());
    }

    @Test
    public void nullMx() {
        assertFailure(failure(router(), "user@nullmx.test"), "5.1.10", true, "null MX");
    }

    @Test
    public void noSuchDomain() {
        assertFailure(failure(router(), "user@nowhere.test"), "5.1.2", true, "NXDOMAIN");
    }

    @Test
    public void mxHostWithoutAddress() {
        assertFailure(failure(router(), "user@nohost.test"), "5.4.4", true, "missing.nohost.test: host not found");
    }

    @Test
    public void loopsAndBackupMx() {
        assertFailure(failure(router(), "user@loop.test"), "5.4.6", true, "loops back to myself");
        assertEquals(List.of(hop("127.0.0.10", 10, "primary.backup.test")), route(router(), "user@backup.test").nextHops());
        assertFailure(failure(router("myhostname", "other.test", "my_addresses", new String[] {"127.0.0.9"}),
                "user@loop.test"), "5.4.6", true, "loops back to myself");
    }

    @Test
    public void cnameAndIpAddressMxHosts() {
        assertEquals(List.of(hop("127.0.0.2", 10, "alias.cname.test")), route(router(), "user@cname.test").nextHops());
        assertEquals(List.of(hop("127.0.0.3", 20, "mx2.pref.test"), hop("0:0:0:0:0:0:0:3", 20, "mx2.pref.test")),
                route(router(), "user@ipmx.test").nextHops());
    }

    @Test
    public void aRouteToANamedSmarthost() {
        ConfiguredRouter router = router("routes", new String[] {"smart.test = relay.test:2526 tls=verify auth=relay",
                "* = [127.0.0.13]"});
        assertEquals(new Route("smtp", "relay.test:2526 auth=relay",
                List.of(new NextHop("127.0.0.12", 2526, 0, "relay.test")), TlsPolicy.VERIFY, "relay"),
                route(router, "user@smart.test"));
        assertEquals("[127.0.0.13]:25", route(router, "user@pref.test").destination());
    }

    @Test
    public void aDnsServerThatDoesNotAnswerDefers() throws Exception {
        DnsResolver dead = RealResolver.start("127.0.0.1:" + Dnsmasq.freePort(), 300, 0);
        try {
            ConfiguredRouter router = router();
            router.dns = dead;
            assertFailure(failure(router, "user@pref.test"), "4.4.3", false, "cannot look up MX of pref.test");
        } finally {
            RealResolver.stop(dead);
        }
    }
}
