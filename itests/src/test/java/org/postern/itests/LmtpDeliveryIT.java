package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.InvalidSyntaxException;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.MailAddress;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.Mailboxes;
import org.postern.api.routing.Router;
import org.postern.testsupport.Dovecot;

/**
 * Local delivery through LMTP to a real Dovecot on loopback, configured as an operator would (an LMTP server in
 * org.postern.delivery.lmtp, local.transport = lmtp), and the result read back from Dovecot's Maildir as a mail
 * client reads it.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class LmtpDeliveryIT extends PosternTestSupport {

    private Path dir;
    private Dovecot dovecot;

    @Before
    public void deliverThroughDovecot() throws Exception {
        // Under /tmp: Dovecot's unix sockets live in it, and a socket path has at most 107 bytes (the exam
        // folder is longer); Karaf's java.io.tmpdir is under data/, so it is named here.
        dir = Files.createTempDirectory(Paths.get("/tmp"), "postern-lmtp");
        dovecot = Dovecot.start(dir, List.of("carol")); // Dovecot knows carol only
        int port = dovecot.port();

        configure("org.postern.delivery.lmtp", Map.of("host", "127.0.0.1", "port", port, "timeout", 10));
        // Postern knows carol and dave: dave is for Dovecot to refuse
        configure("org.postern.delivery.local", Map.of("mailboxes", "postmaster, bob, dave, carol"));
        configure("org.postern.router", Map.of("local.transport", "lmtp"));

        // SCR publishes a component's configuration with its service: the transport for this server is there
        waitFor("the lmtp transport for port " + port, () -> {
            try {
                return !bundleContext.getServiceReferences(Transport.class,
                        "(&(" + Transport.NAME_PROPERTY + "=lmtp)(port=" + port + "))").isEmpty();
            } catch (InvalidSyntaxException e) {
                throw new IllegalStateException(e);
            }
        });
        Router router = bundleContext.getService(bundleContext.getServiceReference(Router.class));
        waitFor("local mail routed to lmtp", () -> {
            try {
                return "lmtp".equals(router.route(MailAddress.parse("carol@localhost")).toCompletableFuture()
                        .get(5, TimeUnit.SECONDS).transport());
            } catch (Exception e) {
                return false;
            }
        });
        Mailboxes mailboxes = bundleContext.getService(bundleContext.getServiceReference(Mailboxes.class));
        waitFor("carol among the mailboxes", () -> {
            try {
                return mailboxes.exists(MailAddress.parse("carol@localhost")).toCompletableFuture()
                        .get(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                return false;
            }
        });
    }

    @After
    public void stopDovecot() throws Exception {
        if (dovecot != null) {
            dovecot.close();
        }
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    /** The messages in a user's Maildir new/ folder, where Dovecot puts what a mail client has not seen yet. */
    private List<Path> newMail(String user) throws IOException {
        Path folder = dovecot.maildir(user).resolve("new");
        if (!Files.isDirectory(folder)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(folder)) {
            return files.toList();
        }
    }

    private String onlyMessage(String user) throws Exception {
        waitFor(user + "'s new mail in Dovecot", () -> {
            try {
                return !newMail(user).isEmpty();
            } catch (IOException e) {
                return false;
            }
        });
        List<Path> all = newMail(user);
        assertEquals(user + "'s new/\n" + dovecot.log(), 1, all.size());
        return Files.readString(all.get(0), StandardCharsets.UTF_8);
    }

    @Test
    public void aLocalUserGetsTheMessageThroughDovecot() throws Exception {
        SMTPClient client = connect();
        String id = queueId(send(client, "alice@example.org", "carol@localhost",
                "Subject: for carol\r\n\r\nhello carol\r\n.a line that starts with a dot\r\n"));
        client.disconnect();

        String message = onlyMessage("carol");
        // As a mail client reads it: Dovecot's Return-Path, our Received, then the message as it was sent
        // (dot-stuffing undone, LF line ends as Dovecot stores Maildir files).
        assertTrue(message, message.startsWith("Return-Path: <alice@example.org>\n"));
        assertTrue(message, message.contains("\nReceived: from itest.example ([127.0.0.1]) by "));
        assertTrue(message, message.contains(" id " + id));
        assertTrue(message, message.endsWith("\nSubject: for carol\n\nhello carol\n.a line that starts with a dot\n"));
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        // through LMTP only: nothing in Postern's own Maildir
        assertTrue(Files.notExists(Paths.get(System.getProperty("karaf.data"), "mail", "carol")));
    }

    @Test
    public void theLmtpServerAnswersForEachRecipient() throws Exception {
        SMTPClient client = connect();
        assertEquals("250 2.1.0 Ok", command(client, "MAIL FROM:<alice@example.org>"));
        assertEquals("250 2.1.5 Ok", command(client, "RCPT TO:<carol@localhost>"));
        assertEquals("Postern knows dave", "250 2.1.5 Ok", command(client, "RCPT TO:<dave@localhost>"));
        Writer writer = client.sendMessageData();
        writer.write("Subject: for two\r\n\r\none of you\r\n");
        writer.close();
        client.completePendingCommand();
        String id = queueId(client.getReplyString().trim());
        client.disconnect();

        String message = onlyMessage("carol");
        assertTrue(message, message.endsWith("\nSubject: for two\n\none of you\n"));
        // Dovecot refused dave after the data: without a bounce generator the entry waits for an operator
        waitFor("dave's failure to be recorded", () -> queueStore().get(id)
                .filter(e -> e.state() == QueueEntry.State.HELD).isPresent());
        QueueEntry held = queueStore().get(id).orElseThrow();
        RecipientStatus carol = status(held, "carol@localhost");
        RecipientStatus dave = status(held, "dave@localhost");
        assertEquals(carol.toString(), RecipientStatus.State.DELIVERED, carol.state());
        assertEquals(dave.toString(), "5.1.1", dave.status());
        assertTrue(dave.diagnostic(), dave.diagnostic().startsWith("550 5.1.1 "));
        assertTrue(newMail("dave").isEmpty());
        console("mta:queue-delete " + id);
    }

    private static RecipientStatus status(QueueEntry entry, String address) {
        return entry.recipients().stream().filter(r -> r.recipient().address().toString().equals(address))
                .findFirst().orElseThrow(() -> new AssertionError(address + " not in " + entry.recipients()));
    }
}
