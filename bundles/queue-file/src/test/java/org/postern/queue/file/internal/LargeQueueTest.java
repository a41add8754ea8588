package org.postern.queue.file.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.postern.queue.file.internal.StoreFixture.T0;
import static org.postern.queue.file.internal.StoreFixture.envelope;
import static org.postern.queue.file.internal.StoreFixture.outcome;
import static org.postern.queue.file.internal.StoreFixture.text;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.RecipientStatus;

/** The store with many entries: lease order, list pages, and a restart with 100,000 entries. */
public class LargeQueueTest {

    @Rule
    public final TemporaryFolder folder = new TemporaryFolder();

    private StoreFixture fixture;

    @Before
    public void setUp() throws IOException {
        fixture = new StoreFixture(folder.newFolder("spool").toPath());
    }

    @After
    public void tearDown() {
        fixture.close();
    }

    @Test
    public void leaseTakesTheEarliestDueFirstInABigQueue() throws Exception {
        FileQueueStore store = fixture.start();
        int count = 3000;
        StoreFixture.storeMany(store, count, 16, i -> envelope("a@example.org", T0, "r" + i + "@example.net"));
        List<QueueEntry> all = store.lease(fixture.clock.instant(), count, Duration.ofMinutes(5));
        assertEquals(count, all.size());

        // Defer each to its own time within two hours, in random order; some share a minute.
        Random random = new Random(7);
        Map<String, Instant> due = new HashMap<>();
        for (QueueEntry entry : all) {
            Instant next = T0.plus(Duration.ofMinutes(1 + random.nextInt(120)));
            store.record(entry.id(), List.of(outcome(entry, 0, RecipientStatus.State.DEFERRED, "451 later")), next);
            due.put(entry.id(), next);
        }

        Instant halfway = T0.plus(Duration.ofMinutes(60));
        long dueByHalfway = due.values().stream().filter(t -> !t.isAfter(halfway)).count();
        List<QueueEntry> firstHalf = store.lease(halfway, count, Duration.ofHours(10));
        assertEquals("exactly those due by then", dueByHalfway, firstHalf.size());
        assertTrue(firstHalf.stream().allMatch(e -> !due.get(e.id()).isAfter(halfway)));

        // The rest, a page of 100 at a time: in (next attempt, id) order across pages, each exactly once.
        Instant later = T0.plus(Duration.ofHours(3));
        List<QueueEntry> rest = new ArrayList<>();
        for (List<QueueEntry> page; !(page = store.lease(later, 100, Duration.ofMinutes(5))).isEmpty(); ) {
            assertTrue(page.size() <= 100);
            rest.addAll(page);
        }
        assertEquals(count - dueByHalfway, rest.size());
        List<String> expected = rest.stream()
                .sorted(Comparator.comparing((QueueEntry e) -> due.get(e.id())).thenComparing(QueueEntry::id))
                .map(QueueEntry::id).toList();
        assertEquals(expected, rest.stream().map(QueueEntry::id).toList());
        assertTrue(rest.stream().allMatch(e -> e.state() == State.ACTIVE));
        assertEquals(count, new HashSet<>(due.keySet()).size());

        // Once their leases run out, those are due again, earliest first; the first half is still leased.
        List<QueueEntry> again = store.lease(later.plus(Duration.ofMinutes(10)), count, Duration.ofMinutes(5));
        assertEquals(expected, again.stream().map(QueueEntry::id).toList());
    }

    @Test
    public void listPagesOldestFirstWithFilters() throws Exception {
        FileQueueStore store = fixture.start();
        int count = 2000;
        // Arrival times in a shuffled order, so arrival order is not commit order (nor id order).
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            order.add(i);
        }
        java.util.Collections.shuffle(order, new Random(3));
        String[] ids = StoreFixture.storeMany(store, count, 16, i -> envelope(
                (i % 5 == 0 ? "Five" : "other") + i + "@example.org", T0.plusSeconds(order.get(i) / 2),
                "r" + i + "@dest" + (i % 4) + ".example"));
        Set<String> held = new HashSet<>();
        for (int i = 0; i < count; i += 7) {
            store.hold(ids[i]);
            held.add(ids[i]);
        }

