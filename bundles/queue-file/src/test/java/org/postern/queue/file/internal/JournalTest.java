package org.postern.queue.file.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.postern.queue.file.internal.StoreFixture.T0;
import static org.postern.queue.file.internal.StoreFixture.commitAsync;
import static org.postern.queue.file.internal.StoreFixture.envelope;
import static org.postern.queue.file.internal.StoreFixture.outcome;
import static org.postern.queue.file.internal.StoreFixture.store;
import static org.postern.queue.file.internal.StoreFixture.text;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore.QueueException;
import org.postern.api.queue.RecipientStatus;

/** Group commit, the write-ahead log's replay after a crash, and what the store does when the log fails. */
public class JournalTest {

    @Rule
    public final TemporaryFolder folder = new TemporaryFolder();

    private StoreFixture fixture;
    private ExecutorService gated;
    private CountDownLatch gate;

    @Before
    public void setUp() throws IOException {
        fixture = new StoreFixture(folder.newFolder("spool").toPath());
        // A committer that runs only once the test opens the gate, so changes pile up into one batch.
        gate = new CountDownLatch(1);
        gated = Executors.newSingleThreadExecutor(r -> new Thread(r, "gated-committer"));
        gated.execute(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    @After
    public void tearDown() {
        gate.countDown();
        fixture.close();
        gated.shutdownNow();
    }

    // ---- group commit

    @Test
    public void concurrentCommitsShareOneLogSyncAndCompleteOnlyAfterIt() throws Exception {
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        int sessions = 50;
        List<CompletableFuture<String>> stages = new ArrayList<>();
        for (int i = 0; i < sessions; i++) {
            stages.add(commitAsync(store, envelope("s" + i + "@example.org", T0, "r" + i + "@example.net"),
                    "message " + i + "\r\n"));
        }
        assertEquals(sessions, store.journal.queuedChanges());

        CountDownLatch syncing = new CountDownLatch(1);
        CountDownLatch proceed = new CountDownLatch(1);
        List<Integer> batches = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger doneWhileSyncing = new AtomicInteger(-1);
        store.journal.syncListener = records -> {
            batches.add(records);
            doneWhileSyncing.set((int) stages.stream().filter(CompletableFuture::isDone).count());
            syncing.countDown();
            try {
                proceed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        long syncsBefore = store.journal.syncs();
        gate.countDown();

        assertTrue(syncing.await(10, TimeUnit.SECONDS));
        Thread.sleep(100);
        assertEquals("no commit completes before the log sync", 0, doneWhileSyncing.get());
        assertEquals("still none while the sync is under way", 0, stages.stream().filter(CompletableFuture::isDone).count());
        proceed.countDown();

        List<String> ids = new ArrayList<>();
        for (CompletableFuture<String> stage : stages) {
            ids.add(stage.get(10, TimeUnit.SECONDS));
        }
        assertEquals("one batch of every waiting commit", List.of(sessions), batches);
        assertEquals("one log sync for all of them", syncsBefore + 1, store.journal.syncs());

        // The log on disk holds every one of them: that is what makes them durable.
        List<String> logged = new ArrayList<>();
        for (Path wal : fixture.files("journal").stream().map(n -> fixture.spool.resolve("journal").resolve(n)).toList()) {
            Wal.scan(wal, p -> {
                if (p.type() == Wal.ENTRY) {
                    logged.add(p.id());
                }
            });
        }
        assertEquals(ids.stream().sorted().toList(), logged.stream().sorted().toList());
    }

    @Test
    public void concurrentRecordsShareLogSyncsAndAreDurable() throws Exception {
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        gate.countDown();
        int count = 40;
        String[] ids = StoreFixture.storeMany(store, count, 8,
                i -> envelope("a@example.org", T0, "r" + i + "@example.net", "s" + i + "@example.com"));
        List<QueueEntry> leased = store.lease(fixture.clock.instant(), count, Duration.ofMinutes(5));
        assertEquals(count, leased.size());

        // Hold the committer back while all workers record, so their changes meet in one batch.
        CountDownLatch hold = new CountDownLatch(1);
        AtomicInteger inSync = new AtomicInteger();
        store.journal.syncListener = records -> {
            inSync.addAndGet(records);
            try {
                hold.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        // A first change takes the committer and waits in its sync; the others queue behind it.
        Instant retry = T0.plus(Duration.ofMinutes(10));
        ExecutorService workers = Executors.newFixedThreadPool(count);
        List<Future<?>> done = new ArrayList<>();
        for (QueueEntry entry : leased) {
            done.add(workers.submit(() -> {
                store.record(entry.id(), List.of(outcome(entry, 0, RecipientStatus.State.DELIVERED, "250 ok"),
                        outcome(entry, 1, RecipientStatus.State.DEFERRED, "451 try later")), retry);
                return null;
            }));
        }
        long deadline = System.currentTimeMillis() + 10_000;
        while (inSync.get() + store.journal.queuedChanges() < count && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals("every record is in the sync under way or waits for the next", count,
                inSync.get() + store.journal.queuedChanges());
        long syncsBefore = store.journal.syncs();
        hold.countDown();
        for (Future<?> f : done) {
            f.get(10, TimeUnit.SECONDS);
        }
        workers.shutdown();
        long syncs = store.journal.syncs() - syncsBefore;
        assertEquals("the one under way and one for all that waited", 2, syncs);

        fixture.stop(store);
        FileQueueStore restarted = fixture.start();
        for (String id : ids) {
            QueueEntry entry = restarted.get(id).orElseThrow();
            assertEquals(State.DEFERRED, entry.state());
            assertEquals(1, entry.attempts());
            assertEquals(retry, entry.nextAttempt());
            assertEquals(RecipientStatus.State.DELIVERED, entry.recipients().get(0).state());
        }
    }

    @Test
    public void aChangeFromTheCommitThreadFailsInsteadOfWaitingForItself() throws Exception {
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        AtomicReference<Throwable> fromCallback = new AtomicReference<>();
        CompletableFuture<String> stage = commitAsync(store, envelope("a@example.org", T0, "b@example.org"), "x\r\n");
        CompletableFuture<Void> callback = stage.thenAccept(id -> {
            try {
                store.hold(id);
            } catch (Throwable e) {
                fromCallback.set(e);
            }
        });
        gate.countDown();
        callback.get(10, TimeUnit.SECONDS);
        assertTrue(String.valueOf(fromCallback.get()), fromCallback.get() instanceof QueueException);
        assertEquals(State.QUEUED, store.get(stage.get()).orElseThrow().state());
    }

    @Test
    public void aCheckpointDropsTheLogOnceTheFilesHoldItsChanges() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 50));
        String kept = store(store, envelope("a@example.org", T0, "r@example.net"), "kept\r\n");
        String gone = store(store, envelope("b@example.org", T0, "r@example.net"), "gone\r\n");
        assertTrue(store.delete(gone));
        long deadline = System.currentTimeMillis() + 10_000;
        while (!fixture.files("journal").isEmpty() && System.currentTimeMillis() < deadline) {
            Thread.sleep(20);
        }
        assertEquals("checkpointed while running", List.of(), fixture.files("journal"));
        assertEquals(List.of(kept + ".env", kept + ".msg"), fixture.files("queue"));

        // With the log gone, the files alone carry the entry through a crash.
        fixture.halt(store);
        FileQueueStore restarted = fixture.start();
        assertEquals(List.of(kept), restarted.list(QueueQuery.ALL).stream().map(QueueEntry::id).toList());
        assertEquals("kept\r\n", text(restarted.content(kept)));
    }

    // ---- crash and replay

    @Test
    public void afterACrashTheLogIsReplayedOntoLostFiles() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        String deferred = store(store, envelope("a@example.org", T0, "one@example.net", "two@example.net"), "deferred\r\n");
        String deleted = store(store, envelope("b@example.org", T0, "r@example.net"), "deleted\r\n");
        String held = store(store, envelope("c@example.org", T0, "r@example.net"), "held\r\n");
        String plain = store(store, envelope("d@example.org", T0, "r@example.net"), "plain\r\n");
        QueueEntry leased = store.lease(fixture.clock.instant(), 10, Duration.ofMinutes(5)).get(0);
        assertEquals(deferred, leased.id());
        Instant retry = T0.plus(Duration.ofMinutes(15));
        store.record(deferred, List.of(outcome(leased, 0, RecipientStatus.State.DELIVERED, "250 ok"),
                outcome(leased, 1, RecipientStatus.State.DEFERRED, "451 later")), retry);
        assertTrue(store.delete(deleted));
        assertTrue(store.hold(held));
        fixture.halt(store);

        // None of the per-entry files was synced (no checkpoint ran): a power cut may lose them all, or
        // leave them torn. The log was synced before each change was acknowledged.
        assertFalse(fixture.files("journal").isEmpty());
        for (String name : fixture.files("queue")) {
            Files.delete(fixture.spool.resolve("queue").resolve(name));
        }
        Files.writeString(fixture.spool.resolve("queue").resolve(plain + ".env"), "postern-queue-entry 1\nid=");

        FileQueueStore restarted = fixture.start(new FileQueueStore(fixture.clock, null, 0));
        assertEquals(List.of(), fixture.files("corrupt"));
        assertEquals(3, restarted.stats().total());
        QueueEntry d = restarted.get(deferred).orElseThrow();
        assertEquals(State.DEFERRED, d.state());
        assertEquals(retry, d.nextAttempt());
        assertEquals(1, d.attempts());
        assertEquals("451 later", d.lastError());
        assertEquals(List.of(RecipientStatus.State.DELIVERED, RecipientStatus.State.DEFERRED),
                d.recipients().stream().map(RecipientStatus::state).toList());
        assertFalse(restarted.get(deleted).isPresent());
        assertEquals(State.HELD, restarted.get(held).orElseThrow().state());
        assertEquals(State.QUEUED, restarted.get(plain).orElseThrow().state());
        assertEquals("deferred\r\n", text(restarted.content(deferred)));
        assertEquals("held\r\n", text(restarted.content(held)));
        assertEquals("plain\r\n", text(restarted.content(plain)));

        // A clean stop checkpoints: the files are synced and the log goes.
        fixture.stop(restarted);
        assertEquals(List.of(), fixture.files("journal"));
        FileQueueStore again = fixture.start();
        assertEquals(3, again.stats().total());
        assertEquals(State.DEFERRED, again.get(deferred).orElseThrow().state());
    }

    @Test
    public void aTornLogTailIsCutOffAndKeptInCorrupt() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        String first = store(store, envelope("a@example.org", T0, "r@example.net"), "first\r\n");
        String second = store(store, envelope("b@example.org", T0, "r@example.net"), "second\r\n");
        fixture.halt(store);
        List<String> logs = fixture.files("journal");
        assertEquals(1, logs.size());
        Path wal = fixture.spool.resolve("journal").resolve(logs.get(0));
        long good = Files.size(wal);
        // A third record whose write the crash cut short: a header that promises more than is there.
        byte[] torn = {0x50, 0x51, 0x57, 0x31, 1, 15, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 100, 1, 2, 3};
        Files.write(wal, torn, StandardOpenOption.APPEND);

        FileQueueStore restarted = fixture.start(new FileQueueStore(fixture.clock, null, 0));
        assertEquals(List.of(first, second), restarted.list(QueueQuery.ALL).stream().map(QueueEntry::id).sorted().toList());
        assertEquals("the log is cut back to its good part", good, Files.size(wal));
        assertEquals(List.of(logs.get(0) + ".tail"), fixture.files("corrupt"));
        assertArrayEquals(torn, Files.readAllBytes(fixture.spool.resolve("corrupt").resolve(logs.get(0) + ".tail")));
    }

    @Test
    public void aDamagedLogRecordStopsTheReplayAndTheRestIsKeptAside() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        String first = store(store, envelope("a@example.org", T0, "r@example.net"), "first\r\n");
        Path wal = fixture.spool.resolve("journal").resolve(fixture.files("journal").get(0));
        long afterFirst = Files.size(wal);
        store(store, envelope("b@example.org", T0, "r@example.net"), "second\r\n");
        fixture.halt(store);
        for (String name : fixture.files("queue")) {
            Files.delete(fixture.spool.resolve("queue").resolve(name)); // nothing reached the files
        }
        byte[] bytes = Files.readAllBytes(wal);
        bytes[(int) afterFirst + 60] ^= 0x20; // inside the second record's envelope
        Files.write(wal, bytes);

        FileQueueStore restarted = fixture.start(new FileQueueStore(fixture.clock, null, 0));
        assertEquals(List.of(first), restarted.list(QueueQuery.ALL).stream().map(QueueEntry::id).toList());
        Path tail = fixture.spool.resolve("corrupt").resolve(wal.getFileName() + ".tail");
        assertEquals("the unreadable record is kept for an operator", bytes.length - afterFirst, Files.size(tail));
    }

    // ---- failures

    @Test
    public void aFailedLogWriteFailsTheWholeBatchAndLeavesNothing() throws Exception {
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        List<CompletableFuture<String>> stages = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            stages.add(commitAsync(store, envelope("a@example.org", T0, "r" + i + "@example.net"), "m" + i + "\r\n"));
        }
        AtomicInteger calls = new AtomicInteger();
        store.journal.syncListener = records -> {
            if (calls.getAndIncrement() == 0) {
                throw new IOException("No space left on device");
            }
        };
        gate.countDown();
        for (CompletableFuture<String> stage : stages) {
            CompletionException e = assertThrows(CompletionException.class, stage::join);
            assertTrue(e.getCause() instanceof QueueException);
            assertTrue("452 4.3.1, not 451", ((QueueException) e.getCause()).isStorageFull());
        }
        assertEquals(List.of(), fixture.files("queue"));
        assertEquals(List.of(), fixture.files("incoming"));
        assertEquals(0, store.stats().total());

        // The store goes on (in a new log file) once the disk takes writes again.
        String later = store(store, envelope("a@example.org", T0, "r@example.net"), "later\r\n");
        fixture.halt(store);
        FileQueueStore restarted = fixture.start(new FileQueueStore(fixture.clock, null, 0));
        assertEquals(List.of(later), restarted.list(QueueQuery.ALL).stream().map(QueueEntry::id).toList());
    }

