package org.postern.router.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.lang.reflect.Proxy;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import org.junit.Test;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router.RouteException;
import org.postern.api.routing.TlsPolicy;

public class ConfiguredRouterTest {

    /** A Config as ConfigAdmin would hand it: given values, annotation defaults for the rest. */
    private static ConfiguredRelayPolicy.Config config(Object... pairs) {
        Map<String, Object> values = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            values.put((String) pairs[i], pairs[i + 1]);
        }
        return (ConfiguredRelayPolicy.Config) Proxy.newProxyInstance(ConfiguredRelayPolicy.Config.class.getClassLoader(),
                new Class<?>[] {ConfiguredRelayPolicy.Config.class},
                (proxy, method, args) -> values.containsKey(method.getName())
                        ? values.get(method.getName()) : method.getDefaultValue());
    }

    private static ConfiguredRouter router(ConfiguredRelayPolicy.Config config) {
        ConfiguredRouter router = new ConfiguredRouter();
        router.configure(config);
        return router;
    }

    private static Route route(ConfiguredRouter router, String recipient) {
        CompletableFuture<Route> stage = router.route(MailAddress.parse(recipient)).toCompletableFuture();
        assertTrue("answered from memory, at once", stage.isDone());
        return stage.join();
    }

    private static RouteException failure(ConfiguredRouter router, String recipient) {
        CompletableFuture<Route> stage = router.route(MailAddress.parse(recipient)).toCompletableFuture();
        assertTrue(stage.isDone());
        try {
            stage.join();
            fail("routed " + recipient);
            return null;
        } catch (CompletionException e) {
            return (RouteException) e.getCause();
        }
    }

    @Test
    public void localDomainsGoToTheLocalTransport() {
        ConfiguredRouter router = router(config("local_domains", new String[] {"Example.ORG, bücher.example"},
                "relayhost", "[192.0.2.25]:2525"));
        Route local = route(router, "alice@example.org");
        assertEquals("local", local.transport());
        assertEquals("local", local.destination());
        assertEquals(List.of(), local.nextHops());
        assertEquals(local, route(router, "bob@EXAMPLE.org"));
        assertEquals("an IDN in U-labels is local too", local, route(router, "x@BÜCHER.example"));
        assertEquals("the bare postmaster is ours", local, route(router, "postmaster"));
    }

    @Test
    public void otherDomainsGoToTheRelayHost() {
        ConfiguredRouter router = router(config("relayhost", "[127.0.0.1]:2525"));
        Route relay = route(router, "bob@example.net");
        assertEquals(new Route("smtp", "[127.0.0.1]:2525", List.of(new NextHop("127.0.0.1", 2525, 0)), TlsPolicy.MAY,
                null), relay);
        assertEquals("every domain shares the destination", relay, route(router, "carol@elsewhere.example"));
        assertEquals("an address literal is not local", relay, route(router, "x@[127.0.0.1]"));
        assertEquals("local", route(router, "root@localhost").transport());
    }

    @Test
    public void relayHostForms() {
        assertEquals(new NextHop("smtp.example.net", 25, 0), RelayHost.parse("smtp.example.net").hop());
        assertEquals("smtp.example.net:25", RelayHost.parse(" SMTP.Example.NET ").text());
        assertEquals(new NextHop("smtp.example.net", 587, 0), RelayHost.parse("smtp.example.net:587").hop());
        assertEquals("[smtp.example.net]:587", RelayHost.parse("[smtp.example.net]:587").text());
        assertEquals(new NextHop("192.0.2.1", 25, 0), RelayHost.parse("[192.0.2.1]").hop());
        assertEquals(new NextHop("192.0.2.1", 2525, 0), RelayHost.parse("192.0.2.1:2525").hop());
        assertEquals(new NextHop("2001:db8::1", 25, 0), RelayHost.parse("[2001:db8::1]").hop());
        assertEquals(new NextHop("2001:db8::1", 26, 0), RelayHost.parse("[IPv6:2001:db8::1]:26").hop());
        assertEquals("[2001:db8::1]:26", RelayHost.parse("[2001:db8::1]:26").text());
        assertEquals("xn--bcher-kva.example:25", RelayHost.parse("bücher.example").text());
        for (String bad : new String[] {"2001:db8::1", "[192.0.2.1", "[192.0.2.1]x", "host:0", "host:65536", "host:",
                "host:smtp", "bad_host!", "", "[]:25", "a..b"}) {
            try {
                RelayHost.parse(bad);
                fail("accepted '" + bad + "'");
            } catch (IllegalArgumentException e) {
                assertFalse(e.getMessage().isEmpty());
            }
        }
    }

    @Test
    public void withoutARelayHostOtherMailWaits() {
        RouteException e = failure(router(config()), "bob@example.net");
        assertFalse(e.permanent());
        assertEquals("4.4.3", e.status());
        assertEquals("no route: MX routing not available yet", e.getMessage());
    }

    @Test
    public void aBadRelayHostDefersInsteadOfBouncing() {
        RouteException e = failure(router(config("relayhost", "2001:db8::1:25")), "bob@example.net");
        assertFalse(e.permanent());
        assertEquals("4.3.5", e.status());
        assertTrue(e.getMessage(), e.getMessage().contains("2001:db8::1:25"));
        assertEquals("local mail still routes", "local", route(router(config("relayhost", "bad host")), "a@localhost")
                .transport());
    }

    @Test
    public void aNewConfigurationAppliesToTheNextRoute() {
        ConfiguredRouter router = router(config());
        router.configure(config("relayhost", "relay.example:2525", "local_domains", new String[] {"example.net"}));
        assertEquals("local", route(router, "bob@example.net").transport());
        assertEquals("relay.example:2525", route(router, "bob@example.com").destination());
    }

    @Test
    public void beforeItsConfigurationNothingRoutes() {
        RouteException e = failure(new ConfiguredRouter(), "bob@example.net");
        assertFalse(e.permanent());
        assertEquals("local domains are unknown too", "4.3.5", failure(new ConfiguredRouter(), "root@localhost").status());
    }

    @Test
    public void aCallerCannotSpoilTheSharedAnswer() {
        ConfiguredRouter router = router(config("relayhost", "relay.example"));
        router.route(MailAddress.parse("a@example.net")).toCompletableFuture().obtrudeValue(null);
        assertEquals("relay.example:25", route(router, "a@example.net").destination());
    }
}
