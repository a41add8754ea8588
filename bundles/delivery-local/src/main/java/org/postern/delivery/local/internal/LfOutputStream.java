package org.postern.delivery.local.internal;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * Turns CRLF into LF: a Maildir file holds a message in the local (Unix) form, as Postfix's local(8) and
 * Dovecot write it and as mail clients reading the folder expect. A lone CR is kept.
 */
final class LfOutputStream extends FilterOutputStream {

    private boolean pendingCr;
    private byte[] buffer = new byte[8192];

    LfOutputStream(OutputStream out) {
        super(out);
    }

    @Override
    public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
        if (buffer.length < len + 1) {
            buffer = new byte[len + 1];
        }
        int n = 0;
        for (int i = off; i < off + len; i++) {
            byte c = b[i];
            if (pendingCr) {
                pendingCr = false;
                if (c != '\n') {
                    buffer[n++] = '\r';
                }
            }
            if (c == '\r') {
                pendingCr = true; // decided by the next byte
            } else {
                buffer[n++] = c;
            }
        }
        out.write(buffer, 0, n);
    }

    /** Writes a CR still held back and flushes; the stream underneath stays open. */
    void finish() throws IOException {
        if (pendingCr) {
            pendingCr = false;
            out.write('\r');
        }
        out.flush();
    }
}
