package org.postern.dns.internal;

import static org.junit.Assert.assertEquals;

import java.net.InetSocketAddress;
import java.util.List;

import org.junit.Test;

public class ServerAddressesTest {

    private static InetSocketAddress at(String ip, int port) {
        return new InetSocketAddress(ServerAddresses.literal(ip), port);
    }

    @Test
    public void addressesWithAndWithoutPorts() {
        ServerAddresses.Parsed parsed = ServerAddresses.parse(new String[] {"127.0.0.1", "127.0.0.2:5353", "::1",
                "[::1]:5353", "[2001:db8::1]", " 10.0.0.1, 10.0.0.2 10.0.0.3:54 "});
        assertEquals(List.of(at("127.0.0.1", 53), at("127.0.0.2", 5353), at("::1", 53), at("::1", 5353),
                at("2001:db8::1", 53), at("10.0.0.1", 53), at("10.0.0.2", 53), at("10.0.0.3", 54)),
                parsed.servers());
        assertEquals(List.of(), parsed.invalid());
    }

    @Test
    public void hostNamesAndBadPortsAreRefused() {
        ServerAddresses.Parsed parsed = ServerAddresses.parse(new String[] {"dns.example.com",
                "dns.example.com:53", "localhost", "1.2.3.4:0", "1.2.3.4:70000", "1.2.3.4:x", "[::1]x", "[::1",
                "300.1.1.1", "1.2.3", "[dns.example.com]:53"});
        assertEquals(List.of(), parsed.servers());
        assertEquals(11, parsed.invalid().size());
    }

    @Test
    public void nothingConfigured() {
        assertEquals(List.of(), ServerAddresses.parse(null).servers());
        assertEquals(List.of(), ServerAddresses.parse(new String[] {"", " "}).servers());
    }
}
