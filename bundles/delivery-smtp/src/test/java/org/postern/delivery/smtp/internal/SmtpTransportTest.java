package org.postern.delivery.smtp.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.postern.delivery.smtp.internal.Fixtures.cfg;
import static org.postern.delivery.smtp.internal.Fixtures.deliver;
import static org.postern.delivery.smtp.internal.Fixtures.hop;
import static org.postern.delivery.smtp.internal.Fixtures.route;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;

import org.junit.After;
import org.junit.Test;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;

/**
 * The smtp transport against the scripted server: the replies a real server cannot be told to give.
 * (TLS is in {@link SmtpTlsTest}, a real Postfix smtp-sink in {@link SmtpSinkTest}.)
 */
public class SmtpTransportTest {

    private final List<ScriptedServer> servers = new ArrayList<>();
    private SmtpTransport transport;

    @After
    public void tearDown() throws IOException {
        if (transport != null) {
            transport.deactivate();
        }
        for (ScriptedServer s : servers) {
            s.close();
        }
    }

    private ScriptedServer server(String address) throws IOException {
        ScriptedServer s = new ScriptedServer(address);
        servers.add(s);
        return s;
    }

    private SmtpTransport transport(Object... config) throws Exception {
        transport = Fixtures.transport(cfg(config));
        return transport;
    }

    private static Fixtures.Request request(ScriptedServer s, String... to) {
        return new Fixtures.Request().to(to).via(route(TlsPolicy.NONE, hop(s)));
    }

    private static DeliveryResult result(List<DeliveryResult> results, String address) {
        return results.stream().filter(r -> r.recipient().address().equals(MailAddress.parse(address)))
                .findFirst().orElseThrow(() -> new AssertionError("no result for " + address + " in " + results));
    }

    private static void assertResult(DeliveryResult r, Outcome outcome, String status, String diagnostic, String remote) {
        assertEquals(r.toString(), outcome, r.outcome());
        assertEquals(r.toString(), status, r.status());
        assertEquals(r.toString(), diagnostic, r.diagnostic());
        assertEquals(r.toString(), remote, r.remoteMta());
    }

    private static String ascii(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    /** The RFC 5321 4.5.2 transparency rule, on CRLF-only text: a reference to check the wire against. */
    private static String stuffed(String crlfText) {
        return ("\r\n" + crlfText).replace("\r\n.", "\r\n..").substring(2);
    }

    @Test
    public void sendsAddedHeadersFirstThenTheMessageDotStuffed() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport("helo_name", "out.example.org");
        String content = "Subject: dots\r\n\r\n.one dot\r\n..two dots\r\n.\r\nnormal . line\r\n. \r\nlast\r\n";
        Fixtures.Request r = request(s, "a@example.org", "b@example.org").content(content)
                .header("Received", "from client (client [192.0.2.1]) by localhost with ESMTP id 4QTEST")
                .header("X-Filter", "checked");
        List<DeliveryResult> results = deliver(transport, r);

        assertEquals(1, s.messages().size());
        String headers = "Received: from client (client [192.0.2.1]) by localhost with ESMTP id 4QTEST\r\n"
                + "X-Filter: checked\r\n";
        assertEquals(headers + "Subject: dots\r\n\r\n..one dot\r\n...two dots\r\n..\r\nnormal . line\r\n.. \r\nlast\r\n",
                ascii(s.messages().get(0)));
        ScriptedServer.Session session = s.session(0);
        long size = headers.length() + content.length();
        assertEquals(List.of("EHLO out.example.org", "MAIL FROM:<sender@example.org> SIZE=" + size,
                "RCPT TO:<a@example.org>", "RCPT TO:<b@example.org>", "DATA"), session.commands);
        assertEquals(2, results.size());
        assertResult(result(results, "a@example.org"), Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q1", "127.0.0.1");
        assertResult(result(results, "b@example.org"), Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q1", "127.0.0.1");
    }

    @Test
    public void largeMessageStreamsInChunksWithStuffingAcrossChunkEdges() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        // A header block and lines of 64 octets: a line starts at every multiple of 64, so also right at
        // each 16 KiB edge where the stream is read in chunks; every line starts with a dot.
        StringBuilder sb = new StringBuilder("Subject: " + "b".repeat(51) + "\r\n\r\n");
        assertEquals(64, sb.length());
        while (sb.length() < 200_000) {
            sb.append('.').append("x".repeat(61)).append("\r\n");
        }
        String content = sb.toString();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org").content(content));
        assertEquals(Outcome.DELIVERED, results.get(0).outcome());
        assertEquals(stuffed(content), ascii(s.messages().get(0)));
    }

    @Test
    public void bareLineEndsBecomeCrlfAndTheLastLineIsEnded() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        deliver(transport, request(s, "a@example.org").content("Subject: x\n\n.bare lf\nbare\rcr\r.after cr\r\nno end"));
        assertEquals("Subject: x\r\n\r\n..bare lf\r\nbare\r\ncr\r\n..after cr\r\nno end\r\n", ascii(s.messages().get(0)));
    }

