package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.RecipientStatus;

/**
 * Figures for the store alone, no SMTP: commits from many sessions at once while workers lease and record
 * (relay), commits with nobody delivering (burst), restart time and query times of a large queue. A plain
 * main, not a test (surefire does not run it); bench/queue/run.sh runs it, see bench/queue/README.md.
 *
 * <pre>
 * QueueBench [--dir DIR] [--sessions 50] [--count 20000] [--queue 100000]
 * </pre>
 *
 * {@code --count} messages per 1 KiB case (a tenth of it for 100 KiB), {@code --queue} entries for the
 * large-queue figures (0 to skip them). The spool is deleted at the end.
 */
public final class QueueBench {

    public static void main(String[] args) throws Exception {
        Path dir = null;
        int sessions = 50;
        int count = 20_000;
        int queue = 100_000;
        for (int i = 0; i < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--dir" -> dir = Paths.get(value);
                case "--sessions" -> sessions = Integer.parseInt(value);
                case "--count" -> count = Integer.parseInt(value);
                case "--queue" -> queue = Integer.parseInt(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (dir == null) {
            dir = Files.createTempDirectory("postern-queue-bench");
        }
        System.out.printf(Locale.ROOT, "spool %s, %d sessions, %d cores, load average %.2f%n", dir, sessions,
                Runtime.getRuntime().availableProcessors(),
                java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        try {
            run(dir, sessions, count, queue);
        } finally {
            delete(dir);
        }
    }

    private static void run(Path dir, int sessions, int count, int queue) throws Exception {
        FileQueueStore store = start(dir);
        relay(store, sessions, 8, 2000, 1024, null); // warm-up: the JIT, and free files to reuse

        relay(store, sessions, 8, count, 1024, "relay 1 KiB");
        relay(store, sessions, 8, Math.max(200, count / 10), 100 * 1024, "relay 100 KiB");
        accept(store, 1, Math.max(200, count / 20), 1024, "commit 1 KiB, 1 session");
        drain(store, 8, false);
        accept(store, sessions, count, 1024, "burst 1 KiB (queue grows)");
        drain(store, 8, true);

        if (queue > 0) {
            accept(store, sessions, queue, 512, "fill the queue (512 B)");
            stop(store);
            long t0 = System.nanoTime();
            FileQueueStore restarted = start(dir);
            store = restarted;
            double restart = seconds(t0);
            System.out.printf(Locale.ROOT, "%-34s %10.2f s  (%d entries)%n", "restart to ready", restart,
                    restarted.stats().total());
            time("list first page (50)", () -> restarted.list(new QueueQuery(null, null, null, 0, 50)).size());
            time("list page at offset " + queue / 2,
                    () -> restarted.list(new QueueQuery(null, null, null, queue / 2, 50)).size());
            time("list filtered by recipient", () -> restarted.list(new QueueQuery(null, null, "r7@", 0, 50)).size());
            time("stats", () -> (int) restarted.stats().total());
            time("lease 100", () -> restarted.lease(Instant.now(), 100, Duration.ofMinutes(5)).size());
            drain(store, 8, true);
        }
        stop(store);
    }

    /** Commits and delivers at once, as an MTA relaying to a fast next hop: the queue stays short. */
    private static void relay(FileQueueStore store, int sessions, int workers, int count, int size, String label)
            throws Exception {
        AtomicBoolean accepting = new AtomicBoolean(true);
        AtomicLong recorded = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(workers);
        List<Future<?>> futures = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int w = 0; w < workers; w++) {
            futures.add(pool.submit(() -> {
                while (true) {
                    boolean more = accepting.get();
                    List<QueueEntry> leased = store.lease(Instant.now(), 20, Duration.ofMinutes(5));
                    if (leased.isEmpty()) {
                        if (!more) {
                            return null;
                        }
                        Thread.sleep(1);
                        continue;
                    }
                    for (QueueEntry entry : leased) {
                        store.record(entry.id(), entry.recipients().stream().map(r -> new RecipientStatus(
                                r.recipient(), RecipientStatus.State.DELIVERED, "2.0.0", "250 ok", "sink")).toList(), null);
                        recorded.incrementAndGet();
                    }
                }
            }));
        }
        accept(store, sessions, count, size, label);
        accepting.set(false);
        for (Future<?> f : futures) {
            f.get();
        }
        pool.shutdown();
        if (label == null) {
            return;
        }
        System.out.printf(Locale.ROOT, "%-34s %10.0f msg/s  (%d delivered and removed, %d workers)%n",
                "  end to end", recorded.get() / seconds(t0), recorded.get(), workers);
    }

    private static void accept(FileQueueStore store, int sessions, int count, int size, String label) throws Exception {
        byte[] body = new byte[size];
        Arrays.fill(body, (byte) 'x');
        for (int i = 78; i < size; i += 80) {
            body[i] = '\r';
            body[i + 1 < size ? i + 1 : i] = '\n';
        }
        AtomicInteger left = new AtomicInteger(count);
        long[] latencies = new long[count];
        AtomicInteger done = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(sessions);
        long cpu0 = cpuNanos();
        long t0 = System.nanoTime();
        List<Future<?>> futures = new ArrayList<>();
        for (int s = 0; s < sessions; s++) {
            int session = s;
            futures.add(pool.submit(() -> {
                while (left.getAndDecrement() > 0) {
                    PendingMessage pending = store.begin();
                    pending.write(body, 0, body.length);
                    long start = System.nanoTime();
                    pending.commit(envelope(session, done.get()), List.of(), null).toCompletableFuture().get();
                    latencies[done.getAndIncrement()] = System.nanoTime() - start;
                }
                return null;
            }));
        }
        for (Future<?> f : futures) {
            f.get();
        }
        double s = seconds(t0);
        double cpu = (cpuNanos() - cpu0) / 1e3 / count;
        pool.shutdown();
        Arrays.sort(latencies);
        if (label == null) {
            return;
        }
        System.out.printf(Locale.ROOT,
                "%-34s %10.0f msg/s  (%d msgs, %d sessions, commit p50 %.2f ms, p99 %.2f ms, CPU %.0f us/msg)%n",
                label, count / s, count, sessions, latencies[count / 2] / 1e6, latencies[(int) (count * 0.99)] / 1e6, cpu);
    }

    /** Leases and records every entry as delivered, as a queue manager whose deliveries all succeed. */
    private static void drain(FileQueueStore store, int workers, boolean print) throws Exception {
        AtomicLong recorded = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(workers);
        long t0 = System.nanoTime();
        List<Future<?>> futures = new ArrayList<>();
        for (int w = 0; w < workers; w++) {
            futures.add(pool.submit(() -> {
                while (true) {
                    List<QueueEntry> leased = store.lease(Instant.now(), 20, Duration.ofMinutes(5));
                    if (leased.isEmpty()) {
                        return null;
                    }
                    for (QueueEntry entry : leased) {
                        store.record(entry.id(), entry.recipients().stream().map(r -> new RecipientStatus(
                                r.recipient(), RecipientStatus.State.DELIVERED, "2.0.0", "250 ok", "sink")).toList(), null);
                        recorded.incrementAndGet();
                    }
                }
            }));
        }
        for (Future<?> f : futures) {
            f.get();
        }
        double s = seconds(t0);
        pool.shutdown();
        if (print) {
            System.out.printf(Locale.ROOT, "%-34s %10.0f rec/s  (%d entries, %d workers)%n", "lease + record delivered",
                    recorded.get() / s, recorded.get(), workers);
        }
    }

    private interface Action {
        int run() throws Exception;
    }

    private static void time(String label, Action action) throws Exception {
        action.run(); // once to warm up
        int runs = 5;
        long best = Long.MAX_VALUE;
        int result = 0;
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            result = action.run();
            best = Math.min(best, System.nanoTime() - t0);
        }
        System.out.printf(Locale.ROOT, "%-34s %10.2f ms  (best of %d, %d results)%n", label, best / 1e6, runs, result);
    }

    private static Envelope envelope(int session, int n) {
        return new Envelope(MailAddress.parse("sender" + session + "@example.org"),
                List.of(Recipient.of(MailAddress.parse("r" + (n % 10) + "@dest" + (n % 7) + ".example"))),
                null, null, BodyType.SEVEN_BIT, false,
                new ClientInfo("127.0.0.1", null, "bench.example", "ESMTP", null, null, null, "mx"), Instant.now());
    }

    private static FileQueueStore start(Path dir) throws IOException {
        FileQueueStore store = new FileQueueStore(Clock.systemUTC(), null);
        store.activate(StoreFixture.config(dir.toString()));
        return store;
    }

    private static void stop(FileQueueStore store) {
        store.deactivate();
    }

    /** CPU time of this process (user and system, every thread), or 0 where the JVM does not tell. */
    private static long cpuNanos() {
        return java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os ? os.getProcessCpuTime() : 0;
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private QueueBench() {
    }

    static {
        // Keep per-message INFO lines ("queued") out of the figures.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn"));
    }
}
