package org.postern.queue.file.internal;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.zip.CRC32;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.QueueStore.QueueException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A message streaming into spool/incoming/. {@code write} only appends to a buffer (a full buffer goes to
 * the page cache, never fsync) and updates a CRC-32, so it is fit for an event loop; the commit copies the
 * file into the journal, whose sync makes it durable. Each public method takes this object's lock: writes
 * come from an event loop, reads from filter threads, the commit from the committer.
 */
final class FilePendingMessage implements PendingMessage {

    private static final Logger LOG = LoggerFactory.getLogger(FilePendingMessage.class);
    private static final int BUFFER_SIZE = 64 * 1024;

    private enum Status { OPEN, COMMITTING, COMMITTED, FAILED, ABORTED }

    private final String id;
    private final FileQueueStore store;
    private final FileChannel channel;
    private final OutputStream out;
    private final CRC32 crc = new CRC32();
    private Path file;
    private long size;
    private Status status = Status.OPEN;

    /**
     * @param channel open on {@code file} for writing and reading (the commit copies the file into the
     *        journal); the file may be a recycled one with old bytes, which the commit cuts off
     */
    FilePendingMessage(String id, Path file, FileChannel channel, FileQueueStore store) {
        this.id = id;
        this.file = file;
        this.store = store;
        this.channel = channel;
        this.out = new BufferedOutputStream(Channels.newOutputStream(channel), BUFFER_SIZE);
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public synchronized void write(byte[] bytes, int offset, int length) throws QueueException {
        if (status != Status.OPEN) {
            throw new QueueException(id + ": message is " + status.name().toLowerCase() + ", cannot write");
        }
        try {
            out.write(bytes, offset, length);
            crc.update(bytes, offset, length);
            size += length;
        } catch (IOException e) {
            throw Spool.failure(id + ": cannot write message", e);
        }
    }

    @Override
    public synchronized long size() {
        return size;
    }

    @Override
    public synchronized MessageContent content() {
        return new FileContent(this::prepareRead, size);
    }

    /** Pushes buffered bytes to the file so a reader sees them; the file may have moved to queue/ by now. */
    private synchronized Path prepareRead() throws IOException {
        if (channel.isOpen()) {
            out.flush();
        }
        return file;
    }

    @Override
    public CompletionStage<String> commit(Envelope envelope, List<Header> addedHeaders, String quarantineReason) {
        synchronized (this) {
            if (status != Status.OPEN) {
                return CompletableFuture.failedFuture(
                        new QueueException(id + ": message is " + status.name().toLowerCase() + ", cannot commit"));
            }
            if (envelope == null) {
                return CompletableFuture.failedFuture(new QueueException(id + ": no envelope"));
            }
            status = Status.COMMITTING;
        }
        return store.commit(this, envelope, addedHeaders == null ? List.of() : addedHeaders, quarantineReason);
    }

    /**
     * Ends an open message; after commit was called it does nothing, because the commit may already have
     * succeeded (a client that drops the connection after DATA must not unqueue an entry we stored).
     */
    @Override
    public void abort() {
        synchronized (this) {
            if (status != Status.OPEN && status != Status.FAILED) {
                return;
            }
            status = Status.ABORTED;
            closeQuietly();
            store.discard(this, file);
        }
    }

    /** Pushes buffered bytes to the file (no fsync), cuts what a recycled file held beyond them, gives the channel. */
    synchronized FileChannel flushForCommit() throws IOException {
        out.flush();
        channel.truncate(size);
        return channel;
    }

    /** CRC-32 of every byte written. */
    synchronized int crc() {
        return (int) crc.getValue();
    }

    /** Moves the file into the queue directory, under the lock so a reader never sees a stale path. */
    synchronized void moveTo(Path target) throws IOException {
        Files.move(file, target, StandardCopyOption.ATOMIC_MOVE);
        file = target;
    }

    synchronized void committed() {
        status = Status.COMMITTED;
        closeQuietly(); // flushed already
    }

    /** The commit failed and cleaned up its files; abort is now harmless. */
    synchronized void failed() {
        status = Status.FAILED;
        closeQuietly();
    }

    private void closeQuietly() {
        try {
            channel.close(); // not out.close(): flushing what is thrown away is wasted work
        } catch (IOException e) {
            LOG.debug("{}: close failed: {}", id, e.toString());
        }
    }
}