    @Test
    public void pipeliningSendsMailRcptAndDataInOneFlushAndGivesEachRecipientItsReply() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> {
            if (line.startsWith("RCPT TO:<bad@")) {
                return "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown";
            }
            if (line.startsWith("RCPT TO:<later@")) {
                return "450 4.2.0 <later@example.org>: Recipient address rejected: Greylisted";
            }
            if (line.startsWith("RCPT TO:<plain@")) {
                return "550 no such user"; // no enhanced code: 5.0.0 from the basic code
            }
            return null;
        };
        transport();
        List<DeliveryResult> results = deliver(transport,
                request(s, "good@example.org", "bad@example.org", "later@example.org", "plain@example.org"));

        assertTrue("MAIL, RCPT and DATA must come in one burst", s.session(0).burstAfterMail);
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RCPT", "DATA"), s.session(0).verbs());
        assertEquals(1, s.messages().size());
        assertResult(result(results, "good@example.org"), Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q1", "127.0.0.1");
        assertResult(result(results, "bad@example.org"), Outcome.FAILED, "5.1.1",
                "550 5.1.1 <bad@example.org>: Recipient address rejected: User unknown", "127.0.0.1");
        assertResult(result(results, "later@example.org"), Outcome.DEFERRED, "4.2.0",
                "450 4.2.0 <later@example.org>: Recipient address rejected: Greylisted", "127.0.0.1");
        assertResult(result(results, "plain@example.org"), Outcome.FAILED, "5.0.0", "550 no such user", "127.0.0.1");
    }

