package org.postern.delivery.smtp.internal;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.netty.handler.codec.smtp.SmtpResponse;

/**
 * One server reply: the code and its text lines (without the code).
 */
record Reply(int code, List<String> lines) {

    private static final Pattern ENHANCED = Pattern.compile("^([245])\\.(\\d{1,3})\\.(\\d{1,3})(?=\\s|$)");

    Reply {
        lines = List.copyOf(lines);
    }

    static Reply of(SmtpResponse response) {
        // List.of, which the constructor's List.copyOf takes as it is: a stream's toList would be copied again.
        List<CharSequence> details = response.details();
        String[] lines = new String[details.size()];
        for (int i = 0; i < lines.length; i++) {
            lines[i] = details.get(i).toString();
        }
        return new Reply(response.code(), List.of(lines));
    }

    boolean isPositive() {
        return code >= 200 && code < 300;
    }

    boolean isTransient() {
        return code >= 400 && code < 500;
    }

    boolean isPermanent() {
        return code >= 500 && code < 600;
    }

    /** The reply as one line, multi-line text joined by spaces: {@code 550 5.1.1 no such user}. */
    String text() {
        return lines.isEmpty() ? Integer.toString(code) : code + " " + String.join(" ", lines);
    }

    /**
     * The RFC 3463 status: the enhanced code of the reply when it carries one of the same class,
     * else {@code c.0.0} from the basic code.
     */
    String status() {
        int cls = code / 100;
        if (!lines.isEmpty()) {
            Matcher m = ENHANCED.matcher(lines.get(0));
            if (m.find() && Integer.parseInt(m.group(1)) == cls) {
                return m.group();
            }
        }
        return cls + ".0.0";
    }

    @Override
    public String toString() {
        return text();
    }
}
