package org.postern.queue.file.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.MessageEvents;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.QueueStore.QueueException;
import org.postern.api.queue.RecipientStatus;
import org.postern.testsupport.MutableClock;

public class FileQueueStoreTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00.123456789Z");

    @Rule
    public final TemporaryFolder folder = new TemporaryFolder();

    private Path spool;
    private final MutableClock clock = new MutableClock(T0);
    private final List<FileQueueStore> started = new ArrayList<>();

    @Before
    public void setUp() throws IOException {
        spool = folder.newFolder("spool").toPath();
    }

    @After
    public void tearDown() {
        for (FileQueueStore store : started) {
            store.deactivate();
        }
    }

    // ---- (1) durable round trip

    @Test
    public void committedEntryIsFoundByANewStoreWithExactBytesAndEnvelope() throws Exception {
        FileQueueStore store = start();
        byte[] body = message(200_000); // more than the write buffer, so flushes happen during write
        Envelope envelope = richEnvelope();
        List<Header> headers = List.of(new Header("Received", "from helo.example ([192.0.2.7]) by mx id X"),
                new Header("X-Spam-Score", "-0.1 \\ not\tspam"));

        PendingMessage pending = store.begin();
        writeInChunks(pending, body);
        assertEquals(body.length, pending.size());
        String id = commit(pending, envelope, headers, null);
        assertEquals(pending.id(), id);

        QueueEntry before = store.get(id).orElseThrow();
        stop(store);

        FileQueueStore restarted = start();
        QueueEntry entry = restarted.get(id).orElseThrow();
        assertEquals(envelope, entry.envelope());
        assertEquals("ünïcødé", entry.envelope().recipients().get(0).address().localPart());
        assertEquals("bücher.example", entry.envelope().recipients().get(0).address().domain());
        assertEquals(Set.of(Notify.SUCCESS, Notify.DELAY), entry.envelope().recipients().get(0).notifyOn());
        assertEquals("rfc822;user@example.org", entry.envelope().recipients().get(0).orcpt());
        assertEquals(headers, entry.addedHeaders());
        assertEquals(body.length, entry.size());
        assertEquals(State.QUEUED, entry.state());
        assertEquals(T0, entry.nextAttempt());
        assertEquals(0, entry.attempts());
        assertEquals(before, entry);
        assertTrue(entry.recipients().stream().allMatch(r -> r.state() == RecipientStatus.State.PENDING));

        MessageContent content = restarted.content(id);
        assertEquals(body.length, content.size());
        assertArrayEquals(body, read(content));
        assertArrayEquals("each stream starts from the first byte", body, read(content));
    }

    @Test
    public void minimalEnvelopeWithNullFieldsRoundTrips() throws Exception {
        FileQueueStore store = start();
        Envelope envelope = new Envelope(MailAddress.NULL_SENDER, List.of(Recipient.of(MailAddress.parse("postmaster"))),
                null, null, BodyType.SEVEN_BIT, false, ClientInfo.LOCAL, T0);
        String id = store(store, envelope, "x\r\n");
        stop(store);

        QueueEntry entry = start().get(id).orElseThrow();
        assertEquals(envelope, entry.envelope());
        assertTrue(entry.envelope().sender().isNullSender());
        assertNull(entry.envelope().envId());
        assertNull(entry.lastError());
        assertNull(entry.reason());
        assertEquals(List.of(), entry.addedHeaders());
    }

    @Test
    public void quarantinedEntryIsKeptWithItsReasonAndIsNotDue() throws Exception {
        FileQueueStore store = start();
        PendingMessage pending = store.begin();
        write(pending, "Subject: spam\r\n\r\nbuy\r\n");
        String id = commit(pending, envelope("a@example.org", "b@example.net"), List.of(), "spam score 12.5");
        stop(store);

        FileQueueStore restarted = start();
        QueueEntry entry = restarted.get(id).orElseThrow();
        assertEquals(State.QUARANTINED, entry.state());
        assertEquals("spam score 12.5", entry.reason());
        assertNull(entry.nextAttempt());
        assertEquals(List.of(), restarted.lease(T0.plusSeconds(3600), 10, Duration.ofMinutes(5)));
    }

    @Test
    public void pendingContentIsReadableBeforeCommit() throws Exception {
        FileQueueStore store = start();
        PendingMessage pending = store.begin();
        write(pending, "Subject: hi\r\n\r\nbody\r\n");
        MessageContent content = pending.content();
        assertEquals(21, content.size());
        assertEquals("Subject: hi\r\n\r\nbody\r\n", new String(read(content), StandardCharsets.US_ASCII));

        write(pending, "more\r\n");
        assertEquals("a content taken earlier stays at its size", 21, read(content).length);
        assertEquals("Subject: hi\r\n\r\nbody\r\nmore\r\n", new String(read(pending.content()), StandardCharsets.US_ASCII));
    }

    @Test
    public void idsAreUniqueSortableAndFileNameSafe() throws Exception {
        FileQueueStore store = start();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            PendingMessage pending = store.begin();
            ids.add(pending.id());
            pending.abort();
            if (i % 50 == 0) {
                clock.advance(Duration.ofMillis(1));
            }
        }
        assertEquals(ids.size(), Set.copyOf(ids).size());
        List<String> sorted = new ArrayList<>(ids);
        sorted.sort(null);
        assertEquals("ids sort in the order they were made", ids, sorted);
        assertTrue(ids.stream().allMatch(id -> id.matches("[0-9A-Z]{15}")));
    }

    @Test
    public void commitPostsTheQueuedEventAfterTheEntryIsStored() throws Exception {
        FileQueueStore store = new FileQueueStore(clock, null);
        List<Event> events = Collections.synchronizedList(new ArrayList<>());
        List<Boolean> storedWhenPosted = Collections.synchronizedList(new ArrayList<>());
        store.eventAdmin = new EventAdmin() {
            @Override
            public void postEvent(Event event) {
                events.add(event);
                // An observer that reacts at once (the queue manager leases) must find the entry.
                storedWhenPosted.add(store.get((String) event.getProperty(MessageEvents.QUEUE_ID)).isPresent());
            }

            @Override
            public void sendEvent(Event event) {
                throw new AssertionError("events are posted, never sent synchronously");
            }
        };
        start(store);
        String id = store(store, envelope("a@example.org", "b@example.net", "c@example.net"), "Subject: x\r\n\r\nhi\r\n");

        assertEquals(1, events.size());
        Event event = events.get(0);
        assertEquals(MessageEvents.QUEUED, event.getTopic());
        assertEquals(id, event.getProperty(MessageEvents.QUEUE_ID));
        assertEquals("a@example.org", event.getProperty(MessageEvents.SENDER));
        assertArrayEquals(new String[] {"b@example.net", "c@example.net"},
                (String[]) event.getProperty(MessageEvents.RECIPIENTS));
        assertEquals(18L, event.getProperty(MessageEvents.SIZE));
        assertEquals(List.of(true), storedWhenPosted);

        // An aborted message is not news; without an EventAdmin a commit still succeeds.
        PendingMessage aborted = store.begin();
        write(aborted, "x\r\n");
        aborted.abort();
        store.eventAdmin = null;
        store(store, envelope("a@example.org", "b@example.net"), "y\r\n");
        assertEquals(1, events.size());
    }

    @Test
    public void holdWithAReasonShowsThatReason() throws Exception {
        FileQueueStore store = start();
        String id = store(store, envelope("a@example.org", "r@example.org"), "a\r\n");
        assertTrue(store.hold(id, "undeliverable; no bounce generator"));
        stop(store);
        QueueEntry entry = start().get(id).orElseThrow();
        assertEquals(State.HELD, entry.state());
        assertEquals("undeliverable; no bounce generator", entry.reason());
        assertNull(entry.nextAttempt());
    }

    // ---- (2) abort

    @Test
    public void abortLeavesNoFile() throws Exception {
        FileQueueStore store = start(onFiles(new FileQueueStore(clock, null)));
        PendingMessage pending = store.begin();
        write(pending, "Subject: x\r\n\r\nbody\r\n");
        assertEquals(1, files("incoming").size());

        pending.abort();
        assertEquals(List.of(), files("incoming"));
        assertEquals(List.of(), files("queue"));
        assertThrows(QueueException.class, () -> write(pending, "late"));
        CompletableFuture<String> late = pending.commit(envelope("a@example.org", "b@example.org"), List.of(), null)
                .toCompletableFuture();
        assertThrows(CompletionException.class, late::join);
        assertEquals(List.of(), files("queue"));
    }

    @Test
    public void abortAfterCommitKeepsTheEntry() throws Exception {
        FileQueueStore store = start();
        PendingMessage pending = store.begin();
        write(pending, "x\r\n");
        String id = commit(pending, envelope("a@example.org", "b@example.org"), List.of(), null);
        pending.abort(); // a client dropping the connection right after DATA
        assertTrue(store.get(id).isPresent());
        assertEquals("x\r\n", StoreFixture.text(store.content(id)));
        stop(store);
        assertTrue(Files.exists(spool.resolve("queue/" + id + ".msg")));
    }

    // ---- (2b) small messages: memory and the log until the checkpoint

    @Test
    public void aSmallMessageHasNoFilesUntilTheCheckpointAndNoneAtAllWhenRemovedBefore() throws Exception {
        FileQueueStore store = start(new FileQueueStore(clock, null, 0)); // checkpoints only at stop
        PendingMessage pending = store.begin();
        write(pending, "Subject: small\r\n\r\nbody\r\n");
        assertEquals("Subject: small\r\n\r\nbody\r\n", StoreFixture.text(pending.content()));
        assertEquals(List.of(), files("incoming"));
        String kept = commit(pending, envelope("a@example.org", "b@example.org"), List.of(), null);
        String relayed = store(store, envelope("a@example.org", "c@example.org"), "relayed at once\r\n");
        assertEquals(List.of(), files("queue"));
        assertEquals("Subject: small\r\n\r\nbody\r\n", StoreFixture.text(store.content(kept)));
        assertTrue(store.budget.used() > 0);

        assertTrue(store.delete(relayed));
        assertTrue(store.hold(kept, "looked at"));
        assertEquals(List.of(), files("queue"));
        assertEquals(List.of(), files("free"));

        stop(store); // the checkpoint writes what is still there, with its latest state
        assertEquals(List.of(kept + ".env", kept + ".msg"), files("queue"));
        assertEquals(0, store.budget.used());
        FileQueueStore restarted = start();
        QueueEntry entry = restarted.get(kept).orElseThrow();
        assertEquals(State.HELD, entry.state());
        assertEquals("looked at", entry.reason());
        assertEquals("Subject: small\r\n\r\nbody\r\n", StoreFixture.text(restarted.content(kept)));
        assertFalse(restarted.get(relayed).isPresent());
    }

    @Test
    public void anAbortedMessageInMemoryCannotBeReadAnyMore() throws Exception {
        FileQueueStore store = start();
        PendingMessage pending = store.begin();
        write(pending, "x\r\n");
        pending.abort();
        assertEquals(0, store.budget.used());
        IOException gone = assertThrows(IOException.class, () -> pending.content().openStream());
        assertTrue(gone.getMessage(), gone.getMessage().endsWith("message is aborted"));
    }

    @Test
    public void withNoMemoryConfiguredEveryMessageGoesToAFile() throws Exception {
        FileQueueStore store = new FileQueueStore(clock, null);
        store.activate(StoreFixture.config(spool.toString(), 0));
        started.add(store);
        PendingMessage pending = store.begin();
        write(pending, "x\r\n");
        assertEquals(List.of(pending.id() + ".msg"), files("incoming"));
        String id = commit(pending, envelope("a@example.org", "b@example.org"), List.of(), null);
        assertEquals(List.of(id + ".env", id + ".msg"), files("queue"));
    }

    @Test
    public void aLargeMessageOrASpentBudgetGoesToAFileAsItArrives() throws Exception {
        FileQueueStore store = new FileQueueStore(clock, null, 0);
        store.memoryLimit = 64 * 1024;
        start(store);
        PendingMessage large = store.begin();
        byte[] body = message(FilePendingMessage.MAX_IN_MEMORY + 1000);
        writeInChunks(large, body);
        assertEquals(1, files("incoming").size());
        assertEquals(0, store.budget.used());
        String largeId = commit(large, envelope("a@example.org", "b@example.org"), List.of(), null);
        assertEquals(List.of(largeId + ".env", largeId + ".msg"), files("queue"));
        assertArrayEquals(body, read(store.content(largeId)));

        // 40 kB each: the first fits in the 64 kB budget, the second does not and moves to a file.
        PendingMessage first = store.begin();
        writeInChunks(first, message(40_000));
        PendingMessage second = store.begin();
        writeInChunks(second, message(40_000));
        assertEquals(List.of(second.id() + ".msg"), files("incoming"));
        first.abort();
        assertEquals(0, store.budget.used());
        String secondId = commit(second, envelope("a@example.org", "b@example.org"), List.of(), null);
        assertTrue(files("queue").contains(secondId + ".msg"));
        assertEquals(40_000, read(store.content(secondId)).length);
    }

    // ---- (3) recovery

    @Test
    public void recoveryDiscardsIncomingAndMovesOrphansAndCorruptEntriesAside() throws Exception {
        FileQueueStore store = start();
        String good = store(store, envelope("good@example.org", "r@example.org"), "good\r\n");
        String flipped = store(store, envelope("flip@example.org", "r@example.org"), "flipped\r\n");
        String truncated = store(store, envelope("cut@example.org", "r@example.org"), "truncated\r\n");
        String noMessage = store(store, envelope("lost@example.org", "r@example.org"), "lost\r\n");
        String shortMessage = store(store, envelope("short@example.org", "r@example.org"), "cut short\r\n");
        PendingMessage unfinished = store.begin();
        write(unfinished, "never committed\r\n");
        stop(store);
        // The deactivated store aborted the unfinished message; leave one behind as a crash would.
        Files.writeString(spool.resolve("incoming/0000000000000AA.msg"), "half a message");
        Files.writeString(spool.resolve("queue/0000000000000BB.msg"), "orphan of an unfinished commit");
        Files.writeString(spool.resolve("queue/" + good + ".env.tmp"), "an update that was never renamed");

        Path flippedEnv = spool.resolve("queue/" + flipped + ".env");
        byte[] bytes = Files.readAllBytes(flippedEnv);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(flippedEnv, bytes);
        Path truncatedEnv = spool.resolve("queue/" + truncated + ".env");
        byte[] whole = Files.readAllBytes(truncatedEnv);
        Files.write(truncatedEnv, Arrays.copyOf(whole, whole.length - 20));
        Files.delete(spool.resolve("queue/" + noMessage + ".msg"));
        Files.writeString(spool.resolve("queue/" + shortMessage + ".msg"), "cut");

        FileQueueStore restarted = start();
        assertEquals(List.of(good), restarted.list(QueueQuery.ALL).stream().map(QueueEntry::id).toList());
        assertArrayEquals("good\r\n".getBytes(StandardCharsets.US_ASCII), read(restarted.content(good)));
        assertEquals(List.of(), files("incoming"));
        assertEquals(List.of(good + ".env", good + ".msg"), files("queue"));
        assertEquals(Stream.of("0000000000000BB.msg", flipped + ".env", flipped + ".msg", truncated + ".env",
                truncated + ".msg", noMessage + ".env", shortMessage + ".env", shortMessage + ".msg").sorted().toList(),
                files("corrupt"));
        assertFalse(restarted.get(flipped).isPresent());
    }

    @Test
    public void corruptFilesNeverOverwriteEarlierOnesInCorrupt() throws Exception {
        Files.createDirectories(spool.resolve("queue"));
        Files.createDirectories(spool.resolve("corrupt"));
        Files.writeString(spool.resolve("corrupt/0000000000000BB.msg"), "first");
        Files.writeString(spool.resolve("queue/0000000000000BB.msg"), "second");
        start();
        assertEquals(List.of("0000000000000BB.msg", "0000000000000BB.msg.1"), files("corrupt"));
        assertEquals("first", Files.readString(spool.resolve("corrupt/0000000000000BB.msg")));
    }

    // ---- (4) leases

    @Test
    public void leaseSkipsHeldAndLeasedEntriesAndReleaseMakesLeasable() throws Exception {
        FileQueueStore store = start();
        String a = store(store, envelope("a@example.org", "r@example.org"), "a\r\n");
        String b = store(store, envelope("b@example.org", "r@example.org"), "b\r\n");
        String c = store(store, envelope("c@example.org", "r@example.org"), "c\r\n");
        assertTrue(store.hold(b));
        assertEquals(State.HELD, store.get(b).orElseThrow().state());

        Instant now = clock.instant();
        List<QueueEntry> first = store.lease(now, 10, Duration.ofMinutes(5));
        assertEquals(List.of(a, c), first.stream().map(QueueEntry::id).toList());
        assertTrue(first.stream().allMatch(e -> e.state() == State.ACTIVE));
        assertEquals(State.ACTIVE, store.get(a).orElseThrow().state());
        assertEquals(List.of(), store.lease(now, 10, Duration.ofMinutes(5)));

        assertTrue(store.release(b));
        assertEquals(State.QUEUED, store.get(b).orElseThrow().state());
        assertEquals(List.of(b), store.lease(now, 10, Duration.ofMinutes(5)).stream().map(QueueEntry::id).toList());

        // A lease not followed by a record expires and the entry is due again.
        clock.advance(Duration.ofMinutes(6));
        List<QueueEntry> again = store.lease(clock.instant(), 1, Duration.ofMinutes(5));
        assertEquals("max is respected, earliest due first", List.of(a), again.stream().map(QueueEntry::id).toList());
    }

    @Test
    public void holdIsDurableAndLeasesAreNot() throws Exception {
        FileQueueStore store = start();
        String held = store(store, envelope("a@example.org", "r@example.org"), "a\r\n");
        String leased = store(store, envelope("b@example.org", "r@example.org"), "b\r\n");
        assertTrue(store.hold(held));
        assertEquals(1, store.lease(clock.instant(), 10, Duration.ofHours(1)).size());
        stop(store);

        FileQueueStore restarted = start();
        assertEquals(State.HELD, restarted.get(held).orElseThrow().state());
        assertEquals("held by operator", restarted.get(held).orElseThrow().reason());
        assertEquals("a lease does not survive a restart", State.QUEUED, restarted.get(leased).orElseThrow().state());
        assertEquals(List.of(leased), restarted.lease(clock.instant(), 10, Duration.ofHours(1)).stream()
                .map(QueueEntry::id).toList());
    }

    @Test
    public void operatorActionsOnUnknownIdsReturnFalse() throws Exception {
        FileQueueStore store = start();
        assertFalse(store.hold("NOSUCHID"));
        assertFalse(store.release("NOSUCHID"));
        assertFalse(store.requeue("NOSUCHID"));
        assertFalse(store.delete("NOSUCHID"));
        assertFalse(store.get("NOSUCHID").isPresent());
        assertThrows(QueueException.class, () -> store.content("NOSUCHID"));
        assertThrows(QueueException.class, () -> store.record("NOSUCHID", List.of(), T0));
    }

    @Test
    public void deleteRemovesBothFiles() throws Exception {
        FileQueueStore store = start();
        String id = store(store, envelope("a@example.org", "r@example.org"), "a\r\n");
        assertTrue(store.delete(id));
        assertFalse(store.delete(id));
        assertEquals(List.of(), files("queue"));
        assertFalse(store.get(id).isPresent());
    }

    // ---- (5) record

    @Test
    public void recordWithEveryRecipientFinalRemovesTheEntry() throws Exception {
        FileQueueStore store = start();
        Envelope envelope = envelope("a@example.org", "one@example.org", "two@example.net");
        String id = store(store, envelope, "a\r\n");
        store.lease(clock.instant(), 1, Duration.ofMinutes(5));

        store.record(id, List.of(outcome(envelope, 0, RecipientStatus.State.DELIVERED, "2.0.0", "250 ok"),
                outcome(envelope, 1, RecipientStatus.State.FAILED, "5.1.1", "550 no such user")), clock.instant());

        assertFalse(store.get(id).isPresent());
        assertEquals(List.of(), files("queue"));
        assertThrows(QueueException.class, () -> store.record(id, List.of(), clock.instant()));
    }

    @Test
    public void recordWithDeferralPersistsAcrossRestart() throws Exception {
        FileQueueStore store = start();
        Envelope envelope = envelope("a@example.org", "one@example.org", "two@example.net", "three@example.com");
        String id = store(store, envelope, "a\r\n");
        store.lease(clock.instant(), 1, Duration.ofMinutes(5));
        Instant retry = clock.instant().plus(Duration.ofMinutes(15));

        store.record(id, List.of(
                outcome(envelope, 0, RecipientStatus.State.DELIVERED, "2.0.0", "250 2.0.0 ok"),
                outcome(envelope, 1, RecipientStatus.State.DEFERRED, "4.4.1", "connection refused\r\nby mx"),
                outcome(envelope, 2, RecipientStatus.State.DEFERRED, "4.2.2", "452 mailbox full")), retry);
        assertEquals(State.DEFERRED, store.get(id).orElseThrow().state());
        stop(store);

        FileQueueStore restarted = start();
        QueueEntry entry = restarted.get(id).orElseThrow();
        assertEquals(State.DEFERRED, entry.state());
        assertEquals(retry, entry.nextAttempt());
        assertEquals(1, entry.attempts());
        assertEquals("452 mailbox full", entry.lastError());
        assertEquals(List.of(RecipientStatus.State.DELIVERED, RecipientStatus.State.DEFERRED,
                RecipientStatus.State.DEFERRED), entry.recipients().stream().map(RecipientStatus::state).toList());
        assertEquals("connection refused\r\nby mx", entry.recipients().get(1).diagnostic());
        assertEquals("mx.example.net", entry.recipients().get(1).remoteMta());
        assertEquals(List.of("two@example.net", "three@example.com"),
                entry.pending().stream().map(r -> r.recipient().address().toString()).toList());

        assertEquals("not due before its next attempt", List.of(),
                restarted.lease(retry.minusSeconds(1), 10, Duration.ofMinutes(5)));
        assertEquals(1, restarted.lease(retry, 10, Duration.ofMinutes(5)).size());

        // The second attempt finishes the rest: a delivered recipient is not touched by a later outcome.
        restarted.record(id, List.of(
                outcome(envelope, 0, RecipientStatus.State.FAILED, "5.0.0", "must be ignored"),
                outcome(envelope, 1, RecipientStatus.State.DELIVERED, "2.0.0", "250"),
                outcome(envelope, 2, RecipientStatus.State.DEFERRED, "4.2.2", "452 still full")), retry.plusSeconds(900));
        QueueEntry second = restarted.get(id).orElseThrow();
        assertEquals(RecipientStatus.State.DELIVERED, second.recipients().get(0).state());
        assertEquals(2, second.attempts());
        restarted.record(id, List.of(outcome(envelope, 2, RecipientStatus.State.DELIVERED, "2.0.0", "250")), null);
        assertFalse(restarted.get(id).isPresent());
    }

    @Test
    public void requeueMakesADeferredEntryDueNow() throws Exception {
        FileQueueStore store = start();
        Envelope envelope = envelope("a@example.org", "one@example.org");
        String id = store(store, envelope, "a\r\n");
        store.lease(clock.instant(), 1, Duration.ofMinutes(5));
        store.record(id, List.of(outcome(envelope, 0, RecipientStatus.State.DEFERRED, "4.4.1", "timeout")),
                clock.instant().plus(Duration.ofHours(1)));
        assertEquals(List.of(), store.lease(clock.instant(), 10, Duration.ofMinutes(5)));

        clock.advance(Duration.ofSeconds(1));
        assertTrue(store.requeue(id));
        stop(store);
        FileQueueStore restarted = start();
        assertEquals(clock.instant(), restarted.get(id).orElseThrow().nextAttempt());
        assertEquals(1, restarted.lease(clock.instant(), 10, Duration.ofMinutes(5)).size());
    }

    // ---- (6) list and stats

    @Test
    public void listFiltersAndPagesOldestFirst() throws Exception {
        FileQueueStore store = start();
        List<String> ids = new ArrayList<>();
        // Received in reverse order of commit, to show list sorts by arrival, not by id.
        for (int i = 0; i < 6; i++) {
            Envelope envelope = envelope(i % 2 == 0 ? "Alice" + i + "@Example.org" : "bob" + i + "@example.net",
                    "rcpt" + i + "@dest" + (i % 3) + ".example");
            ids.add(store(store, withReceivedAt(envelope, T0.minusSeconds(i)), "m" + i + "\r\n"));
        }
        assertTrue(store.hold(ids.get(2)));
        List<String> oldestFirst = new ArrayList<>(ids);
        Collections.reverse(oldestFirst);

        assertEquals(oldestFirst, idsOf(store.list(QueueQuery.ALL)));
        assertEquals(oldestFirst, idsOf(store.list(null)));
        assertEquals(List.of(ids.get(4), ids.get(2), ids.get(0)),
                idsOf(store.list(new QueueQuery(null, "alice", null, 0, 0))));
        assertEquals(List.of(ids.get(2)), idsOf(store.list(new QueueQuery(State.HELD, null, null, 0, 0))));
        assertEquals(List.of(ids.get(4), ids.get(0)),
                idsOf(store.list(new QueueQuery(State.QUEUED, "ALICE", null, 0, 0))));
        assertEquals(List.of(ids.get(4), ids.get(1)),
                idsOf(store.list(new QueueQuery(null, null, "@DEST1.", 0, 0))));
        assertEquals(List.of(oldestFirst.get(2), oldestFirst.get(3)),
                idsOf(store.list(new QueueQuery(null, null, null, 2, 2))));
        assertEquals(List.of(oldestFirst.get(5)), idsOf(store.list(new QueueQuery(null, null, null, 5, 10))));
        assertEquals(List.of(), store.list(new QueueQuery(null, "nobody", null, 0, 0)));

        QueueStats stats = store.stats();
        assertEquals(6, stats.total());
        assertEquals(Long.valueOf(5), stats.byState().get(State.QUEUED));
        assertEquals(Long.valueOf(1), stats.byState().get(State.HELD));
        assertEquals(6 * 4, stats.totalSize());
        assertEquals(T0.minusSeconds(5), stats.oldest());
    }

    // ---- (7) commit is durable before it completes

    @Test
    public void commitCompletesOnlyAfterTheFilesAreInQueue() throws Exception {
        ExecutorService executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "store-executor"));
        FileQueueStore store = start(onFiles(new FileQueueStore(clock, executor)));
        CountDownLatch gate = new CountDownLatch(1);
        executor.execute(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });

        PendingMessage pending = store.begin();
        write(pending, "Subject: durable\r\n\r\nbody\r\n");
        String id = pending.id();
        AtomicReference<String> seenAtCompletion = new AtomicReference<>();
        CompletableFuture<String> stage = pending.commit(envelope("a@example.org", "b@example.org"), List.of(), null)
                .toCompletableFuture();
        CompletableFuture<String> checked = stage.whenComplete((queued, error) -> seenAtCompletion.set(
                Thread.currentThread().getName() + " env=" + Files.exists(spool.resolve("queue/" + id + ".env"))
                        + " msg=" + Files.exists(spool.resolve("queue/" + id + ".msg"))
                        + " incoming=" + Files.exists(spool.resolve("incoming/" + id + ".msg"))));

        Thread.sleep(100);
        assertFalse("the commit cannot complete before the executor ran it", stage.isDone());
        assertEquals(List.of(), files("queue"));
        assertFalse(store.get(id).isPresent());

        gate.countDown();
        assertEquals(id, checked.get(10, TimeUnit.SECONDS));
        assertEquals("store-executor env=true msg=true incoming=false", seenAtCompletion.get());
        assertTrue(store.get(id).isPresent());
    }

    @Test
    public void commitAfterDeactivateFailsAndLeavesNothing() throws Exception {
        FileQueueStore store = start();
        PendingMessage pending = store.begin();
        write(pending, "x\r\n");
        stop(store);
        CompletableFuture<String> stage = pending.commit(envelope("a@example.org", "b@example.org"), List.of(), null)
                .toCompletableFuture();
        CompletionException error = assertThrows(CompletionException.class, stage::join);
        assertTrue(error.getCause() instanceof QueueException);
        assertEquals(List.of(), files("incoming"));
        assertEquals(List.of(), files("queue"));
    }

    @Test
    public void commitsFromManyThreadsAllLand() throws Exception {
        FileQueueStore store = start();
        List<CompletableFuture<String>> stages = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            PendingMessage pending = store.begin();
            write(pending, "message " + i + "\r\n");
            stages.add(pending.commit(envelope("a@example.org", "b" + i + "@example.org"), List.of(), null)
                    .toCompletableFuture());
        }
        Set<String> ids = stages.stream().map(CompletableFuture::join).collect(Collectors.toSet());
        assertEquals(40, ids.size());
        stop(store);
        assertEquals(40, start().stats().total());
    }

    @Test
    public void noSpaceIsReportedAsStorageFull() {
        assertTrue(Spool.isStorageFull(new IOException("No space left on device")));
        assertTrue(Spool.isStorageFull(new FileSystemException("/spool/queue/X.env", null, "No space left on device")));
        assertTrue(Spool.isStorageFull(new IOException("wrapped", new IOException("Disk quota exceeded"))));
        assertFalse(Spool.isStorageFull(new IOException("Input/output error")));
        QueueException full = Spool.failure("X: cannot store", new IOException("No space left on device"));
        assertTrue(full.isStorageFull());
        assertFalse(Spool.failure("X: cannot store", new IOException("Permission denied")).isStorageFull());
    }

    @Test
    public void defaultSpoolIsUnderKarafData() throws Exception {
        String previous = System.getProperty("karaf.data");
        Path data = folder.newFolder("data").toPath();
        System.setProperty("karaf.data", data.toString());
        try {
            FileQueueStore store = new FileQueueStore(clock, null);
            store.activate(StoreFixture.config(""));
            started.add(store);
            assertTrue(Files.isDirectory(data.resolve("spool/queue")));
            assertTrue(Files.isDirectory(data.resolve("spool/incoming")));
        } finally {
            if (previous == null) {
                System.clearProperty("karaf.data");
            } else {
                System.setProperty("karaf.data", previous);
            }
        }
    }

    // ---- helpers

    private FileQueueStore start() throws IOException {
        return start(new FileQueueStore(clock, null));
    }

    /** A store with no memory budget: every message is in files from its first byte. */
    static FileQueueStore onFiles(FileQueueStore store) {
        store.memoryLimit = 0;
        return store;
    }

    private FileQueueStore start(FileQueueStore store) throws IOException {
        store.activate(StoreFixture.config(spool.toString()));
        started.add(store);
        return store;
    }

    private void stop(FileQueueStore store) {
        started.remove(store);
        store.deactivate();
    }

    private String store(FileQueueStore store, Envelope envelope, String message) throws Exception {
        PendingMessage pending = store.begin();
        write(pending, message);
        return commit(pending, envelope, List.of(), null);
    }

    private static String commit(PendingMessage pending, Envelope envelope, List<Header> headers, String quarantine)
            throws Exception {
        return pending.commit(envelope, headers, quarantine).toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    private static void write(PendingMessage pending, String text) throws QueueException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        pending.write(bytes, 0, bytes.length);
    }

    private static void writeInChunks(PendingMessage pending, byte[] body) throws QueueException {
        for (int offset = 0; offset < body.length; offset += 1000) {
            pending.write(body, offset, Math.min(1000, body.length - offset));
        }
    }

    private static byte[] message(int size) {
        byte[] body = new byte[size];
        new Random(42).nextBytes(body);
        byte[] head = "Subject: =?UTF-8?Q?h=C3=A9?=\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(head, 0, body, 0, head.length);
        return body;
    }

    private static byte[] read(MessageContent content) throws IOException {
        try (InputStream in = content.openStream()) {
            return in.readAllBytes();
        }
    }

    private List<String> files(String dir) throws IOException {
        try (Stream<Path> files = Files.list(spool.resolve(dir))) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static List<String> idsOf(List<QueueEntry> entries) {
        return entries.stream().map(QueueEntry::id).toList();
    }

    private static Envelope envelope(String sender, String... recipients) {
        return new Envelope(MailAddress.parse(sender),
                Stream.of(recipients).map(r -> Recipient.of(MailAddress.parse(r))).toList(),
                null, null, BodyType.SEVEN_BIT, false,
                new ClientInfo("192.0.2.1", null, "client.example", "ESMTP", null, null, null, "mx"), T0);
    }

    private static Envelope withReceivedAt(Envelope e, Instant at) {
        return new Envelope(e.sender(), e.recipients(), e.envId(), e.ret(), e.body(), e.smtpUtf8(), e.client(), at);
    }

    private static Envelope richEnvelope() {
        return new Envelope(MailAddress.parse("sénder@exämple.org"),
                List.of(new Recipient(MailAddress.parse("ünïcødé@bücher.example"), Set.of(Notify.SUCCESS, Notify.DELAY),
                                "rfc822;user@example.org"),
                        new Recipient(MailAddress.parse("\"odd \\\" user\"@[192.0.2.1]"), Set.of(Notify.NEVER), null),
                        Recipient.of(MailAddress.parse("plain@example.net"))),
                "env=id\\with\nodd chars", Ret.HDRS, BodyType.EIGHT_BIT_MIME, true,
                new ClientInfo("2001:db8::1", "client.example.org", "helo.example", "ESMTPSA", "TLSv1.3",
                        "TLS_AES_256_GCM_SHA384", "jdoe@example.org", "submission"),
                T0);
    }

    private static RecipientStatus outcome(Envelope envelope, int index, RecipientStatus.State state, String status,
                                           String diagnostic) {
        return new RecipientStatus(envelope.recipients().get(index), state, status, diagnostic, "mx.example.net");
    }
}
