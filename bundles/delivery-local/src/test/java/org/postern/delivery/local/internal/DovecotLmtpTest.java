package org.postern.delivery.local.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.testsupport.Dovecot;

/** The lmtp transport against a real Dovecot LMTP server on loopback. */
public class DovecotLmtpTest {

    private static final String CONTENT = "From: Carol <carol@example.com>\r\n"
            + "Subject: Lunch\r\n"
            + "\r\n"
            + "Noon?\r\n"
            + ".a line that starts with a dot\r\n"
            + ".\r\n"
            + "..two dots\r\n"
            + "-- \r\n"
            + "Carol\r\n";

    @Rule
    public TemporaryFolder temp = new TemporaryFolder();

    private Dovecot dovecot;
    private LmtpTransport transport;

    @Before
    public void setUp() throws Exception {
        dovecot = Dovecot.start(temp.getRoot().toPath(), List.of("alice", "bob"));
        transport = new LmtpTransport();
        // our table knows nobody too: the LMTP server has the last word
        transport.mailboxes = Fixtures.mailboxes(List.of("alice", "bob", "nobody"), List.of("postmaster:bob"));
        transport.activate(Fixtures.config(LmtpTransport.Config.class,
                Map.of("host", "127.0.0.1", "port", dovecot.port(), "timeout", 10)));
    }

    @After
    public void tearDown() throws Exception {
        if (transport != null) {
            transport.deactivate();
        }
        if (dovecot != null) {
            dovecot.close();
        }
    }

    private String onlyMessage(String user) throws Exception {
        Path folder = dovecot.maildir(user).resolve("new");
        try (Stream<Path> files = Files.list(folder)) {
            List<Path> all = files.toList();
            assertEquals(user + "'s new/ in " + folder + "\n" + dovecot.log(), 1, all.size());
            return Files.readString(all.get(0), StandardCharsets.UTF_8);
        }
    }

    @Test
    public void oneTransactionOneReplyPerRecipient() throws Exception {
        List<DeliveryResult> results = transport.deliver(Fixtures.request("lmtp", "carol@example.com", CONTENT,
                "alice@example.org", "nobody@example.org", "postmaster@example.org"))
                .toCompletableFuture().get();
        String log = dovecot.log();

        DeliveryResult alice = Fixtures.resultFor(results, "alice@example.org");
        assertEquals(alice + "\n" + log, Outcome.DELIVERED, alice.outcome());
        assertEquals("2.0.0", alice.status());
        assertTrue(alice.diagnostic(), alice.diagnostic().startsWith("250 2.0.0 <alice@example.org>"));
        assertEquals("127.0.0.1", alice.remoteMta());

        DeliveryResult nobody = Fixtures.resultFor(results, "nobody@example.org");
        assertEquals(Outcome.FAILED, nobody.outcome());
        assertEquals("5.1.1", nobody.status());
        assertEquals("550 5.1.1 <nobody@example.org> User doesn't exist: nobody@example.org", nobody.diagnostic());

        // the alias went to Dovecot as bob
        DeliveryResult postmaster = Fixtures.resultFor(results, "postmaster@example.org");
        assertEquals(postmaster + "\n" + log, Outcome.DELIVERED, postmaster.outcome());
        assertTrue(postmaster.diagnostic(), postmaster.diagnostic().startsWith("250 2.0.0 <bob@example.org>"));

        // As a mail client reads it: Dovecot's Return-Path and Received, then our added header and the
        // message exactly (dot-stuffing undone, LF line ends as Dovecot stores Maildir files).
        String expectedTail = (Fixtures.RECEIVED.toWireFormat() + CONTENT).replace("\r\n", "\n");
        for (String user : List.of("alice", "bob")) {
            String message = onlyMessage(user);
            assertTrue(message, message.startsWith("Return-Path: <carol@example.com>\n"));
            assertTrue(message, message.endsWith(expectedTail));
        }
        assertTrue("no mailbox for nobody", Files.notExists(dovecot.maildir("nobody")));
    }

    @Test
    public void aBounceHasTheNullSender() throws Exception {
        List<DeliveryResult> results = transport.deliver(Fixtures.request("lmtp", "", CONTENT, "bob@example.org"))
                .toCompletableFuture().get();
        assertEquals(results + "\n" + dovecot.log(), Outcome.DELIVERED, results.get(0).outcome());
        assertTrue(onlyMessage("bob").startsWith("Return-Path: <>\n"));
    }

    @Test
    public void aStoppedServerDefersEveryRecipient() throws Exception {
        dovecot.close();
        List<DeliveryResult> results = transport.deliver(Fixtures.request("lmtp", "carol@example.com", CONTENT,
                "alice@example.org", "bob@example.org")).toCompletableFuture().get();
        assertEquals(2, results.size());
        for (DeliveryResult result : results) {
            assertEquals(Outcome.DEFERRED, result.outcome());
            assertEquals("4.4.1", result.status());
            assertTrue(result.diagnostic(), result.diagnostic().startsWith(
                    "connect to 127.0.0.1[127.0.0.1]:" + dovecot.port() + ": Connection refused"));
        }
    }
}
