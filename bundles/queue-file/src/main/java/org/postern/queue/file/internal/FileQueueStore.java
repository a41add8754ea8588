package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
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
 * {@link Spool}), with every entry also held in memory so that list, lease and stats never touch the disk.
 *
 * <p>Each entry's in-memory slot is its lock: a change is written to disk (atomically) under it and only
 * then made visible. Leases live in memory only; after a restart every entry is free again, which is what
 * "a lease not followed by a record is given up" asks for.
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
    }

    private static final Logger LOG = LoggerFactory.getLogger(FileQueueStore.class);
    private static final int COMMIT_THREADS = 4;
    private static final long SHUTDOWN_WAIT_SECONDS = 30;

    private final Clock clock;
    private final ExecutorService providedExecutor;
    private final Map<String, Slot> index = new ConcurrentHashMap<>();
    private final Set<FilePendingMessage> open = ConcurrentHashMap.newKeySet();
    private QueueIds ids;
    private Spool spool;
    private ExecutorService executor;

    // Optional: with no EventAdmin nobody hears of new messages at once; the queue manager's scan still finds them.
    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile EventAdmin eventAdmin;

    public FileQueueStore() {
        this(Clock.systemUTC(), null);
    }

    /** For tests: a clock to control time and, when not null, the executor commits run on. */
    FileQueueStore(Clock clock, ExecutorService executor) {
        this.clock = clock;
        this.providedExecutor = executor;
    }

    @Activate
    void activate(Config config) throws IOException {
        String dir = config.spool_dir();
        Path root = dir == null || dir.isBlank()
                ? Paths.get(System.getProperty("karaf.data", "data"), "spool")
                : Paths.get(dir);
        spool = new Spool(root.toAbsolutePath());
        ids = new QueueIds(clock);
        recover();
        executor = providedExecutor != null ? providedExecutor : Executors.newFixedThreadPool(COMMIT_THREADS,
                new NamedThreads("postern-queue-commit-"));
    }

    /** Lets commits already handed to the executor finish; later commits fail, so no 250 is given for them. */
    @Deactivate
    void deactivate() {
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
        // Messages still being received are unfinished transactions: their clients get no 250 from us.
        for (FilePendingMessage pending : List.copyOf(open)) {
            pending.abort();
        }
        index.clear();
    }

    // ---- storing

    @Override
    public PendingMessage begin() throws QueueException {
        for (int tries = 0; ; tries++) {
            String id = ids.next();
            if (index.containsKey(id)) {
                continue;
            }
            try {
                FilePendingMessage pending = new FilePendingMessage(id, spool.incomingMsg(id), this);
                open.add(pending);
                return pending;
            } catch (FileAlreadyExistsException e) {
                if (tries > 10) {
                    throw Spool.failure("cannot make a unique queue id", e);
                }
            } catch (IOException e) {
                throw Spool.failure("cannot open incoming message", e);
            }
        }
    }

    /** Called by a pending message's commit: the durable part runs on the executor. */
    CompletionStage<String> commit(FilePendingMessage pending, Envelope envelope, List<Header> addedHeaders,
                                   String quarantineReason) {
        open.remove(pending);
        CompletableFuture<String> result = new CompletableFuture<>();
        try {
            executor.execute(() -> store(pending, envelope, addedHeaders, quarantineReason, result));
        } catch (RejectedExecutionException e) {
            cleanUpFailedCommit(pending);
            result.completeExceptionally(new QueueException("queue store is stopping", e, false));
        }
        return result;
    }

    void forget(FilePendingMessage pending) {
        open.remove(pending);
    }

    private void store(FilePendingMessage pending, Envelope envelope, List<Header> addedHeaders,
                       String quarantineReason, CompletableFuture<String> result) {
        String id = pending.id();
        try {
            pending.syncAndClose();
            boolean quarantined = quarantineReason != null;
            QueueEntry entry = new QueueEntry(id, envelope, pending.size(), addedHeaders,
                    quarantined ? State.QUARANTINED : State.QUEUED,
                    envelope.recipients().stream().map(RecipientStatus::pending).toList(), 0,
                    quarantined ? null : clock.instant(), null, quarantineReason);
            // The .msg first: an .env never names bytes that are not in place.
            pending.moveTo(spool.msg(id));
            spool.writeEnv(id, EntryCodec.encode(entry));
            spool.syncQueueDir();
            index.put(id, new Slot(entry));
            pending.committed();
            if (quarantined) {
                LOG.info("{}: queued from=<{}> nrcpt={} size={} quarantined: {}", id, envelope.sender(),
                        envelope.recipients().size(), entry.size(), quarantineReason);
            } else {
                LOG.info("{}: queued from=<{}> nrcpt={} size={}", id, envelope.sender(),
                        envelope.recipients().size(), entry.size());
            }
            postQueued(entry); // before the 250 goes out: the entry is durable and visible already
            result.complete(id);
        } catch (IOException | RuntimeException e) {
            LOG.warn("{}: commit failed: {}", id, e.toString());
            cleanUpFailedCommit(pending);
            result.completeExceptionally(e instanceof IOException io
                    ? Spool.failure(id + ": cannot store message", io)
                    : new QueueException(id + ": cannot store message: " + e, e, false));
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
        return FileContent.of(spool.msg(id), entry.size());
    }

    @Override
    public List<QueueEntry> list(QueueQuery query) {
        QueueQuery q = query == null ? QueueQuery.ALL : query;
        Instant now = clock.instant();
        var stream = snapshot(now).stream().filter(q::matches).skip(Math.max(0, q.offset()));
        return (q.limit() > 0 ? stream.limit(q.limit()) : stream).toList();
    }

    @Override
    public QueueStats stats() {
        Map<State, Long> byState = new EnumMap<>(State.class);
        long totalSize = 0;
        Instant oldest = null;
        for (QueueEntry entry : snapshot(clock.instant())) {
            byState.merge(entry.state(), 1L, Long::sum);
            totalSize += entry.size();
            Instant received = entry.envelope().receivedAt();
            if (oldest == null || received.isBefore(oldest)) {
                oldest = received;
            }
        }
        return new QueueStats(byState, totalSize, oldest);
    }

    /** Every entry as seen now, oldest first. */
    private List<QueueEntry> snapshot(Instant now) {
        List<QueueEntry> entries = new ArrayList<>(index.size());
        for (Slot slot : index.values()) {
            QueueEntry entry = slot.view(now);
            if (entry != null) {
                entries.add(entry);
            }
        }
        entries.sort(OLDEST_FIRST);
        return entries;
    }

    private static final Comparator<QueueEntry> OLDEST_FIRST = Comparator
            .comparing((QueueEntry e) -> e.envelope().receivedAt())
            .thenComparing(QueueEntry::id);

    // ---- delivering

    @Override
    public List<QueueEntry> lease(Instant now, int max, Duration leaseTime) {
        if (max <= 0) {
            return List.of();
        }
        // Pick candidates from a snapshot (the earliest due first), then claim each under its lock.
        record Candidate(Slot slot, Instant due, String id) {
        }
        List<Candidate> candidates = new ArrayList<>();
        for (Slot slot : index.values()) {
            synchronized (slot) {
                if (slot.isDue(now)) {
                    Instant due = slot.entry.nextAttempt();
                    candidates.add(new Candidate(slot, due == null ? Instant.MIN : due, slot.entry.id()));
                }
            }
        }
        candidates.sort(Comparator.comparing(Candidate::due).thenComparing(Candidate::id));
        List<QueueEntry> leased = new ArrayList<>(Math.min(max, candidates.size()));
        Instant until = now.plus(leaseTime);
        for (Candidate candidate : candidates) {
            if (leased.size() >= max) {
                break;
            }
            Slot slot = candidate.slot();
            synchronized (slot) {
                if (slot.isDue(now)) {
                    slot.leaseUntil = until;
                    leased.add(copy(slot.entry, State.ACTIVE, slot.entry.recipients(), slot.entry.attempts(),
                            slot.entry.nextAttempt(), slot.entry.lastError(), slot.entry.reason()));
                }
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
                try {
                    spool.deleteEntry(id);
                } catch (IOException e) {
                    throw Spool.failure(id + ": cannot remove delivered entry", e);
                }
                remove(slot, id); // the queue manager logs "removed": it knows why
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
            slot.leaseUntil = null;
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
            try {
                spool.deleteEntry(id);
            } catch (IOException e) {
                throw Spool.failure(id + ": cannot delete", e);
            }
            remove(slot, id);
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
        try {
            spool.writeEnv(updated.id(), EntryCodec.encode(updated));
            spool.syncQueueDir();
        } catch (IOException e) {
            throw Spool.failure(updated.id() + ": cannot save entry", e);
        }
        slot.entry = updated;
    }

    private void remove(Slot slot, String id) {
        slot.removed = true;
        index.remove(id, slot);
    }

    private static QueueEntry copy(QueueEntry e, State state, List<RecipientStatus> recipients, int attempts,
                                   Instant nextAttempt, String lastError, String reason) {
        return new QueueEntry(e.id(), e.envelope(), e.size(), e.addedHeaders(), state, recipients, attempts,
                nextAttempt, lastError, reason);
    }

    // ---- recovery

    /** Loads the queue as the last run left it; nothing unreadable is dropped without a trace. */
    private void recover() throws IOException {
        int discarded = 0;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(spool.incoming)) {
            for (Path file : files) {
                Files.deleteIfExists(file);
                discarded++;
            }
        }
        if (discarded > 0) {
            LOG.info("discarded {} message(s) whose transaction never ended", discarded);
        }

        List<Path> envs = new ArrayList<>();
        List<Path> msgs = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(spool.queue)) {
            for (Path file : files) {
                String name = file.getFileName().toString();
                if (name.endsWith(Spool.ENV)) {
                    envs.add(file);
                } else if (name.endsWith(Spool.MSG)) {
                    msgs.add(file);
                } else if (name.endsWith(Spool.ENV + Spool.TMP)) {
                    Files.deleteIfExists(file); // an update that never got renamed: the old .env stands
                } else {
                    LOG.warn("ignoring unknown file in the queue directory: {}", file);
                }
            }
        }

        Instant now = clock.instant();
        int moved = 0;
        for (Path env : envs) {
            String name = env.getFileName().toString();
            String id = name.substring(0, name.length() - Spool.ENV.length());
            try {
                QueueEntry entry = load(id, env);
                if (entry.state() == State.ACTIVE) {
                    entry = copy(entry, entry.attempts() > 0 ? State.DEFERRED : State.QUEUED, entry.recipients(),
                            entry.attempts(), now, entry.lastError(), entry.reason());
                }
                index.put(id, new Slot(entry));
            } catch (CorruptEntryException e) {
                Path msg = spool.msg(id);
                Path where = spool.moveToCorrupt(env);
                if (Files.exists(msg)) {
                    spool.moveToCorrupt(msg);
                }
                moved++;
                LOG.warn("{}: unreadable entry moved to {}: {}", id, where.getParent(), e.getMessage());
            }
        }
        for (Path msg : msgs) {
            String name = msg.getFileName().toString();
            String id = name.substring(0, name.length() - Spool.MSG.length());
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
        LOG.info("spool {}: {} entries loaded{}", spool.root, index.size(),
                moved > 0 ? ", " + moved + " moved to corrupt/" : "");
    }

    private QueueEntry load(String id, Path env) throws CorruptEntryException {
        QueueEntry entry;
        long actualSize;
        try {
            entry = EntryCodec.decode(Files.readAllBytes(env));
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

    // ---- in memory

    /** One entry's state and its lock. {@code entry} is as on disk, never ACTIVE; the lease is kept beside it. */
    private static final class Slot {
        QueueEntry entry;
        Instant leaseUntil;
        boolean removed;

        Slot(QueueEntry entry) {
            this.entry = entry;
        }

        synchronized QueueEntry view(Instant now) {
            if (removed) {
                return null;
            }
            return leased(now) ? copy(entry, State.ACTIVE, entry.recipients(), entry.attempts(),
                    entry.nextAttempt(), entry.lastError(), entry.reason()) : entry;
        }

        boolean leased(Instant now) {
            return leaseUntil != null && leaseUntil.isAfter(now);
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
