package org.postern.delivery.smtp.internal;

import io.netty.buffer.ByteBuf;

/**
 * Turns message bytes into DATA bytes as they stream by (RFC 5321 4.5.2): a line that starts with a dot
 * gets another; a bare LF or bare CR becomes CRLF, so that no line end the server could read differently
 * from us (the stuff of SMTP smuggling) ever leaves; the data ends with CRLF so that the final {@code .CRLF}
 * stands on its own line. State carries over from one chunk to the next.
 */
final class DotStuffer {

    private boolean lineStart = true;
    private boolean afterCr;

    /** Appends the stuffed form of {@code bytes[offset, offset+length)} to {@code out}. */
    void stuff(byte[] bytes, int offset, int length, ByteBuf out) {
        for (int i = offset; i < offset + length; i++) {
            byte b = bytes[i];
            if (b == '\n') {
                if (!afterCr) {
                    out.writeByte('\r');
                }
                out.writeByte('\n');
                lineStart = true;
                afterCr = false;
                continue;
            }
            if (afterCr) { // a bare CR: end its line properly
                out.writeByte('\n');
                lineStart = true;
            }
            if (lineStart && b == '.') {
                out.writeByte('.');
            }
            out.writeByte(b);
            lineStart = false;
            afterCr = b == '\r';
        }
    }

    /** Completes the last line with CRLF when the message did not end with one. */
    void finish(ByteBuf out) {
        if (afterCr) {
            out.writeByte('\n');
        } else if (!lineStart) {
            out.writeByte('\r');
            out.writeByte('\n');
        }
        lineStart = true;
        afterCr = false;
    }
}
