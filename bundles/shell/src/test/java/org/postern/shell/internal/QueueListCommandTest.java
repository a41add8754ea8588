package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.Test;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

public class QueueListCommandTest {

    private static final ZoneId UTC = ZoneId.of("UTC");
    private static final Instant ARRIVAL = Instant.parse("2025-03-04T05:06:07Z");
    private static final ClientInfo CLIENT = new ClientInfo("192.0.2.1", null, "client.example", "ESMTP",
            null, null, null, "mx");

    private static QueueEntry entry(String id, String sender, long size, QueueEntry.State state,
                                    Instant nextAttempt, String lastError, String reason,
                                    List<RecipientStatus> recipients) {
        Envelope envelope = new Envelope(MailAddress.parse(sender),
                recipients.stream().map(RecipientStatus::recipient).toList(), null, null, BodyType.SEVEN_BIT,
                false, CLIENT, ARRIVAL);
        return new QueueEntry(id, envelope, size, List.of(), state, recipients, 1, nextAttempt, lastError, reason);
    }

    private static RecipientStatus rcpt(String address, RecipientStatus.State state) {
        return new RecipientStatus(Recipient.of(MailAddress.parse(address)), state, null, null, null);
    }

    private static QueueEntry simple(String id, long size) {
        return entry(id, "alice@example.org", size, QueueEntry.State.QUEUED, ARRIVAL, null, null,
                List.of(rcpt("bob@example.net", RecipientStatus.State.PENDING)));
    }

    private static String[] cells(String line) {
        String[] cells = line.split("\t", -1);
        for (int i = 0; i < cells.length; i++) {
            cells[i] = cells[i].trim();
        }
        return cells;
    }

    private static String print(List<QueueEntry> entries, boolean format) throws Exception {
        return Fakes.stdout(() -> {
            QueueListCommand.table(entries, UTC, format).print(System.out, format);
            return null;
        });
    }

    @Test
    public void rowsShowWhatMailqShows() throws Exception {
        QueueEntry bounce = entry("4Q1aB", "", 2048, QueueEntry.State.DEFERRED,
                Instant.parse("2025-03-04T06:00:00Z"), "451 4.4.1 Connection refused\r\n by mx.example.net", null,
                List.of(rcpt("done@example.net", RecipientStatus.State.DELIVERED),
                        rcpt("a@example.net", RecipientStatus.State.DEFERRED),
                        rcpt("b@example.net", RecipientStatus.State.PENDING)));
        QueueEntry held = entry("4Q1aC", "Carol@Example.org", 10, QueueEntry.State.QUARANTINED, null, null,
                "spam score 12", List.of(rcpt("dave@example.net", RecipientStatus.State.PENDING)));
        String[] lines = print(List.of(bounce, held), false).split("\n");
        assertEquals(2, lines.length);
        String[] first = cells(lines[0]);
        assertEquals("4Q1aB", first[0]);
        assertEquals("2025-03-04 05:06:07", first[1]);
        assertEquals("2048", first[2]);
        assertEquals("<>", first[3]);
        // Delivered recipients are done: only those still to deliver are shown, as mailq does.
        assertEquals("a@example.net, b@example.net", first[4]);
        assertEquals("DEFERRED", first[5]);
        assertEquals("2025-03-04 06:00:00", first[6]);
        assertEquals("451 4.4.1 Connection refused by mx.example.net", first[7]);

        String[] second = cells(lines[1]);
        assertEquals("Carol@Example.org", second[3]);
        assertEquals("QUARANTINED", second[5]);
        assertEquals("-", second[6]);
        assertEquals("(spam score 12)", second[7]);
    }

    @Test
    public void arrivalIsShownInTheGivenZone() {
        assertEquals("2025-03-04 06:06:07", QueueListCommand.time(ARRIVAL, ZoneId.of("Europe/Paris")));
        assertEquals("2025-03-04 05:06:07", QueueListCommand.time(ARRIVAL, UTC));
        assertEquals("-", QueueListCommand.time(null, UTC));
    }

    @Test
    public void formattedTableCutsLongCellsButScriptOutputKeepsThemWhole() throws Exception {
        List<RecipientStatus> many = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            many.add(rcpt("recipient" + i + "@example.net", RecipientStatus.State.PENDING));
        }
        QueueEntry entry = entry("4Q1aD", "alice@example.org", 1, QueueEntry.State.QUEUED, ARRIVAL, null, null, many);
        String full = QueueListCommand.recipients(entry);
        assertTrue(full.length() > 60);
        assertEquals(full, cells(print(List.of(entry), false).trim())[4]);

