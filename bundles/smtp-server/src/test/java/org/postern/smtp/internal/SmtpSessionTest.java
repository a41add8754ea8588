package org.postern.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.lang.annotation.Annotation;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;

import org.junit.Before;
import org.junit.Test;
import org.postern.api.filter.MessageContext;
import org.postern.api.filter.SessionContext;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.filter.TransactionContext;
import org.postern.api.filter.Verdict;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Notify;
import org.postern.api.queue.QueueStore;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;

public class SmtpSessionTest {

    private final MemoryQueue queue = new MemoryQueue();
    private QueueStore queueService = queue;
    private RelayPolicy relay = (s, rcpt) -> CompletableFuture.completedFuture(
            rcpt.domain().equalsIgnoreCase("localhost") || rcpt.domain().isEmpty()
                    ? RelayDecision.local() : RelayDecision.relayDenied());
    private FilterChain chain = FilterChain.EMPTY;
    private final Map<String, Object> cfg = new HashMap<>();
    private io.netty.handler.ssl.SslContext tls;
    private EmbeddedChannel channel;

    @org.junit.Rule
    public org.junit.rules.TemporaryFolder tmp = new org.junit.rules.TemporaryFolder();

    @Before
    public void defaults() {
        cfg.put("max_message_size", 1000L);
        cfg.put("max_recipients", 3);
        cfg.put("max_text_line", 1000);
        cfg.put("max_errors", 10);
    }

    private void connect() {
        SmtpSession.Services services = new SmtpSession.Services() {
            @Override
            public QueueStore queueStore() {
                return queueService;
            }

            @Override
            public RelayPolicy relayPolicy() {
                return relay;
            }

            @Override
            public FilterChain filterChain() {
                return chain;
            }

            @Override
            public List<org.postern.api.auth.Authenticator> authenticators() {
                return List.of();
            }

            @Override
            public io.netty.handler.ssl.SslContext tls() {
                return tls;
            }

            @Override
            public boolean admit(java.net.InetAddress client) {
                return true;
            }

            @Override
            public void release(java.net.InetAddress client) {
            }
        };
        ListenerConfig config = config(cfg);
        // EmbeddedChannel has no socket address: give it one the way a real connection would.
        channel = new EmbeddedChannel(new ChannelInboundHandlerAdapter()) {
            @Override
            protected java.net.SocketAddress remoteAddress0() {
                return new InetSocketAddress("192.0.2.7", 40000);
            }

            @Override
            protected java.net.SocketAddress localAddress0() {
                return new InetSocketAddress("127.0.0.1", 2525);
            }
        };
        channel.pipeline().remove(channel.pipeline().first());
        SmtpSession.configure(channel.pipeline(), services, config);
        channel.pipeline().fireChannelActive();
        channel.runPendingTasks();
    }

    static ListenerConfig config(Map<String, Object> values) {
        return (ListenerConfig) java.lang.reflect.Proxy.newProxyInstance(ListenerConfig.class.getClassLoader(),
                new Class<?>[] {ListenerConfig.class}, (proxy, method, args) -> {
                    if (method.getDeclaringClass() == Object.class || method.getDeclaringClass() == Annotation.class) {
                        return method.getName().equals("annotationType") ? ListenerConfig.class : null;
                    }
                    Object v = values.get(method.getName());
                    return v != null ? v : method.getDefaultValue();
                });
    }

    private void send(String text) {
        channel.writeInbound(Unpooled.copiedBuffer(text, StandardCharsets.UTF_8));
        channel.runPendingTasks();
    }

    /** Every reply line the server has written so far. */
    private List<String> replies() {
        List<String> lines = new ArrayList<>();
        ByteBuf b;
        StringBuilder all = new StringBuilder();
        while ((b = channel.readOutbound()) != null) {
            all.append(b.toString(StandardCharsets.UTF_8));
            b.release();
        }
        for (String l : all.toString().split("\r\n")) {
            if (!l.isEmpty()) {
                lines.add(l);
            }
        }
        return lines;
    }

    private String lastReply() {
        List<String> r = replies();
        return r.isEmpty() ? null : r.get(r.size() - 1);
    }

    private static FilterChain.Entry entry(SmtpFilter f, String name, int ranking, long timeout, boolean failOpen) {
        return new FilterChain.Entry(f, name, ranking, ranking, timeout, failOpen);
    }

    @Test
    public void greetsAndAdvertisesExtensions() {
        connect();
        assertEquals("220 localhost ESMTP Postern", lastReply());
        send("EHLO client.example\r\n");
        List<String> r = replies();
        assertEquals("250-localhost", r.get(0));
        assertTrue(r.contains("250-PIPELINING"));
        assertTrue(r.contains("250-SIZE 1000"));
        assertTrue(r.contains("250-ENHANCEDSTATUSCODES"));
        assertEquals("250 CHUNKING", r.get(r.size() - 1));
        assertFalse("no certificate, no STARTTLS", r.contains("250-STARTTLS"));
        assertFalse("AUTH is not offered on an MX", r.stream().anyMatch(l -> l.contains("AUTH")));
    }

