package org.postern.delivery.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.smtp.DefaultSmtpRequest;
import io.netty.handler.codec.smtp.SmtpCommand;
import io.netty.handler.codec.smtp.SmtpRequestEncoder;

import org.junit.Test;
import org.postern.api.mail.Header;

/** The small encodings: dot-stuffing, replies, extensions, xtext, header folding. */
public class WireFormatTest {

    private static String stuff(String... chunks) {
        DotStuffer stuffer = new DotStuffer();
        ByteBuf out = Unpooled.buffer();
        for (String c : chunks) {
            byte[] b = c.getBytes(StandardCharsets.ISO_8859_1);
            stuffer.stuff(b, 0, b.length, out);
        }
        stuffer.finish(out);
        String s = out.toString(StandardCharsets.ISO_8859_1);
        out.release();
        return s;
    }

    @Test
    public void dotStuffingHoldsAcrossChunkEdges() {
        assertEquals("..a\r\nb\r\n..\r\n", stuff(".a\r\nb\r\n.\r\n"));
        assertEquals("..a\r\nb\r\n..\r\n", stuff(".", "a\r", "\n", "b\r\n", ".", "\r\n"));
        assertEquals("x\r\n..y\r\n", stuff("x\r\n", ".y\r\n"));
        assertEquals("x\r\n..y\r\n", stuff("x\r", "\n.y\r\n"));
        // the most a call can give: the octet after a bare CR that ended the previous call gives three
        assertEquals("\r\n..\r\n", stuff("\r", "."));
        assertEquals("\r\n..\r\n..\r\n..\r\n", stuff("\r", ".\r.\r."));
        assertEquals("a.b\r\n", stuff("a.b\r\n"));
        assertEquals("", stuff());
        assertEquals("", stuff("", ""));
    }

    @Test
    public void bareLineEndsAreMadeCrlf() {
        assertEquals("a\r\n..b\r\n", stuff("a\n.b"));
        assertEquals("a\r\n..b\r\n", stuff("a\r", ".b"));
        assertEquals("a\r\n", stuff("a\r"));
        assertEquals("a\r\n\r\n", stuff("a\r\r\n"));
        // the classic smuggling sequences never reach the wire as an end of data
        assertEquals("x\r\n..\r\ny\r\n", stuff("x\n.\r\ny"));
        assertEquals("x\r\n..\r\ny\r\n", stuff("x\r\n.\ny"));
    }

    @Test
    public void replyStatusComesFromTheEnhancedCodeOfTheSameClass() {
        assertEquals("5.1.1", new Reply(550, List.of("5.1.1 no such user")).status());
        assertEquals("5.0.0", new Reply(550, List.of("no such user")).status());
        assertEquals("4.0.0", new Reply(450, List.of("5.1.1 mismatch")).status());
        assertEquals("2.0.0", new Reply(250, List.of()).status());
        assertEquals("4.7.1", new Reply(451, List.of("4.7.1 greylisted", "more")).status());
        assertEquals("5.0.0", new Reply(554, List.of("5.7.1x not a code")).status());
        assertEquals("451 4.7.1 greylisted more", new Reply(451, List.of("4.7.1 greylisted", "more")).text());
        assertEquals("250", new Reply(250, List.of()).text());
    }

    @Test
    public void extensionsFromTheEhloReply() {
        Extensions e = Extensions.parse(new Reply(250, List.of("mx.example.org Hello", "pipelining", "SIZE 1000",
                "8BITMIME", "STARTTLS", "DSN", "SMTPUTF8", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES")));
        assertTrue(e.pipelining());
        assertEquals(1000, e.sizeLimit());
        assertTrue(e.eightBitMime() && e.startTls() && e.dsn() && e.smtpUtf8());
        Extensions bare = Extensions.parse(new Reply(250, List.of("PIPELINING mx.example.org", "SIZE")));
        assertFalse("the first line is the server's name, not a keyword", bare.pipelining());
        assertTrue(bare.size());
        assertEquals(0, bare.sizeLimit());
        assertFalse(Extensions.NONE.size());
    }

    @Test
    public void xtext() {
        assertEquals("abc", Wire.xtext("abc"));
        assertEquals("a+2Bb+3Dc+20d", Wire.xtext("a+b=c d"));
        assertEquals("caf+C3+A9", Wire.xtext("caf\u00e9"));
    }

    @Test
    public void utf8ArgumentsGoOutAsUtf8() {
        EmbeddedChannel ch = new EmbeddedChannel(new SmtpRequestEncoder());
        ch.writeOutbound(new DefaultSmtpRequest(SmtpCommand.RCPT, Wire.arg("TO:<j\u00f6ran@example.org>"), "NOTIFY=NEVER"));
        ByteBuf out = ch.readOutbound();
        assertEquals("RCPT TO:<j\u00f6ran@example.org> NOTIFY=NEVER\r\n", out.toString(StandardCharsets.UTF_8));
        out.release();
        ch.finishAndReleaseAll();
    }

    @Test
    public void headersAreFoldedOnlyWhenTooLong() {
        String shortValue = "a ".repeat(60).trim();
        assertEquals("X-A: " + shortValue + "\r\n", new String(Wire.headers(List.of(new Header("X-A", shortValue))),
                StandardCharsets.UTF_8));
        String longValue = "word ".repeat(250) + "end";
        String folded = new String(Wire.headers(List.of(new Header("X-B", longValue))), StandardCharsets.UTF_8);
        assertTrue(folded.endsWith("\r\n"));
        for (String line : folded.substring(0, folded.length() - 2).split("\r\n")) {
            assertTrue(line, line.length() <= 78);
            assertFalse(line.isBlank());
        }
        assertEquals("X-B: " + longValue, folded.substring(0, folded.length() - 2).replace("\r\n", ""));
        // one unbreakable word over the limit gets a line of its own: nothing better can be done
        String word = "x".repeat(1200);
        assertEquals("X-C:\r\n " + word + "\r\n", new String(Wire.headers(List.of(new Header("X-C", word))), StandardCharsets.UTF_8));
    }
}
