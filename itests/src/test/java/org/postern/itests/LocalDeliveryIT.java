package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.stream.Stream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;

/** Mail for a local user ends in their Maildir as a mail client reads it; unknown users are refused at RCPT. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class LocalDeliveryIT extends PosternTestSupport {

    private List<Path> newMail(String user) throws Exception {
        Path dir = Paths.get(System.getProperty("karaf.data"), "mail", user, "Maildir", "new");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

    @Test
    public void aLocalUserGetsTheMessageInMaildir() throws Exception {
        SMTPClient client = connect();
        String id = queueId(send(client, "alice@example.org", "bob@localhost", "Subject: for bob\r\n\r\nhello bob\r\n"));
        client.disconnect();
        waitFor("bob's new mail", () -> {
            try {
                return !newMail("bob").isEmpty();
            } catch (Exception e) {
                return false;
            }
        });
        String message = Files.readString(newMail("bob").get(0), StandardCharsets.UTF_8);
        assertTrue(message, message.startsWith("Return-Path: <alice@example.org>\nDelivered-To: bob@localhost\nReceived: "));
        assertTrue(message, message.contains(" id " + id));
        assertTrue(message, message.endsWith("Subject: for bob\n\nhello bob\n"));
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        assertTrue(new File(System.getProperty("karaf.data"), "mail/bob/Maildir/tmp").list().length == 0);
    }

    @Test
    public void unknownLocalUsersAreRefusedAtRcpt() throws Exception {
        SMTPClient client = connect();
        assertEquals("250 2.1.0 Ok", command(client, "MAIL FROM:<alice@example.org>"));
        String reply = command(client, "RCPT TO:<nobody@localhost>");
        assertTrue(reply, reply.startsWith("550 5.1.1 "));
        assertEquals("250 2.1.5 Ok", command(client, "RCPT TO:<postmaster@localhost>"));
        client.disconnect();
    }
}
