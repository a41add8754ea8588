package org.postern.router.rules;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Arrays;
import java.util.regex.Pattern;

/**
 * One IPv4 or IPv6 network in CIDR notation ({@code 192.0.2.0/24}, {@code 2001:db8::/32}); a bare address
 * is a single host (/32 or /128).
 *
 * @param network the network address, host bits cleared
 * @param prefix the prefix length
 * @param hostBitsSet whether the text had host bits set ({@code 10.1.2.3/8}); they are ignored
 * @param text the text as configured
 */
public record Cidr(byte[] network, int prefix, boolean hostBitsSet, String text) {

    private static final Pattern IPV4 =
            Pattern.compile("(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]+");

    public Cidr {
        network = network.clone();
    }

    /** The network address, host bits cleared; a copy. */
    @Override
    public byte[] network() {
        return network.clone();
    }

    /**
     * Parses {@code address[/prefix]}. Only literal addresses are accepted: a host name would make
     * {@link InetAddress} ask DNS, and a trust rule must not depend on a lookup.
     *
     * @throws IllegalArgumentException with a message naming what is wrong
     */
    public static Cidr parse(String text) {
        int slash = text.indexOf('/');
        byte[] address = parseAddress(slash < 0 ? text : text.substring(0, slash));
        int bits = address.length * 8;
        int prefix = bits;
        if (slash >= 0) {
            String prefixText = text.substring(slash + 1);
            if (!prefixText.matches("\\d{1,3}")) {
                throw new IllegalArgumentException("bad prefix length '" + prefixText + "'");
            }
            prefix = Integer.parseInt(prefixText);
            if (prefix > bits) {
                throw new IllegalArgumentException("prefix length " + prefix + " is longer than " + bits);
            }
        }
        byte[] network = mask(address, prefix);
        return new Cidr(network, prefix, !Arrays.equals(network, address), text);
    }

    private static byte[] parseAddress(String text) {
        // IPv4 must be a strict dotted quad: InetAddress also takes "10.1" and would look up anything else.
        // IPv6 must be hex, colons and dots only: no zone id, no brackets, no name.
        boolean v4 = IPV4.matcher(text).matches();
        boolean v6 = !v4 && text.indexOf(':') >= 0 && IPV6.matcher(text).matches();
        if (!v4 && !v6) {
            throw new IllegalArgumentException("not an IP address: '" + text + "'");
        }
        try {
            // A literal is parsed without a lookup. An IPv4-mapped IPv6 literal comes back as IPv4,
            // as the client addresses of an IPv4 connection on a dual-stack socket do.
            return InetAddress.getByName(text).getAddress();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("not an IP address: '" + text + "'");
        }
    }

    private static byte[] mask(byte[] address, int prefix) {
        byte[] masked = address.clone();
        for (int i = 0; i < masked.length; i++) {
            int keep = Math.max(0, Math.min(8, prefix - i * 8));
            masked[i] &= (byte) (0xff00 >> keep);
        }
        return masked;
    }

    /** Whether the address is in this network; an address of the other family never is. */
    public boolean contains(InetAddress address) {
        if (address == null) {
            return false;
        }
        byte[] bytes = address.getAddress();
        return bytes.length == network.length && Arrays.equals(mask(bytes, prefix), network);
    }

    /** Whether both name the same network, however written ({@code 10.0.0.0/8} and {@code 10.0.0.0/08}). */
    public boolean sameNetwork(Cidr other) {
        return prefix == other.prefix && Arrays.equals(network, other.network);
    }

    @Override
    public String toString() {
        return text;
    }
}
