package org.postern.shell.internal;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

import org.postern.router.rules.Cidr;
import org.postern.router.rules.RouteEntry;

/**
 * The checks the relay, domain and route commands share. Every check throws {@link IllegalArgumentException} with
 * a message for the operator; a command checks everything before it changes anything.
 */
final class Rules {

    private Rules() {
    }

    /** Whether the text is meant as a network (digits and dots, a prefix, or IPv6 colons) rather than a domain. */
    static boolean looksLikeNetwork(String text) {
        return text.indexOf('/') >= 0 || text.indexOf(':') >= 0 || text.matches("[0-9.]+");
    }

    /** A network as the router takes it; host bits set are refused here (the router would widen it silently). */
    static Cidr network(String text) {
        Cidr network;
        try {
            network = Cidr.parse(text.trim());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Bad network '" + text + "': " + e.getMessage()
                    + " (expected CIDR such as 192.0.2.0/24 or 2001:db8::/32, or one address)");
        }
        if (network.hostBitsSet()) {
            throw new IllegalArgumentException("Bad network '" + text + "': host bits are set; did you mean "
                    + addressText(network) + "/" + network.prefix() + "?");
        }
        return network;
    }

    private static String addressText(Cidr network) {
        try {
            return java.net.InetAddress.getByAddress(network.network()).getHostAddress();
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e); // 4 or 16 bytes: cannot happen
        }
    }

    /** The domain as stored: trimmed, lower case, without a trailing dot. */
    static String domain(String text) {
        String trimmed = text.trim();
        if (trimmed.equals(RouteEntry.DEFAULT_DOMAIN)) {
            throw new IllegalArgumentException("Bad domain '*': name one domain");
        }
        try {
            RouteEntry.domain(trimmed);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Bad domain '" + text + "'");
        }
        String name = trimmed.endsWith(".") ? trimmed.substring(0, trimmed.length() - 1) : trimmed;
        return name.toLowerCase(Locale.ROOT);
    }

    /** The domain in the form the router compares (lower-case A-labels, {@code *} as is), if it is one. */
    static Optional<String> key(String domain) {
        try {
            return Optional.of(RouteEntry.domain(domain));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** The first item of the list naming the same domain, if any. */
    static Optional<String> findDomain(List<String> items, String domain) {
        Optional<String> wanted = key(domain);
        return items.stream().filter(i -> i.equalsIgnoreCase(domain.trim())
                || (wanted.isPresent() && key(i).equals(wanted))).findFirst();
    }

    /** The first item of the list naming the same network, if any. */
    static Optional<String> findNetwork(List<String> items, String network) {
        Cidr wanted;
        try {
            wanted = Cidr.parse(network.trim());
        } catch (IllegalArgumentException e) {
            wanted = null;
        }
        for (String item : items) {
            if (item.equals(network.trim())) {
                return Optional.of(item);
            }
            try {
                if (wanted != null && Cidr.parse(item).sameNetwork(wanted)) {
                    return Optional.of(item);
                }
            } catch (IllegalArgumentException e) {
                // a bad entry matches its own text only
            }
        }
        return Optional.empty();
    }

    /** The domain an entry of {@code routes} is for, also when the rest of it is bad. */
    static Optional<String> routeDomain(String entry) {
        int equals = entry.indexOf('=');
        return key(equals < 0 ? entry : entry.substring(0, equals));
    }

    /** The entry of {@code routes} for this domain (or {@code *}), if any. */
    static Optional<String> findRoute(List<String> routes, String domain) {
        Optional<String> wanted = key(domain);
        return wanted.isEmpty() ? Optional.empty()
                : routes.stream().filter(r -> routeDomain(r).equals(wanted)).findFirst();
    }
}
