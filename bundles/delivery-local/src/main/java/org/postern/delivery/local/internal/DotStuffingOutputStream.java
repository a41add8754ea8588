package org.postern.delivery.local.internal;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * Message bytes to DATA bytes as they stream by (RFC 5321 4.5.2): a line that starts with a dot gets another;
 * a bare LF or bare CR becomes CRLF, so no line end the server could read differently from us (the stuff of
 * SMTP smuggling) leaves; {@link #finish()} ends the last line so the final dot stands on its own.
 */
final class DotStuffingOutputStream extends FilterOutputStream {

    private boolean lineStart = true;
    private boolean afterCr;

    DotStuffingOutputStream(OutputStream out) {
        super(out);
    }

    @Override
    public void write(int b) throws IOException {
        if (b == '\n') {
            if (!afterCr) {
                out.write('\r');
            }
            out.write('\n');
            lineStart = true;
            afterCr = false;
            return;
        }
        if (afterCr) { // a bare CR: end its line properly
            out.write('\n');
            lineStart = true;
        }
        if (lineStart && b == '.') {
            out.write('.');
        }
        out.write(b);
        lineStart = false;
        afterCr = b == '\r';
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        for (int i = off; i < off + len; i++) {
            write(b[i]); // the stream below is buffered: a call per byte is cheap
        }
    }

    /** Completes the last line with CRLF when the message did not end with one; the stream stays open. */
    void finish() throws IOException {
        if (afterCr) {
            out.write('\n');
        } else if (!lineStart) {
            out.write('\r');
            out.write('\n');
        }
        lineStart = true;
        afterCr = false;
    }
}
