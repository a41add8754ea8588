package org.postern.router.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.postern.router.internal.ConfiguredRouterTest.assertFailure;
import static org.postern.router.internal.ConfiguredRouterTest.config;
import static org.postern.router.internal.ConfiguredRouterTest.failure;
import static org.postern.router.internal.ConfiguredRouterTest.logOf;
import static org.postern.router.internal.ConfiguredRouterTest.route;
import static org.postern.router.internal.ConfiguredRouterTest.router;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.Test;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;

/** MX routing (RFC 5321 5.1, RFC 7505) against a fake resolver. */
public class MxRoutingTest {

    private static final int PORT = 2525;

    private static ConfiguredRelayPolicy.Config mxConfig(Object... more) {
        Object[] all = new Object[more.length + 2];
        all[0] = "smtp_port";
        all[1] = PORT;
        System.arraycopy(more, 0, all, 2, more.length);
        return config(all);
    }

    private static NextHop hop(String ip, int preference, String name) {
        return new NextHop(ip, PORT, preference, name);
    }

    private static List<String> names(Route route) {
        return route.nextHops().stream().map(NextHop::name).distinct().toList();
    }

    @Test
    public void mxHostsInPreferenceOrderEachWithAllItsAddresses() {
        FakeDns dns = new FakeDns().mx("example.net", 20, "mx2.example.net", 10, "mx1.example.net", 30, "MX3.example.net")
                .host("mx1.example.net", "192.0.2.1", "2001:db8::1")
                .host("mx2.example.net", "192.0.2.2")
                .host("mx3.example.net", "192.0.2.3");
        Route route = route(router(mxConfig(), dns), "bob@Example.NET");
        assertEquals(new Route("smtp", "example.net", List.of(
                hop("192.0.2.1", 10, "mx1.example.net"), hop("2001:db8:0:0:0:0:0:1", 10, "mx1.example.net"),
                hop("192.0.2.2", 20, "mx2.example.net"), hop("192.0.2.3", 30, "mx3.example.net")),
                TlsPolicy.MAY, null), route);
    }

