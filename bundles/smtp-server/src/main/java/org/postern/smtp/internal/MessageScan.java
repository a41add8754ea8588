package org.postern.smtp.internal;

import io.netty.buffer.ByteBuf;

/**
 * What the session learns about a message while it streams to the spool: whether it broke a rule (size,
 * line ends, line length) and how many Received: fields its header has (mail loops, RFC 5321 6.3).
 * The header is scanned byte by byte as it passes, so BDAT chunks may split a field anywhere.
 */
final class MessageScan {

    private static final byte[] RECEIVED = "received:".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    final boolean normalize;
    boolean lastLineEndedWithCrlf = true;
    boolean bareLineEnd;
    boolean tooBig;
    boolean lineTooLong;
    /** The most {@link #copy} grows to: more goes to the store in pieces. */
    static final int MAX_COPY = 8192;

    /** Where content is copied on its way to the store: one array per message, not one per line. */
    byte[] copy = new byte[1024];
    Exception spoolError;
    int received;

    private boolean inHeader = true;
    private boolean lineStart = true;
    private boolean emptyLineSoFar = true;
    private int matched = -1; // how much of "received:" this line has matched, -1 when it cannot match

    MessageScan(boolean normalize) {
        this.normalize = normalize;
    }

    void scanHeaders(ByteBuf buf, int offset, int length) {
        for (int i = offset; i < offset + length && inHeader; i++) {
            byte b = buf.getByte(i);
            if (b == '\n') {
                if (emptyLineSoFar) {
                    inHeader = false; // the empty line ends the header
                }
                lineStart = true;
                emptyLineSoFar = true;
                continue;
            }
            if (lineStart) {
                lineStart = false;
                matched = 0;
            }
            if (b != '\r') {
                emptyLineSoFar = false;
            }
            if (matched >= 0 && matched < RECEIVED.length) {
                if ((b | 0x20) == RECEIVED[matched]) { // ':' | 0x20 is ':' too
                    matched++;
                    if (matched == RECEIVED.length) {
                        received++;
                    }
                } else {
                    matched = -1;
                }
            }
        }
    }
}