        List<String> oldestFirst = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            oldestFirst.add(ids[i]);
        }
        Map<String, Instant> arrival = new HashMap<>();
        for (int i = 0; i < count; i++) {
            arrival.put(ids[i], T0.plusSeconds(order.get(i) / 2));
        }
        oldestFirst.sort(Comparator.comparing((String id) -> arrival.get(id)).thenComparing(Comparator.naturalOrder()));

        assertEquals(oldestFirst, pages(store, null, null, 100));
        assertEquals(oldestFirst.stream().filter(held::contains).toList(), pages(store, State.HELD, null, 30));
        assertEquals(oldestFirst.stream().filter(id -> !held.contains(id)).toList(), pages(store, State.QUEUED, null, 250));
        List<String> fives = new ArrayList<>();
        for (String id : oldestFirst) {
            if (store.get(id).orElseThrow().envelope().sender().toString().toLowerCase().startsWith("five")) {
                fives.add(id);
            }
        }
        assertEquals(count / 5, fives.size());
        assertEquals(fives, pages(store, null, "FIVE", 33));
        assertEquals(List.of(), store.list(new QueueQuery(null, null, null, count, 10)));
        assertEquals(oldestFirst.subList(count - 3, count),
                store.list(new QueueQuery(null, null, null, count - 3, 10)).stream().map(QueueEntry::id).toList());

        QueueStats stats = store.stats();
        assertEquals(count, stats.total());
        assertEquals(Long.valueOf(held.size()), stats.byState().get(State.HELD));
        assertEquals(T0, stats.oldest());
    }

    /** Walks a filtered list page by page, as mta:queue-list does. */
    private static List<String> pages(FileQueueStore store, State state, String sender, int size) {
        List<String> all = new ArrayList<>();
        for (int offset = 0; ; offset += size) {
            List<QueueEntry> page = store.list(new QueueQuery(state, sender, null, offset, size));
            all.addAll(page.stream().map(QueueEntry::id).toList());
            if (page.size() < size) {
                return all;
            }
        }
    }

    @Test
    public void aHundredThousandEntriesAreAllThereAfterARestart() throws Exception {
        FileQueueStore store = fixture.start();
        int count = 100_000;
        long t0 = System.nanoTime();
        String[] ids = StoreFixture.storeMany(store, count, 50, i -> envelope("s" + (i % 97) + "@example.org",
                T0.plusMillis(i), "r" + i + "@dest" + (i % 13) + ".example"));
        long stored = System.nanoTime();
        fixture.stop(store);
        long stopped = System.nanoTime();

        FileQueueStore restarted = fixture.start();
        long ready = System.nanoTime();
        System.out.printf("100,000 entries: stored in %.1f s (50 threads), stopped in %.1f s, "
                        + "restarted and ready in %.2f s%n", (stored - t0) / 1e9, (stopped - stored) / 1e9,
                (ready - stopped) / 1e9);

        assertEquals(count, restarted.stats().total());
        assertEquals(List.of(), fixture.files("corrupt"));
        for (int i = 0; i < count; i++) {
            QueueEntry entry = restarted.get(ids[i]).orElseThrow();
            assertEquals("r" + i + "@dest" + (i % 13) + ".example", entry.envelope().recipients().get(0).address().toString());
        }
        for (int i = 0; i < count; i += 9973) {
            assertEquals("message " + i + "\r\n", text(restarted.content(ids[i])));
        }
        // Arrival order survives too: a page from the middle of the queue is the entries of those times.
        List<QueueEntry> page = restarted.list(new QueueQuery(null, null, null, 50_000, 3));
        assertEquals(List.of(ids[50_000], ids[50_001], ids[50_002]), page.stream().map(QueueEntry::id).toList());
    }
}