    @Test
    public void storesExactBytesAndEnvelopeBeforeAnswering250() {
        queue.holdCommits = true;
        connect();
        replies();
        send("EHLO client.example\r\n");
        send("MAIL FROM:<alice@example.org> BODY=8BITMIME ENVID=abc+2Bdef RET=HDRS\r\n");
        send("RCPT TO:<bob@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@localhost\r\n");
        send("DATA\r\n");
        replies();
        send("Subject: hi\r\n\r\n..leading dot\r\nline two\r\n.\r\n");
        assertEquals("no 250 before the store says the message is durable", List.of(), replies());
        queue.releaseCommits();
        channel.runPendingTasks();
        assertEquals("250 2.0.0 Ok: queued as Q1", lastReply());
        MemoryQueue.Stored s = queue.stored.get(0);
        assertEquals("Subject: hi\r\n\r\n.leading dot\r\nline two\r\n", new String(s.bytes(), StandardCharsets.UTF_8));
        assertEquals(MailAddress.parse("alice@example.org"), s.envelope().sender());
        assertEquals("abc+def", s.envelope().envId());
        assertEquals(Set.of(Notify.SUCCESS, Notify.FAILURE), s.envelope().recipients().get(0).notifyOn());
        assertEquals("rfc822;bob@localhost", s.envelope().recipients().get(0).orcpt());
        assertEquals("192.0.2.7", s.envelope().client().address());
        assertEquals("client.example", s.envelope().client().heloName());
        assertEquals("Received", s.added().get(0).name());
        assertTrue(s.added().get(0).value(), s.added().get(0).value().startsWith("from client.example ([192.0.2.7]) by localhost"));
    }

    @Test
    public void pipelinedCommandsGetRepliesInOrder() {
        connect();
        replies();
        send("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        List<String> r = replies();
        List<String> codes = r.stream().filter(l -> l.charAt(3) == ' ').toList();
        assertEquals(List.of("250 CHUNKING", "250 2.1.0 Ok", "554 5.7.1 <x@elsewhere.example>: Relay access denied",
                "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"), codes);
    }

    @Test
    public void failsClosedWithoutRelayPolicyOrQueue() {
        relay = null;
        queueService = null;
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n");
        assertEquals("451 4.3.0 <b@localhost>: Recipient policy unavailable, try again later", lastReply());
        relay = (s, r) -> CompletableFuture.completedFuture(RelayDecision.local());
        send("RCPT TO:<b@localhost>\r\nDATA\r\n");
        assertEquals("451 4.3.0 Queue unavailable, try again later", lastReply());
    }

    @Test
    public void relayTricksAreStillForeign() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\n");
        replies();
        send("RCPT TO:<@localhost:x@elsewhere.example>\r\n");
        assertEquals("554 5.7.1 <x@elsewhere.example>: Relay access denied", lastReply());
        send("RCPT TO:<x@[10.0.0.1]>\r\n");
        assertEquals("554 5.7.1 <x@[10.0.0.1]>: Relay access denied", lastReply());
    }

    @Test
    public void filterVerdictsAndAsyncAnswers() {
        CompletableFuture<Verdict> later = new CompletableFuture<>();
        SmtpFilter slow = new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> mailFrom(TransactionContext t, MailAddress sender) {
                return later;
            }
        };
        SmtpFilter blocker = new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> rcptTo(TransactionContext t, org.postern.api.mail.Recipient r) {
                return CompletableFuture.completedFuture(r.address().localPart().equals("spam")
                        ? Verdict.reject("5.7.1", "No thanks") : Verdict.proceed());
            }

