package org.postern.smtp.internal;

import static org.junit.Assert.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;

import org.junit.Test;

/** The framing alone: what comes out for what goes in, in command lines and in DATA content. */
public class SmtpFrameDecoderTest {

    private final SmtpFrameDecoder decoder = new SmtpFrameDecoder(100, 20);
    private final EmbeddedChannel channel = new EmbeddedChannel(decoder);

    /** The frames for what the client sent, as text: "L:" a line, "B:" a block of content lines. */
    private List<String> frames(String sent) {
        channel.writeInbound(Unpooled.copiedBuffer(sent, StandardCharsets.ISO_8859_1));
        List<String> frames = new ArrayList<>();
        Object f;
        while ((f = channel.readInbound()) != null) {
            if (f instanceof ByteBuf b) {
                frames.add("L:" + b.toString(StandardCharsets.ISO_8859_1));
                b.release();
            } else if (f instanceof SmtpFrameDecoder.Lines l) {
                frames.add("B:" + l.data().toString(StandardCharsets.ISO_8859_1));
                l.data().release();
            } else if (f instanceof SmtpFrameDecoder.Chunk c) {
                frames.add("C:" + c.data().toString(StandardCharsets.ISO_8859_1));
                c.data().release();
            } else {
                frames.add(String.valueOf(f));
            }
        }
        return frames;
    }

    @Test
    public void plainContentComesInBlocksOfWholeLinesUpToTheBlockSize() {
        decoder.content(true);
        // the 20-octet block size is passed by one line at most; the unfinished "tail" waits for its end
        assertEquals(List.of("B:aaaa\r\nbbbb\r\ncccc\r\ndddd\r\n", "B:eeee\r\n"),
                frames("aaaa\r\nbbbb\r\ncccc\r\ndddd\r\neeee\r\ntail"));
        assertEquals(List.of("B:tail\r\n"), frames("\r\n"));
        String twenty = "123456789\r\n12345678\r\n";
        assertEquals(List.of("B:" + twenty, "B:more\r\n"), frames(twenty + "more\r\n"));
    }

    @Test
    public void contentLinesWithADotOrABareCrOrLfComeAlone() {
        decoder.content(true);
        assertEquals(List.of("B:a\r\n", "L:..b\r\n", "L:c\rd\r\n", "L:e\n", "L:\n", "B:\r\nf\r\n", "L:.x\r\n"),
                frames("a\r\n..b\r\nc\rd\r\ne\n\n\r\nf\r\n.x\r\n"));
    }

    @Test
    public void aDotLineEndsContentAndWhatFollowsIsFramedAsCommandLines() {
        decoder.content(true);
        assertEquals(List.of("B:x\r\n", "L:.\r\n", "L:BDAT 3\r\n", "C:abc", "L:QUIT\r\n"),
                frames("x\r\n.\r\nBDAT 3\r\nabcQUIT\r\n"));
        // the session switches content back on when the "." did not end the data (after a bare LF)
        decoder.content(true);
        assertEquals(List.of("L:y\n", "L:.\r\n", "L:NOOP\r\n"), frames("y\n.\r\nNOOP\r\n"));
    }

    @Test
    public void contentIsNeverTakenForCommands() {
        decoder.content(true);
        assertEquals(List.of("B:BDAT 3\r\nabc\r\nSTARTTLS\r\n", "L:..\r\n", "L:BDAT 3\n", "B:abc\r\n"),
                frames("BDAT 3\r\nabc\r\nSTARTTLS\r\n..\r\nBDAT 3\nabc\r\n"));
    }

    @Test
    public void theDotLineSplitAnywhereStillEndsContentAtItsEnd() {
        decoder.content(true);
        assertEquals(List.of("B:a\r\n"), frames("a\r\n."));
        assertEquals(List.of(), frames("\r"));
        assertEquals(List.of("L:.\r\n", "L:QUIT\r\n"), frames("\nQUIT\r\n"));
        decoder.content(true);
        assertEquals(List.of(), frames("b\r"));
        assertEquals(List.of("B:b\r\nc\r\n"), frames("\nc\r\n"));
    }

    @Test
    public void aBlockBoundaryRightBeforeTheDotLine() {
        decoder.content(true);
        String twenty = "123456789\r\n12345678\r\n"; // exactly the block size
        assertEquals(List.of("B:" + twenty, "L:.\r\n", "L:QUIT\r\n"), frames(twenty + ".\r\nQUIT\r\n"));
    }

    @Test
    public void aLongLineInContentIsDroppedAndTheBlocksGoOnAroundIt() {
        decoder.content(true);
        String longLine = "y".repeat(150);
        assertEquals(List.of("B:ok\r\n", "LINE_TOO_LONG", "LongLineEnd[crlf=true]", "B:ok\r\n", "L:.\r\n",
                "L:NOOP\r\n"),
                frames("ok\r\n" + longLine + "\r\nok\r\n.\r\nNOOP\r\n"));
        // an endless line is answered before its end and ends as it ends: here in a bare LF
        decoder.content(true);
        assertEquals(List.of("B:ok\r\n", "LINE_TOO_LONG"), frames("ok\r\n" + longLine));
        assertEquals(List.of(), frames(longLine));
        assertEquals(List.of("LongLineEnd[crlf=false]", "L:.\r\n", "L:NOOP\r\n"), frames("y\n.\r\nNOOP\r\n"));
    }

    @Test
    public void withoutContentModeEverythingIsLines() {
        assertEquals(List.of("L:DATA\r\n", "L:a\r\n", "L:.\r\n"), frames("DATA\r\na\r\n.\r\n"));
        decoder.content(true);
        decoder.content(false);
        assertEquals(List.of("L:b\r\n"), frames("b\r\n"));
        decoder.content(true);
        decoder.reset();
        assertEquals(List.of("L:c\r\n"), frames("c\r\n"));
    }
}
