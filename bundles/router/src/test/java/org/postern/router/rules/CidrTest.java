package org.postern.router.rules;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.net.InetAddress;

import org.junit.Test;

/** The network syntax of trusted.networks and my.addresses, as the router and the console read it. */
public class CidrTest {

    private static InetAddress address(String literal) throws Exception {
        return InetAddress.getByName(literal); // a literal: no lookup
    }

    @Test
    public void networksContainTheirAddressesOnly() throws Exception {
        Cidr v4 = Cidr.parse("192.0.2.0/24");
        assertTrue(v4.contains(address("192.0.2.77")));
        assertFalse(v4.contains(address("192.0.3.1")));
        assertFalse("the other family never matches", v4.contains(address("2001:db8::1")));
        assertFalse(v4.contains(null));
        Cidr v6 = Cidr.parse("2001:db8::/32");
        assertTrue(v6.contains(address("2001:db8:ffff::1")));
        assertFalse(v6.contains(address("2001:db9::1")));
        Cidr host = Cidr.parse("127.0.0.1");
        assertEquals(32, host.prefix());
        assertTrue(host.contains(address("127.0.0.1")));
        assertFalse(host.contains(address("127.0.0.2")));
        assertTrue("an IPv4-mapped address is IPv4", v4.contains(address("::ffff:192.0.2.5")));
    }

    @Test
    public void hostBitsAreClearedAndReported() {
        Cidr wide = Cidr.parse("10.1.2.3/8");
        assertTrue(wide.hostBitsSet());
        assertArrayEquals(new byte[] {10, 0, 0, 0}, wide.network());
        assertEquals("10.1.2.3/8", wide.toString());
        assertFalse(Cidr.parse("10.0.0.0/8").hostBitsSet());
        wide.network()[0] = 99;
        assertEquals("the network cannot be changed from outside", 10, wide.network()[0]);
    }

    @Test
    public void sameNetworkHoweverWritten() {
        assertTrue(Cidr.parse("10.0.0.0/8").sameNetwork(Cidr.parse("10.0.0.0/08")));
        assertTrue(Cidr.parse("2001:db8::/32").sameNetwork(Cidr.parse("2001:DB8:0::/32")));
        assertFalse(Cidr.parse("10.0.0.0/8").sameNetwork(Cidr.parse("10.0.0.0/16")));
        assertFalse(Cidr.parse("10.0.0.0/8").sameNetwork(Cidr.parse("11.0.0.0/8")));
    }

    @Test
    public void onlyLiteralsAreTaken() {
        for (String bad : new String[] {"localhost", "example.com/24", "10.1", "10.0.0.0/33", "2001:db8::/129",
                "10.0.0.0/", "10.0.0.0/x", "[2001:db8::1]", "fe80::1%eth0", "256.0.0.1"}) {
            try {
                Cidr.parse(bad);
                fail("accepted '" + bad + "'");
            } catch (IllegalArgumentException e) {
                assertFalse(e.getMessage().isEmpty());
            }
        }
    }
}
