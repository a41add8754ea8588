package org.postern.delivery.smtp.internal;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import io.netty.util.AsciiString;

import org.postern.api.mail.Header;

/** Small encodings of what goes on the wire: xtext, command arguments, header fields. */
final class Wire {

    /** RFC 5322 2.1.1: the hard limit of a line, CRLF excluded. */
    private static final int MAX_LINE = 998;
    /** ... and the recommended one, used once a field must be folded anyway. */
    private static final int FOLD_AT = 78;

    private Wire() {
    }

    /** RFC 3461 4: xtext, every octet outside "!" to "~", and "+" and "=", as {@code +HH}; UTF-8 first. */
    static String xtext(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if (c >= 33 && c <= 126 && c != '+' && c != '=') {
                out.append((char) c);
            } else {
                out.append('+').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return out.toString();
    }

    /**
     * A command argument as Netty's encoder should write it. The encoder writes a String as ASCII (anything
     * else becomes '?'), but copies an AsciiString's bytes as they are: so a UTF-8 address (SMTPUTF8) goes
     * as an AsciiString over its UTF-8 bytes.
     */
    static CharSequence arg(String text) {
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) >= 128) {
                return new AsciiString(text.getBytes(StandardCharsets.UTF_8), false);
            }
        }
        return text;
    }

    /**
     * The added header fields as they are written in front of the message, UTF-8, each line ending in CRLF.
     * A field is folded only when it would exceed the 998-octet line limit: folding changes nothing for a
     * reader, but a DKIM signature made with "simple" canonicalization would no longer match.
     */
    static byte[] headers(List<Header> headers) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Header h : headers) {
            String wire = h.toWireFormat();
            byte[] bytes = wire.getBytes(StandardCharsets.UTF_8);
            if (bytes.length - 2 > MAX_LINE) {
                bytes = fold(wire.substring(0, wire.length() - 2)).getBytes(StandardCharsets.UTF_8);
            }
            out.writeBytes(bytes);
        }
        return out.toByteArray();
    }

    /** Folds one unfolded field line before whitespace, aiming at 78 characters a line; ends in CRLF. */
    static String fold(String line) {
        // Tokens each start with the whitespace that precedes them; a fold goes before such whitespace.
        List<String> tokens = new ArrayList<>();
        int start = 0;
        for (int i = 1; i < line.length(); i++) {
            char c = line.charAt(i);
            char prev = line.charAt(i - 1);
            if ((c == ' ' || c == '\t') && prev != ' ' && prev != '\t') {
                tokens.add(line.substring(start, i));
                start = i;
            }
        }
        tokens.add(line.substring(start));
        StringBuilder out = new StringBuilder(line.length() + line.length() / FOLD_AT * 2 + 2);
        int lineLength = 0;
        for (String token : tokens) {
            // (a line of whitespace only is no valid continuation: trailing blanks stay where they are)
            if (lineLength > 0 && lineLength + token.length() > FOLD_AT && !token.isBlank()) {
                out.append("\r\n");
                lineLength = 0;
            }
            out.append(token);
            lineLength += token.length();
        }
        return out.append("\r\n").toString();
    }
}
