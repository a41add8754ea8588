package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Set;

import org.junit.Test;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;

public class QueueShowCommandTest {

    private static final String MESSAGE = "From: Alice <alice@example.org>\r\nSubject: Grüße\r\n"
            + "X-Long: folded\r\n  continuation\r\n\r\nThe body is not shown.\r\n";

    private static QueueEntry rich() {
        Recipient done = new Recipient(MailAddress.parse("done@example.net"), Set.of(Notify.SUCCESS, Notify.FAILURE),
                "rfc822;done@example.net");
        Recipient waiting = Recipient.of(MailAddress.parse("wait@example.net"));
        Envelope envelope = new Envelope(MailAddress.parse("alice@example.org"), List.of(done, waiting), "ENV42",
                Ret.HDRS, BodyType.EIGHT_BIT_MIME, true, MemoryStore.CLIENT, MemoryStore.NOW);
        return new QueueEntry("4Q1aB", envelope, 2048,
                List.of(new Header("Received", "from helo.example by mx"), new Header("X-Spam-Score", "1.5")),
                QueueEntry.State.DEFERRED,
                List.of(new RecipientStatus(done, RecipientStatus.State.DELIVERED, "2.0.0", "250 2.0.0 Ok", "mx.example.net"),
                        new RecipientStatus(waiting, RecipientStatus.State.DEFERRED, "4.4.1",
                                "451 4.4.1 try\r\n again", "mx2.example.net")),
                1, Instant.parse("2025-03-04T05:11:07Z"), "451 4.4.1 try\r\n again", null);
    }

    private static String run(MemoryStore store, String id, boolean noFormat) throws Exception {
        QueueShowCommand command = new QueueShowCommand();
        command.queueStore = store;
        command.id = id;
        command.noFormat = noFormat;
        return Fakes.stdout(command::execute);
    }

    @Test
    public void showsEnvelopeRecipientsAndHeaders() throws Exception {
        String out = run(new MemoryStore().add(rich(), MESSAGE), "4Q1aB", true);
        assertTrue(out, out.startsWith("Queue id:      4Q1aB\n"));
        assertTrue(out, out.contains("State:         DEFERRED\n"));
        assertTrue(out, out.contains("Size:          2048\n"));
        assertTrue(out, out.contains("Attempts:      1\n"));
        assertTrue(out, out.contains("Last error:    451 4.4.1 try again\n"));
        assertTrue(out, out.contains("Sender:        <alice@example.org>\n"));
        assertTrue(out, out.contains("Client:        client.example [192.0.2.1] helo=helo.example with ESMTPS "
                + "(TLSv1.3 TLS_AES_128_GCM_SHA256) listener=mx\n"));
        assertTrue(out, out.contains("Parameters:    BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=ENV42\n"));
        String[] rows = out.split("\n");
        String done = java.util.Arrays.stream(rows).filter(l -> l.startsWith("done@")).findFirst().orElseThrow();
        assertEquals("done@example.net\tDELIVERED\t2.0.0\tmx.example.net\t250 2.0.0 Ok\tNOTIFY=FAILURE,SUCCESS "
                + "ORCPT=rfc822;done@example.net", done.replaceAll(" *\t *", "\t").trim());
        String wait = java.util.Arrays.stream(rows).filter(l -> l.startsWith("wait@")).findFirst().orElseThrow();
        assertEquals("wait@example.net\tDEFERRED\t4.4.1\tmx2.example.net\t451 4.4.1 try again\t-",
                wait.replaceAll(" *\t *", "\t").trim());
        assertTrue(out, out.contains("Added headers:\n  Received: from helo.example by mx\n  X-Spam-Score: 1.5\n"));
        assertTrue(out, out.contains("Message headers:\n  From: Alice <alice@example.org>\n  Subject: Grüße\n"
                + "  X-Long: folded\n    continuation\n"));
        assertFalse("the body is not shown", out.contains("body"));
    }

    @Test
    public void formattedRecipientTableHasAHeader() throws Exception {
        String out = run(new MemoryStore().add(rich(), MESSAGE), "4Q1aB", false);
        String header = java.util.Arrays.stream(out.split("\n")).filter(l -> l.startsWith("Recipient")).findFirst()
                .orElseThrow();
        for (String column : new String[] {"State", "Status", "Remote MTA", "Diagnostic", "DSN"}) {
            assertTrue(header, header.contains(column));
        }
    }

    @Test
    public void heldEntryShowsItsReason() throws Exception {
        QueueEntry held = MemoryStore.entry("H1", QueueEntry.State.HELD, MemoryStore.NOW, "a@example.net");
        String out = run(new MemoryStore().add(held, "Subject: x\r\n\r\n"), "H1", true);
        assertTrue(out, out.contains("State:         HELD (held by operator)\n"));
        assertTrue(out, out.contains("Next attempt:  -\n"));
        assertFalse("no added headers, no section", out.contains("Added headers"));
    }

    @Test
    public void unknownIdIsAPlainMessage() throws Exception {
        assertEquals("No queue entry NOPE.\n", run(new MemoryStore(), "NOPE", false));
    }

    @Test
    public void unreadableContentStillShowsTheEntry() throws Exception {
        MemoryStore store = new MemoryStore().add(rich(), MESSAGE);
        store.contents.remove("4Q1aB");
        String out = run(store, "4Q1aB", true);
        assertTrue(out, out.contains("Queue id:      4Q1aB"));
        assertTrue(out, out.contains("Message headers:\n  (message content unreadable)\n"));
    }

    private static MessageContent content(byte[] bytes) {
        return new MessageContent() {
            @Override
            public long size() {
                return bytes.length;
            }

            @Override
            public InputStream openStream() {
                return new ByteArrayInputStream(bytes);
            }
        };
    }

    private static String headers(String message) throws Exception {
        return QueueShowCommand.headerSection(content(message.getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    public void headerSectionEndsAtTheFirstEmptyLine() throws Exception {
        assertEquals("A: 1\r\nB: 2", headers("A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"));
        assertEquals("bare LF line ends too", "A: 1\nB: 2", headers("A: 1\nB: 2\n\nbody"));
        assertEquals("a message that is all header", "A: 1", headers("A: 1\r\n"));
        String huge = "X: " + "y".repeat(QueueShowCommand.MAX_HEADER_BYTES) + "\r\n\r\nbody";
        String cut = headers(huge);
        assertTrue(cut.endsWith("(header section cut at " + QueueShowCommand.MAX_HEADER_BYTES + " octets)"));
        assertEquals(QueueShowCommand.MAX_HEADER_BYTES, cut.indexOf('\n'));
    }
}
