package org.postern.smtp.internal;

import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.util.ByteProcessor;

/**
 * Frames what a client sends: lines (line end kept, so a bare LF can be told from CRLF) and, after a
 * {@code BDAT n} command line, exactly n octets of chunk data (RFC 3030), which may hold anything.
 *
 * <p>The framing has to be decided here, not in the session: a pipelining client sends the chunk right
 * behind its BDAT command, and the session may still be busy with an earlier command when both arrive.
 *
 * <p>A line longer than the limit is never buffered: its octets are dropped as they come and a
 * {@link #LINE_TOO_LONG} marker takes its place once its line end arrives, so an endless line costs one
 * line of memory.
 */
final class SmtpFrameDecoder extends ByteToMessageDecoder {

    /** Stands for a line that was too long and was dropped. */
    static final Object LINE_TOO_LONG = new Object() {
        @Override
        public String toString() {
            return "LINE_TOO_LONG";
        }
    };

    /** Some octets of BDAT chunk data; {@code last} when they end the chunk. */
    record Chunk(ByteBuf data, boolean endOfChunk) {
    }

    private final int maxLine;
    private long chunkRemaining;
    private boolean discarding;

    SmtpFrameDecoder(int maxLine) {
        this.maxLine = maxLine;
    }

    /** Drops everything not yet framed and starts over in line mode: after STARTTLS (RFC 3207 4.2). */
    void reset() {
        ByteBuf buffered = internalBuffer();
        buffered.skipBytes(buffered.readableBytes());
        chunkRemaining = 0;
        discarding = false;
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
            int eol = in.forEachByte(in.readerIndex(), in.readableBytes(), ByteProcessor.FIND_LF);
            if (eol < 0) {
                if (in.readableBytes() > maxLine) {
                    discarding = true;
                    in.skipBytes(in.readableBytes());
                }
                return;
            }
            int length = eol - in.readerIndex() + 1;
            if (discarding || length > maxLine) {
                discarding = false;
                in.skipBytes(length);
                out.add(LINE_TOO_LONG);
                continue;
            }
            ByteBuf line = in.readRetainedSlice(length);
            out.add(line);
            chunkRemaining = bdatSize(line);
        }
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
