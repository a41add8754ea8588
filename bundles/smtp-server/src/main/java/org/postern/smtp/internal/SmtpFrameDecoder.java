package org.postern.smtp.internal;

import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

/**
 * Frames what a client sends: lines (line end kept, so a bare LF can be told from CRLF) and, after a
 * {@code BDAT n} command line, exactly n octets of chunk data (RFC 3030), which may hold anything.
 *
 * <p>The framing has to be decided here, not in the session: a pipelining client sends the chunk right
 * behind its BDAT command, and the session may still be busy with an earlier command when both arrive.
 *
 * <p>A line longer than the limit is never buffered: as soon as it passes the limit a {@link #LINE_TOO_LONG}
 * marker goes out (so the session can answer without waiting for a line end that may never come), its
 * octets are dropped as they come, and a {@link LongLineEnd} tells how it ended once its line end arrives.
 * An endless line costs one line of memory.
 *
 * <p>Message content after our 354 is framed for storing, not line by line: a run of plain lines (CRLF,
 * no other CR, no leading dot), which the session only has to store, comes as one {@link Lines} block; any
 * other content line comes alone, as a line, and is never taken for BDAT or STARTTLS. The session switches
 * this on with {@link #content} only once it has answered 354, so what a client sent before the answer stays
 * lines (commands, should DATA be refused). A "." line ends the batch and switches back to command lines:
 * only the session knows whether it ended the data (it does only after CRLF), and when it did not, it
 * switches content back on before anything behind the line is framed. A line too long is dropped as above.
 *
 * <p>A STARTTLS line ends its batch of frames. What the client pipelined after it may still be framed
 * (ByteToMessageDecoder calls decode again at once), but the session holds such frames unprocessed until it
 * has answered the STARTTLS, and after a successful one it throws them away and {@link #reset}s this decoder,
 * so nothing sent in clear before the handshake is ever acted on (RFC 3207 4.2, CVE-2011-0411).
 */
final class SmtpFrameDecoder extends ByteToMessageDecoder {

    /** Stands for a line that was too long and was dropped. */
    static final Object LINE_TOO_LONG = new Object() {
        @Override
        public String toString() {
            return "LINE_TOO_LONG";
        }
    };

    /** The end of a line that was too long: whether it ended with CRLF (for the DATA end rule). */
    record LongLineEnd(boolean crlf) {
        static final LongLineEnd CRLF = new LongLineEnd(true);
        static final LongLineEnd BARE = new LongLineEnd(false);
    }

    /** Some octets of BDAT chunk data; {@code last} when they end the chunk. */
    record Chunk(ByteBuf data, boolean endOfChunk) {
    }

    /** Plain lines of DATA content: each ends in CRLF, has no other CR and does not start with a dot. */
    record Lines(ByteBuf data) {
    }

    /** The most a {@link Lines} block holds (it may pass this by one line). */
    static final int MAX_BLOCK = 64 * 1024;

    private final int maxLine;
    private final int maxBlock;
    private long chunkRemaining;
    private boolean discarding;
    private boolean content;

    SmtpFrameDecoder(int maxLine) {
        this(maxLine, MAX_BLOCK);
    }

    SmtpFrameDecoder(int maxLine, int maxBlock) {
        this.maxLine = maxLine;
        this.maxBlock = maxBlock;
    }

    /** Frames what follows as DATA content (blocks of lines) or, when {@code on} is false, as command lines. */
    void content(boolean on) {
        content = on;
    }

