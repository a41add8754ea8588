package org.postern.smtp.internal;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueStore;

/** A QueueStore in memory for session tests; commits complete when the test says so, or at once. */
final class MemoryQueue extends ReceiveOnlyStore {

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
}
