package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.MessageEvents;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;
import org.postern.queue.file.internal.EntryCodec.CorruptEntryException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The default QueueStore: one .msg and one .env file per entry in a spool directory on local disk (see
 * {@link Spool}), made durable through a group-committed write-ahead log (see {@link Journal}), with every
 * entry also held in memory so that list, lease and stats never touch the disk.
 *
 * <p>Each entry's in-memory slot is its lock: a change is made durable under it and only then made
 * visible. Three ordered indexes keep the big queries cheap: by arrival (list pages oldest first without
 * sorting), by next attempt (lease takes the earliest due without a scan) and by lease expiry. Leases live
 * in memory only; after a restart every entry is free again, which is what "a lease not followed by a
 * record is given up" asks for.
 */
@Component(service = QueueStore.class, configurationPid = FileQueueStore.PID, immediate = true)
@Designate(ocd = FileQueueStore.Config.class)
public class FileQueueStore implements QueueStore {

    static final String PID = "org.postern.queue.file";

    @ObjectClassDefinition(name = "Postern file queue",
            description = "The default message queue: a durable spool on local disk.")
    public @interface Config {
        @AttributeDefinition(name = "Spool directory",
                description = "Where queued messages are kept. Empty for ${karaf.data}/spool. "
                        + "Must be on a local file system that honours fsync.")
        String spool_dir() default "";

        @AttributeDefinition(name = "Memory for messages (MiB)",
                description = "Messages of up to 256 KiB are received into memory and stay there, and in the "
                        + "write-ahead log, until the next checkpoint (every 5 s), so that mail relayed at once "
                        + "never costs a file. This bounds that memory; an eighth of the heap at most. "
                        + "Beyond it, messages go to files as they arrive. 0 for files always.", min = "0")
        int memory_mb() default 512;
    }

    private static final Logger LOG = LoggerFactory.getLogger(FileQueueStore.class);
    private static final long SHUTDOWN_WAIT_SECONDS = 30;
    /** fsyncs of a checkpoint and recovery's parsing run this wide: ext4 folds concurrent fsyncs into one journal commit. */
    private static final int SYNC_THREADS = 8;
    private static final int RECOVERY_CHUNK = 1000;

    private final Clock clock;
    private final ExecutorService providedExecutor;
    private final long checkpointMillis;
    private final Map<String, Slot> index = new ConcurrentHashMap<>();
    private final ConcurrentSkipListMap<Key, Slot> byArrival = new ConcurrentSkipListMap<>();
    private final ConcurrentSkipListSet<Key> due = new ConcurrentSkipListSet<>();
    private final ConcurrentSkipListSet<Key> leases = new ConcurrentSkipListSet<>();
    private final Set<FilePendingMessage> open = ConcurrentHashMap.newKeySet();
    private QueueIds ids;
    private Spool spool;
    /** For tests: when not negative, the memory budget's limit in octets instead of the configured one. */
    long memoryLimit = -1;
    MemoryBudget budget;
    private ExecutorService executor;
    private ThreadPoolExecutor syncPool;
    private ThreadPoolExecutor preparePool;
    Journal journal;

    // Optional: with no EventAdmin nobody hears of new messages at once; the queue manager's scan still finds them.
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile EventAdmin eventAdmin;

    public FileQueueStore() {
        this(Clock.systemUTC(), null);
    }

    /** For tests: a clock to control time and, when not null, the executor the committer runs on. */
    FileQueueStore(Clock clock, ExecutorService executor) {
        this(clock, executor, Journal.CHECKPOINT_MILLIS);
    }

    /** For tests: as above, and how often the journal is checkpointed (0: only at deactivate). */
    FileQueueStore(Clock clock, ExecutorService executor, long checkpointMillis) {
        this.clock = clock;
        this.providedExecutor = executor;
        this.checkpointMillis = checkpointMillis;
    }

