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
    /** The stuffed bytes of one call, handed to the buffer in one copy: a writeByte per octet cost more than the rest. */
    private byte[] scratch = new byte[0];

    /** Appends the stuffed form of {@code bytes[offset, offset+length)} to {@code out}. */
    void stuff(byte[] bytes, int offset, int length, ByteBuf out) {
        // Each octet gives at most two, but the one after a bare CR may give three (LF, dot, dot) when that
        // CR, which gave one, ended the previous call: 2n + 1.
        int max = 2 * length + 1;
        if (scratch.length < max) {
            scratch = new byte[max];
        }
        byte[] o = scratch;
        int n = 0;
        boolean start = lineStart;
        boolean cr = afterCr;
        for (int i = offset, end = offset + length; i < end; i++) {
            byte b = bytes[i];
            if (b == '\n') {
                if (!cr) {
                    o[n++] = '\r';
                }
                o[n++] = '\n';
                start = true;
                cr = false;
                continue;
            }
            if (cr) { // a bare CR: end its line properly
                o[n++] = '\n';
                start = true;
            }
            if (start && b == '.') {
                o[n++] = '.';
            }
            o[n++] = b;
            start = false;
            cr = b == '\r';
        }
        lineStart = start;
        afterCr = cr;
        out.writeBytes(o, 0, n);
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
