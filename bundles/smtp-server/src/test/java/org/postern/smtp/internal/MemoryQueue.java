package org.postern.smtp.internal;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore;

/** A QueueStore in memory for session tests; commits complete when the test says so, or at once. */
final class MemoryQueue implements QueueStore {

    record Stored(String id, Envelope envelope, byte[] bytes, List<Header> added, String quarantine) {
    }

    final List<Stored> stored = new ArrayList<>();
    final AtomicInteger aborted = new AtomicInteger();
    boolean holdCommits;
    private int next;

    @Override
    public PendingMessage begin() {
        String id = "Q" + (++next);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        return new PendingMessage() {
            @Override
            public String id() {
                return id;
            }

            @Override
            public void write(byte[] bytes, int offset, int length) {
                out.write(bytes, offset, length);
            }

            @Override
            public long size() {
                return out.size();
            }

            @Override
            public MessageContent content() {
                return bytes(out.toByteArray());
            }

            @Override
            public CompletionStage<String> commit(Envelope envelope, List<Header> addedHeaders, String quarantineReason) {
                CompletableFuture<String> f = new CompletableFuture<>();
                Runnable store = () -> {
                    stored.add(new Stored(id, envelope, out.toByteArray(), addedHeaders, quarantineReason));
                    f.complete(id);
                };
                if (holdCommits) {
                    pendingStores.add(store);
                } else {
                    store.run();
                }
                return f;
            }

            @Override
            public void abort() {
                aborted.incrementAndGet();
            }
        };
    }

    final List<Runnable> pendingStores = new ArrayList<>();

    void releaseCommits() {
        pendingStores.forEach(Runnable::run);
        pendingStores.clear();
    }

    static MessageContent bytes(byte[] b) {
        return new MessageContent() {
            @Override
            public long size() {
                return b.length;
            }

            @Override
            public InputStream openStream() {
                return new ByteArrayInputStream(b);
            }
        };
    }

    @Override
    public Optional<QueueEntry> get(String id) {
        return Optional.empty();
    }

    @Override
    public MessageContent content(String id) {
        throw new UnsupportedOperationException();
    }

    @Override
    public List<QueueEntry> list(QueueQuery query) {
        return List.of();
    }

    @Override
    public QueueStats stats() {
        throw new UnsupportedOperationException();
    }

    @Override
    public List<QueueEntry> lease(Instant now, int max, Duration leaseTime) {
        return List.of();
    }

    @Override
    public void record(String id, List<org.postern.api.queue.RecipientStatus> outcomes, Instant nextAttempt) {
    }

    @Override
    public boolean hold(String id) {
        return false;
    }

    @Override
    public boolean release(String id) {
        return false;
    }

    @Override
    public boolean requeue(String id) {
        return false;
    }

    @Override
    public boolean delete(String id) {
        return false;
    }
}
