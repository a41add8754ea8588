package org.postern.smtp.internal;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import org.postern.api.mail.MailAddress;

/**
 * The argument of MAIL and RCPT: {@code FROM:<path> [params]} or {@code TO:<path> [params]} (RFC 5321 4.1.2),
 * parsed into an address and ESMTP parameters (keywords upper-cased, values as given).
 */
record CommandArgs(MailAddress address, Map<String, String> params) {

    /**
     * @param arg everything after the verb, e.g. {@code " FROM:<a@b> SIZE=10"}
     * @param keyword {@code FROM} or {@code TO}
     * @param addressError the enhanced status for a bad address (5.1.7 sender, 5.1.3 recipient)
     */
    static CommandArgs parse(String arg, String keyword, String addressError) throws SmtpException {
        String s = arg.stripLeading();
        if (!s.regionMatches(true, 0, keyword + ":", 0, keyword.length() + 1)) {
            throw new SmtpException(501, "5.5.4", "Syntax: " + (keyword.equals("FROM") ? "MAIL FROM:<address>" : "RCPT TO:<address>"));
        }
        s = s.substring(keyword.length() + 1).stripLeading(); // a space after the colon is common and harmless
        if (!s.startsWith("<")) {
            throw new SmtpException(501, addressError, "Address must be in angle brackets");
        }
        int end = closingBracket(s);
        if (end < 0) {
            throw new SmtpException(501, addressError, "Unterminated address");
        }
        String path = s.substring(1, end);
        String rest = s.substring(end + 1);
        if (path.startsWith("@")) {
            // RFC 5321 4.1.1.3: accept a source route, then ignore it. It never grants relaying.
            int colon = path.indexOf(':');
            if (colon < 0) {
                throw new SmtpException(501, addressError, "Bad source route");
            }
            path = path.substring(colon + 1);
        }
        MailAddress address;
        try {
            address = MailAddress.parse(path);
        } catch (IllegalArgumentException e) {
            throw new SmtpException(501, addressError, "Bad address syntax: " + e.getMessage());
        }
        Map<String, String> params = new LinkedHashMap<>();
        if (!rest.isEmpty()) {
            if (rest.charAt(0) != ' ') {
                throw new SmtpException(501, "5.5.4", "Syntax error after address");
            }
            for (String p : rest.trim().split(" +")) {
                if (p.isEmpty()) {
                    continue;
                }
                int eq = p.indexOf('=');
                String key = (eq < 0 ? p : p.substring(0, eq)).toUpperCase(Locale.ROOT);
                String value = eq < 0 ? null : p.substring(eq + 1);
                if (!key.matches("[A-Z0-9][A-Z0-9-]*") || (value != null && value.isEmpty())) {
                    throw new SmtpException(501, "5.5.4", "Bad parameter syntax");
                }
                if (params.put(key, value) != null) {
                    throw new SmtpException(501, "5.5.4", "Parameter " + key + " given twice");
                }
            }
        }
        return new CommandArgs(address, params);
    }

    private static int closingBracket(String s) {
        boolean quoted = false;
        for (int i = 1; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && quoted) {
                i++;
            } else if (c == '"') {
                quoted = !quoted;
            } else if (c == '>' && !quoted) {
                return i;
            }
        }
        return -1;
    }

    /** Decodes RFC 3461 xtext ({@code +HH} escapes); null when malformed. */
    static String decodeXtext(String xtext) {
        StringBuilder out = new StringBuilder(xtext.length());
        for (int i = 0; i < xtext.length(); i++) {
            char c = xtext.charAt(i);
            if (c == '+') {
                if (i + 2 >= xtext.length()) {
                    return null;
                }
                String hex = xtext.substring(i + 1, i + 3);
                if (!hex.matches("[0-9A-F]{2}")) {
                    return null;
                }
                out.append((char) Integer.parseInt(hex, 16));
                i += 2;
            } else if (c < 33 || c > 126 || c == '=') {
                return null;
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
