package org.postern.router.rules;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;
import org.postern.api.routing.TlsPolicy;

/** The syntax of one entry of the router's {@code routes}, as the router and the console read it. */
public class RouteEntryTest {

    @Test
    public void routeEntrySyntax() {
        RouteEntry entry = RouteEntry.parse(" Example.COM =  [192.0.2.5]:2525   TLS=Verify auth=smart-host.1 ");
        assertEquals("example.com", entry.domain());
        assertEquals(TlsPolicy.VERIFY, entry.tls());
        assertEquals("smart-host.1", entry.auth());
        assertEquals("example.com = [192.0.2.5]:2525 tls=verify auth=smart-host.1", entry.toString());
        assertEquals("example.org = mx", RouteEntry.parse("example.org. = MX").toString());
        assertTrue(RouteEntry.parse("example.org = mx").viaMx());
        assertEquals("* = a.example:25 [2001:db8::1]:26 tls=none",
                RouteEntry.parse("*=a.example [2001:db8::1]:26 tls=none").toString());
        for (String bad : new String[] {"example.com", "example.com =", "example.com = mx [192.0.2.1]",
                "example.com = [192.0.2.1] tls=maybe", "example.com = [192.0.2.1] tls=may tls=none",
                "example.com = [192.0.2.1] auth=", "example.com = [192.0.2.1] auth=a:b", "example.com = mx auth=a",
                "[192.0.2.1] = mx", "bad_domain = mx", "example.com = [192.0.2.1] [192.0.2.1]:25",
                "example.com = host:0"}) {
            try {
                RouteEntry.parse(bad);
                fail("accepted '" + bad + "'");
            } catch (IllegalArgumentException e) {
                assertFalse(e.getMessage().isEmpty());
            }
        }
    }

    @Test
    public void domainsAreComparedAsLowerCaseALabels() {
        assertEquals("xn--bcher-kva.example", RouteEntry.domain(" Bücher.Example. "));
        assertEquals(RouteEntry.DEFAULT_DOMAIN, RouteEntry.domain(" * "));
        assertEquals(TlsPolicy.ENCRYPT, RouteEntry.tlsPolicy("Encrypt"));
        for (String bad : new String[] {"[192.0.2.1]", "bad_domain", ""}) {
            try {
                RouteEntry.domain(bad);
                fail("accepted '" + bad + "'");
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("bad domain"));
            }
        }
    }
}
