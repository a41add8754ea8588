package org.postern.router.rules;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;
import java.util.regex.Pattern;

import org.postern.api.mail.MailAddress;
import org.postern.api.routing.NextHop;

/**
 * A relay host as Postfix writes it: {@code host}, {@code host:port}, {@code [address]} or
 * {@code [address]:port}, port 25 by default. An IPv6 address needs the brackets (its colons would read as a
 * port); {@code [IPv6:...]} is taken too. Unlike Postfix, a host name is never looked up for MX records, with or
 * without brackets: the router asks for its A/AAAA addresses only. The same syntax names the fixed next hops of a
 * route.
 *
 * @param hop the host to connect to: the address, or the name (in lower-case A-labels) still to be resolved
 * @param text the canonical form, used as the route's destination (so concurrency is limited per relay host)
 * @param literal whether the host is an IP address (nothing to resolve)
 */
public record RelayHost(NextHop hop, String text, boolean literal) {

    private static final Pattern IPV4 =
            Pattern.compile("(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

    /**
     * @throws IllegalArgumentException with a message naming what is wrong
     */
    public static RelayHost parse(String value) {
        String text = value.trim();
        String host;
        String rest;
        boolean bracketed = text.startsWith("[");
        if (bracketed) {
            int close = text.indexOf(']');
            if (close < 0) {
                throw new IllegalArgumentException("missing ']'");
            }
            host = text.substring(1, close);
            if (host.regionMatches(true, 0, "IPv6:", 0, 5)) {
                host = host.substring(5);
            }
            rest = text.substring(close + 1);
            if (!rest.isEmpty() && !rest.startsWith(":")) {
                throw new IllegalArgumentException("unexpected text after ']'");
            }
            rest = rest.isEmpty() ? null : rest.substring(1);
        } else {
            int colon = text.indexOf(':');
            if (colon >= 0 && text.indexOf(':', colon + 1) >= 0) {
                throw new IllegalArgumentException("an IPv6 address must be written in brackets: [2001:db8::1]:25");
            }
            host = colon < 0 ? text : text.substring(0, colon);
            rest = colon < 0 ? null : text.substring(colon + 1);
        }
        int port = 25;
        if (rest != null) {
            if (!rest.matches("\\d{1,5}") || Integer.parseInt(rest) < 1 || Integer.parseInt(rest) > 65535) {
                throw new IllegalArgumentException("bad port '" + rest + "'");
            }
            port = Integer.parseInt(rest);
        }
        boolean literal = isAddress(host);
        if (!literal && host.matches("[0-9.]+")) {
            throw new IllegalArgumentException("'" + host + "' is not a valid IPv4 address"); // RFC 1123 2.1
        }
        host = checkHost(host);
        NextHop hop = new NextHop(host, port, 0);
        return new RelayHost(hop, (bracketed ? "[" + host + "]" : host) + ":" + port, literal);
    }

    /** Whether the text has the shape of an IPv4 or IPv6 address (not whether the address is a good one). */
    public static boolean isAddress(String host) {
        return IPV4.matcher(host).matches() || (host.indexOf(':') >= 0 && IPV6.matcher(host).matches());
    }

    /** A literal address as it is, a host name in lower-case A-labels. */
    private static String checkHost(String host) {
        if (host.isEmpty()) {
            throw new IllegalArgumentException("no host");
        }
        if (isAddress(host)) {
            if (host.indexOf(':') >= 0) {
                try {
                    // Text with a colon is parsed as an IPv6 literal, never looked up.
                    InetAddress.getByName(host);
                } catch (UnknownHostException e) {
                    throw new IllegalArgumentException("bad IPv6 address '" + host + "'");
                }
            }
            return host.toLowerCase(Locale.ROOT);
        }
        String name = host.endsWith(".") ? host.substring(0, host.length() - 1) : host;
        try {
            // The address parser checks a domain (labels, length, IDN) without asking DNS.
            return MailAddress.of("postmaster", name).asciiDomain();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad host '" + host + "'");
        }
    }

    @Override
    public String toString() {
        return text;
    }
}
