package org.postern.router.rules;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

import org.postern.api.mail.MailAddress;
import org.postern.api.routing.TlsPolicy;

/**
 * One entry of the {@code routes} property: {@code DOMAIN = TARGET [tls=LEVEL] [auth=ID]}.
 *
 * <ul>
 * <li>DOMAIN: a domain (exact match, no subdomains) or {@code *} for every domain without an entry of its own.</li>
 * <li>TARGET: {@code mx} to look up the domain's MX records, or one or more next hops separated by spaces, each
 * written as {@link RelayHost} takes them ({@code host}, {@code host:port}, {@code [address]}, {@code [address]:port}),
 * tried in order.</li>
 * <li>{@code tls=} none, may, encrypt or verify; when absent the {@code smtp.tls.policy} setting applies.</li>
 * <li>{@code auth=} the name of client credentials in the smtp transport's configuration; only with next hops,
 * so that a password never goes to whatever host a domain's MX names.</li>
 * </ul>
 *
 * <p>Entries hold no commas: a plain .cfg line lists entries separated by commas.
 *
 * @param domain the domain in lower-case A-labels, or {@code *}
 * @param hops the fixed next hops; empty for MX routing
 * @param tls the TLS policy, or null for the default
 * @param auth the credentials id, or null
 */
public record RouteEntry(String domain, List<RelayHost> hops, TlsPolicy tls, String auth) {

    /** The domain of the route for every domain without an entry of its own. */
    public static final String DEFAULT_DOMAIN = "*";

    private static final Pattern CREDENTIALS_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    public RouteEntry {
        hops = List.copyOf(hops);
    }

    /** Whether the domain's MX records name the next hops. */
    public boolean viaMx() {
        return hops.isEmpty();
    }

    /**
     * @throws IllegalArgumentException with a message naming what is wrong
     */
    public static RouteEntry parse(String text) {
        int equals = text.indexOf('=');
        if (equals < 0) {
            throw new IllegalArgumentException("expected DOMAIN = mx | HOST[:PORT] ... [tls=LEVEL] [auth=ID]");
        }
        String domain = domain(text.substring(0, equals));
        List<RelayHost> hops = new ArrayList<>();
        boolean mx = false;
        TlsPolicy tls = null;
        String auth = null;
        for (String token : text.substring(equals + 1).trim().split("\\s+")) {
            if (token.isEmpty()) {
                continue;
            }
            String lower = token.toLowerCase(Locale.ROOT);
            if (lower.startsWith("tls=")) {
                if (tls != null) {
                    throw new IllegalArgumentException("tls= given twice");
                }
                tls = tlsPolicy(token.substring(4));
            } else if (lower.startsWith("auth=")) {
                if (auth != null) {
                    throw new IllegalArgumentException("auth= given twice");
                }
                auth = credentialsId(token.substring(5));
            } else if (lower.equals("mx")) {
                mx = true;
            } else {
                RelayHost hop;
                try {
                    hop = RelayHost.parse(token);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("next hop '" + token + "': " + e.getMessage());
                }
                if (hops.stream().anyMatch(h -> h.text().equals(hop.text()))) {
                    throw new IllegalArgumentException("next hop " + hop.text() + " given twice");
                }
                hops.add(hop);
            }
        }
        if (mx && !hops.isEmpty()) {
            throw new IllegalArgumentException("either mx or next hops, not both");
        }
        if (!mx && hops.isEmpty()) {
            throw new IllegalArgumentException("no target: give mx or next hops");
        }
        if (mx && auth != null) {
            throw new IllegalArgumentException("auth= needs fixed next hops: credentials are never sent to MX hosts");
        }
        return new RouteEntry(domain, hops, tls, auth);
    }

    /** {@code *}, or a domain in lower-case A-labels (a trailing dot dropped). */
    public static String domain(String text) {
        String trimmed = text.trim();
        if (trimmed.equals(DEFAULT_DOMAIN)) {
            return DEFAULT_DOMAIN;
        }
        String name = trimmed.endsWith(".") ? trimmed.substring(0, trimmed.length() - 1) : trimmed;
        try {
            MailAddress probe = MailAddress.of("postmaster", name);
            if (!probe.isAddressLiteral()) {
                return probe.asciiDomain();
            }
        } catch (IllegalArgumentException e) {
            // said below
        }
        throw new IllegalArgumentException("bad domain '" + trimmed + "'");
    }

    /** none, may, encrypt or verify, in any case. */
    public static TlsPolicy tlsPolicy(String text) {
        try {
            return TlsPolicy.valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad TLS policy '" + text + "': one of none, may, encrypt, verify");
        }
    }

    static String credentialsId(String text) {
        if (!CREDENTIALS_ID.matcher(text).matches()) {
            throw new IllegalArgumentException("bad credentials id '" + text
                    + "': letters, digits, '.', '_' and '-', up to 64");
        }
        return text;
    }

    /** The canonical text of the entry, as the console writes it. */
    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(domain).append(" =");
        if (hops.isEmpty()) {
            s.append(" mx");
        }
        for (RelayHost hop : hops) {
            s.append(' ').append(hop.text());
        }
        if (tls != null) {
            s.append(" tls=").append(tls.name().toLowerCase(Locale.ROOT));
        }
        if (auth != null) {
            s.append(" auth=").append(auth);
        }
        return s.toString();
    }
}
