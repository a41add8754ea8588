package org.postern.queue.file.internal;

import java.io.IOException;
import java.io.InputStream;
import java.lang.annotation.Annotation;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import java.util.stream.Stream;

import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.QueueStore.QueueException;
import org.postern.api.queue.RecipientStatus;
import org.postern.testsupport.MutableClock;

/** Helpers shared by the store's tests: starting stores on a spool, making envelopes, committing many. */
final class StoreFixture implements AutoCloseable {

    static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

    final Path spool;
    final MutableClock clock = new MutableClock(T0);
    private final List<FileQueueStore> started = new ArrayList<>();

    StoreFixture(Path spool) {
        this.spool = spool;
    }

    FileQueueStore start() throws IOException {
        return start(new FileQueueStore(clock, null));
    }

    FileQueueStore start(FileQueueStore store) throws IOException {
        store.activate(config(spool.toString()));
        started.add(store);
        return store;
    }

    void stop(FileQueueStore store) {
        started.remove(store);
        store.deactivate();
    }

    /** Stops a store the way a killed process stops: no checkpoint, the spool left as it is. */
    void halt(FileQueueStore store) {
        started.remove(store);
        store.halt();
    }

    @Override
    public void close() {
        for (FileQueueStore store : started) {
            store.deactivate();
        }
        started.clear();
    }

    static FileQueueStore.Config config(String dir) {
        return config(dir, 512);
    }

    static FileQueueStore.Config config(String dir, int memoryMb) {
        return new FileQueueStore.Config() {
            @Override
            public String spool_dir() {
                return dir;
            }

            @Override
            public int memory_mb() {
                return memoryMb;
            }

            @Override
            public Class<? extends Annotation> annotationType() {
                return FileQueueStore.Config.class;
            }
        };
    }

    static Envelope envelope(String sender, Instant receivedAt, String... recipients) {
        return new Envelope(MailAddress.parse(sender),
                Stream.of(recipients).map(r -> Recipient.of(MailAddress.parse(r))).toList(),
                null, null, BodyType.SEVEN_BIT, false,
                new ClientInfo("192.0.2.1", null, "client.example", "ESMTP", null, null, null, "mx"), receivedAt);
    }

    static String store(FileQueueStore store, Envelope envelope, String message) throws Exception {
        PendingMessage pending = store.begin();
        write(pending, message);
        return pending.commit(envelope, List.of(), null).toCompletableFuture().get(30, TimeUnit.SECONDS);
    }

    static void write(PendingMessage pending, String text) throws QueueException {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        pending.write(bytes, 0, bytes.length);
    }

    /**
     * Commits {@code count} messages from {@code threads} threads at once, as that many SMTP sessions would;
     * message i has envelope {@code envelopes.apply(i)} and the text {@code "message i\r\n"}.
     *
     * @return the queue ids, by i
     */
    static String[] storeMany(FileQueueStore store, int count, int threads, IntFunction<Envelope> envelopes)
            throws Exception {
        String[] ids = new String[count];
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int first = t;
                futures.add(pool.submit(() -> {
                    for (int i = first; i < count; i += threads) {
                        ids[i] = store(store, envelopes.apply(i), "message " + i + "\r\n");
                    }
                    return null;
                }));
            }
            for (Future<?> future : futures) {
                future.get(10, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
        return ids;
    }

    static byte[] read(MessageContent content) throws IOException {
        try (InputStream in = content.openStream()) {
            return in.readAllBytes();
        }
    }

    static String text(MessageContent content) throws IOException {
        return new String(read(content), StandardCharsets.UTF_8);
    }

    List<String> files(String dir) throws IOException {
        try (Stream<Path> files = Files.list(spool.resolve(dir))) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    static RecipientStatus outcome(QueueEntry entry, int index, RecipientStatus.State state, String diagnostic) {
        return new RecipientStatus(entry.envelope().recipients().get(index), state,
                state == RecipientStatus.State.DELIVERED ? "2.0.0" : "4.0.0", diagnostic, "mx.example.net");
    }

    static CompletableFuture<String> commitAsync(FileQueueStore store, Envelope envelope, String message)
            throws QueueException {
        PendingMessage pending = store.begin();
        write(pending, message);
        return pending.commit(envelope, List.of(), null).toCompletableFuture();
    }
}