    @Test
    public void aFailedStateChangeLeavesTheEntryAsItWas() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(new FileQueueStore(fixture.clock, gated, 0));
        String id = store(store, envelope("a@example.org", T0, "r@example.net"), "x\r\n");
        store.journal.syncListener = records -> {
            throw new IOException("Input/output error");
        };
        QueueException error = assertThrows(QueueException.class, () -> store.hold(id));
        assertFalse(error.isStorageFull());
        assertEquals(State.QUEUED, store.get(id).orElseThrow().state());
        assertThrows(QueueException.class, () -> store.delete(id));
        assertTrue(store.get(id).isPresent());

        store.journal.syncListener = null;
        fixture.stop(store);
        QueueEntry entry = fixture.start().get(id).orElseThrow();
        assertEquals(State.QUEUED, entry.state());
        assertNull(entry.reason());
    }

    @Test
    public void aFullDiskStillLetsTheQueueDrain() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(FileQueueStoreTest.onFiles(new FileQueueStore(fixture.clock, gated, 0)));
        String delivered = store(store, envelope("a@example.org", T0, "r@example.net"), "delivered\r\n");
        String other = store(store, envelope("b@example.org", T0, "r@example.net"), "other\r\n");
        store.journal.syncListener = records -> {
            throw new IOException("No space left on device");
        };
        QueueEntry leased = store.lease(fixture.clock.instant(), 1, Duration.ofMinutes(5)).get(0);
        assertEquals(delivered, leased.id());
        store.record(delivered, List.of(outcome(leased, 0, RecipientStatus.State.DELIVERED, "250 ok")), null);
        assertFalse(store.get(delivered).isPresent());
        assertEquals(List.of(other + ".env", other + ".msg"), fixture.files("queue"));
        // A change that needs space still fails, as "disk full", and changes nothing.
        QueueException full = assertThrows(QueueException.class, () -> store.hold(other));
        assertTrue(full.isStorageFull());
        assertEquals(State.QUEUED, store.get(other).orElseThrow().state());

        store.journal.syncListener = null;
        fixture.stop(store);
        assertEquals(List.of(other), fixture.start().list(QueueQuery.ALL).stream().map(QueueEntry::id).toList());
    }

    // ---- recycled files

    @Test
    public void removedEntriesFilesAreReusedWithoutTheirOldBytes() throws Exception {
        gate.countDown();
        FileQueueStore store = fixture.start(FileQueueStoreTest.onFiles(new FileQueueStore(fixture.clock, gated, 0)));
        String big = "x".repeat(10_000) + "\r\n";
        String first = store(store, envelope("a@example.org", T0, "r@example.net"), big);
        QueueEntry leased = store.lease(fixture.clock.instant(), 1, Duration.ofMinutes(5)).get(0);
        store.record(first, List.of(outcome(leased, 0, RecipientStatus.State.DELIVERED, "250 ok")), null);
        assertEquals(List.of(), fixture.files("queue"));
        int free = fixture.files("free").size();
        assertEquals("the .env and the .msg wait for reuse", 2, free);

        String second = store(store, envelope("b@example.org", T0, "r@example.net"), "short\r\n");
        assertEquals("both were taken again", 0, fixture.files("free").size());
        assertEquals("short\r\n", text(store.content(second)));
        assertEquals(7, Files.size(fixture.spool.resolve("queue").resolve(second + ".msg")));

        fixture.stop(store);
        FileQueueStore restarted = fixture.start();
        assertEquals("short\r\n", text(restarted.content(second)));
        assertEquals(List.of(), fixture.files("corrupt"));
        assertArrayEquals("short\r\n".getBytes(StandardCharsets.US_ASCII),
                Files.readAllBytes(fixture.spool.resolve("queue").resolve(second + ".msg")));
    }
}