    @Activate
    void activate(Config config) throws IOException {
        String dir = config.spool_dir();
        Path root = dir == null || dir.isBlank()
                ? Paths.get(System.getProperty("karaf.data", "data"), "spool")
                : Paths.get(dir);
        spool = new Spool(root.toAbsolutePath());
        ids = new QueueIds(clock);
        budget = new MemoryBudget(memoryLimit >= 0 ? memoryLimit : MemoryBudget.limit(config.memory_mb()));
        syncPool = new ThreadPoolExecutor(SYNC_THREADS, SYNC_THREADS, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), new NamedThreads("postern-queue-sync-"));
        syncPool.allowCoreThreadTimeOut(true);
        executor = providedExecutor != null ? providedExecutor
                : Executors.newSingleThreadExecutor(new NamedThreads("postern-queue-commit-"));
        preparePool = new ThreadPoolExecutor(Journal.PREPARE_THREADS, Journal.PREPARE_THREADS, 30, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), new NamedThreads("postern-queue-prepare-"));
        preparePool.allowCoreThreadTimeOut(true);
        journal = new Journal(spool, this::writeFiles, executor, preparePool, syncPool,
                Executors.newSingleThreadScheduledExecutor(new NamedThreads("postern-queue-checkpoint-")),
                checkpointMillis);
        try {
            long started = System.nanoTime();
            journal.recover();
            recover(started);
        } catch (IOException | RuntimeException e) {
            journal.abort();
            executor.shutdownNow();
            preparePool.shutdownNow();
            syncPool.shutdownNow();
            throw e;
        }
        journal.start();
    }

    /**
     * Lets changes already handed to the committer finish and checkpoints them; later commits fail, so no
     * 250 is given for them.
     */
    @Deactivate
    void deactivate() {
        journal.stop(TimeUnit.SECONDS.toMillis(SHUTDOWN_WAIT_SECONDS));
        executor.shutdown();
        try {
            if (!executor.awaitTermination(SHUTDOWN_WAIT_SECONDS, TimeUnit.SECONDS)) {
                LOG.warn("commits still running after {} s; stopping them", SHUTDOWN_WAIT_SECONDS);
                executor.shutdownNow();
            }
        } catch (InterruptedException e) {
            executor.shutdownNow();
            Thread.currentThread().interrupt();
        }
        preparePool.shutdown();
        syncPool.shutdown();
        // Messages still being received are unfinished transactions: their clients get no 250 from us.
        for (FilePendingMessage pending : List.copyOf(open)) {
            pending.abort();
        }
        index.clear();
        byArrival.clear();
        due.clear();
        leases.clear();
    }

    /** For tests: stops as a killed process would, leaving the spool as it is (no checkpoint, no cleanup). */
    void halt() {
        journal.abort();
        executor.shutdownNow();
        preparePool.shutdownNow();
        syncPool.shutdownNow();
    }

    // ---- storing

    @Override
    public PendingMessage begin() {
        String id;
        do {
            id = ids.next();
        } while (index.containsKey(id));
        FilePendingMessage pending = new FilePendingMessage(id, this, budget);
        open.add(pending);
        return pending;
    }

    /** Where a message being received goes when it leaves memory. */
    Path incomingFile(String id) {
        return spool.incomingMsg(id);
    }

    FileChannel createIncoming(Path file) throws IOException {
        return spool.createFile(file, true);
    }

    /** Called by a pending message's commit: the durable part is the committer's. */
    CompletionStage<String> commit(FilePendingMessage pending, Envelope envelope, List<Header> addedHeaders,
                                   String quarantineReason) {
        open.remove(pending);
        CompletableFuture<String> result = new CompletableFuture<>();
        journal.submit(new CommitJob(pending, envelope, addedHeaders, quarantineReason, result));
        return result;
    }

    /** An aborted message is gone: its file, if it has one, goes back to the spool for reuse. */
    void discard(FilePendingMessage pending, Path file) {
        open.remove(pending);
        if (file == null) {
            return;
        }
        try {
            spool.discard(file);
        } catch (IOException e) {
            LOG.warn("{}: cannot delete aborted message {}: {}", pending.id(), file, e.toString());
        }
    }

    /**
     * A new entry. A message in memory goes into the log only; its files are written at the checkpoint, if
     * the entry is still there (see {@link EntryFiles}). A message in a file is moved into queue/ and copied
     * into the log, its .env written beside it.
     */
    private final class CommitJob extends Journal.Job {
        private final FilePendingMessage pending;
        private final Envelope envelope;
        private final List<Header> addedHeaders;
        private final String quarantineReason;
        private final CompletableFuture<String> result;
        private QueueEntry entry;
        private byte[] env;

        CommitJob(FilePendingMessage pending, Envelope envelope, List<Header> addedHeaders, String quarantineReason,
                  CompletableFuture<String> result) {
            super(pending.id());
            this.pending = pending;
            this.envelope = envelope;
            this.addedHeaders = addedHeaders;
            this.quarantineReason = quarantineReason;
            this.result = result;
        }

        @Override
        boolean creates() {
            return true;
        }

        @Override
        Wal.Record prepare() throws IOException {
            boolean quarantined = quarantineReason != null;
            entry = new QueueEntry(id, envelope, pending.size(), addedHeaders,
                    quarantined ? State.QUARANTINED : State.QUEUED,
                    envelope.recipients().stream().map(RecipientStatus::pending).toList(), 0,
                    quarantined ? null : clock.instant(), null, quarantineReason);
            env = EntryCodec.encode(entry);
            if (pending.inMemory()) {
                return Wal.Record.entry(id, env, pending.memory(), (int) pending.size(), pending.crc());
            }
            FileChannel bytes = pending.flushForCommit();
            // The .msg first: an .env never names bytes that are not in place.
            pending.moveTo(spool.msg(id));
            spool.createEnv(id, env);
            return Wal.Record.entry(id, env, bytes, entry.size(), pending.crc());
        }

        @Override
        void durable() {
            EntryFiles files = pending.inMemory()
                    ? new EntryFiles(id, pending.memory(), (int) pending.size(), env, pending.handOverMemory())
                    : new EntryFiles(id);
            pending.committed();
            add(new Slot(entry, files));
            if (quarantineReason != null) {
                LOG.info("{}: queued from=<{}> nrcpt={} size={} quarantined: {}", id, envelope.sender(),
                        envelope.recipients().size(), entry.size(), quarantineReason);
            } else {
                LOG.info("{}: queued from=<{}> nrcpt={} size={}", id, envelope.sender(),
                        envelope.recipients().size(), entry.size());
            }
            postQueued(entry); // before the 250 goes out: the entry is durable and visible already
            result.complete(id);
        }

        @Override
        void failed(QueueException error, boolean prepared) {
            LOG.warn("{}: commit failed: {}", id, error.getMessage());
            cleanUpFailedCommit(pending);
            result.completeExceptionally(error);
        }
    }

    /** A new state of an existing entry. The caller holds the slot's lock and applies it once durable. */
    private final class StateJob extends Journal.Job {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        private final EntryFiles files;
        private final QueueEntry previous;
        private final byte[] env;

        StateJob(EntryFiles files, QueueEntry previous, QueueEntry updated) {
            super(updated.id());
            this.files = files;
            this.previous = previous;
            this.env = EntryCodec.encode(updated);
        }

        @Override
        Wal.Record prepare() throws IOException {
            files.writeEnv(env);
            return Wal.Record.state(id, env);
        }

        @Override
        void durable() {
            done.complete(null);
        }

        @Override
        void failed(QueueException error, boolean prepared) {
            if (prepared) {
                try {
                    files.writeEnv(EntryCodec.encode(previous));
                } catch (IOException | RuntimeException e) {
                    // Not durable either way: the log, which decides after a crash, has the previous state.
                    LOG.error("{}: cannot put back the .env after a failed change: {}", id, e.toString());
                }
            }
            done.completeExceptionally(error);
        }
    }

    /** The end of an entry; the caller removes its files once the removal is durable. */
    private static final class RemoveJob extends Journal.Job {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        private final EntryFiles files;

        RemoveJob(EntryFiles files) {
            super(files.id);
            this.files = files;
        }

        @Override
        boolean removes() {
            return true;
        }

        @Override
        Wal.Record prepare() {
            return Wal.Record.remove(id);
        }

        @Override
        void durable() {
            // Here on the committer, before its log file can be sealed: that file's checkpoint must see the
            // entry gone, or it would sync files that the caller is about to remove without a directory sync.
            files.gone();
            done.complete(null);
        }

        @Override
        void failed(QueueException error, boolean prepared) {
            done.completeExceptionally(error);
        }
    }

    /** Tells observers (the queue manager first) that a message is in the queue, so its first attempt need not wait for a scan. */
    private void postQueued(QueueEntry entry) {
        EventAdmin events = eventAdmin;
        if (events == null) {
            return;
        }
        Envelope envelope = entry.envelope();
        try {
            events.postEvent(new Event(MessageEvents.QUEUED, Map.of(
                    MessageEvents.QUEUE_ID, entry.id(),
                    MessageEvents.SENDER, envelope.sender().toString(),
                    MessageEvents.RECIPIENTS, envelope.recipients().stream()
                            .map(r -> r.address().toString()).toArray(String[]::new),
                    MessageEvents.SIZE, entry.size())));
        } catch (RuntimeException e) {
            // The message is stored either way; an event is only news.
            LOG.warn("{}: cannot post the queued event: {}", entry.id(), e.toString());
        }
    }

    /** A failed commit leaves nothing behind: the client was not told 250 and will send again. */
    private void cleanUpFailedCommit(FilePendingMessage pending) {
        pending.failed();
        String id = pending.id();
        for (Path file : List.of(spool.env(id), spool.queue.resolve(id + Spool.ENV + Spool.TMP), spool.msg(id),
                spool.incomingMsg(id))) {
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                LOG.warn("{}: cannot remove {} of a failed commit: {}", id, file, e.toString());
            }
        }
    }

    // ---- reading

    private Slot slot(String id) {
        return id == null ? null : index.get(id);
    }

    @Override
    public Optional<QueueEntry> get(String id) {
        Slot slot = slot(id);
        return slot == null ? Optional.empty() : Optional.ofNullable(slot.view(clock.instant()));
    }

    @Override
    public MessageContent content(String id) throws QueueException {
        Slot slot = slot(id);
        QueueEntry entry = slot == null ? null : slot.view(clock.instant());
        if (entry == null) {
            throw new QueueException("no such entry: " + id);
        }
        return slot.files.content(entry.size());
    }

    /** Walks the arrival index: a page costs its offset and length, not a sort of the whole queue. */
    @Override
    public List<QueueEntry> list(QueueQuery query) {
        QueueQuery q = query == null ? QueueQuery.ALL : query;
        Instant now = clock.instant();
        int skip = Math.max(0, q.offset());
        List<QueueEntry> page = new ArrayList<>(q.limit() > 0 ? Math.min(q.limit(), 1024) : 64);
        for (Slot slot : byArrival.values()) {
            QueueEntry entry = slot.view(now);
            if (entry == null || !q.matches(entry)) {
                continue;
            }
            if (skip > 0) {
                skip--;
                continue;
            }
            page.add(entry);
            if (q.limit() > 0 && page.size() >= q.limit()) {
                break;
            }
        }
        return page;
    }

    @Override
    public QueueStats stats() {
        Map<State, Long> byState = new EnumMap<>(State.class);
        long totalSize = 0;
        Instant oldest = null;
        Instant now = clock.instant();
        for (Slot slot : byArrival.values()) {
            QueueEntry entry = slot.view(now);
            if (entry == null) {
                continue;
            }
            byState.merge(entry.state(), 1L, Long::sum);
            totalSize += entry.size();
            if (oldest == null) {
                oldest = entry.envelope().receivedAt(); // arrival order: the first is the oldest
            }
        }
        return new QueueStats(byState, totalSize, oldest);
    }

    // ---- delivering

    @Override
    public List<QueueEntry> lease(Instant now, int max, Duration leaseTime) {
        if (max <= 0) {
            return List.of();
        }
        // Leases that ran out make their entries due again.
        for (Iterator<Key> it = leases.iterator(); it.hasNext(); ) {
            Key key = it.next();
            if (key.at().isAfter(now)) {
                break;
            }
            Slot slot = index.get(key.id());
            if (slot == null) {
                leases.remove(key);
                continue;
            }
            synchronized (slot) {
                if (key.equals(slot.leaseKey)) {
                    endLease(slot);
                } else {
                    leases.remove(key); // stale: the slot's lease changed meanwhile
                }
            }
        }
        List<QueueEntry> leased = new ArrayList<>(Math.min(max, 256));
        Instant until = now.plus(leaseTime);
        // Earliest due first: the index is ordered by next attempt, then id.
        for (Key key : due) {
            if (leased.size() >= max || key.at().isAfter(now)) {
                break;
            }
            Slot slot = index.get(key.id());
            if (slot == null) {
                continue;
            }
            synchronized (slot) {
                if (!key.equals(slot.dueKey) || !slot.isDue(now)) {
                    continue;
                }
                due.remove(key);
                slot.dueKey = null;
                slot.leaseKey = new Key(until, key.id());
                leases.add(slot.leaseKey);
                QueueEntry entry = slot.entry;
                leased.add(copy(entry, State.ACTIVE, entry.recipients(), entry.attempts(), entry.nextAttempt(),
                        entry.lastError(), entry.reason()));
            }
        }
        return leased;
    }

    @Override
    public void record(String id, List<RecipientStatus> outcomes, Instant nextAttempt) throws QueueException {
        Slot slot = slot(id);
        if (slot == null) {
            throw new QueueException("no such entry: " + id);
        }
        synchronized (slot) {
            if (slot.removed) {
                throw new QueueException("no such entry: " + id);
            }
            QueueEntry entry = slot.entry;
            List<RecipientStatus> merged = merge(entry, outcomes);
            if (merged.stream().allMatch(RecipientStatus::isFinal)) {
                removeDurably(slot, id, "cannot remove delivered entry"); // the queue manager logs "removed": it knows why
                return;
            }
            String lastError = entry.lastError();
            for (RecipientStatus outcome : outcomes) {
                if (outcome.state() != RecipientStatus.State.DELIVERED && outcome.diagnostic() != null) {
                    lastError = outcome.diagnostic();
                }
            }
            // An operator may have held the entry while it was out for delivery: that wins over the retry.
            boolean kept = entry.state() == State.HELD || entry.state() == State.QUARANTINED;
            QueueEntry updated = copy(entry, kept ? entry.state() : State.DEFERRED, merged, entry.attempts() + 1,
                    kept ? null : Objects.requireNonNullElseGet(nextAttempt, clock::instant), lastError,
                    entry.reason());
            persist(slot, updated);
            endLease(slot);
        }
    }

    /** Applies outcomes by recipient address; a recipient already delivered or failed stays so. */
    private static List<RecipientStatus> merge(QueueEntry entry, List<RecipientStatus> outcomes) {
        List<RecipientStatus> merged = new ArrayList<>(entry.recipients().size());
        for (RecipientStatus current : entry.recipients()) {
            RecipientStatus next = current;
            if (!current.isFinal()) {
                for (RecipientStatus outcome : outcomes) {
                    if (outcome.recipient().address().equals(current.recipient().address())) {
                        next = new RecipientStatus(current.recipient(), outcome.state(), outcome.status(),
                                outcome.diagnostic(), outcome.remoteMta());
                    }
                }
            }
            merged.add(next);
        }
        return merged;
    }

    // ---- operator actions

    @Override
    public boolean hold(String id) throws QueueException {
        return hold(id, "held by operator");
    }

    @Override
    public boolean hold(String id, String reason) throws QueueException {
        return change(id, entry -> entry.state() == State.HELD || entry.state() == State.QUARANTINED ? null
                : copy(entry, State.HELD, entry.recipients(), entry.attempts(), null, entry.lastError(),
                        reason == null || reason.isBlank() ? "held" : reason), "held");
    }

    @Override
    public boolean release(String id) throws QueueException {
        return change(id, entry -> entry.state() != State.HELD && entry.state() != State.QUARANTINED ? null
                : copy(entry, entry.attempts() > 0 ? State.DEFERRED : State.QUEUED, entry.recipients(),
                        entry.attempts(), clock.instant(), entry.lastError(), null), "released");
    }

    @Override
    public boolean requeue(String id) throws QueueException {
        return change(id, entry -> entry.state() != State.QUEUED && entry.state() != State.DEFERRED ? null
                : copy(entry, entry.state(), entry.recipients(), entry.attempts(), clock.instant(),
                        entry.lastError(), entry.reason()), "requeued");
    }

    @Override
    public boolean delete(String id) throws QueueException {
        Slot slot = slot(id);
        if (slot == null) {
            return false;
        }
        synchronized (slot) {
            if (slot.removed) {
                return false;
            }
            removeDurably(slot, id, "cannot delete");
        }
        LOG.info("{}: removed (deleted by operator)", id);
        return true;
    }

    private interface Change {
        /** The new entry, or null to leave it as it is. */
        QueueEntry apply(QueueEntry entry);
    }

    /** Persists an operator's change; the lease of an entry out for delivery is left alone. */
    private boolean change(String id, Change change, String verb) throws QueueException {
        Slot slot = slot(id);
        if (slot == null) {
            return false;
        }
        synchronized (slot) {
            if (slot.removed) {
                return false;
            }
            QueueEntry updated = change.apply(slot.entry);
            if (updated != null) {
                persist(slot, updated);
                LOG.info("{}: {}", id, verb);
            }
        }
        return true;
    }

    /** Makes a new state durable, then visible. The caller holds the slot's lock. */
    private void persist(Slot slot, QueueEntry updated) throws QueueException {
        StateJob job = new StateJob(slot.files, slot.entry, updated);
        journal.run(job, job.done);
        slot.entry = updated;
        refreshDue(slot);
    }

    /**
     * Makes a removal durable, then forgets the entry and removes its files (here, not on the committer,
     * which has every other change to make). The caller holds the slot's lock.
     */
    private void removeDurably(Slot slot, String id, String what) throws QueueException {
        RemoveJob job = new RemoveJob(slot.files);
        try {
            journal.run(job, job.done);
        } catch (QueueException e) {
            throw new QueueException(id + ": " + what + ": " + e.getMessage(), e, e.isStorageFull());
        }
        remove(slot);
        try {
            slot.files.deleteFiles();
        } catch (IOException e) {
            // The removal is durable in the log; its checkpoint deletes the files again.
            LOG.warn("{}: cannot delete the files of a removed entry: {}", id, e.toString());
        }
    }

    private static QueueEntry copy(QueueEntry e, State state, List<RecipientStatus> recipients, int attempts,
                                   Instant nextAttempt, String lastError, String reason) {
        return new QueueEntry(e.id(), e.envelope(), e.size(), e.addedHeaders(), state, recipients, attempts,
                nextAttempt, lastError, reason);
    }

    // ---- the indexes (a slot's keys change only under its lock)

    private void add(Slot slot) {
        synchronized (slot) {
            index.put(slot.entry.id(), slot);
            byArrival.put(slot.arrivalKey, slot);
            refreshDue(slot);
        }
    }

    /** Puts the slot in the due index at its next attempt, or takes it out when it is not deliverable. */
    private void refreshDue(Slot slot) {
        QueueEntry entry = slot.entry;
        boolean deliverable = !slot.removed && slot.leaseKey == null
                && (entry.state() == State.QUEUED || entry.state() == State.DEFERRED);
        Key wanted = deliverable ? new Key(entry.nextAttempt() == null ? Instant.MIN : entry.nextAttempt(), entry.id())
                : null;
        if (Objects.equals(wanted, slot.dueKey)) {
            return;
        }
        if (slot.dueKey != null) {
            due.remove(slot.dueKey);
        }
        if (wanted != null) {
            due.add(wanted);
        }
        slot.dueKey = wanted;
    }

    private void endLease(Slot slot) {
        if (slot.leaseKey != null) {
            leases.remove(slot.leaseKey);
            slot.leaseKey = null;
        }
        refreshDue(slot);
    }

    private void remove(Slot slot) {
        slot.removed = true;
        index.remove(slot.entry.id(), slot);
        byArrival.remove(slot.arrivalKey, slot);
        if (slot.dueKey != null) {
            due.remove(slot.dueKey);
            slot.dueKey = null;
        }
        if (slot.leaseKey != null) {
            leases.remove(slot.leaseKey);
            slot.leaseKey = null;
        }
    }

    // ---- recovery

    /** Loads the queue as the last run left it; nothing unreadable is dropped without a trace. */
    private void recover(long started) throws IOException {
        int discarded = 0;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(spool.incoming)) {
            for (Path file : files) {
                spool.discard(file);
                discarded++;
            }
        }
        if (discarded > 0) {
            LOG.info("discarded {} message(s) whose transaction never ended", discarded);
        }

        List<String> envs = new ArrayList<>();
        List<String> msgs = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(spool.queue)) {
            for (Path file : files) {
                String name = file.getFileName().toString();
                if (name.endsWith(Spool.ENV)) {
                    envs.add(name.substring(0, name.length() - Spool.ENV.length()));
                } else if (name.endsWith(Spool.MSG)) {
                    msgs.add(name.substring(0, name.length() - Spool.MSG.length()));
                } else if (name.endsWith(Spool.ENV + Spool.TMP)) {
                    Files.deleteIfExists(file); // an update that never got renamed: the old .env stands
                } else {
                    LOG.warn("ignoring unknown file in the queue directory: {}", file);
                }
            }
        }

        // Reading and parsing dominate a restart: spread them over the pool, then file the results in order.
        Object[] loaded = new Object[envs.size()];
        List<Callable<Void>> tasks = new ArrayList<>();
        for (int from = 0; from < envs.size(); from += RECOVERY_CHUNK) {
            int start = from;
            int end = Math.min(envs.size(), from + RECOVERY_CHUNK);
            tasks.add(() -> {
                for (int i = start; i < end; i++) {
                    try {
                        loaded[i] = load(envs.get(i));
                    } catch (CorruptEntryException e) {
                        loaded[i] = e;
                    }
                }
                return null;
            });
        }
        journal.runAll(tasks);

        Instant now = clock.instant();
        int moved = 0;
        for (int i = 0; i < envs.size(); i++) {
            String id = envs.get(i);
            if (loaded[i] instanceof QueueEntry entry) {
                if (entry.state() == State.ACTIVE) {
                    entry = copy(entry, entry.attempts() > 0 ? State.DEFERRED : State.QUEUED, entry.recipients(),
                            entry.attempts(), now, entry.lastError(), entry.reason());
                }
                add(new Slot(entry, new EntryFiles(id)));
            } else {
                CorruptEntryException e = (CorruptEntryException) loaded[i];
                Path msg = spool.msg(id);
                Path where = spool.moveToCorrupt(spool.env(id));
                if (Files.exists(msg)) {
                    spool.moveToCorrupt(msg);
                }
                moved++;
                LOG.warn("{}: unreadable entry moved to {}: {}", id, where.getParent(), e.getMessage());
            }
        }
        for (String id : msgs) {
            Path msg = spool.msg(id);
            if (!index.containsKey(id) && Files.exists(msg)) {
                Path where = spool.moveToCorrupt(msg);
                moved++;
                LOG.warn("{}: message without envelope (unfinished commit or removal) moved to {}", id,
                        where.getParent());
            }
        }
        if (moved > 0) {
            spool.syncQueueDir();
        }
        LOG.info("spool {}: {} entries loaded in {} ms{}", spool.root, index.size(),
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started),
                moved > 0 ? ", " + moved + " moved to corrupt/" : "");
    }

    private QueueEntry load(String id) throws CorruptEntryException {
        QueueEntry entry;
        long actualSize;
        try {
            entry = EntryCodec.decode(Files.readAllBytes(spool.env(id)));
            if (!entry.id().equals(id)) {
                throw new CorruptEntryException("file holds entry " + entry.id());
            }
            actualSize = Files.size(spool.msg(id));
        } catch (NoSuchFileException e) {
            throw new CorruptEntryException("message file missing");
        } catch (IOException e) {
            throw new CorruptEntryException("cannot read: " + e, e);
        }
        if (actualSize != entry.size()) {
            throw new CorruptEntryException("message file has " + actualSize + " octets, envelope says " + entry.size());
        }
        return entry;
    }

    // ---- an entry's files

    /** For the checkpoint: writes the files of an entry still in memory; see {@link Journal.FileState}. */
    private Journal.FileState writeFiles(String id) throws IOException {
        Slot slot = index.get(id);
        return slot == null ? Journal.FileState.GONE : slot.files.write();
    }

    /**
     * An entry's .msg and .env. A message committed from memory has none at first: the log holds it, and
     * memory keeps it for delivery. Mail relayed at once is removed before the next checkpoint and never
     * costs a file at all; the checkpoint writes (and syncs) the files of the entries still there, after
     * which they live on disk like any other. The lock is this object's own, never held while waiting for
     * the committer: the checkpoint takes it, and callers of the journal may hold the slot's lock.
     */
    final class EntryFiles {
        private final String id;
        /** The message while only in memory (and the log); null once written. */
        private byte[] msg;
        private int msgLength;
        /** The latest state to write with it. */
        private byte[] env;
        private long reserved;
        private boolean onDisk;
        private boolean removed;

        /** The files of an entry that has them already. */
        EntryFiles(String id) {
            this.id = id;
            this.onDisk = true;
        }

        /** The files of an entry in memory, holding {@code reserved} octets of the budget. */
        EntryFiles(String id, byte[] msg, int msgLength, byte[] env, long reserved) {
            this.id = id;
            this.msg = msg;
            this.msgLength = msgLength;
            this.env = env;
            this.reserved = reserved;
        }

        /** A new state (no fsync: the log record makes it durable). */
        synchronized void writeEnv(byte[] content) throws IOException {
            if (removed) {
                return;
            }
            if (onDisk) {
                spool.rewriteEnv(id, content);
            } else {
                env = content;
            }
        }

        /** Writes the files if they are not yet (no fsync: the checkpoint does that). */
        synchronized Journal.FileState write() throws IOException {
            if (removed) {
                return Journal.FileState.GONE;
            }
            if (onDisk) {
                return Journal.FileState.PRESENT;
            }
            try {
                try (FileChannel channel = spool.createFile(spool.msg(id), false)) {
                    Spool.writeAll(channel, ByteBuffer.wrap(msg, 0, msgLength));
                }
                spool.createEnv(id, env); // the .msg first: an .env never names bytes that are not in place
            } catch (IOException | RuntimeException e) {
                // The log still holds the entry; the next checkpoint tries again from nothing.
                Files.deleteIfExists(spool.env(id));
                Files.deleteIfExists(spool.msg(id));
                throw e;
            }
            onDisk = true;
            dropMemory();
            return Journal.FileState.WRITTEN;
        }

        /** The entry's removal is durable: the checkpoint leaves it alone from now on. */
        synchronized void gone() {
            removed = true;
            dropMemory();
        }

        /** Removes the files of an entry that is gone, if it has any. */
        synchronized void deleteFiles() throws IOException {
            gone();
            if (onDisk) {
                onDisk = false;
                spool.deleteEntry(id);
            }
        }

        synchronized MessageContent content(long size) {
            return msg != null ? new MemoryContent(msg, (int) size) : FileContent.of(spool.msg(id), size);
        }

        private void dropMemory() {
            msg = null;
            env = null;
            budget.release(reserved);
            reserved = 0;
        }
    }

    // ---- in memory

    /** A place in an ordered index: a time, then the id to break ties. */
    record Key(Instant at, String id) implements Comparable<Key> {
        @Override
        public int compareTo(Key other) {
            int c = at.compareTo(other.at);
            return c != 0 ? c : id.compareTo(other.id);
        }
    }

    /**
     * One entry's state and its lock. {@code entry} is as on disk, never ACTIVE; the lease is kept beside it.
     * {@code dueKey} is its place in the due index (null when not deliverable or leased), {@code leaseKey}
     * its place in the lease index.
     */
    private static final class Slot {
        final Key arrivalKey;
        final EntryFiles files;
        QueueEntry entry;
        Key dueKey;
        Key leaseKey;
        boolean removed;

        Slot(QueueEntry entry, EntryFiles files) {
            this.entry = entry;
            this.files = files;
            this.arrivalKey = new Key(entry.envelope().receivedAt(), entry.id());
        }

        synchronized QueueEntry view(Instant now) {
            if (removed) {
                return null;
            }
            return leased(now) ? copy(entry, State.ACTIVE, entry.recipients(), entry.attempts(),
                    entry.nextAttempt(), entry.lastError(), entry.reason()) : entry;
        }

        boolean leased(Instant now) {
            return leaseKey != null && leaseKey.at().isAfter(now);
        }

        boolean isDue(Instant now) {
            State state = entry.state();
            return !removed && (state == State.QUEUED || state == State.DEFERRED) && !leased(now)
                    && (entry.nextAttempt() == null || !entry.nextAttempt().isAfter(now));
        }
    }

    private static final class NamedThreads implements ThreadFactory {
        private final String prefix;
        private final AtomicInteger count = new AtomicInteger();

        NamedThreads(String prefix) {
            this.prefix = prefix;
        }

        @Override
        public Thread newThread(Runnable task) {
            Thread thread = new Thread(task, prefix + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        }
    }
}
