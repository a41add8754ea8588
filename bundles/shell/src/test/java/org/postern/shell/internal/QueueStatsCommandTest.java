package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.List;

import org.junit.Test;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.RecipientStatus;

public class QueueStatsCommandTest {

    private static MemoryStore store() {
        MemoryStore store = new MemoryStore()
                .add("A", State.DEFERRED, "a@big.example", "b@big.example", "c@small.example")
                .add("B", State.DEFERRED, "d@BIG.example")
                .add("C", State.HELD, "e@small.example")
                .add(MemoryStore.entry("D", State.QUEUED, MemoryStore.NOW.minus(Duration.ofHours(51)), "postmaster"), "x");
        // A delivered recipient is no longer waiting for its destination.
        QueueEntry a = store.entries.get("A");
        store.entries.put("A", new QueueEntry(a.id(), a.envelope(), a.size(), a.addedHeaders(), a.state(),
                List.of(a.recipients().get(0), a.recipients().get(1),
                        new RecipientStatus(a.recipients().get(2).recipient(), RecipientStatus.State.DELIVERED, "2.0.0",
                                null, null)),
                a.attempts(), a.nextAttempt(), null, null));
        return store;
    }

    @Test
    public void busiestDestinationsCountPendingRecipients() {
        List<QueueStatsCommand.Destination> busiest = QueueStatsCommand.busiest(store().list(
                org.postern.api.queue.QueueQuery.ALL), 10);
        assertEquals(List.of(new QueueStatsCommand.Destination("big.example", 3, 2),
                new QueueStatsCommand.Destination("(local)", 1, 1),
                new QueueStatsCommand.Destination("small.example", 1, 1)), busiest);
        assertEquals(1, QueueStatsCommand.busiest(store().list(org.postern.api.queue.QueueQuery.ALL), 1).size());
    }

    @Test
    public void scriptOutputIsKeyAndValueRows() throws Exception {
        QueueStatsCommand command = new QueueStatsCommand();
        command.queueStore = store();
        command.noFormat = true;
        command.top = 2;
        String[] lines = Fakes.stdout(command::execute).split("\n");
        assertEquals(List.of("QUEUED\t1", "ACTIVE\t0", "DEFERRED\t2", "HELD\t1", "QUARANTINED\t0", "total\t4",
                "size\t400", "oldest\t" + MemoryStore.NOW.minus(Duration.ofHours(51)),
                "destination\tbig.example\t3\t2", "destination\t(local)\t1\t1"), List.of(lines));
    }

    @Test
    public void formattedOutputShowsTablesSizeAndAge() throws Exception {
        String out = Fakes.stdout(() -> {
            MemoryStore store = store();
            QueueStatsCommand.print(store.stats(), QueueStatsCommand.busiest(
                    store.list(org.postern.api.queue.QueueQuery.ALL), 10),
                    MemoryStore.NOW, ZoneId.of("UTC"), true, System.out);
            return null;
        });
        assertTrue(out, out.contains("Size:    1 Kbytes (400 octets)\n"));
        assertTrue(out, out.contains("Oldest:  2025-03-02 02:06:07 (2d 3h ago)\n"));
        assertTrue(out, out.matches("(?s).*DEFERRED\\s*\\|\\s*2\n.*"));
        assertTrue(out, out.matches("(?s).*Total\\s*\\|\\s*4\n.*"));
        assertTrue(out, out.matches("(?s).*big\\.example\\s*\\|\\s*3\\s*\\|\\s*2\n.*"));
    }

    @Test
    public void anEmptyQueue() throws Exception {
        QueueStatsCommand command = new QueueStatsCommand();
        command.queueStore = new MemoryStore();
        String out = Fakes.stdout(command::execute);
        assertTrue(out, out.contains("Oldest:  -\n"));
        assertTrue(out, !out.contains("Destination"));
    }

    @Test
    public void agesInTheirTwoLargestUnits() {
        assertEquals("9s", QueueStatsCommand.age(Duration.ofSeconds(9)));
        assertEquals("4m 2s", QueueStatsCommand.age(Duration.ofSeconds(242)));
        assertEquals("5h 7m", QueueStatsCommand.age(Duration.ofMinutes(307)));
        assertEquals("2d 3h", QueueStatsCommand.age(Duration.ofHours(51)));
        assertEquals("0s", QueueStatsCommand.age(Duration.ofSeconds(-5)));
    }
}
