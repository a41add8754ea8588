package org.postern.delivery.local.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;

import org.junit.After;
import org.junit.Test;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;

/** The LMTP client against scripted replies a real server cannot be told to give. */
public class LmtpTransportTest {

    private static final String CONTENT = "Subject: test\r\n\r\n.dot\r\nbody\r\n";

    private LmtpTransport transport;

    @After
    public void tearDown() {
        if (transport != null) {
            transport.deactivate();
        }
    }

    private List<DeliveryResult> deliver(String host, int port, int timeout, String sender, String... rcpts)
            throws Exception {
        transport = new LmtpTransport();
        transport.mailboxes = Fixtures.mailboxes(List.of("alice", "bob", "carol"), List.of("postmaster:alice"));
        transport.activate(Fixtures.config(LmtpTransport.Config.class,
                Map.of("host", host, "port", port, "timeout", timeout)));
        return transport.deliver(Fixtures.request("lmtp", sender, CONTENT, rcpts)).toCompletableFuture().get();
    }

    private static void hello(ScriptedLmtpServer s) throws java.io.IOException {
        s.send("220 lmtp.test LMTP ready");
        s.expect("LHLO ", "250-lmtp.test");
        s.send("250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 PIPELINING");
    }

    @Test
    public void eachAcceptedRecipientGetsItsOwnReplyAfterTheData() throws Exception {
        try (ScriptedLmtpServer server = new ScriptedLmtpServer(s -> {
            hello(s);
            s.expect("MAIL FROM:", "250 2.1.0 OK");
            s.expect("RCPT TO:<alice@", "250 2.1.5 OK");
            s.expect("RCPT TO:<nobody@", "550 5.1.1 <nobody@example.org> User doesn't exist");
            s.expect("RCPT TO:<bob@", "250 2.1.5 OK");
            s.expect("RCPT TO:<carol@", "250 2.1.5 OK");
            s.expect("DATA", "354 OK");
            s.readData();
            s.send("250 2.0.0 <alice@example.org> Saved",
                    "452 4.2.2 <bob@example.org> Mailbox is full",
                    "552 5.2.2 <carol@example.org> Quota exceeded (mailbox for user is full)");
            s.expect("QUIT", "221 2.0.0 Bye");
        })) {
            List<DeliveryResult> results = deliver("127.0.0.1", server.port(), 5, "dave@example.com",
                    "postmaster@example.org", "nobody@example.org", "bob@example.org", "carol@example.org");

            assertEquals(List.of("MAIL FROM:<dave@example.com> BODY=8BITMIME", "RCPT TO:<alice@example.org>",
                    "RCPT TO:<nobody@example.org>", "RCPT TO:<bob@example.org>", "RCPT TO:<carol@example.org>",
                    "DATA", "QUIT"), server.commands.subList(1, server.commands.size()));
            // the added headers, no Return-Path or Delivered-To (the LMTP server's job), dot-stuffed
            assertEquals(Fixtures.RECEIVED.toWireFormat() + "Subject: test\r\n\r\n..dot\r\nbody\r\n", server.data);

            DeliveryResult postmaster = Fixtures.resultFor(results, "postmaster@example.org");
            assertEquals(Outcome.DELIVERED, postmaster.outcome());
            assertEquals("250 2.0.0 <alice@example.org> Saved", postmaster.diagnostic());
            DeliveryResult nobody = Fixtures.resultFor(results, "nobody@example.org");
            assertEquals(Outcome.FAILED, nobody.outcome());
            assertEquals("5.1.1", nobody.status());
            DeliveryResult bob = Fixtures.resultFor(results, "bob@example.org");
            assertEquals(Outcome.DEFERRED, bob.outcome());
            assertEquals("4.2.2", bob.status());
            assertEquals("452 4.2.2 <bob@example.org> Mailbox is full", bob.diagnostic());
            DeliveryResult carol = Fixtures.resultFor(results, "carol@example.org");
            assertEquals(Outcome.FAILED, carol.outcome());
            assertEquals("5.2.2", carol.status());
            assertEquals("127.0.0.1", carol.remoteMta());
        }
    }

    @Test
    public void aServerThatHangsUpAfterOneReplyDefersTheRest() throws Exception {
        try (ScriptedLmtpServer server = new ScriptedLmtpServer(s -> {
            hello(s);
            s.expect("MAIL FROM:", "250 2.1.0 OK");
            s.expect("RCPT TO:", "250 2.1.5 OK");
            s.expect("RCPT TO:", "250 2.1.5 OK");
            s.expect("DATA", "354 OK");
            s.readData();
            s.send("250 2.0.0 <alice@example.org> Saved");
        })) {
            List<DeliveryResult> results = deliver("localhost", server.port(), 5, "",
                    "alice@example.org", "bob@example.org");
            assertEquals("MAIL FROM:<> BODY=8BITMIME", server.commands.get(1));
            assertEquals(Outcome.DELIVERED, Fixtures.resultFor(results, "alice@example.org").outcome());
            DeliveryResult bob = Fixtures.resultFor(results, "bob@example.org");
            assertEquals(Outcome.DEFERRED, bob.outcome());
            assertEquals("4.4.2", bob.status());
            assertTrue(bob.diagnostic(), bob.diagnostic().startsWith("lost connection with localhost[127.0.0.1]:"
                    + server.port() + " while receiving the replies after the message"));
        }
    }

