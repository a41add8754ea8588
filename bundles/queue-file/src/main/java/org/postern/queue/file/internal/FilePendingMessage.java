package org.postern.queue.file.internal;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
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
 * A message being received. It starts in memory, taken from the store's {@link MemoryBudget}; when it grows
 * past {@link #MAX_IN_MEMORY} or the budget is spent, it moves to a file in spool/incoming/ and streams on
 * there (a full buffer goes to the page cache, never fsync). {@code write} only copies and updates a CRC-32,
 * so it is fit for an event loop. The commit copies the bytes into the journal, whose sync makes them
 * durable. Each public method takes this object's lock: writes come from an event loop, reads from filter
 * threads, the commit from the committer.
 */
final class FilePendingMessage implements PendingMessage {

    /** A larger message goes to a file as it arrives: the memory is for the many small ones. */
    static final int MAX_IN_MEMORY = 256 * 1024;
    private static final int FIRST_CAPACITY = 8 * 1024;
    private static final Logger LOG = LoggerFactory.getLogger(FilePendingMessage.class);
    private static final int BUFFER_SIZE = 64 * 1024;

    private enum Status { OPEN, COMMITTING, COMMITTED, FAILED, ABORTED }

    private final String id;
    private final FileQueueStore store;
    private final MemoryBudget budget;
    private final CRC32 crc = new CRC32();
    /** The bytes while in memory; null once in a file (or given up). */
    private byte[] memory = new byte[0];
    /** What {@code memory} holds of the budget. */
    private long reserved;
    private FileChannel channel;
    private OutputStream out;
    private Path file;
    private long size;
    private Status status = Status.OPEN;

    FilePendingMessage(String id, FileQueueStore store, MemoryBudget budget) {
        this.id = id;
        this.store = store;
        this.budget = budget;
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
            if (memory != null && !fits(size + length)) {
                toFile();
            }
            if (memory != null) {
                System.arraycopy(bytes, offset, memory, (int) size, length);
            } else {
                out.write(bytes, offset, length);
            }
            crc.update(bytes, offset, length);
            size += length;
        } catch (IOException e) {
            throw Spool.failure(id + ": cannot write message", e);
        }
    }

    /** Makes room in memory for {@code needed} octets if the limits allow. */
    private boolean fits(long needed) {
        if (needed <= memory.length) {
            return true;
        }
        if (needed > MAX_IN_MEMORY) {
            return false;
        }
        int capacity = (int) Math.min(MAX_IN_MEMORY, Math.max(needed, Math.max(FIRST_CAPACITY, memory.length * 2L)));
        if (!budget.reserve(capacity - memory.length)) {
            return false;
        }
        reserved += capacity - memory.length;
        memory = Arrays.copyOf(memory, capacity);
        return true;
    }

    /** Moves what came so far into a new file in incoming/; from now on the bytes stream there. */
    private void toFile() throws IOException {
        Path target = store.incomingFile(id);
        FileChannel opened = store.createIncoming(target);
        OutputStream stream = new BufferedOutputStream(Channels.newOutputStream(opened), BUFFER_SIZE);
        try {
            stream.write(memory, 0, (int) size);
        } catch (IOException e) {
            opened.close();
            store.discard(this, target);
            throw e;
        }
        channel = opened;
        out = stream;
        file = target;
        releaseMemory();
    }

    private void releaseMemory() {
        memory = null;
        budget.release(reserved);
        reserved = 0;
    }

    @Override
    public synchronized long size() {
        return size;
    }

    @Override
    public synchronized MessageContent content() {
        if (memory != null) {
            return new MemoryContent(memory, (int) size); // later writes only add beyond size, or copy elsewhere
        }
        if (file == null) { // aborted, or a failed commit, while in memory: the bytes are gone
            return new FileContent(() -> {
                throw new IOException(id + ": message is " + status.name().toLowerCase());
            }, size);
        }
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
            if (memory != null) {
                releaseMemory();
                store.discard(this, null);
            } else if (file != null) {
                closeQuietly();
                store.discard(this, file);
            }
        }
    }

    /** Whether the bytes are in memory (then {@link #memory()} has them), not in a file. */
    synchronized boolean inMemory() {
        return memory != null;
    }

    /** The bytes of a message in memory; the first {@link #size()} count. */
    synchronized byte[] memory() {
        return memory;
    }

    /**
     * Hands the memory and its share of the budget to the new entry: the caller releases it from now on.
     *
     * @return the octets of the budget handed over
     */
    synchronized long handOverMemory() {
        long handed = reserved;
        reserved = 0;
        return handed;
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
        if (file != null) {
            closeQuietly(); // flushed already
        }
    }

    /** The commit failed and cleaned up its files; abort is now harmless. */
    synchronized void failed() {
        status = Status.FAILED;
        if (memory != null) {
            releaseMemory();
        } else if (file != null) {
            closeQuietly();
        }
    }

    /** Where the message lies now: in incoming/, in queue/ after the commit moved it, or null while in memory. */
    synchronized Path file() {
        return file;
    }

    private void closeQuietly() {
        try {
            channel.close(); // not out.close(): flushing what is thrown away is wasted work
        } catch (IOException e) {
            LOG.debug("{}: close failed: {}", id, e.toString());
        }
    }
}