    /** Drops everything not yet framed and starts over in line mode: after STARTTLS (RFC 3207 4.2). */
    void reset() {
        ByteBuf buffered = internalBuffer();
        buffered.skipBytes(buffered.readableBytes());
        chunkRemaining = 0;
        discarding = false;
        content = false;
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        while (in.isReadable()) {
            if (chunkRemaining > 0) {
                int n = (int) Math.min(in.readableBytes(), chunkRemaining);
                chunkRemaining -= n;
                out.add(new Chunk(in.readRetainedSlice(n), chunkRemaining == 0));
                continue;
            }
            if (content && !discarding) {
                int length = plainLines(in);
                if (length > 0) {
                    out.add(new Lines(in.readRetainedSlice(length)));
                    continue;
                }
                // the next line is not plain, unfinished or too long: framed alone below
            }
            // indexOf scans a word at a time; forEachByte calls a processor per octet
            int eol = in.indexOf(in.readerIndex(), in.writerIndex(), (byte) '\n');
            if (eol < 0) {
                if (discarding || in.readableBytes() > maxLine) {
                    if (!discarding) {
                        discarding = true;
                        out.add(LINE_TOO_LONG);
                    }
                    // keep a trailing CR: it may be the first half of the CRLF that ends the long line
                    int keep = in.getByte(in.writerIndex() - 1) == '\r' ? 1 : 0;
                    in.skipBytes(in.readableBytes() - keep);
                }
                return;
            }
            int length = eol - in.readerIndex() + 1;
            if (discarding || length > maxLine) {
                if (!discarding) {
                    out.add(LINE_TOO_LONG);
                }
                discarding = false;
                boolean crlf = eol > in.readerIndex() && in.getByte(eol - 1) == '\r';
                in.skipBytes(length);
                out.add(crlf ? LongLineEnd.CRLF : LongLineEnd.BARE);
                continue;
            }
            ByteBuf line = in.readRetainedSlice(length);
            out.add(line);
            if (content) {
                int i = line.readerIndex();
                if (length == 3 && line.getByte(i) == '.' && line.getByte(i + 1) == '\r') {
                    content = false;
                    return; // the session says whether this "." ended the data before more is framed
                }
                continue;
            }
            chunkRemaining = bdatSize(line);
            if (isStartTls(line)) {
                return; // STARTTLS ends the batch; the session discards whatever follows once TLS starts
            }
        }
    }

    /** The length of the run of plain lines at the reader index, at most one line past the block size. */
    private int plainLines(ByteBuf in) {
        int start = in.readerIndex();
        int end = in.writerIndex();
        int pos = start;
        while (pos - start < maxBlock) {
            int eol = in.indexOf(pos, end, (byte) '\n');
            if (eol < 0 || eol - pos + 1 > maxLine || in.getByte(pos) == '.'
                    || in.indexOf(pos, eol, (byte) '\r') != eol - 1) {
                break;
            }
            pos = eol + 1;
        }
        return pos - start;
    }

    /** Whether a line is a STARTTLS command (the verb alone, or with anything after a space). */
    static boolean isStartTls(ByteBuf line) {
        int len = line.readableBytes();
        if (len < 9) {
            return false;
        }
        int i = line.readerIndex();
        String verb = "starttls";
        for (int k = 0; k < verb.length(); k++) {
            if ((line.getByte(i + k) | 0x20) != verb.charAt(k)) {
                return false;
            }
        }
        byte next = line.getByte(i + 8);
        return next == '\r' || next == '\n' || next == ' ';
    }

    /** The size of a well-formed {@code BDAT <size> [LAST]} line, else 0. */
    static long bdatSize(ByteBuf line) {
        int len = line.readableBytes();
        if (len < 7) {
            return 0;
        }
        int i = line.readerIndex();
        if ((line.getByte(i) | 0x20) != 'b' || (line.getByte(i + 1) | 0x20) != 'd'
                || (line.getByte(i + 2) | 0x20) != 'a' || (line.getByte(i + 3) | 0x20) != 't'
                || line.getByte(i + 4) != ' ') {
            return 0;
        }
        long size = 0;
        int digits = 0;
        for (int p = i + 5; p < i + len; p++) {
            byte b = line.getByte(p);
            if (b >= '0' && b <= '9' && digits < 18) {
                size = size * 10 + (b - '0');
                digits++;
            } else {
                break;
            }
        }
        return digits == 0 ? 0 : size;
    }
}