        String[] formatted = print(List.of(entry), true).split("\n");
        String header = formatted[0];
        for (String column : new String[] {"ID", "Arrival", "Size", "Sender", "Recipients", "State", "Next attempt",
                "Last error"}) {
            assertTrue(header, header.contains(column));
        }
        assertFalse(formatted[2], formatted[2].contains(full));
        assertTrue(formatted[2], formatted[2].contains("recipient0@example.net, recipient1@example.net"));
    }

    @Test
    public void footerCountsKilobytesRoundedUpAndRequests() {
        assertEquals("-- 3 Kbytes in 2 Requests.", QueueListCommand.footer(List.of(simple("a", 1024), simple("b", 2048))));
        assertEquals("-- 1 Kbytes in 1 Request.", QueueListCommand.footer(List.of(simple("a", 1))));
        assertEquals("-- 2 Kbytes in 1 Request.", QueueListCommand.footer(List.of(simple("a", 1025))));
    }

    @Test
    public void stateIsParsedInAnyCase() {
        assertEquals(QueueEntry.State.DEFERRED, QueueListCommand.parseState("deferred"));
        assertEquals(QueueEntry.State.HELD, QueueListCommand.parseState(" Held "));
        assertNull(QueueListCommand.parseState(null));
        try {
            QueueListCommand.parseState("stuck");
            fail();
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("stuck") && e.getMessage().contains("QUARANTINED"));
        }
    }

    /** A store that answers list() from a fixed list, applying the query as a real store would. */
    private static QueueStore store(List<QueueEntry> all, AtomicReference<QueueQuery> seen) {
        return Fakes.proxy(QueueStore.class, (method, args) -> {
            if (!method.equals("list")) {
                throw new UnsupportedOperationException(method);
            }
            QueueQuery query = (QueueQuery) args[0];
            seen.set(query);
            List<QueueEntry> matching = all.stream().filter(query::matches).skip(query.offset()).toList();
            return query.limit() > 0 && matching.size() > query.limit() ? matching.subList(0, query.limit()) : matching;
        });
    }

    @Test
    public void withoutAStoreTheCommandSaysSo() throws Exception {
        QueueListCommand command = new QueueListCommand();
        assertEquals(QueueListCommand.NO_STORE + "\n", Fakes.stdout(command::execute));
    }

    @Test
    public void emptyQueueAndNoMatch() throws Exception {
        AtomicReference<QueueQuery> seen = new AtomicReference<>();
        QueueListCommand command = new QueueListCommand();
        command.queueStore = store(List.of(), seen);
        assertEquals("Mail queue is empty\n", Fakes.stdout(command::execute));

        command.queueStore = store(List.of(simple("a", 10)), seen);
        command.state = "held";
        assertEquals(QueueListCommand.NO_MATCH + "\n", Fakes.stdout(command::execute));
        assertEquals(QueueEntry.State.HELD, seen.get().state());
    }

    @Test
    public void pagesAndFooter() throws Exception {
        List<QueueEntry> all = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            all.add(simple("id" + i, 1000));
        }
        AtomicReference<QueueQuery> seen = new AtomicReference<>();
        QueueListCommand command = new QueueListCommand();
        command.queueStore = store(all, seen);
        command.sender = "ALICE";
        command.recipient = "bob@";
        command.offset = 1;
        command.limit = 2;
        String[] lines = Fakes.stdout(command::execute).split("\n");
        assertEquals("alice", seen.get().sender().toLowerCase());
        assertEquals("bob@", seen.get().recipient());
        assertEquals(1, seen.get().offset());
        // header, rule, 2 rows, footer, next-page hint
        assertEquals(6, lines.length);
        assertTrue(lines[2], lines[2].startsWith("id1"));
        assertTrue(lines[3], lines[3].startsWith("id2"));
        assertEquals("-- 2 Kbytes in 2 Requests.", lines[4]);
        assertEquals("More entries match: see them with --offset 3.", lines[5]);

        // The last page has no hint; --no-format prints rows only.
        command.offset = 3;
        command.noFormat = true;
        lines = Fakes.stdout(command::execute).split("\n");
        assertEquals(2, lines.length);
        assertEquals("id3", cells(lines[0])[0]);
        assertEquals("id4", cells(lines[1])[0]);

        // --limit 0 lists everything.
        command.offset = 0;
        command.limit = 0;
        lines = Fakes.stdout(command::execute).split("\n");
        assertEquals(5, lines.length);
        assertEquals(0, seen.get().limit());
    }

    @Test
    public void completerOffersTheStates() {
        List<String> candidates = new ArrayList<>();
        org.apache.karaf.shell.api.console.CommandLine line = Fakes.proxy(
                org.apache.karaf.shell.api.console.CommandLine.class, (method, args) -> switch (method) {
                    case "getCursorArgument" -> "de";
                    case "getArgumentPosition" -> 2;
                    case "getBufferPosition" -> 2;
                    case "getCursorArgumentIndex" -> 2;
                    default -> throw new UnsupportedOperationException(method);
                });
        new QueueStateCompleter().complete(null, line, candidates);
        assertEquals(1, candidates.size());
        assertEquals("DEFERRED", candidates.get(0).trim());
    }
}