            @Override
            public CompletionStage<Verdict> message(MessageContext m) {
                m.addHeader(new Header("X-Checked", "yes " + m.headers().get(0).value()));
                return SmtpFilter.proceed();
            }
        };
        chain = FilterChain.EMPTY.with(entry(blocker, "blocker", 10, 1000, false)).with(entry(slow, "slow", 20, 5000, false));
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<spam@localhost>\r\n");
        assertEquals("250 localhost", lastReply());
        later.complete(Verdict.proceed());
        channel.runPendingTasks();
        assertEquals(List.of("250 2.1.0 Ok", "550 5.7.1 No thanks"), replies());
        send("RCPT TO:<ham@localhost>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q1", lastReply());
        assertEquals(new Header("X-Checked", "yes x"), queue.stored.get(0).added().get(1));
    }

    @Test
    public void aFilterAddedMidTransactionWaitsForTheNextOne() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\n");
        SmtpFilter rejectAll = new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> rcptTo(TransactionContext t, org.postern.api.mail.Recipient r) {
                return CompletableFuture.completedFuture(Verdict.reject("5.7.1", "Rejected"));
            }
        };
        chain = chain.with(entry(rejectAll, "late", 0, 1000, false));
        send("RCPT TO:<b@localhost>\r\n");
        assertEquals("250 2.1.5 Ok", lastReply());
        send("RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n");
        assertEquals("550 5.7.1 Rejected", lastReply());
    }

    @Test
    public void filterTimeoutFailsClosedOrOpenAsConfigured() throws Exception {
        SmtpFilter never = new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> mailFrom(TransactionContext t, MailAddress s) {
                return new CompletableFuture<>();
            }
        };
        chain = FilterChain.EMPTY.with(entry(never, "never", 0, 50, false));
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\n");
        Thread.sleep(120);
        channel.runPendingTasks();
        channel.runScheduledPendingTasks();
        channel.runPendingTasks();
        assertEquals("451 4.7.0 Temporary failure of a message check, try again later", lastReply());
        chain = FilterChain.EMPTY.with(entry(never, "never", 0, 50, true));
        send("MAIL FROM:<a@example.org>\r\n");
        Thread.sleep(120);
        channel.runScheduledPendingTasks();
        channel.runPendingTasks();
        assertEquals("250 2.1.0 Ok", lastReply());
    }

    @Test
    public void bareLfCannotEndDataOrSmuggleASecondMessage() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        send("Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nsmuggled\r\n.\r\n");
        assertEquals("550 5.6.0 Message contains bare CR or LF; lines must end with CRLF", lastReply());
        assertTrue(queue.stored.isEmpty());
    }

    @Test
    public void sizeLimitIsExact() {
        connect();
        String fill = "x".repeat(98) + "\r\n"; // 100 octets per line
        send("HELO c\r\nMAIL FROM:<a@example.org> SIZE=1001\r\n");
        assertEquals("552 5.3.4 Message size exceeds fixed limit", lastReply());
        send("MAIL FROM:<a@example.org> SIZE=1000\r\nRCPT TO:<b@localhost>\r\nDATA\r\n" + fill.repeat(10) + ".\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q1", lastReply());
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n" + fill.repeat(10) + "y\r\n.\r\n");
        assertEquals("552 5.3.4 Message size exceeds fixed limit", lastReply());
        assertEquals(1, queue.stored.size());
    }

    @Test
    public void protocolErrors() {
        connect();
        replies();
        send("MAIL FROM:<a@example.org>\r\n");
        assertEquals("503 5.5.1 Error: send HELO/EHLO first", lastReply());
        send("HELO c\r\nRCPT TO:<b@localhost>\r\n");
        assertEquals("503 5.5.1 Error: need MAIL command", lastReply());
        send("MAIL FROM:a@example.org\r\n");
        assertEquals("501 5.1.7 Address must be in angle brackets", lastReply());
        send("MAIL FROM:<a@example.org> FOO=bar\r\n");
        assertEquals("555 5.5.4 Unsupported parameter FOO", lastReply());
        send("MAIL FROM:<>\r\nDATA\r\n");
        assertEquals("554 5.5.1 Error: no valid recipients", lastReply());
        send("RCPT TO:<Postmaster>\r\n");
        assertEquals("250 2.1.5 Ok", lastReply());
        send("BOGUS\r\n");
        assertEquals("500 5.5.2 Error: command not recognized", lastReply());
        send("VRFY postmaster\r\n");
        assertEquals("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery", lastReply());
        send("RSET\r\nMAIL FROM:<j\u00f6rg@example.org>\r\n");
        assertEquals("553 5.6.7 Non-ASCII address requires SMTPUTF8", lastReply());
        send("RSET\r\nMAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8\r\n");
        assertEquals("250 2.1.0 Ok", lastReply());
        send("RSET\r\n");
        send("QUIT\r\n");
        assertEquals("221 2.0.0 Bye", lastReply());
        assertFalse(channel.isOpen());
    }

    @Test
    public void tooManyRecipientsAndTooManyErrors() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nRCPT TO:<c@localhost>\r\nRCPT TO:<d@localhost>\r\n");
        assertEquals("452 4.5.3 Error: too many recipients", lastReply());
        for (int i = 0; i < 9; i++) {
            send("BOGUS\r\n");
        }
        List<String> r = replies();
        assertEquals("421 4.7.0 localhost Error: too many errors", r.get(r.size() - 1));
        assertFalse(channel.isOpen());
    }

    @Test
    public void parsesHeaders() throws Exception {
        List<Header> h = Transaction.parseHeaders(new java.io.ByteArrayInputStream(
                "Subject: a\r\n long\r\nFrom: x@y\r\n\r\nBody: no\r\n".getBytes(StandardCharsets.UTF_8)));
        assertEquals(List.of(new Header("Subject", "a long"), new Header("From", "x@y")), h);
        assertNull(CommandArgs.decodeXtext("bad+2"));
    }

    @Test
    public void anEndlessCommandLineCostsOneLineAndTheConnection() {
        connect();
        replies();
        send("NOOP " + "x".repeat(600) + "\r\n");
        assertEquals("500 5.5.2 Error: line too long", lastReply());
        assertFalse(channel.isOpen());
        connect();
        replies();
        for (int i = 0; i < 100 && channel.isOpen(); i++) {
            send("y".repeat(1000)); // up to 100 KB without a line end
        }
        assertEquals("500 5.5.2 Error: line too long", lastReply());
        assertFalse(channel.isOpen());
    }

    @Test
    public void bdatChunksMakeOneMessageWhateverTheirContent() {
        connect();
        replies();
        send("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nBDAT 9\r\nhello\r\n.\rBDAT 9 LAST\r\n world\n\r\n");
        List<String> r = replies();
        assertEquals("250 2.0.0 Ok: 9 octets received", r.get(r.size() - 2));
        assertEquals("250 2.0.0 Ok: queued as Q1", r.get(r.size() - 1));
        assertEquals("hello\r\n.\r world\n\r\n", new String(queue.stored.get(0).bytes(), StandardCharsets.UTF_8));
        // a chunk without a transaction is read and dropped, and the session goes on
        send("BDAT 4 LAST\r\nNOOPNOOP\r\n");
        assertEquals(List.of("503 5.5.1 Error: need MAIL command", "250 2.0.0 Ok"), replies());
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nBDAT 0 LAST\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q2", lastReply());
        send("BDAT x\r\n");
        assertFalse(channel.isOpen());
    }

    @Test
    public void mailLoopsAreRefused() {
        cfg.put("max_message_size", 100_000L);
        connect();
        String hops = "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n".repeat(51);
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n" + hops + "\r\nbody\r\n.\r\n");
        assertEquals("554 5.4.6 Too many hops: 51 Received: headers, mail loop?", lastReply());
        String fifty = "received: x\r\n".repeat(50);
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n" + fifty + "\r\nReceived: in the body\r\n.\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q2", lastReply());
    }

    @Test
    public void bareCrIsRefusedOrNormalized() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nSubject: x\r\n\r\nbad\rline\r\n.\r\n");
        assertEquals("550 5.6.0 Message contains bare CR or LF; lines must end with CRLF", lastReply());
        cfg.put("bare_line_ends", "normalize");
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nSubject: x\r\n\r\nbad\rline\nend\r\n.\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q2", lastReply());
        assertEquals("Subject: x\r\n\r\nbad\r\nline\r\nend\r\n", new String(queue.stored.get(0).bytes(), StandardCharsets.UTF_8));
    }

    // ---- DATA content framed in blocks of lines (SmtpFrameDecoder.Lines) ----

    /** A session that has answered 354: what is sent from here on is framed as content. */
    private void inData() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        assertEquals("354 End data with <CR><LF>.<CR><LF>", lastReply());
    }

    private String stored(int index) {
        return new String(queue.stored.get(index).bytes(), StandardCharsets.UTF_8);
    }

    private static final String SPLIT_ME = "Received: from a by b\r\nReceived: from c by d\r\nSubject: split\r\n\r\n"
            + "..dot\r\n. space\r\n\r\nReceived: in the body\r\nlast\r\n.\r\nQUIT\r\n";

    @Test
    public void contentSplitAtAnyOctetIsStoredExactlyAndTheCommandAfterItAnswered() {
        cfg.put("max_received_headers", 2);
        String expected = "Received: from a by b\r\nReceived: from c by d\r\nSubject: split\r\n\r\n"
                + ".dot\r\n space\r\n\r\nReceived: in the body\r\nlast\r\n";
        for (int i = 0; i <= SPLIT_ME.length(); i++) {
            inData();
            send(SPLIT_ME.substring(0, i));
            if (i < SPLIT_ME.length()) {
                send(SPLIT_ME.substring(i));
            }
            assertEquals("split at " + i, List.of("250 2.0.0 Ok: queued as Q" + (i + 1), "221 2.0.0 Bye"), replies());
            assertEquals("split at " + i, expected, stored(i));
        }
    }

    @Test
    public void receivedFieldsAreCountedWhereverTheReadsSplitThem() {
        cfg.put("max_received_headers", 1);
        java.util.Random random = new java.util.Random(5321);
        for (int n = 0; n < 100; n++) {
            inData();
            for (int i = 0; i < SPLIT_ME.length(); ) {
                int piece = 1 + random.nextInt(9);
                send(SPLIT_ME.substring(i, Math.min(SPLIT_ME.length(), i + piece)));
                i += piece;
            }
            assertEquals(List.of("554 5.4.6 Too many hops: 2 Received: headers, mail loop?", "221 2.0.0 Bye"), replies());
        }
        assertTrue(queue.stored.isEmpty());
    }

    @Test
    public void aBlockBoundaryRightBeforeTheEndOfData() {
        cfg.put("max_message_size", 100_000L);
        inData();
        String block = ("x".repeat(510) + "\r\n").repeat(128);
        assertEquals(SmtpFrameDecoder.MAX_BLOCK, block.length());
        send(block + ".\r\nQUIT\r\n");
        assertEquals(List.of("250 2.0.0 Ok: queued as Q1", "221 2.0.0 Bye"), replies());
        assertEquals(block, stored(0));
    }

    @Test
    public void commandsPipelinedBehindTheFinalDotAreCommands() {
        queue.holdCommits = true;
        inData();
        send("Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n"
                + "BDAT 5 LAST\r\n.\r\n.\r");
        assertEquals("no reply before the store has the first message", List.of(), replies());
        queue.releaseCommits();
        channel.runPendingTasks();
        queue.releaseCommits();
        channel.runPendingTasks();
        assertEquals(List.of("250 2.0.0 Ok: queued as Q1", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued as Q2"),
                replies());
        assertEquals("Subject: x\r\n\r\nhi\r\n", stored(0));
        assertEquals("the chunk behind the dot is a chunk", ".\r\n.\r", stored(1));
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        send("second\r\n.\r\nQUIT\r\n");
        channel.runPendingTasks();
        queue.releaseCommits();
        channel.runPendingTasks();
        assertEquals(List.of("250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                "250 2.0.0 Ok: queued as Q3", "221 2.0.0 Bye"), replies());
        assertEquals("second\r\n", stored(2));
    }

    @Test
    public void linesSentBeforeARefused354AreCommands() {
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\nSubject: x\r\n");
        List<String> r = replies();
        assertEquals(List.of("554 5.5.1 Error: no valid recipients", "500 5.5.2 Error: command not recognized"),
                r.subList(r.size() - 2, r.size()));
        send("NOOP\r\n.\r\nRSET\r\n");
        assertEquals(List.of("250 2.0.0 Ok", "500 5.5.2 Error: command not recognized", "250 2.0.0 Ok"), replies());
        assertTrue(queue.stored.isEmpty());
    }

    @Test
    public void linesSentBeforeAnAccepted354AreContentAndLeaveCommandsBehindTheDot() {
        CompletableFuture<RelayDecision> later = new CompletableFuture<>();
        relay = (s, r) -> later;
        connect();
        replies();
        // the RCPT waits for the policy: DATA, the content and the dot are framed as lines meanwhile
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nearly\r\n.\r\n");
        later.complete(RelayDecision.local());
        channel.runPendingTasks();
        assertEquals(List.of("250 localhost", "250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                "250 2.0.0 Ok: queued as Q1"), replies());
        assertEquals("early\r\n", stored(0));
        send("NOOP\r\n");
        assertEquals("the 354 turned content framing on, the dot turned it off again", List.of("250 2.0.0 Ok"), replies());
    }

    @Test
    public void aContentLineThatLooksLikeACommandIsContent() {
        inData();
        send("Subject: SMTP\r\n\r\nBDAT 3\r\n.\r\nSTARTTLS\r\nQUIT\r\n");
        assertEquals(List.of("250 2.0.0 Ok: queued as Q1", "454 4.7.0 TLS not available due to local problem", "221 2.0.0 Bye"),
                replies());
        assertEquals("Subject: SMTP\r\n\r\nBDAT 3\r\n", stored(0));
    }

    @Test
    public void aDotAfterABareLfIsContentAndSoIsWhatFollowsIt() {
        inData();
        send("Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n"
                + "BDAT 3\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("550 5.6.0 Message contains bare CR or LF; lines must end with CRLF", "250 2.0.0 Ok"), replies());
        assertTrue(queue.stored.isEmpty());
        cfg.put("bare_line_ends", "normalize");
        inData();
        send("Subject: x\r\n\r\nhello\n.\r\nBDAT 3\r\nbad\rline\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("250 2.0.0 Ok: queued as Q2", "250 2.0.0 Ok"), replies());
        assertEquals("Subject: x\r\n\r\nhello\r\n\r\nBDAT 3\r\nbad\r\nline\r\n", stored(0));
    }

    @Test
    public void aTooLongLineInsideABlock() {
        inData();
        send("Subject: x\r\n\r\nok\r\n" + "y".repeat(1200) + "\r\nok\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("550 5.6.0 Message contains a line longer than 1000 octets", "250 2.0.0 Ok"), replies());
        // an endless line: 100 KB without a line end, answered at the end of data, and the session goes on
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        for (int i = 0; i < 100; i++) {
            send("y".repeat(1000));
        }
        send("\r\nok\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("550 5.6.0 Message contains a line longer than 1000 octets", "250 2.0.0 Ok"), replies());
        assertTrue(queue.stored.isEmpty());
    }

    @Test
    public void sizeLimitIsExactInBlocks() {
        String fill = "x".repeat(98) + "\r\n"; // 100 octets per line
        String exact = fill.repeat(9) + "..\r\n" + "x".repeat(95) + "\r\n"; // 1001 sent, 1000 after unstuffing
        inData();
        send(exact + ".\r\n");
        assertEquals(List.of("250 2.0.0 Ok: queued as Q1"), replies());
        assertEquals(1000, queue.stored.get(0).bytes().length);
        inData();
        send(exact.substring(0, 555));
        send(exact.substring(555) + "y\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("552 5.3.4 Message size exceeds fixed limit", "250 2.0.0 Ok"), replies());
        assertEquals(1, queue.stored.size());
    }

    @Test
    public void bareCrInsideABlockIsRefusedOrNormalized() {
        inData();
        send("Subject: x\r\n\r\nbad\rline\r\nok\r\n.\r\n");
        assertEquals(List.of("550 5.6.0 Message contains bare CR or LF; lines must end with CRLF"), replies());
        cfg.put("bare_line_ends", "normalize");
        inData();
        send("Subject: x\r\n\r\nbad\rline\r\nok\r\n.\r\n");
        assertEquals(List.of("250 2.0.0 Ok: queued as Q2"), replies());
        assertEquals("Subject: x\r\n\r\nbad\r\nline\r\nok\r\n", stored(0));
    }

    // ---- timeouts (RFC 5321 4.5.3.2) ----

    /** Moves the channel's clock and runs whatever became due. */
    private void elapse(long seconds) {
        channel.advanceTimeBy(seconds, java.util.concurrent.TimeUnit.SECONDS);
        channel.runScheduledPendingTasks();
        channel.runPendingTasks();
    }

    @Test
    public void aTricklingClientIsCutOffAfterTheCommandTimeoutThoughOctetsKeepComing() {
        cfg.put("command_timeout", 300);
        connect();
        channel.freezeTime();
        replies();
        send("HELO c\r\n");
        assertEquals("250 localhost", lastReply());
        String line = "MAIL FROM:<slow@example.org>\r\n";
        for (int i = 0; i < 59; i++) { // one octet every 5 s, never a complete line in 300 s
            send(line.substring(i % 20, i % 20 + 1));
            elapse(5);
        }
        assertTrue("still waiting at 295 s", channel.isOpen());
        assertEquals(List.of(), replies());
        send("M");
        elapse(5);
        assertEquals(List.of("421 4.4.2 localhost Error: timeout exceeded"), replies());
        assertFalse(channel.isOpen());
    }

    @Test
    public void theIdleTimeoutOfEarlierVersionsStillSetsTheCommandTimeout() {
        cfg.put("idle_timeout", 60);
        connect();
        channel.freezeTime();
        replies();
        elapse(59);
        assertTrue(channel.isOpen());
        elapse(1);
        assertEquals(List.of("421 4.4.2 localhost Error: timeout exceeded"), replies());
        assertFalse(channel.isOpen());
    }

    @Test
    public void eachReplyStartsTheCommandTimeoutAfresh() {
        cfg.put("command_timeout", 100);
        connect();
        channel.freezeTime();
        replies();
        for (int i = 0; i < 5; i++) {
            elapse(90);
            send("NOOP\r\n");
            assertEquals("250 2.0.0 Ok", lastReply());
        }
        elapse(99);
        assertTrue("450 s in, but never 100 s without a command", channel.isOpen());
        elapse(1);
        assertEquals("421 4.4.2 localhost Error: timeout exceeded", lastReply());
    }

    @Test
    public void aPauseInDataLongerThanTheDataTimeoutGets421() {
        cfg.put("command_timeout", 300);
        cfg.put("data_timeout", 120);
        cfg.put("max_message_size", 100_000L);
        connect();
        channel.freezeTime();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        assertEquals("354 End data with <CR><LF>.<CR><LF>", lastReply());
        send("Subject: x\r\n\r\n" + "0123456789".repeat(90) + "\r\n");
        elapse(119);
        assertTrue("the data timeout, not the command timeout, applies", channel.isOpen());
        assertEquals(List.of(), replies());
        elapse(1);
        assertEquals(List.of("421 4.4.2 localhost Error: timeout exceeded"), replies());
        assertFalse(channel.isOpen());
        assertTrue(queue.stored.isEmpty());
        assertEquals("the pending message is thrown away", 1, queue.aborted.get());
    }

    @Test
    public void withoutAMinimumRateEachOctetRestartsTheDataTimeout() {
        cfg.put("data_timeout", 120);
        cfg.put("data_min_rate", 0);
        connect();
        channel.freezeTime();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        for (int i = 0; i < 5; i++) {
            elapse(110);
            send("x");
        }
        assertTrue(channel.isOpen());
        elapse(119);
        assertTrue(channel.isOpen());
        elapse(1);
        assertEquals(List.of("421 4.4.2 localhost Error: timeout exceeded"), replies());
    }

    @Test
    public void aClientTricklingMessageContentIsCutOffThoughItNeverPauses() {
        cfg.put("data_timeout", 300);
        cfg.put("max_message_size", 100_000L);
        connect();
        channel.freezeTime();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        int seconds = 0;
        while (channel.isOpen() && seconds < 3600) {
            send(seconds % 100 == 98 ? "\r\n" : "x"); // a line now and then: the lines themselves do not help
            elapse(5);
            seconds += 5;
        }
        assertFalse("cut off", channel.isOpen());
        assertTrue("after about one data timeout, not an hour: " + seconds, seconds >= 300 && seconds <= 310);
        assertEquals("421 4.4.2 localhost Error: timeout exceeded", lastReply());
    }

    @Test
    public void bdatChunksTrickledOneByOneAreOneDataPhase() {
        cfg.put("data_timeout", 300);
        cfg.put("command_timeout", 300);
        connect();
        channel.freezeTime();
        send("EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\n");
        replies();
        int seconds = 0;
        while (channel.isOpen() && seconds < 3600) {
            send("BDAT 1\r\nx");
            elapse(10);
            seconds += 10;
        }
        assertTrue("cut off after about one data timeout: " + seconds, seconds >= 300 && seconds <= 320);
        assertEquals("421 4.4.2 localhost Error: timeout exceeded", lastReply());
    }

    @Test
    public void aSlowButCompleteSessionIsNotCut() {
        cfg.put("command_timeout", 300);
        cfg.put("data_timeout", 300);
        cfg.put("max_message_size", 100_000L);
        connect();
        channel.freezeTime();
        replies();
        // every command trickled over 250 s: slow, but each line complete within the command timeout
        for (String command : List.of("EHLO slow.example\r\n", "MAIL FROM:<a@example.org>\r\n",
                "RCPT TO:<b@localhost>\r\n", "DATA\r\n")) {
            int half = command.length() / 2;
            send(command.substring(0, half));
            elapse(125);
            send(command.substring(half));
            elapse(125);
        }
        assertEquals("354 End data with <CR><LF>.<CR><LF>", lastReply());
        // after a think of 125 s since the 354, content in bursts at a modest rate (800 octets/s), a pause

        String block = ("x".repeat(78) + "\r\n").repeat(100); // 8 KB
        for (int i = 0; i < 5; i++) {
            send(block);
            elapse(10);
        }
        elapse(100);
        send(".\r\n");
        assertEquals("250 2.0.0 Ok: queued as Q1", lastReply());
        elapse(299);
        send("QUIT\r\n");
        assertEquals("221 2.0.0 Bye", lastReply());
        assertEquals(40_000, queue.stored.get(0).bytes().length);
    }

    @Test
    public void noClientTimeoutWhileTheServerWaitsForTheQueue() {
        cfg.put("command_timeout", 300);
        queue.holdCommits = true;
        connect();
        channel.freezeTime();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
        replies();
        elapse(400);
        assertTrue(channel.isOpen());
        queue.releaseCommits();
        channel.runPendingTasks();
        assertEquals("250 2.0.0 Ok: queued as Q1", lastReply());
        elapse(299);
        assertTrue(channel.isOpen());
        elapse(1);
        assertEquals("421 4.4.2 localhost Error: timeout exceeded", lastReply());
    }

    @Test
    public void junkCommandsPastTheLimitCountAsErrors() {
        cfg.put("max_junk_commands", 3);
        cfg.put("max_errors", 3);
        connect();
        send("HELO c\r\n");
        replies();
        send("NOOP\r\nRSET\r\nVRFY x\r\nNOOP\r\nNOOP\r\n");
        assertTrue(channel.isOpen());
        send("HELP\r\n");
        assertEquals("421 4.7.0 localhost Error: too many errors", lastReply());
        assertFalse(channel.isOpen());
    }

    // ---- defects found by the black-box probe (bench/probe/probe.py) ----

    @Test
    public void anEndlessCommandLineIsAnsweredWithoutWaitingForItsEnd() {
        connect();
        replies();
        send("y".repeat(1000));
        assertTrue("1000 octets are one line's worth", channel.isOpen());
        send("y");
        assertEquals(List.of("500 5.5.2 Error: line too long"), replies());
        assertFalse(channel.isOpen());
    }

    @Test
    public void aLongLineEndingInBareLfCannotEndDataEarly() {
        cfg.put("max_message_size", 100_000L);
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        // the dropped long line ended in a bare LF, so the "." after it is content, not the end (smuggling)
        send("Subject: x\r\n\r\n" + "y".repeat(1200) + "\n.\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<b@localhost>\r\n"
                + "DATA\r\nsmuggled\r\n.\r\n");
        assertEquals(List.of("550 5.6.0 Message contains a line longer than 1000 octets"), replies());
        assertTrue(queue.stored.isEmpty());
        // a long line ending in CRLF is followed by a working end of data
        send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n" + "y".repeat(1200) + "\r\n.\r\nNOOP\r\n");
        assertEquals(List.of("250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                "550 5.6.0 Message contains a line longer than 1000 octets", "250 2.0.0 Ok"), replies());
    }

    @Test
    public void aLongLineSplitAtItsCrlfStillEndsWithCrlf() {
        cfg.put("max_message_size", 100_000L);
        connect();
        send("HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@localhost>\r\nDATA\r\n");
        replies();
        send("y".repeat(1500) + "\r");
        send("\n.\r\n");
        assertEquals(List.of("550 5.6.0 Message contains a line longer than 1000 octets"), replies());
    }

    @Test
    public void plaintextPipelinedBehindStarttlsIsNeverProcessed() throws Exception {
        java.nio.file.Path dir = tmp.getRoot().toPath();
        tls = TlsContexts.fromConfig(config(Map.of("tls_certificate", dir.resolve("c.pem").toString(),
                "tls_key", dir.resolve("k.pem").toString(), "tls_self_signed", true))).current();
        List<String> helos = new ArrayList<>();
        SmtpFilter recorder = new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> helo(SessionContext session, String heloName) {
                helos.add(heloName);
                return SmtpFilter.proceed();
            }
        };
        chain = FilterChain.EMPTY.with(entry(recorder, "recorder", 0, 1000, false));
        connect();
        send("EHLO c\r\n");
        List<String> ehlo = replies();
        assertTrue(ehlo.toString(), ehlo.contains("250 STARTTLS"));
        // CVE-2011-0411: all in one segment; the EHLO behind STARTTLS must be discarded, not run inside TLS
        send("StartTLS\r\nEHLO injected\r\nRSET\r\n");
        assertEquals(List.of("220 2.0.0 Ready to start TLS"), replies());
        assertEquals(List.of("c"), helos);
        assertTrue(channel.isOpen());
    }

    @Test
    public void authWithoutAMechanismIsASyntaxError() throws Exception {
        cfg.put("role", "submission");
        startWithPretendTls();
        send("EHLO c\r\n");
        assertTrue(replies().contains("250 AUTH PLAIN LOGIN"));
        send("AUTH\r\n");
        assertEquals("501 5.5.4 Syntax: AUTH mechanism [initial-response]", lastReply());
        send("AUTH  \r\n");
        assertEquals("501 5.5.4 Syntax: AUTH mechanism [initial-response]", lastReply());
        send("AUTH XOAUTH9\r\n");
        assertEquals("504 5.5.4 Unrecognized authentication type", lastReply());
    }

    /**
     * A session that believes TLS is up: STARTTLS, a handshake event, then the SslHandler taken out again,
     * because EmbeddedChannel has no TLS peer. For rules that apply only inside TLS.
     */
    private void startWithPretendTls() {
        java.nio.file.Path dir = tmp.getRoot().toPath();
        tls = TlsContexts.fromConfig(config(Map.of("tls_certificate", dir.resolve("c.pem").toString(),
                "tls_key", dir.resolve("k.pem").toString(), "tls_self_signed", true))).current();
        connect();
        send("EHLO c\r\nSTARTTLS\r\n");
        assertEquals("220 2.0.0 Ready to start TLS", lastReply());
        channel.pipeline().fireUserEventTriggered(io.netty.handler.ssl.SslHandshakeCompletionEvent.SUCCESS);
        // taking the SslHandler out fires a handshake failure: keep it from the session
        channel.pipeline().addBefore("smtp", "quiet", new ChannelInboundHandlerAdapter() {
            @Override
            public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            }
        });
        channel.pipeline().remove(io.netty.handler.ssl.SslHandler.class);
        channel.pipeline().remove("quiet");
        channel.runPendingTasks();
        assertTrue(channel.isOpen());
        replies();
    }
}