    @Test
    public void equalPreferencesComeInRandomOrder() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "a.example.net", 10, "b.example.net", 5, "best.example.net",
                        20, "c.example.net", 20, "d.example.net")
                .host("a.example.net", "192.0.2.1").host("b.example.net", "192.0.2.2")
                .host("best.example.net", "192.0.2.5")
                .host("c.example.net", "192.0.2.3").host("d.example.net", "192.0.2.4");
        ConfiguredRouter router = router(mxConfig(), dns);
        Set<List<String>> seen = new HashSet<>();
        for (int i = 0; i < 200; i++) {
            List<String> order = names(route(router, "bob@example.net"));
            assertEquals(order.toString(), "best.example.net", order.get(0));
            assertEquals(order.toString(), Set.of("a.example.net", "b.example.net"), Set.copyOf(order.subList(1, 3)));
            assertEquals(order.toString(), Set.of("c.example.net", "d.example.net"), Set.copyOf(order.subList(3, 5)));
            seen.add(order);
        }
        // 2 x 2 orders, each 1/4 likely: missing one in 200 runs has odds of about 1e-25.
        assertEquals(seen.toString(), 4, seen.size());
    }

    @Test
    public void theRecipientsOfOneMomentShareOneShuffle() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "a.example.net", 10, "b.example.net")
                .host("a.example.net", "192.0.2.1").host("b.example.net", "192.0.2.2");
        AtomicLong clock = new AtomicLong();
        ConfiguredRouter router = new ConfiguredRouter(clock::get, TimeUnit.SECONDS.toNanos(5));
        router.dns = dns;
        router.configure(mxConfig());
        Route first = route(router, "a@example.net");
        clock.addAndGet(TimeUnit.SECONDS.toNanos(4));
        for (int i = 0; i < 20; i++) {
            assertEquals("equal routes are delivered together", first, route(router, "b" + i + "@EXAMPLE.net"));
        }
        assertEquals("DNS asked once", 3, dns.asked.size());
        clock.addAndGet(TimeUnit.SECONDS.toNanos(1));
        route(router, "a@example.net");
        assertEquals("asked again after 5 s", 6, dns.asked.size());
        router.configure(mxConfig());
        route(router, "a@example.net");
        assertEquals("and after a new configuration", 9, dns.asked.size());
    }

    @Test
    public void noMxMeansTheDomainsOwnAddresses() {
        FakeDns dns = new FakeDns().host("example.net", "192.0.2.7", "2001:db8::7");
        Route route = route(router(mxConfig(), dns), "bob@example.net");
        assertEquals(List.of(hop("192.0.2.7", 0, "example.net"), hop("2001:db8:0:0:0:0:0:7", 0, "example.net")),
                route.nextHops());
        assertEquals(List.of("MX example.net", "A example.net"), dns.asked);
    }

    @Test
    public void noMxAndNoAddressBounces() {
        FakeDns dns = new FakeDns().host("example.net");
        assertFailure(failure(router(mxConfig(), dns), "bob@example.net"), "5.4.4", true,
                "example.net has no MX and no address record");
    }

    @Test
    public void aNullMxBouncesAtOnce() {
        FakeDns dns = new FakeDns().mx("example.net", 0, "").host("example.net", "192.0.2.7");
        assertFailure(failure(router(mxConfig(), dns), "bob@example.net"), "5.1.10", true,
                "domain example.net does not accept mail (null MX)");
        assertEquals("the domain's address is not tried", List.of("MX example.net"), dns.asked);
    }

    @Test
    public void aNullMxAmongOthersIsIgnored() {
        FakeDns dns = new FakeDns().mx("example.net", 0, "", 10, "mx.example.net").host("mx.example.net", "192.0.2.1");
        ConfiguredRouter router = router(mxConfig(), dns);
        String log = logOf(() -> assertEquals(List.of(hop("192.0.2.1", 10, "mx.example.net")),
                route(router, "bob@example.net").nextHops()));
        assertTrue(log, log.contains("null MX among other MX records"));
    }

    @Test
    public void aDomainThatDoesNotExistBounces() {
        assertFailure(failure(router(mxConfig(), new FakeDns()), "bob@nowhere.example"), "5.1.2", true,
                "domain nowhere.example does not exist (NXDOMAIN)");
        // No MX, and the A lookup says NXDOMAIN (the name vanished between the two questions).
        FakeDns vanishing = new FakeDns() {
            @Override
            public java.util.concurrent.CompletionStage<List<java.net.InetAddress>> addresses(String host) {
                return super.addresses("not-" + host);
            }
        }.host("example.net");
        assertFailure(failure(router(mxConfig(), vanishing), "bob@example.net"), "5.1.2", true, "NXDOMAIN");
    }

    @Test
    public void aDnsFailureDefers() {
        assertFailure(failure(router(mxConfig(), new FakeDns().fail("example.net")), "bob@example.net"),
                "4.4.3", false, "cannot look up MX of example.net: DNS query example.net: timed out");
        // A resolver that throws is a failure too, not an exception in the caller's face.
        FakeDns throwing = new FakeDns() {
            @Override
            public java.util.concurrent.CompletionStage<List<org.postern.api.dns.MxRecord>> mx(String domain) {
                throw new IllegalStateException("resolver stopped");
            }
        };
        assertFailure(failure(router(mxConfig(), throwing), "bob@example.net"), "4.4.3", false, "resolver stopped");
    }

    @Test
    public void mxHostsThatFailAreLeftOutWhileOthersRemain() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "slow.example.net", 20, "gone.example.net", 30, "ok.example.net")
                .fail("slow.example.net").host("ok.example.net", "192.0.2.3");
        assertEquals(List.of(hop("192.0.2.3", 30, "ok.example.net")),
                route(router(mxConfig(), dns), "bob@example.net").nextHops());
    }

    @Test
    public void noMxHostWithAnAddress() {
        FakeDns gone = new FakeDns().mx("example.net", 10, "gone1.example.net", 20, "gone2.example.net")
                .host("empty.example.net").mx("example.org", 10, "empty.example.net");
        assertFailure(failure(router(mxConfig(), gone), "bob@example.net"), "5.4.4", true,
                "no MX host of example.net has an address: gone1.example.net: host not found; "
                        + "gone2.example.net: host not found");
        assertFailure(failure(router(mxConfig(), gone), "bob@example.org"), "5.4.4", true,
                "empty.example.net: no address record");
        FakeDns slow = new FakeDns().mx("example.net", 10, "gone.example.net", 20, "slow.example.net")
                .fail("slow.example.net");
        assertFailure(failure(router(mxConfig(), slow), "bob@example.net"), "4.4.3", false,
                "cannot look up the MX hosts of example.net");
    }

    @Test
    public void anMxNamingAnIpAddressIsNotFollowed() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "192.0.2.1", 20, "mx.example.net")
                .host("mx.example.net", "192.0.2.2");
        ConfiguredRouter router = router(mxConfig(), dns);
        assertEquals(List.of(hop("192.0.2.2", 20, "mx.example.net")), route(router, "bob@example.net").nextHops());
        assertTrue(dns.asked.toString(), !dns.asked.contains("A 192.0.2.1"));
        FakeDns only = new FakeDns().mx("example.net", 10, "192.0.2.1");
        assertFailure(failure(router(mxConfig(), only), "bob@example.net"), "5.4.4", true,
                "192.0.2.1: an IP address is not an MX host name");
    }

    @Test
    public void twoMxNamesForOneAddressGiveOneHop() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "a.example.net", 20, "b.example.net")
                .host("a.example.net", "192.0.2.1").host("b.example.net", "192.0.2.1", "192.0.2.2");
        assertEquals(List.of(hop("192.0.2.1", 10, "a.example.net"), hop("192.0.2.2", 20, "b.example.net")),
                route(router(mxConfig(), dns), "bob@example.net").nextHops());
    }

    @Test
    public void whenIAmTheBestMxTheMailLoops() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "Mail.Example.NET", 20, "backup.example.net")
                .host("mail.example.net", "192.0.2.1").host("backup.example.net", "192.0.2.2");
        assertFailure(failure(router(mxConfig("myhostname", "mail.example.net."), dns), "bob@example.net"),
                "5.4.6", true, "mail for example.net loops back to myself");
        // By address: another name for this node.
        assertFailure(failure(router(mxConfig("my_addresses", new String[] {"192.0.2.1, 2001:db8::/64"}), dns),
                "bob@example.net"), "5.4.6", true, "loops back to myself");
        // An MX host that is me but does not resolve is still me.
        FakeDns unresolved = new FakeDns().mx("example.net", 10, "mail.example.net", 20, "backup.example.net")
                .host("backup.example.net", "192.0.2.2");
        assertFailure(failure(router(mxConfig("myhostname", "mail.example.net"), unresolved), "bob@example.net"),
                "5.4.6", true, "loops back");
        // An equal preference does not help: only better MX hosts are used.
        FakeDns equal = new FakeDns().mx("example.net", 10, "mail.example.net", 10, "peer.example.net")
                .host("mail.example.net", "192.0.2.1").host("peer.example.net", "192.0.2.3");
        assertFailure(failure(router(mxConfig("myhostname", "mail.example.net"), equal), "bob@example.net"),
                "5.4.6", true, "loops back");
    }

    @Test
    public void asABackupMxIOnlyUseBetterMxHosts() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "primary.example.net", 20, "me.example.net",
                        30, "worse.example.net")
                .host("primary.example.net", "192.0.2.1").host("me.example.net", "192.0.2.2")
                .host("worse.example.net", "192.0.2.3");
        assertEquals(List.of(hop("192.0.2.1", 10, "primary.example.net")),
                route(router(mxConfig("myhostname", "me.example.net"), dns), "bob@example.net").nextHops());
        assertEquals(List.of(hop("192.0.2.1", 10, "primary.example.net")),
                route(router(mxConfig("my_addresses", new String[] {"192.0.2.2"}), dns), "bob@example.net").nextHops());
        // The primary is down in DNS: wait, do not deliver to myself.
        FakeDns down = new FakeDns().mx("example.net", 10, "primary.example.net", 20, "me.example.net")
                .fail("primary.example.net").host("me.example.net", "192.0.2.2");
        assertFailure(failure(router(mxConfig("myhostname", "me.example.net"), down), "bob@example.net"),
                "4.4.3", false, "primary.example.net");
    }

    @Test
    public void implicitMxToMyselfLoops() {
        FakeDns dns = new FakeDns().host("mail.example.net", "192.0.2.1").host("other.example.net", "192.0.2.9");
        assertFailure(failure(router(mxConfig("myhostname", "mail.example.net"), dns), "bob@mail.example.net"),
                "5.4.6", true, "loops back");
        assertFailure(failure(router(mxConfig("my_addresses", new String[] {"192.0.2.9"}), dns), "bob@other.example.net"),
                "5.4.6", true, "loops back");
    }

    @Test
    public void aCnameMxHostIsFollowedByTheResolver() {
        // The resolver follows CNAMEs: to the router an alias is a host with addresses.
        FakeDns dns = new FakeDns().mx("example.net", 10, "alias.example.net").host("alias.example.net", "192.0.2.1");
        assertEquals(List.of(hop("192.0.2.1", 10, "alias.example.net")),
                route(router(mxConfig(), dns), "bob@example.net").nextHops());
    }

    @Test
    public void portAndTlsOfMxRoutesAreConfigurable() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "mx.example.net").host("mx.example.net", "192.0.2.1");
        Route defaults = route(router(config(), dns), "bob@example.net");
        assertEquals(List.of(new NextHop("192.0.2.1", 25, 10, "mx.example.net")), defaults.nextHops());
        assertEquals(TlsPolicy.MAY, defaults.tls());
        assertEquals(TlsPolicy.ENCRYPT, route(router(mxConfig("smtp_tls_policy", "encrypt"), dns), "bob@example.net").tls());
    }

    @Test
    public void anAddressLiteralGoesStraightToItsAddress() {
        ConfiguredRouter router = router(mxConfig("my_addresses", new String[] {"192.0.2.250"}), new FakeDns());
        assertEquals(new Route("smtp", "[192.0.2.1]", List.of(new NextHop("192.0.2.1", PORT, 0)), TlsPolicy.MAY, null),
                route(router, "bob@[192.0.2.1]"));
        assertEquals(List.of(new NextHop("2001:db8:0:0:0:0:0:1", PORT, 0)),
                route(router, "bob@[IPv6:2001:db8::1]").nextHops());
        assertFailure(failure(router, "bob@[192.0.2.250]"), "5.4.6", true, "loops back");
    }

    @Test
    public void answersOfOneDomainAreNotSharedWithAnother() {
        FakeDns dns = new FakeDns().mx("example.net", 10, "mx.example.net").host("mx.example.net", "192.0.2.1")
                .mx("example.org", 10, "mx.example.org").host("mx.example.org", "192.0.2.2");
        ConfiguredRouter router = new ConfiguredRouter();
        router.dns = dns;
        router.configure(mxConfig());
        Route net = route(router, "a@example.net");
        Route org = route(router, "a@example.org");
        assertEquals("example.net", net.destination());
        assertEquals("example.org", org.destination());
        assertEquals(4, dns.asked.size());
        assertEquals(net, route(router, "b@example.net"));
        assertEquals(org, route(router, "b@example.org"));
        assertEquals("both kept, each for its domain", 4, dns.asked.size());
        router.dns = null;
        assertEquals("a kept answer needs no resolver", net, route(router, "c@example.net"));
        assertFailure(failure(router, "a@example.com"), "4.4.3", false, "no DNS resolver");
    }
}
