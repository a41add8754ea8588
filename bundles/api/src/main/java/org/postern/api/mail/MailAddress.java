package org.postern.api.mail;

import java.net.IDN;
import java.util.Locale;
import java.util.Objects;

/**
 * A parsed mailbox as it appears in an SMTP path ({@code local@domain}), immutable and validated.
 *
 * <p>Two special values exist: the null reverse path {@code <>} ({@link #NULL_SENDER}), used by bounces,
 * and the bare {@code <postmaster>} recipient, which has an empty domain. The local part may hold UTF-8
 * (RFC 6531) and the domain may be an IDN in U-labels or an address literal such as {@code [127.0.0.1]}.
 * The local part keeps its case (it belongs to the receiving system); the domain compares case-insensitively.
 *
 * <p>Parsing never throws for bad input except {@link IllegalArgumentException} with a message fit for an
 * SMTP reply text.
 */
public final class MailAddress {

    /** The null reverse path {@code <>}. */
    public static final MailAddress NULL_SENDER = new MailAddress("", "");

    private static final int MAX_LOCAL_PART = 64;
    private static final int MAX_DOMAIN = 255;

    private final String localPart;
    private final String domain;

    private MailAddress(String localPart, String domain) {
        this.localPart = localPart;
        this.domain = domain;
    }

    /**
     * Parses a mailbox without angle brackets: {@code user@example.org}, {@code "odd user"@example.org},
     * {@code user@[192.0.2.1]}, or {@code postmaster} alone. An empty string gives {@link #NULL_SENDER}.
     *
     * @throws IllegalArgumentException when the text is not a valid RFC 5321 Mailbox
     */
    public static MailAddress parse(String text) {
        Objects.requireNonNull(text, "text");
        if (text.isEmpty()) {
            return NULL_SENDER;
        }
        if (text.equalsIgnoreCase("postmaster")) {
            return new MailAddress("postmaster", "");
        }
        int at = text.lastIndexOf('@');
        if (at <= 0 || at == text.length() - 1) {
            throw new IllegalArgumentException("address must be local-part@domain");
        }
        String local = text.substring(0, at);
        String domain = text.substring(at + 1);
        validateLocalPart(local);
        validateDomain(domain);
        return new MailAddress(local, domain);
    }

    /** Builds an address from parts that are each validated as by {@link #parse(String)}. */
    public static MailAddress of(String localPart, String domain) {
        return parse(localPart + "@" + domain);
    }

    private static void validateLocalPart(String local) {
        if (local.length() > MAX_LOCAL_PART && local.codePoints().count() > MAX_LOCAL_PART) {
            throw new IllegalArgumentException("local part too long");
        }
        if (local.startsWith("\"")) {
            if (local.length() < 2 || !local.endsWith("\"")) {
                throw new IllegalArgumentException("unterminated quoted local part");
            }
            String inner = local.substring(1, local.length() - 1);
            for (int i = 0; i < inner.length(); i++) {
                char c = inner.charAt(i);
                if (c == '\\') {
                    if (++i >= inner.length() || inner.charAt(i) < 32 || inner.charAt(i) > 126) {
                        throw new IllegalArgumentException("bad quoted pair in local part");
                    }
                } else if (c == '"' || (c < 32) || c == 127) {
                    throw new IllegalArgumentException("bad character in quoted local part");
                }
            }
            return;
        }
        if (local.startsWith(".") || local.endsWith(".") || local.contains("..")) {
            throw new IllegalArgumentException("bad dots in local part");
        }
        for (int i = 0; i < local.length(); i++) {
            char c = local.charAt(i);
            if (!(isAtext(c) || c == '.')) {
                throw new IllegalArgumentException("bad character in local part");
            }
        }
    }

    private static boolean isAtext(char c) {
        if (c >= 128) {
            return !Character.isISOControl(c) && !Character.isWhitespace(c);
        }
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || "!#$%&'*+-/=?^_`{|}~".indexOf(c) >= 0;
    }

    private static void validateDomain(String domain) {
        if (domain.length() > MAX_DOMAIN) {
            throw new IllegalArgumentException("domain too long");
        }
        if (domain.startsWith("[")) {
            if (!domain.endsWith("]") || domain.length() < 3) {
                throw new IllegalArgumentException("bad address literal");
            }
            String literal = domain.substring(1, domain.length() - 1);
            if (literal.regionMatches(true, 0, "IPv6:", 0, 5)) {
                if (!literal.substring(5).matches("[0-9A-Fa-f:.]+") || !literal.substring(5).contains(":")) {
                    throw new IllegalArgumentException("bad IPv6 address literal");
                }
            } else if (!literal.matches("(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}")) {
                throw new IllegalArgumentException("bad IPv4 address literal");
            }
            return;
        }
        String ascii;
        try {
            ascii = IDN.toASCII(domain, IDN.USE_STD3_ASCII_RULES);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("bad domain");
        }
        if (ascii.isEmpty() || ascii.endsWith(".") || ascii.startsWith(".")) {
            throw new IllegalArgumentException("bad domain");
        }
        for (String label : ascii.split("\\.", -1)) {
            if (label.isEmpty() || label.length() > 63) {
                throw new IllegalArgumentException("bad domain label");
            }
        }
    }

    public String localPart() {
        return localPart;
    }

    /** The domain as given (U-labels kept); empty for {@link #NULL_SENDER} and bare {@code postmaster}. */
    public String domain() {
        return domain;
    }

    /** The domain in lower-case A-labels (punycode), for DNS and comparisons; literals unchanged. */
    public String asciiDomain() {
        if (domain.isEmpty() || isAddressLiteral()) {
            return domain;
        }
        return IDN.toASCII(domain).toLowerCase(Locale.ROOT);
    }

    public boolean isNullSender() {
        return localPart.isEmpty() && domain.isEmpty();
    }

    public boolean isAddressLiteral() {
        return domain.startsWith("[");
    }

    /** True when the local part or the domain needs SMTPUTF8 to be transmitted. */
    public boolean needsSmtpUtf8() {
        return !localPart.chars().allMatch(c -> c < 128) || !domain.chars().allMatch(c -> c < 128);
    }

    /** The address as written in a path, without angle brackets; empty for the null sender. */
    @Override
    public String toString() {
        if (isNullSender()) {
            return "";
        }
        return domain.isEmpty() ? localPart : localPart + "@" + domain;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof MailAddress other
                && localPart.equals(other.localPart)
                && asciiDomain().equals(other.asciiDomain());
    }

    @Override
    public int hashCode() {
        return Objects.hash(localPart, asciiDomain());
    }
}
