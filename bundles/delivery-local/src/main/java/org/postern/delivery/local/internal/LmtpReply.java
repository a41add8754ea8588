package org.postern.delivery.local.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.postern.api.delivery.DeliveryResult.Outcome;

/**
 * One reply of the LMTP server, possibly multi-line.
 *
 * @param code the three-digit reply code
 * @param lines the text of each line, after the code and separator
 */
record LmtpReply(int code, List<String> lines) {

    private static final int MAX_LINE = 4096;
    private static final int MAX_LINES = 100;
    private static final Pattern ENHANCED = Pattern.compile("^([245])\\.(\\d{1,3})\\.(\\d{1,3})(?:\\s|$)");

    /** Reads one complete reply, blocking; a malformed or endless one is an IOException. */
    static LmtpReply read(InputStream in) throws IOException {
        List<String> lines = new ArrayList<>();
        while (true) {
            String line = readLine(in);
            if (line.length() < 3 || !line.substring(0, 3).chars().allMatch(Character::isDigit)
                    || (line.length() > 3 && line.charAt(3) != ' ' && line.charAt(3) != '-')) {
                throw new IOException("malformed reply from the LMTP server: " + abbreviate(line));
            }
            int code = Integer.parseInt(line.substring(0, 3));
            if (code < 200 || code > 599) {
                throw new IOException("unexpected reply code from the LMTP server: " + abbreviate(line));
            }
            lines.add(line.length() > 4 ? line.substring(4) : "");
            if (line.length() == 3 || line.charAt(3) == ' ') {
                return new LmtpReply(code, List.copyOf(lines));
            }
            if (lines.size() >= MAX_LINES) {
                throw new IOException("reply from the LMTP server has too many lines");
            }
        }
    }

    private static String readLine(InputStream in) throws IOException {
        byte[] buffer = new byte[MAX_LINE];
        int n = 0;
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("the LMTP server closed the connection");
            }
            if (b == '\n') {
                int end = n > 0 && buffer[n - 1] == '\r' ? n - 1 : n;
                return new String(buffer, 0, end, StandardCharsets.UTF_8);
            }
            if (n == MAX_LINE) {
                throw new IOException("reply line from the LMTP server too long");
            }
            buffer[n++] = (byte) b;
        }
    }

    private static String abbreviate(String line) {
        return line.length() > 80 ? line.substring(0, 80) + "..." : line;
    }

    boolean positive() {
        return code / 100 == 2;
    }

    /** DELIVERED for 2xx, FAILED for 5xx, DEFERRED for the rest. */
    Outcome outcome() {
        return switch (code / 100) {
            case 2 -> Outcome.DELIVERED;
            case 5 -> Outcome.FAILED;
            default -> Outcome.DEFERRED;
        };
    }

    /** The enhanced status the server gave when it agrees with the reply code, else one made from the code. */
    String status() {
        Matcher m = ENHANCED.matcher(lines.get(0));
        if (m.find() && Integer.parseInt(m.group(1)) == code / 100) {
            return m.group(1) + "." + m.group(2) + "." + m.group(3);
        }
        return code / 100 + ".0.0";
    }

    /** The extension keywords of an LHLO reply (every line but the first), upper case: 8BITMIME, ... */
    List<String> extensions() {
        List<String> keywords = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String keyword = line.trim().split("\\s+", 2)[0];
            if (!keyword.isEmpty()) {
                keywords.add(keyword.toUpperCase(Locale.ROOT));
            }
        }
        return keywords;
    }

    /** The reply as it came, lines joined with a space: {@code 550 5.1.1 <bob@example.org> User doesn't exist}. */
    @Override
    public String toString() {
        return code + " " + String.join(" ", lines);
    }
}
