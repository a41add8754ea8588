package org.postern.delivery.smtp.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The service extensions a server announced in its EHLO reply (none after HELO).
 *
 * @param sizeLimit the SIZE limit in octets, 0 when SIZE is offered without a limit, -1 when not offered
 * @param auth the SASL mechanisms offered by AUTH (RFC 4954), upper case; empty when AUTH is not offered
 */
record Extensions(boolean esmtp, boolean pipelining, long sizeLimit, boolean eightBitMime, boolean smtpUtf8,
                  boolean startTls, boolean dsn, List<String> auth) {

    static final Extensions NONE = new Extensions(false, false, -1, false, false, false, false, List.of());

    Extensions {
        auth = List.copyOf(auth);
    }

    /** Parses an EHLO reply: the first line is the server's name, each further line a keyword and its parameters. */
    static Extensions parse(Reply ehlo) {
        boolean pipelining = false;
        boolean eightBit = false;
        boolean utf8 = false;
        boolean startTls = false;
        boolean dsn = false;
        long size = -1;
        List<String> auth = new ArrayList<>();
        List<String> lines = ehlo.lines();
        for (int i = 1; i < lines.size(); i++) {
            String[] words = lines.get(i).trim().split("[ =]+");
            switch (words[0].toUpperCase(Locale.ROOT)) {
                case "PIPELINING" -> pipelining = true;
                case "8BITMIME" -> eightBit = true;
                case "SMTPUTF8" -> utf8 = true;
                case "STARTTLS" -> startTls = true;
                case "DSN" -> dsn = true;
                case "SIZE" -> size = words.length > 1 ? parseSize(words[1]) : 0;
                // "AUTH=" is how servers before RFC 4954 announced it; some still send both lines
                case "AUTH" -> {
                    for (int w = 1; w < words.length; w++) {
                        String mechanism = words[w].toUpperCase(Locale.ROOT);
                        if (!auth.contains(mechanism)) {
                            auth.add(mechanism);
                        }
                    }
                }
                default -> { }
            }
        }
        return new Extensions(true, pipelining, size, eightBit, utf8, startTls, dsn, auth);
    }

    private static long parseSize(String word) {
        try {
            return Math.max(0, Long.parseLong(word));
        } catch (NumberFormatException e) {
            return 0; // a limit we cannot read is no limit we can check
        }
    }

    boolean size() {
        return sizeLimit >= 0;
    }
}
