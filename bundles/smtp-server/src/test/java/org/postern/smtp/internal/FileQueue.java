package org.postern.smtp.internal;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueStore;

/**
 * A QueueStore that streams each message to a file through a fixed 64 KB buffer, so a test measures what
 * the listener holds, not the store. It counts the octets written and the largest single write.
 */
final class FileQueue extends ReceiveOnlyStore {

    final Path dir;
    final AtomicLong written = new AtomicLong();
    final AtomicInteger largestWrite = new AtomicInteger();
    final ConcurrentHashMap<String, Path> stored = new ConcurrentHashMap<>();
    private final AtomicInteger next = new AtomicInteger();

    FileQueue(Path dir) {
        this.dir = dir;
    }

    @Override
    public PendingMessage begin() throws QueueException {
        String id = "F" + next.incrementAndGet();
        Path file = dir.resolve(id);
        OutputStream out;
        try {
            out = new BufferedOutputStream(Files.newOutputStream(file), 64 * 1024);
        } catch (IOException e) {
            throw new QueueException("cannot create " + file, e, false);
        }
        return new PendingMessage() {
            private long size;

            @Override
            public String id() {
                return id;
            }

            @Override
            public void write(byte[] bytes, int offset, int length) throws QueueException {
                try {
                    out.write(bytes, offset, length);
                } catch (IOException e) {
                    throw new QueueException("write failed", e, false);
                }
                size += length;
                written.addAndGet(length);
                largestWrite.accumulateAndGet(length, Math::max);
            }

            @Override
            public long size() {
                return size;
            }

            @Override
            public MessageContent content() {
                return new MessageContent() {
                    @Override
                    public long size() {
                        return size;
                    }

                    @Override
                    public InputStream openStream() throws IOException {
                        out.flush();
                        return Files.newInputStream(file);
                    }
                };
            }

            @Override
            public CompletionStage<String> commit(Envelope envelope, List<Header> addedHeaders, String quarantineReason) {
                try {
                    out.close();
                } catch (IOException e) {
                    return CompletableFuture.failedFuture(new QueueException("close failed", e, false));
                }
                stored.put(id, file);
                return CompletableFuture.completedFuture(id);
            }

            @Override
            public void abort() {
                try {
                    out.close();
                    Files.deleteIfExists(file);
                } catch (IOException e) {
                    // a test store: nothing to do
                }
            }
        };
    }
}