    @Test
    public void aRefusedSenderFailsEveryRecipientWithoutData() throws Exception {
        try (ScriptedLmtpServer server = new ScriptedLmtpServer(s -> {
            hello(s);
            s.expect("MAIL FROM:", "550 5.7.1 Sender refused");
            s.expect("QUIT", "221 2.0.0 Bye");
        })) {
            List<DeliveryResult> results = deliver("127.0.0.1", server.port(), 5, "spam@example.com",
                    "alice@example.org", "bob@example.org");
            for (DeliveryResult result : results) {
                assertEquals(Outcome.FAILED, result.outcome());
                assertEquals("5.7.1", result.status());
                assertEquals("550 5.7.1 Sender refused", result.diagnostic());
            }
            assertEquals(List.of("MAIL FROM:<spam@example.com> BODY=8BITMIME", "QUIT"),
                    server.commands.subList(1, server.commands.size()));
        }
    }

    @Test
    public void aServerNotReadyDefersEvenWith5xx() throws Exception {
        try (ScriptedLmtpServer server = new ScriptedLmtpServer(s -> {
            s.send("554 5.3.2 Service not available");
            s.expect("QUIT", "221 2.0.0 Bye");
        })) {
            List<DeliveryResult> results = deliver("127.0.0.1", server.port(), 5, "dave@example.com",
                    "alice@example.org");
            assertEquals(Outcome.DEFERRED, results.get(0).outcome());
            assertEquals("4.3.2", results.get(0).status());
            assertEquals("554 5.3.2 Service not available", results.get(0).diagnostic());
        }
    }

    @Test
    public void aSilentServerTimesOut() throws Exception {
        try (ScriptedLmtpServer server = new ScriptedLmtpServer(s -> s.read())) {
            long start = System.nanoTime();
            List<DeliveryResult> results = deliver("127.0.0.1", server.port(), 1, "dave@example.com",
                    "alice@example.org");
            long millis = (System.nanoTime() - start) / 1_000_000;
            assertTrue("waited " + millis + " ms", millis >= 900 && millis < 5000);
            assertEquals(Outcome.DEFERRED, results.get(0).outcome());
            assertEquals("4.4.2", results.get(0).status());
            assertTrue(results.get(0).diagnostic(), results.get(0).diagnostic().startsWith(
                    "timeout with 127.0.0.1[127.0.0.1]:" + server.port() + " while receiving the initial greeting"));
        }
    }

    @Test
    public void aHostNameIsNeverResolved() throws Exception {
        List<DeliveryResult> results = deliver("lmtp.example.org", 24, 5, "dave@example.com", "alice@example.org");
        DeliveryResult result = results.get(0);
        assertEquals(Outcome.DEFERRED, result.outcome());
        assertEquals("4.3.5", result.status());
        assertEquals("local delivery misconfigured: LMTP host 'lmtp.example.org' is not an IP address or "
                + "localhost (host names are never resolved)", result.diagnostic());
        assertNull(result.remoteMta());
    }

    @Test
    public void addressesAreLiteralsOrLocalhost() throws Exception {
        assertEquals(InetAddress.getByAddress(new byte[] {127, 0, 0, 1}), LmtpTransport.address("localhost"));
        assertEquals(InetAddress.getByAddress(new byte[] {10, 1, 2, 3}), LmtpTransport.address("10.1.2.3"));
        assertEquals(InetAddress.getByAddress(new byte[] {10, 1, 2, 3}), LmtpTransport.address("[10.1.2.3]"));
        assertEquals(InetAddress.getByName("::1"), LmtpTransport.address("[::1]"));
        for (String bad : List.of("10.1.2", "1.2.3.256", "mail", "fe80::zz", "::1%eth0")) {
            try {
                LmtpTransport.address(bad);
                fail("accepted " + bad);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage(), expected.getMessage().contains("'" + bad + "'"));
            }
        }
    }

    @Test
    public void anEmptyHostDefers() throws Exception {
        List<DeliveryResult> results = deliver(" ", 24, 5, "dave@example.com", "alice@example.org");
        assertEquals(Outcome.DEFERRED, results.get(0).outcome());
        assertEquals("local delivery misconfigured: no LMTP host configured", results.get(0).diagnostic());
    }
}
