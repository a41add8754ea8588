package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

import org.postern.api.queue.QueueStore.QueueException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Group commit for the spool: every change (a new entry, a new state, a removal) is recorded in a
 * write-ahead log ({@link Wal}); one committer takes every change waiting, appends them all and makes them
 * durable with ONE fdatasync, and only then completes them. A 250 after DATA therefore waits for one fsync
 * shared by every session that finished DATA meanwhile, not for several of its own.
 *
 * <p>The per-entry files come later, off the critical path. A new entry whose message is in memory gets
 * none at first (the log holds it); other changes write their files to the page cache only. A log file is
 * sealed every {@link #CHECKPOINT_MILLIS} (or when it is large), and a checkpoint writes the files of the
 * entries it touched that still exist and have none yet, fsyncs them, fsyncs the directory, and then
 * deletes the log file. An entry removed before its checkpoint (the common case for mail relayed at once)
 * never costs a file at all. After a crash, {@link #recover} replays the log files still there onto the
 * per-entry files, so the spool reads as if every acknowledged change had reached its files; then the store
 * loads the files as always.
 */
final class Journal {

    /** Seal the log at this size even before the next tick, so one checkpoint stays small. */
    static final long SEGMENT_BYTES = 64L << 20;
    /** Stop taking changes while this much sealed log waits for its checkpoint: the spool's pace, not the log's. */
    static final long MAX_BACKLOG_BYTES = 512L << 20;
    static final long CHECKPOINT_MILLIS = 5000;
    private static final long MAX_BACKLOG_WAIT_MILLIS = 10_000;
    /** Helpers of the committer for a batch's file work (the committer does a share itself). */
    static final int PREPARE_THREADS = 3;

    private static final Logger LOG = LoggerFactory.getLogger(Journal.class);

    /**
     * A change handed to the committer. {@code prepare} runs on the committer or one of its helpers, the
     * rest on the committer (a change refused at stop fails on the caller's thread). None of them takes an
     * entry's lock: a caller may hold one while it waits for its change.
     */
    abstract static class Job {
        final String id;
        /** Set by the committer once durable or failed was called: never both, never twice. */
        private boolean settled;

        Job(String id) {
            this.id = id;
        }

        /** Writes this change's files (page cache only) and returns its log record; throwing fails this job alone. */
        abstract Wal.Record prepare() throws IOException;

        /** The record is durable: make the change visible and complete it. */
        abstract void durable();

        /**
         * The change failed. {@code prepared}: prepare had written files, which must be taken back
         * because the log write failed.
         */
        abstract void failed(QueueException error, boolean prepared);

        /** Whether this change made the entry's .msg (so a checkpoint fsyncs it too). */
        boolean creates() {
            return false;
        }

        /** Whether this change removes the entry (which needs no disk space: see {@link #removeWithoutLog}). */
        boolean removes() {
            return false;
        }
    }

    /** What the checkpoint found of an entry's files. */
    enum FileState {
        /** The entry is gone. */
        GONE,
        /** The entry has had its files since before this checkpoint. */
        PRESENT,
        /** The entry's files were only in memory and the log, and have just been written. */
        WRITTEN
    }

    /** Writes an entry's files if it is still there and has none yet. */
    interface FileWriter {
        FileState write(String id) throws IOException;
    }

    /** Seen by tests: called on the committer thread before each log sync with the batch's record count. */
    interface SyncListener {
        void syncing(int records) throws IOException;
    }

    /** A log file's changes: which entries it touched, and which it created. */
    private static final class Segment {
        final Path file;
        final long seq;
        final Set<String> touched = new HashSet<>();
        final Set<String> created = new HashSet<>();
        long bytes;

        Segment(Path file, long seq) {
            this.file = file;
            this.seq = seq;
        }
    }

    /** Asks the committer to seal the current log file between two batches. */
    private static final class SealJob extends Job {
        final CompletableFuture<Void> done = new CompletableFuture<>();

        SealJob() {
            super(null);
        }

        @Override
        Wal.Record prepare() {
            throw new UnsupportedOperationException();
        }

        @Override
        void durable() {
            done.complete(null);
        }

        @Override
        void failed(QueueException error, boolean prepared) {
            done.completeExceptionally(error);
        }
    }

    private final Spool spool;
    private final FileWriter files;
    private final ExecutorService committer;
    private final ExecutorService syncPool;
    private final ExecutorService preparePool;
    private final ScheduledExecutorService timer;
    private final long checkpointMillis;
    private final AtomicLong syncs = new AtomicLong();
    volatile SyncListener syncListener;

    // Guarded by this: the waiting changes and whether a drain task runs.
    private final Deque<Job> waiting = new ArrayDeque<>();
    private boolean draining;
    private boolean stopped;

    // Committer thread only (and start/stop, when no drain runs).
    /** Where a batch's records gather on their way to the log: one write per MiB, not per record. */
    private final ByteBuffer staging = ByteBuffer.allocateDirect(1 << 20);
    private Wal.Writer wal;
    private Segment current;
    private long nextSeq;
    private volatile Thread committerThread;

    /** One checkpoint at a time (the timer's, or the last one at stop). */
    private final Object checkpointing = new Object();

    // Guarded by sealed: log files waiting for their checkpoint, oldest first.
    private final Deque<Segment> sealed = new ArrayDeque<>();
    private long sealedBytes;

    /**
     * @param files writes an entry's files at its checkpoint
     * @param committer runs the drain task (one at a time)
     * @param preparePool {@link #PREPARE_THREADS} helpers of the committer
     * @param syncPool runs the checkpoint's fsyncs and recovery's parallel work
     * @param timer runs the checkpoint every {@code checkpointMillis}
     * @param checkpointMillis normally {@link #CHECKPOINT_MILLIS}; 0 for none but at stop (tests)
     */
    Journal(Spool spool, FileWriter files, ExecutorService committer, ExecutorService preparePool,
            ExecutorService syncPool, ScheduledExecutorService timer, long checkpointMillis) {
        this.spool = spool;
        this.files = files;
        this.committer = committer;
        this.preparePool = preparePool;
        this.syncPool = syncPool;
        this.timer = timer;
        this.checkpointMillis = checkpointMillis;
    }

    void start() {
        if (checkpointMillis > 0) {
            timer.scheduleWithFixedDelay(this::checkpointTick, checkpointMillis, checkpointMillis, TimeUnit.MILLISECONDS);
        }
    }

    /** Log syncs made so far: the number of group commits. */
    long syncs() {
        return syncs.get();
    }

    /** Changes handed over and not yet taken by the committer. */
    synchronized int queuedChanges() {
        return waiting.size();
    }

    // ---- taking changes

    /** Hands a change to the committer; it completes through the job's own callbacks. */
    void submit(Job job) {
        boolean accepted;
        boolean schedule = false;
        synchronized (this) {
            accepted = !stopped;
            if (accepted) {
                waiting.add(job);
                schedule = !draining;
                draining = true;
            }
        }
        if (!accepted) {
            job.failed(new QueueException("queue store is stopping"), false);
            return;
        }
        if (!schedule) {
            return; // the running drain takes it
        }
        try {
            committer.execute(this::drain);
        } catch (RejectedExecutionException e) {
            List<Job> lost;
            synchronized (this) {
                stopped = true;
                draining = false;
                lost = new ArrayList<>(waiting);
                waiting.clear();
                notifyAll();
            }
            for (Job j : lost) {
                fail(j, new QueueException("queue store is stopping", e, false), false);
            }
        }
    }

    private synchronized boolean isStopped() {
        return stopped;
    }

    /** Runs a change and waits until it is durable; for callers off the committer thread. */
    void run(Job job, CompletableFuture<?> done) throws QueueException {
        if (Thread.currentThread() == committerThread) {
            // It would wait for itself: a commit's completion callback must not change the queue inline.
            throw new QueueException(job.id + ": queue changed from the queue's own commit thread");
        }
        submit(job);
        try {
            done.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof QueueException qe ? qe
                    : new QueueException(job.id + ": " + cause, cause, Spool.isStorageFull(cause));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new QueueException(job.id + ": interrupted while waiting for the disk", e, false);
        }
    }

    /** The committer: takes every waiting change as one batch, until none is left. */
    private void drain() {
        committerThread = Thread.currentThread();
        boolean idle = false;
        try {
            while (true) {
                List<Job> batch;
                synchronized (this) {
                    if (waiting.isEmpty()) {
                        draining = false;
                        notifyAll();
                        idle = true;
                        return;
                    }
                    batch = new ArrayList<>(waiting);
                    waiting.clear();
                }
                awaitBacklog();
                try {
                    commit(batch);
                } catch (RuntimeException e) {
                    LOG.error("queue commit failed unexpectedly", e);
                    QueueException error = new QueueException("queue commit failed: " + e, e, false);
                    for (Job job : batch) {
                        fail(job, error, true);
                    }
                }
            }
        } finally {
            committerThread = null;
            if (!idle) {
                synchronized (this) {
                    draining = false; // an Error got out: the next change starts a new drain
                    notifyAll();
                }
            }
        }
    }

    private static void durable(Job job) {
        if (job.settled) {
            return;
        }
        job.settled = true;
        try {
            job.durable();
        } catch (RuntimeException e) {
            LOG.error("{}: completing a durable change failed", job.id, e);
        }
    }

    private static void fail(Job job, QueueException error, boolean prepared) {
        if (job.settled) {
            return;
        }
        job.settled = true;
        try {
            job.failed(error, prepared);
        } catch (RuntimeException e) {
            LOG.error("{}: failing a change failed too", job.id, e);
        }
    }

    private void commit(List<Job> batch) {
        List<Job> ready = new ArrayList<>(batch.size());
        List<Wal.Record> records = new ArrayList<>(batch.size());
        List<SealJob> seals = new ArrayList<>(1);
        List<Job> jobs = new ArrayList<>(batch.size());
        for (Job job : batch) {
            if (job instanceof SealJob seal) {
                seals.add(seal);
            } else {
                jobs.add(job);
            }
        }
        Object[] prepared = prepareAll(jobs);
        for (int i = 0; i < jobs.size(); i++) {
            Job job = jobs.get(i);
            if (prepared[i] instanceof Wal.Record record) {
                records.add(record);
                ready.add(job);
            } else {
                fail(job, failure(job.id, (Throwable) prepared[i]), false);
            }
        }
        if (!records.isEmpty()) {
            long before = -1;
            try {
                if (wal == null) {
                    open();
                }
                before = wal.size();
                wal.append(records, staging);
                SyncListener listener = syncListener;
                if (listener != null) {
                    listener.syncing(records.size());
                }
                wal.sync();
                syncs.incrementAndGet();
            } catch (IOException | RuntimeException e) {
                QueueException error = failure(ready.size() == 1 ? ready.get(0).id : ready.size() + " changes", e);
                LOG.warn("queue log write failed, {} change(s) not made: {}", ready.size(), e.toString());
                abandon(before);
                boolean full = Spool.isStorageFull(e);
                for (Job job : ready) {
                    if (full && job.removes() && removeWithoutLog(job.id)) {
                        durable(job);
                    } else {
                        fail(job, error, true);
                    }
                }
                ready.clear();
            }
            for (Job job : ready) {
                current.touched.add(job.id);
                if (job.creates()) {
                    current.created.add(job.id);
                }
                durable(job);
            }
        }
        if (!seals.isEmpty() || wal != null && wal.size() >= SEGMENT_BYTES) {
            seal(false);
        }
        for (SealJob seal : seals) {
            durable(seal);
        }
    }

    /**
     * Runs the jobs' prepare steps, several at once: creating and renaming files is most of a commit's cost
     * outside the sync, and much of it is waiting on the file system's journal, not CPU.
     *
     * @return per job, its record or what it threw
     */
    private Object[] prepareAll(List<Job> jobs) {
        Object[] results = new Object[jobs.size()];
        int shares = Math.min(jobs.size(), PREPARE_THREADS + 1);
        List<Future<?>> helpers = new ArrayList<>(shares);
        for (int share = 1; share < shares; share++) {
            int first = share;
            try {
                helpers.add(preparePool.submit(() -> prepareShare(jobs, results, first, shares)));
            } catch (RejectedExecutionException e) {
                prepareShare(jobs, results, first, shares);
            }
        }
        prepareShare(jobs, results, 0, shares);
        for (Future<?> helper : helpers) {
            try {
                helper.get();
            } catch (ExecutionException e) {
                LOG.error("preparing queue changes failed", e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (int i = 0; i < results.length; i++) {
            if (results[i] == null) {
                results[i] = new IOException("not prepared");
            }
        }
        return results;
    }

    private static void prepareShare(List<Job> jobs, Object[] results, int first, int step) {
        for (int i = first; i < jobs.size(); i += step) {
            try {
                results[i] = jobs.get(i).prepare();
            } catch (IOException | RuntimeException e) {
                results[i] = e;
            }
        }
    }

    /**
     * Removes an entry the old way when the disk is too full for even a log record: delete its files and
     * sync the directory. A full disk must not stop the queue from draining. The cost: an older log file
     * not yet checkpointed still holds the entry, so a crash before that checkpoint brings it back (a
     * duplicate delivery, never a loss).
     */
    private boolean removeWithoutLog(String id) {
        try {
            Files.deleteIfExists(spool.env(id));
            Files.deleteIfExists(spool.msg(id));
            spool.syncQueueDir();
            LOG.warn("{}: removed without a log record: the disk is full", id);
            return true;
        } catch (IOException e) {
            LOG.warn("{}: cannot remove on a full disk either: {}", id, e.toString());
            return false;
        }
    }

    private void open() throws IOException {
        Path file = spool.journal.resolve(Wal.fileName(nextSeq));
        Wal.Writer writer = new Wal.Writer(file, nextSeq);
        try {
            spool.syncJournalDir(); // the new file's name must survive a crash with the records in it
        } catch (IOException e) {
            writer.close();
            Files.deleteIfExists(file);
            throw e;
        }
        nextSeq++;
        wal = writer;
        current = new Segment(file, writer.seq);
    }

    /**
     * After a failed write or sync the file's tail is unknown: cut the batch off if possible and, either way,
     * go on in a new file, so no acknowledged record ever follows unreadable bytes.
     */
    private void abandon(long before) {
        if (wal == null) {
            return;
        }
        if (before >= 0) {
            try {
                wal.truncate(before);
            } catch (IOException | RuntimeException e) {
                LOG.warn("cannot cut a failed batch off {}: {}", wal.file, e.toString());
            }
        }
        seal(true);
    }

    /**
     * Closes the current log file and queues it for its checkpoint; the next batch opens a new one. An empty
     * file is kept open unless {@code force} (its tail is in doubt).
     */
    private void seal(boolean force) {
        if (wal == null) {
            return;
        }
        if (!force && wal.size() == 0 && current.touched.isEmpty()) {
            return;
        }
        try {
            wal.close();
        } catch (IOException e) {
            LOG.warn("closing {}: {}", wal.file, e.toString());
        }
        current.bytes = wal.size();
        synchronized (sealed) {
            sealed.add(current);
            sealedBytes += current.bytes;
        }
        wal = null;
        current = null;
    }

    /** Back-pressure: the log may run ahead of the per-entry files, by a bounded amount. */
    private void awaitBacklog() {
        long deadline = System.currentTimeMillis() + MAX_BACKLOG_WAIT_MILLIS;
        synchronized (sealed) {
            while (sealedBytes > MAX_BACKLOG_BYTES && !isStopped()) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    LOG.warn("queue checkpoints are {} MiB behind; going on", sealedBytes >> 20);
                    return;
                }
                try {
                    sealed.wait(Math.min(left, 100));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    // ---- checkpoints

    private void checkpointTick() {
        checkpointSealed(); // first, so a committer held back by the backlog can go on
        try {
            SealJob seal = new SealJob();
            submit(seal);
            seal.done.get(MAX_BACKLOG_WAIT_MILLIS * 3, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            return; // stopping, or the committer is stuck: the next tick tries again
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        checkpointSealed();
    }

    /** Checkpoints sealed log files in order, up to the first that fails (it stays for a later try). */
    private void checkpointSealed() {
        synchronized (checkpointing) {
            checkpointSealedLocked();
        }
    }

    private void checkpointSealedLocked() {
        while (true) {
            Segment segment;
            synchronized (sealed) {
                segment = sealed.peekFirst();
            }
            if (segment == null) {
                return;
            }
            try {
                checkpoint(segment);
            } catch (IOException | RuntimeException e) {
                LOG.warn("queue checkpoint of {} failed, will retry: {}", segment.file, e.toString());
                return;
            }
            synchronized (sealed) {
                sealed.removeFirst();
                sealedBytes -= segment.bytes;
                sealed.notifyAll();
            }
        }
    }

    /**
     * Makes a sealed log file's changes durable in the per-entry files, then deletes it. Runs beside the
     * committer: a file it syncs may already hold a later state, which is durable in a later log file anyway.
     */
    private void checkpoint(Segment segment) throws IOException {
        List<Callable<Void>> tasks = new ArrayList<>(segment.touched.size());
        for (String id : segment.touched) {
            boolean created = segment.created.contains(id);
            tasks.add(() -> {
                switch (files.write(id)) {
                    case WRITTEN -> {
                        syncIfPresent(spool.msg(id));
                        syncIfPresent(spool.env(id));
                    }
                    case PRESENT -> {
                        if (created) {
                            syncIfPresent(spool.msg(id));
                        }
                        syncIfPresent(spool.env(id));
                    }
                    default -> {
                        // Removed: the files went with it, if it had any; make sure, as replay would.
                        Files.deleteIfExists(spool.env(id));
                        Files.deleteIfExists(spool.msg(id));
                    }
                }
                return null;
            });
        }
        runAll(tasks);
        spool.syncQueueDir();
        Files.deleteIfExists(segment.file);
        // A log file that came back after a crash would replay old states over newer ones.
        spool.syncJournalDir();
    }

    private static void syncIfPresent(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (NoSuchFileException e) {
            // removed since; its removal is in a later log file
        }
    }

    /** Runs tasks on the sync pool and waits for all; the first failure is thrown. */
    void runAll(List<? extends Callable<Void>> tasks) throws IOException {
        List<Future<Void>> futures = new ArrayList<>(tasks.size());
        for (Callable<Void> task : tasks) {
            futures.add(syncPool.submit(task));
        }
        IOException failure = null;
        for (Future<Void> future : futures) {
            try {
                future.get();
            } catch (ExecutionException e) {
                if (failure == null) {
                    failure = e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    // ---- start and stop

    /**
     * Replays the log files a crash left onto the per-entry files (unsynced: the log files stay until their
     * checkpoint). A log file's unreadable tail (a write cut short, or damage) is copied to corrupt/ and
     * cut off. Runs before the store loads the spool.
     */
    void recover() throws IOException {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> dir = Files.newDirectoryStream(spool.journal)) {
            for (Path file : dir) {
                if (Wal.seq(file) >= 0) {
                    files.add(file);
                } else {
                    LOG.warn("ignoring unknown file in the journal directory: {}", file);
                }
            }
        }
        files.sort((a, b) -> Long.compareUnsigned(Wal.seq(a), Wal.seq(b)));

        Map<String, Replay> latest = new HashMap<>();
        List<Segment> replayed = new ArrayList<>();
        int records = 0;
        for (Path file : files) {
            Segment segment = new Segment(file, Wal.seq(file));
            int[] count = {0};
            long good = Wal.scan(file, position -> {
                count[0]++;
                String id = position.id();
                segment.touched.add(id);
                Replay replay = latest.computeIfAbsent(id, k -> new Replay());
                switch (position.type()) {
                    case Wal.ENTRY -> {
                        segment.created.add(id);
                        replay.env = position;
                        replay.msg = position;
                        replay.msgFile = file;
                        replay.envFile = file;
                        replay.removed = false;
                    }
                    case Wal.STATE -> {
                        replay.env = position;
                        replay.envFile = file;
                    }
                    default -> {
                        replay.removed = true;
                        replay.env = null;
                        replay.msg = null;
                    }
                }
            });
            records += count[0];
            long size = Files.size(file);
            if (good < size) {
                Path kept = spool.copyToCorrupt(file, good, file.getFileName() + ".tail");
                try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                    channel.truncate(good);
                    channel.force(true);
                }
                LOG.warn("journal {}: {} unreadable octets after offset {} (a write cut short by a crash, or damage) "
                        + "copied to {} and cut off", file.getFileName(), size - good, good, kept);
            }
            nextSeq = Math.max(nextSeq, segment.seq + 1);
            if (good == 0) {
                Files.delete(file);
            } else {
                segment.bytes = good;
                replayed.add(segment);
            }
        }
        if (latest.isEmpty()) {
            return;
        }

        List<Callable<Void>> tasks = new ArrayList<>();
        List<Map.Entry<String, Replay>> all = new ArrayList<>(latest.entrySet());
        int chunk = 500;
        for (int start = 0; start < all.size(); start += chunk) {
            List<Map.Entry<String, Replay>> part = all.subList(start, Math.min(all.size(), start + chunk));
            tasks.add(() -> {
                for (Map.Entry<String, Replay> e : part) {
                    apply(e.getKey(), e.getValue());
                }
                return null;
            });
        }
        runAll(tasks);
        synchronized (sealed) {
            for (Segment segment : replayed) {
                sealed.add(segment);
                sealedBytes += segment.bytes;
            }
        }
        LOG.info("journal: replayed {} change(s) of {} entries from {} file(s)", records, latest.size(),
                replayed.size());
    }

    /** Where an entry's last state (and, if it was created in the log, its message) lies in the log. */
    private static final class Replay {
        Wal.Position env;
        Path envFile;
        Wal.Position msg;
        Path msgFile;
        boolean removed;
    }

    private void apply(String id, Replay replay) throws IOException {
        if (replay.removed) {
            Files.deleteIfExists(spool.env(id));
            Files.deleteIfExists(spool.msg(id));
            return;
        }
        if (replay.msg != null) {
            try (FileChannel from = FileChannel.open(replay.msgFile, StandardOpenOption.READ);
                 FileChannel to = FileChannel.open(spool.msg(id), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                         StandardOpenOption.TRUNCATE_EXISTING)) {
                long offset = replay.msg.msgOffset();
                long length = replay.msg.msgLength();
                for (long done = 0; done < length; ) {
                    long n = from.transferTo(offset + done, length - done, to);
                    if (n <= 0) {
                        throw new IOException(replay.msgFile + ": cannot copy message of " + id);
                    }
                    done += n;
                }
            }
        }
        byte[] env = new byte[replay.env.envLength()];
        try (FileChannel from = FileChannel.open(replay.envFile, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.wrap(env);
            while (buffer.hasRemaining()) {
                if (from.read(buffer, replay.env.envOffset() + buffer.position()) < 0) {
                    throw new IOException(replay.envFile + ": cannot read envelope of " + id);
                }
            }
        }
        spool.rewriteEnv(id, env);
    }

    /**
     * Takes no more changes, lets the committer finish those it has, then checkpoints everything, so a clean
     * stop leaves no log behind. The caller shuts the executors down afterwards.
     */
    void stop(long waitMillis) {
        synchronized (this) {
            stopped = true;
        }
        timer.shutdown();
        try {
            timer.awaitTermination(waitMillis, TimeUnit.MILLISECONDS);
            long deadline = System.currentTimeMillis() + waitMillis;
            synchronized (this) {
                while (draining && System.currentTimeMillis() < deadline) {
                    wait(Math.max(1, Math.min(100, deadline - System.currentTimeMillis())));
                }
                if (draining) {
                    LOG.warn("queue commits still running after {} ms; their log stays for the next start", waitMillis);
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        seal(false);
        checkpointSealed();
    }

    /** For a start that failed half way: no checkpoint, since the store does not know its entries. */
    void abort() {
        synchronized (this) {
            stopped = true;
        }
        timer.shutdownNow();
    }

    private static QueueException failure(String what, Throwable e) {
        if (e instanceof QueueException qe) {
            return qe;
        }
        return e instanceof IOException io ? Spool.failure(what + ": cannot store", io)
                : new QueueException(what + ": cannot store: " + e, e, false);
    }
}
