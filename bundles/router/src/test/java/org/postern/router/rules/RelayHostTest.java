package org.postern.router.rules;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;
import org.postern.api.routing.NextHop;

/** The relay host syntax the router and the console share. */
public class RelayHostTest {

    private static NextHop hop(String host, int port) {
        return new NextHop(host, port, 0);
    }

    @Test
    public void relayHostForms() {
        assertEquals(hop("smtp.example.net", 25), RelayHost.parse("smtp.example.net").hop());
        assertEquals("smtp.example.net:25", RelayHost.parse(" SMTP.Example.NET ").text());
        assertFalse(RelayHost.parse("smtp.example.net").literal());
        assertEquals(hop("smtp.example.net", 587), RelayHost.parse("smtp.example.net:587").hop());
        assertEquals("[smtp.example.net]:587", RelayHost.parse("[smtp.example.net]:587").text());
        assertEquals(hop("192.0.2.1", 25), RelayHost.parse("[192.0.2.1]").hop());
        assertTrue(RelayHost.parse("[192.0.2.1]").literal());
        assertEquals(hop("192.0.2.1", 2525), RelayHost.parse("192.0.2.1:2525").hop());
        assertEquals(hop("2001:db8::1", 25), RelayHost.parse("[2001:DB8::1]").hop());
        assertTrue(RelayHost.parse("[2001:db8::1]").literal());
        assertEquals(hop("2001:db8::1", 26), RelayHost.parse("[IPv6:2001:db8::1]:26").hop());
        assertEquals("[2001:db8::1]:26", RelayHost.parse("[2001:db8::1]:26").text());
        assertEquals("xn--bcher-kva.example:25", RelayHost.parse("bücher.example").text());
        for (String bad : new String[] {"2001:db8::1", "[192.0.2.1", "[192.0.2.1]x", "host:0", "host:65536", "host:",
                "host:smtp", "bad_host!", "", "[]:25", "a..b", "[1:2:3:4:5:6:7:8:9]", "[::g]"}) {
            try {
                RelayHost.parse(bad);
                fail("accepted '" + bad + "'");
            } catch (IllegalArgumentException e) {
                assertFalse(e.getMessage().isEmpty());
            }
        }
    }

    @Test
    public void dottedNumbersMustBeAnAddress() {
        for (String bad : new String[] {"[127.0.0.300]:25", "127.0.0.300", "[1.2.3]"}) {
            try {
                RelayHost.parse(bad);
                fail(bad + " was taken");
            } catch (IllegalArgumentException expected) {
                // refused, as a console user is told
            }
        }
        assertEquals("[127.0.0.9]:2525", RelayHost.parse("[127.0.0.9]:2525").text());
    }
}
