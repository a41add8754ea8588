package org.postern.dns.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

import org.xbill.DNS.Address;

/**
 * Parses the configured upstream servers. Only IP addresses are accepted: resolving a server's name would
 * need a resolver, and the only one at hand would be the system's, which Postern never uses.
 */
final class ServerAddresses {

    static final int DNS_PORT = 53;

    /** The usable servers, in configured order, and the entries that were not usable. */
    record Parsed(List<InetSocketAddress> servers, List<String> invalid) {
    }

    private ServerAddresses() {
    }

    /**
     * Each entry is {@code address[:port]}, IPv6 as {@code ::1} or {@code [::1]:5353}. An entry may also hold
     * several servers separated by commas or blanks, as a single .cfg value does.
     */
    static Parsed parse(String[] entries) {
        List<InetSocketAddress> servers = new ArrayList<>();
        List<String> invalid = new ArrayList<>();
        if (entries != null) {
            for (String entry : entries) {
                if (entry == null) {
                    continue;
                }
                for (String item : entry.trim().split("[,\\s]+")) {
                    if (item.isEmpty()) {
                        continue;
                    }
                    InetSocketAddress server = parseOne(item);
                    if (server == null) {
                        invalid.add(item);
                    } else {
                        servers.add(server);
                    }
                }
            }
        }
        return new Parsed(List.copyOf(servers), List.copyOf(invalid));
    }

    /** One {@code address[:port]}, or null when it is not an IP address with a valid port. */
    static InetSocketAddress parseOne(String item) {
        String host;
        String port = null;
        if (item.startsWith("[")) {
            int close = item.indexOf(']');
            if (close < 0) {
                return null;
            }
            host = item.substring(1, close);
            String rest = item.substring(close + 1);
            if (!rest.isEmpty()) {
                if (!rest.startsWith(":")) {
                    return null;
                }
                port = rest.substring(1);
            }
        } else if (item.indexOf(':') >= 0 && item.indexOf(':') == item.lastIndexOf(':')) {
            host = item.substring(0, item.indexOf(':'));
            port = item.substring(item.indexOf(':') + 1);
        } else {
            host = item;
        }
        InetAddress address = literal(host);
        if (address == null) {
            return null;
        }
        int portNumber = DNS_PORT;
        if (port != null) {
            try {
                portNumber = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                return null;
            }
            if (portNumber < 1 || portNumber > 65535) {
                return null;
            }
        }
        return new InetSocketAddress(address, portNumber);
    }

    /** An IPv4 or IPv6 address literal as an InetAddress, parsed without any lookup; null if not a literal. */
    static InetAddress literal(String text) {
        byte[] bytes = Address.toByteArray(text, Address.IPv4);
        if (bytes == null && text.indexOf(':') >= 0) {
            bytes = Address.toByteArray(text, Address.IPv6);
        }
        if (bytes == null) {
            return null;
        }
        try {
            return InetAddress.getByAddress(bytes);
        } catch (UnknownHostException e) {
            return null; // only for a wrong length, which Address never returns
        }
    }
}