    @Test
    public void withoutPipeliningEachCommandWaitsForItsReply() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.extensions.remove("PIPELINING");
        s.script = (session, line) -> line.startsWith("RCPT TO:<bad@") ? "550 5.1.1 no such user" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "bad@example.org", "c@example.org"));
        assertFalse("a command came before the previous reply", s.session(0).pipelinedUninvited);
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "DATA"), s.session(0).verbs());
        assertEquals(Outcome.DELIVERED, result(results, "a@example.org").outcome());
        assertEquals(Outcome.FAILED, result(results, "bad@example.org").outcome());
        assertEquals(Outcome.DELIVERED, result(results, "c@example.org").outcome());
    }

    @Test
    public void withoutPipeliningNoDataWhenNoRecipientIsAccepted() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.extensions.remove("PIPELINING");
        s.script = (session, line) -> line.startsWith("RCPT") ? "550 5.1.1 no such user" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "b@example.org"));
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "RCPT", "RSET"), s.session(0).verbs());
        results.forEach(r -> assertResult(r, Outcome.FAILED, "5.1.1", "550 5.1.1 no such user", "127.0.0.1"));
    }

    @Test
    public void refusedMailGivesEveryRecipientThatReply() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.startsWith("MAIL") ? "553 5.7.1 <sender@example.org>: Sender address rejected" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "b@example.org"));
        results.forEach(r -> assertResult(r, Outcome.FAILED, "5.7.1",
                "553 5.7.1 <sender@example.org>: Sender address rejected", "127.0.0.1"));
        assertTrue(s.messages().isEmpty());
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "RCPT", "DATA", "RSET"), s.session(0).verbs());
    }

    @Test
    public void dataAcceptedWithoutAValidRecipientGetsALoneDot() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.startsWith("RCPT") ? "550 5.1.1 no such user"
                : line.equals("DATA") ? "354 go ahead (wrongly)" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org"));
        assertResult(results.get(0), Outcome.FAILED, "5.1.1", "550 5.1.1 no such user", "127.0.0.1");
        assertEquals("nothing but the end of data was sent", List.of(0), s.messages().stream().map(m -> m.length).toList());
        assertEquals("the dot ended the transaction: no RSET", List.of("EHLO", "MAIL", "RCPT", "DATA"), s.session(0).verbs());
    }

    @Test
    public void temporaryFailureAtDataDefersTheAcceptedRecipientsOnly() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.startsWith("RCPT TO:<bad@") ? "550 5.1.1 no such user"
                : line.equals("DATA") ? "451 4.3.0 Error: queue file write error" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "bad@example.org", "c@example.org"));
        assertTrue(s.messages().isEmpty());
        assertResult(result(results, "a@example.org"), Outcome.DEFERRED, "4.3.0", "451 4.3.0 Error: queue file write error", "127.0.0.1");
        assertResult(result(results, "c@example.org"), Outcome.DEFERRED, "4.3.0", "451 4.3.0 Error: queue file write error", "127.0.0.1");
        assertResult(result(results, "bad@example.org"), Outcome.FAILED, "5.1.1", "550 5.1.1 no such user", "127.0.0.1");
        assertEquals("the session is reset after the failed transaction", "RSET", s.session(0).verbs().get(6));
    }

    @Test
    public void refusedFinalDotFailsEveryAcceptedRecipient() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.equals(".") ? "554 5.7.1 Message rejected as spam" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "b@example.org"));
        results.forEach(r -> assertResult(r, Outcome.FAILED, "5.7.1", "554 5.7.1 Message rejected as spam", "127.0.0.1"));
        assertEquals(1, s.messages().size());
    }

    @Test
    public void multiLineReplyIsOneDiagnosticLine() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.equals(".") ? "452-4.2.2 Mailbox full\n452 4.2.2 try again later" : null;
        transport();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org"));
        assertResult(results.get(0), Outcome.DEFERRED, "4.2.2", "452 4.2.2 Mailbox full 4.2.2 try again later", "127.0.0.1");
    }

    @Test
    public void nextHopsAreTriedInOrderPastRefusalsAndDeadHosts() throws Exception {
        ScriptedServer busy = server("127.0.0.2");
        busy.greeting = "421 4.3.2 busy, try later";
        ScriptedServer hostile = server("127.0.0.3");
        hostile.greeting = "554 5.7.1 no SMTP service here";
        ScriptedServer good = server("127.0.0.4");
        transport();
        Route route = route(TlsPolicy.NONE,
                new NextHop("mx.example.org", 25, 5),
                new NextHop("127.0.0.1", Fixtures.closedPort(), 10),
                hop(busy), hop(hostile), hop(good));
        List<DeliveryResult> results = deliver(transport, new Fixtures.Request().to("a@example.org").via(route));

        assertResult(results.get(0), Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q1", "127.0.0.4");
        waitFor(() -> busy.session(0).ended && hostile.session(0).ended, "the refused sessions to end");
        assertEquals(List.of("QUIT"), busy.session(0).verbs());
        assertEquals(List.of("QUIT"), hostile.session(0).verbs());
        assertEquals(1, good.messages().size());
    }

    @Test
    public void whenEveryHopFailsEveryRecipientIsDeferred() throws Exception {
        transport("connect_timeout", 5);
        int dead = Fixtures.closedPort();
        Route route = route(TlsPolicy.NONE, new NextHop("mx.example.org", 25, 0), new NextHop("127.0.0.1", dead, 0));
        List<DeliveryResult> results = deliver(transport, new Fixtures.Request().to("a@example.org", "b@example.org").via(route));
        for (DeliveryResult r : results) {
            assertEquals(Outcome.DEFERRED, r.outcome());
            assertEquals("4.4.1", r.status());
            assertTrue(r.diagnostic(), r.diagnostic().startsWith("connect to 127.0.0.1[127.0.0.1]:" + dead + ": "));
            assertTrue(r.diagnostic(), r.diagnostic().contains("refused"));
            assertNull("nobody answered", r.remoteMta());
        }
    }

    @Test
    public void aHostNameHopIsNotResolvedHere() throws Exception {
        transport();
        Route route = route(TlsPolicy.NONE, new NextHop("mx.example.org", 25, 0));
        DeliveryResult r = deliver(transport, new Fixtures.Request().to("a@example.org").via(route)).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.4.1", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().contains("host name"));
    }

    @Test
    public void refusedGreetingOnTheOnlyHopDefers() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.greeting = "554 5.7.1 go away";
        transport();
        DeliveryResult r = deliver(transport, request(s, "a@example.org")).get(0);
        assertResult(r, Outcome.DEFERRED, "4.4.1",
                "host 127.0.0.1[127.0.0.1]:" + s.port() + " refused to talk to me: 554 5.7.1 go away", "127.0.0.1");
    }

    @Test
    public void ehloRefusedFallsBackToHeloWithoutExtensions() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.startsWith("EHLO") ? "502 5.5.2 Error: command not recognized" : null;
        transport("helo_name", "out.example.org");
        Fixtures.Request r = request(s, "a@example.org");
        r.body = BodyType.EIGHT_BIT_MIME;
        r.ret = Ret.HDRS;
        DeliveryResult result = deliver(transport, r).get(0);
        assertEquals(Outcome.DELIVERED, result.outcome());
        assertEquals(List.of("EHLO out.example.org", "HELO out.example.org", "MAIL FROM:<sender@example.org>",
                "RCPT TO:<a@example.org>", "DATA"), s.session(0).commands);
        assertFalse("no pipelining after HELO", s.session(0).burstAfterMail);
    }

    @Test
    public void parametersFollowTheEnvelopeWhereTheServerOffersThem() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        Fixtures.Request r = request(s);
        r.body = BodyType.EIGHT_BIT_MIME;
        r.ret = Ret.HDRS;
        r.envId = "id+1=x y";
        r.recipients.add(new Recipient(MailAddress.parse("a@example.org"), Set.of(Notify.FAILURE, Notify.SUCCESS),
                "rfc822;a+2Bx@example.org"));
        r.recipients.add(new Recipient(MailAddress.parse("b@example.org"), Set.of(Notify.NEVER), null));
        r.recipients.add(Fixtures.rcpt("c@example.org"));
        deliver(transport, r);
        List<String> c = s.session(0).commands;
        assertEquals("MAIL FROM:<sender@example.org> SIZE=" + r.content.length + " BODY=8BITMIME RET=HDRS ENVID=id+2B1+3Dx+20y", c.get(1));
        assertEquals("RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bx@example.org", c.get(2));
        assertEquals("RCPT TO:<b@example.org> NOTIFY=NEVER", c.get(3));
        assertEquals("RCPT TO:<c@example.org>", c.get(4));
    }

    @Test
    public void noDsnOr8bitParametersWhenNotOffered() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.extensions.removeAll(List.of("DSN", "8BITMIME", "SIZE 10485760"));
        transport();
        Fixtures.Request r = request(s);
        r.body = BodyType.EIGHT_BIT_MIME;
        r.ret = Ret.FULL;
        r.envId = "abc";
        r.recipients.add(new Recipient(MailAddress.parse("a@example.org"), Set.of(Notify.FAILURE), "rfc822;a@example.org"));
        r.content("Subject: caf\u00e9\r\n\r\n8bit body: \u00e9\r\n");
        DeliveryResult result = deliver(transport, r).get(0);
        assertEquals(Outcome.DELIVERED, result.outcome());
        assertEquals("MAIL FROM:<sender@example.org>", s.session(0).commands.get(1));
        assertEquals("RCPT TO:<a@example.org>", s.session(0).commands.get(2));
        // An 8-bit body to a server without 8BITMIME goes as it is (no downgrade to 7 bit).
        assertArrayEquals(r.content, s.messages().get(0));
    }

    @Test
    public void tooLargeForTheServerFailsWithoutSending() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.extensions.remove("SIZE 10485760");
        s.extensions.add("SIZE 100");
        transport();
        Fixtures.Request r = request(s, "a@example.org", "b@example.org").content("Subject: big\r\n\r\n" + "x".repeat(200) + "\r\n");
        List<DeliveryResult> results = deliver(transport, r);
        for (DeliveryResult result : results) {
            assertEquals(Outcome.FAILED, result.outcome());
            assertEquals("5.3.4", result.status());
            assertEquals("message size 218 exceeds size limit 100 of server 127.0.0.1[127.0.0.1]:" + s.port(), result.diagnostic());
        }
        assertFalse(s.session(0).verbs().contains("MAIL"));
    }

    @Test
    public void utf8AddressNeedsSmtpUtf8() throws Exception {
        ScriptedServer without = server("127.0.0.1");
        without.extensions.remove("SMTPUTF8");
        ScriptedServer with = server("127.0.0.2");
        transport();
        DeliveryResult refused = deliver(transport, request(without, "j\u00f6ran@example.org")).get(0);
        assertEquals(Outcome.FAILED, refused.outcome());
        assertEquals("5.6.7", refused.status());
        assertFalse(without.session(0).verbs().contains("MAIL"));

        Fixtures.Request r = request(with, "j\u00f6ran@b\u00fccher.example");
        r.smtpUtf8 = true;
        DeliveryResult sent = deliver(transport, r).get(0);
        assertEquals(Outcome.DELIVERED, sent.outcome());
        assertEquals("MAIL FROM:<sender@example.org> SIZE=" + r.content.length + " SMTPUTF8", with.session(0).commands.get(1));
        // the server decodes the line as UTF-8: the address went as UTF-8, not as '?'
        assertEquals("RCPT TO:<j\u00f6ran@b\u00fccher.example>", with.session(0).commands.get(2));
    }

    @Test
    public void cachedConnectionCarriesTheNextMessage() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        assertEquals(Outcome.DELIVERED, deliver(transport, request(s, "a@example.org")).get(0).outcome());
        assertEquals(Outcome.DELIVERED, deliver(transport, request(s, "b@example.org")).get(0).outcome());
        assertEquals("one TCP connection", 1, s.sessions.size());
        assertEquals("no RSET after a transaction ended by the dot",
                List.of("EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"), s.session(0).verbs());
        assertEquals(2, s.messages().size());
        assertEquals(1, transport.pool().size("example.org"));

        transport.deactivate();
        transport = null;
        waitFor(() -> s.session(0).ended, "the cached session to end");
        assertEquals("QUIT", s.session(0).verbs().get(7));
    }

    @Test
    public void connectionIsClosedAfterTheConfiguredNumberOfMessages() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport("max_messages_per_connection", 1);
        deliver(transport, request(s, "a@example.org"));
        deliver(transport, request(s, "b@example.org"));
        assertEquals(2, s.sessions.size());
        waitFor(() -> s.session(0).ended, "first session to end");
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA", "QUIT"), s.session(0).verbs());
    }

    @Test
    public void idleCachedConnectionIsClosedAfterTheIdleTime() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport("connection_idle_time", 1);
        deliver(transport, request(s, "a@example.org"));
        waitFor(() -> s.session(0).ended, "the idle session to end");
        assertEquals("QUIT", s.session(0).verbs().get(s.session(0).verbs().size() - 1));
        assertEquals(0, transport.pool().size("example.org"));
        deliver(transport, request(s, "b@example.org"));
        assertEquals(2, s.sessions.size());
    }

    @Test
    public void cacheIsKeptPerTlsPolicy() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        deliver(transport, request(s, "a@example.org"));
        // The same destination and hop under "encrypt" must not reuse the connection made in clear.
        Fixtures.Request encrypted = new Fixtures.Request().to("b@example.org").via(route(TlsPolicy.ENCRYPT, hop(s)));
        DeliveryResult r = deliver(transport, encrypted).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.4", r.status());
        assertEquals(2, s.sessions.size());
        assertEquals(1, s.messages().size());
    }

    @Test
    public void rsetOnlyAfterATransactionCutShort() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.startsWith("RCPT TO:<bad@") ? "550 5.1.1 no such user" : null;
        transport();
        assertEquals(Outcome.FAILED, deliver(transport, request(s, "bad@example.org")).get(0).outcome());
        assertEquals(Outcome.DELIVERED, deliver(transport, request(s, "a@example.org")).get(0).outcome());
        assertEquals(Outcome.DELIVERED, deliver(transport, request(s, "b@example.org")).get(0).outcome());
        assertEquals("one TCP connection", 1, s.sessions.size());
        // The refused RCPT left a MAIL (and a pipelined DATA) behind: RSET. The reply to the dot ends a
        // transaction by itself (RFC 5321 4.1.1.4): nothing to reset.
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"),
                s.session(0).verbs());
        assertEquals(2, s.messages().size());
    }

    /**
     * What each flush puts on the wire, on a cached connection: the pipelined commands in one, the message with
     * its final dot in another. Each flush is one write to the socket.
     */
    @Test
    public void smallMessageLeavesInOneWriteWithItsFinalDot() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        deliver(transport, request(s, "a@example.org"));
        ClientConnection c = transport.pool().take("example.org", List.of(hop(s)), TlsPolicy.NONE, null);
        List<String> flushes = Collections.synchronizedList(new ArrayList<>());
        c.channel().pipeline().addFirst(new ChannelOutboundHandlerAdapter() {
            private final StringBuilder unflushed = new StringBuilder();

            @Override
            public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
                unflushed.append(((ByteBuf) msg).toString(StandardCharsets.UTF_8));
                ctx.write(msg, promise);
            }

            @Override
            public void flush(ChannelHandlerContext ctx) {
                flushes.add(unflushed.toString());
                unflushed.setLength(0);
                ctx.flush();
            }
        });
        assertTrue(transport.pool().offer("example.org", c, 2, 30));

        String content = "Subject: 1 KiB\r\n\r\n" + ("x".repeat(62) + "\r\n").repeat(16);
        Fixtures.Request r = request(s, "b@example.org", "c@example.org").content(content).header("X-Filter", "checked");
        List<DeliveryResult> results = deliver(transport, r);
        results.forEach(result -> assertEquals(result.toString(), Outcome.DELIVERED, result.outcome()));
        assertEquals(1, s.sessions.size());
        assertEquals(List.of("MAIL FROM:<sender@example.org> SIZE=" + (19 + content.length()) + "\r\n"
                + "RCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
                "X-Filter: checked\r\n" + content + ".\r\n"), flushes);
    }

    @Test
    public void cachedConnectionClosedByTheServerIsReplacedTransparently() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        // The server drops the connection without a word when the next transaction starts.
        s.script = (session, line) -> line.startsWith("MAIL") && Collections.frequency(session.verbs(), "MAIL") > 1
                ? ScriptedServer.CLOSE : null;
        transport();
        deliver(transport, request(s, "a@example.org"));
        DeliveryResult r = deliver(transport, request(s, "b@example.org")).get(0);
        assertResult(r, Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q2", "127.0.0.1");
        assertEquals(2, s.sessions.size());
        assertEquals(1, s.session(1).messages.size());
        assertEquals(2, s.messages().size());
    }

    @Test
    public void cachedConnectionAnsweringMailWith421IsReplacedTransparently() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        // The server ends the session as the next transaction starts, as one with a limit of messages does.
        s.script = (session, line) -> {
            if (line.startsWith("MAIL") && Collections.frequency(session.verbs(), "MAIL") > 1) {
                session.closeAfterAnswer = true;
                return "421 4.7.0 scripted.test Error: too many messages in this session";
            }
            return null;
        };
        transport();
        deliver(transport, request(s, "a@example.org"));
        DeliveryResult r = deliver(transport, request(s, "b@example.org", "c@example.org")).get(0);
        assertResult(r, Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q2", "127.0.0.1");
        assertEquals(2, s.sessions.size());
        assertEquals(1, s.session(1).messages.size());
    }

    @Test
    public void connectionTheServerClosesWith421WhileIdleIsNotReused() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        // Right after the reply to the dot, the first session says 421 and hangs up (an idle timeout of zero).
        s.script = (session, line) -> {
            if (line.equals(".") && session == s.session(0)) {
                session.closeAfterAnswer = true;
                return "250 2.0.0 Ok: queued as Q1\n421 4.4.2 scripted.test Error: timeout exceeded";
            }
            return null;
        };
        transport();
        assertEquals(Outcome.DELIVERED, deliver(transport, request(s, "a@example.org")).get(0).outcome());
        waitFor(() -> s.session(0).ended, "the first session to end");
        DeliveryResult r = deliver(transport, request(s, "b@example.org")).get(0);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertEquals(2, s.sessions.size());
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA"), s.session(0).verbs());
    }

    @Test
    public void silentServerIsDeferredWithinTheGreetingTimeout() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.greeting = ScriptedServer.HANG;
        transport("greeting_timeout", 1);
        long start = System.nanoTime();
        DeliveryResult r = deliver(transport, request(s, "a@example.org")).get(0);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue("took " + millis + " ms", millis >= 900 && millis < 3000);
        assertResult(r, Outcome.DEFERRED, "4.4.2", "conversation with 127.0.0.1[127.0.0.1]:" + s.port()
                + " timed out while receiving the initial server greeting", null);
    }

    /**
     * What made SmtpSinkTest.manyDeliveriesAtOnce hang in CI, made deterministic: a listener whose accept queue
     * holds the connection but whose server never takes it. The TCP connect succeeds, nobody ever speaks, and
     * no RST comes (SMTP servers speak first, so the client sends nothing that could draw one). Only the
     * greeting timeout ends it; then the next hop gets the message.
     */
    @Test
    public void connectedButNeverAcceptedHopGivesWayToTheNextAfterTheGreetingTimeout() throws Exception {
        try (ServerSocket deaf = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.2"))) {
            ScriptedServer good = server("127.0.0.3");
            transport("greeting_timeout", 2);
            Route route = route(TlsPolicy.MAY, new NextHop("127.0.0.2", deaf.getLocalPort(), 0), hop(good));
            long start = System.nanoTime();
            List<DeliveryResult> results = deliver(transport, new Fixtures.Request().to("a@example.org", "b@example.org").via(route));
            long millis = (System.nanoTime() - start) / 1_000_000;

            assertTrue("took " + millis + " ms", millis >= 1900 && millis < 8000);
            for (DeliveryResult r : results) {
                assertResult(r, Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as Q1", "127.0.0.3");
            }
            assertEquals(1, good.messages().size());
        }
    }

    /**
     * Deactivation (bundle stop, config removal) while deliveries wait with the default timeouts of minutes:
     * every stage completes, normally, with every recipient deferred, within seconds; a delivery asked for
     * afterwards is deferred at once. Never a failed stage (Transport's contract keeps those for faults).
     */
    @Test
    public void deactivationEndsRunningDeliveriesDeferred() throws Exception {
        ScriptedServer silent = server("127.0.0.1");
        silent.greeting = ScriptedServer.HANG;
        ScriptedServer slowDot = server("127.0.0.2");
        slowDot.script = (session, line) -> line.equals(".") ? ScriptedServer.HANG : null;
        ScriptedServer noTls = server("127.0.0.3");
        noTls.extensions.add("STARTTLS");
        noTls.script = (session, line) -> line.equals("STARTTLS") ? "220 2.0.0 Ready to start TLS"
                : session.verbs().contains("STARTTLS") ? ScriptedServer.HANG : null;
        SmtpTransport t = transport();
        List<CompletableFuture<List<DeliveryResult>>> running = List.of(
                t.deliver(request(silent, "a@example.org", "b@example.org").build()).toCompletableFuture(),
                t.deliver(request(slowDot, "c@example.org").build()).toCompletableFuture(),
                t.deliver(new Fixtures.Request().to("d@example.org").via(route(TlsPolicy.ENCRYPT, hop(noTls))).build())
                        .toCompletableFuture());
        waitFor(() -> silent.sessions.size() == 1 && slowDot.messages().size() == 1
                && noTls.sessions.size() == 1 && noTls.session(0).verbs().contains("STARTTLS"),
                "every delivery to wait: for a greeting, for the reply to the dot, in the TLS handshake");

        long start = System.nanoTime();
        t.deactivate();
        transport = null;
        for (CompletableFuture<List<DeliveryResult>> f : running) {
            for (DeliveryResult r : f.get(10, TimeUnit.SECONDS)) {
                assertEquals(r.toString(), Outcome.DEFERRED, r.outcome());
                assertTrue(r.toString(), r.status().startsWith("4."));
            }
        }
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue("took " + millis + " ms", millis < 10_000);
        assertEquals(2, running.get(0).get().size());

        CompletableFuture<List<DeliveryResult>> late = t.deliver(request(slowDot, "e@example.org").build()).toCompletableFuture();
        assertResult(late.get(1, TimeUnit.SECONDS).get(0), Outcome.DEFERRED, "4.3.0", "smtp transport is stopping", null);
    }

    @Test
    public void unansweredFinalDotIsDeferredWithinItsTimeout() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.script = (session, line) -> line.equals(".") ? ScriptedServer.HANG : null;
        transport("final_dot_timeout", 1);
        long start = System.nanoTime();
        List<DeliveryResult> results = deliver(transport, request(s, "a@example.org", "b@example.org"));
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue("took " + millis + " ms", millis < 3000);
        for (DeliveryResult r : results) {
            assertEquals(Outcome.DEFERRED, r.outcome());
            assertEquals("4.4.2", r.status());
            assertTrue(r.diagnostic(), r.diagnostic().contains("timed out while sending end of data"));
            assertEquals("127.0.0.1", r.remoteMta());
        }
        assertEquals(0, transport.pool().size("example.org"));
    }

    @Test
    public void unansweredRcptIsDeferredWithinItsTimeoutKeepingEarlierVerdicts() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        s.extensions.remove("PIPELINING");
        s.script = (session, line) -> line.startsWith("RCPT TO:<bad@") ? "550 5.1.1 no such user"
                : line.startsWith("RCPT TO:<slow@") ? ScriptedServer.HANG : null;
        transport("rcpt_timeout", 1);
        List<DeliveryResult> results = deliver(transport, request(s, "bad@example.org", "slow@example.org"));
        assertEquals(Outcome.FAILED, result(results, "bad@example.org").outcome());
        DeliveryResult slow = result(results, "slow@example.org");
        assertEquals(Outcome.DEFERRED, slow.outcome());
        assertEquals("4.4.2", slow.status());
        assertTrue(slow.diagnostic(), slow.diagnostic().endsWith("timed out while sending RCPT TO"));
    }

    @Test
    public void unreadableMessageIsNeverEndedWithADot() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        byte[] start = ("Subject: x\r\n\r\n" + "line\r\n".repeat(10_000)).getBytes(StandardCharsets.US_ASCII);
        Fixtures.Request r = request(s, "a@example.org");
        r.contentOverride = new MessageContent() {
            @Override
            public long size() {
                return start.length * 2L;
            }

            @Override
            public InputStream openStream() {
                return new InputStream() {
                    private int pos;

                    @Override
                    public int read() throws IOException {
                        if (pos == start.length) {
                            throw new IOException("disk error");
                        }
                        return start[pos++];
                    }
                };
            }
        };
        DeliveryResult result = deliver(transport, r).get(0);
        assertEquals(Outcome.DEFERRED, result.outcome());
        assertEquals("4.3.0", result.status());
        assertTrue(result.diagnostic(), result.diagnostic().contains("disk error"));
        waitFor(() -> s.session(0).ended, "the session to end");
        assertTrue("no message may be completed", s.messages().isEmpty());
    }

    @Test
    public void routeWithClientCredentialsIsDeferredNotSentWithoutAuth() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        Fixtures.Request r = new Fixtures.Request().to("a@example.org")
                .via(new Route("smtp", "example.org", List.of(hop(s)), TlsPolicy.NONE, "smarthost"));
        DeliveryResult result = deliver(transport, r).get(0);
        assertEquals(Outcome.DEFERRED, result.outcome());
        assertEquals("4.3.5", result.status());
        assertTrue(s.sessions.isEmpty());
    }

    @Test
    public void nullSenderAndPostmaster() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        Fixtures.Request r = request(s, "postmaster");
        r.sender = "";
        deliver(transport, r);
        assertTrue(s.session(0).commands.get(1), s.session(0).commands.get(1).startsWith("MAIL FROM:<> "));
        assertEquals("RCPT TO:<postmaster>", s.session(0).commands.get(2));
    }

    @Test
    public void foldedOnlyWhenOverTheLineLimit() throws Exception {
        ScriptedServer s = server("127.0.0.1");
        transport();
        String longValue = ("word ".repeat(300)).trim();
        Fixtures.Request r = request(s, "a@example.org").header("X-Long", longValue).header("X-Short", "short " + "x".repeat(100));
        deliver(transport, r);
        String wire = ascii(s.messages().get(0));
        String[] lines = wire.split("\r\n", -1);
        assertTrue(lines[0].startsWith("X-Long: word"));
        int i = 1;
        while (lines[i].startsWith(" ")) {
            i++;
        }
        assertTrue("folded into several lines", i > 2);
        for (int j = 0; j < i; j++) {
            assertTrue(lines[j].length() <= 78);
        }
        String unfolded = String.join("\r\n", List.of(lines).subList(0, i)).replace("\r\n", "");
        assertEquals("X-Long: " + longValue, unfolded);
        assertEquals("X-Short: short " + "x".repeat(100), lines[i]);
    }

    static void waitFor(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(20);
        }
    }
}
