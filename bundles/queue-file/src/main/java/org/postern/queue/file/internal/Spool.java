package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.postern.api.queue.QueueStore.QueueException;

/**
 * The spool's layout and its durable file operations.
 *
 * <pre>
 * incoming/&lt;id&gt;.msg   a message being received that is too large for memory; discarded at start (its transaction never ended)
 * queue/&lt;id&gt;.msg      the message bytes of a committed entry
 * queue/&lt;id&gt;.env      its envelope and state; once the log is replayed, an entry exists iff this file exists
 * corrupt/             what recovery could not load, kept for an operator to look at
 * journal/&lt;seq&gt;.wal   the write-ahead log of changes whose files are not yet synced (see {@link Journal})
 * free/                files of removed entries, kept to be reused as new ones; their bytes mean nothing
 * </pre>
 *
 * An entry committed from memory has no files until the checkpoint of its log file, and none at all if it
 * is removed before. The files are written without fsync: a change is durable once its log record is, and the log stays until
 * a checkpoint has synced the files; after a crash the log is replayed onto them. So an .env is rewritten
 * in place; recovery reads it only after the replay has rewritten any that a crash could have torn.
 *
 * <p>Files are recycled: a removed entry's files move to free/ and become the next new files, with the
 * caller cutting them to the length it wrote. Making a new inode is costly where ext4 runs without a
 * journal (it scans past recently deleted inodes); a rename is not, and a queue makes and removes files
 * all the time.
 */
final class Spool {

    static final String MSG = ".msg";
    static final String ENV = ".env";
    static final String TMP = ".tmp";
    /** Files kept for reuse at most; beyond that a removed file is deleted. */
    static final int MAX_FREE = 8192;
    /** A free file keeps up to this many bytes' blocks for its next use; a larger one is emptied first. */
    static final long MAX_FREE_SIZE = 16 * 1024;

    final Path root;
    final Path incoming;
    final Path queue;
    final Path corrupt;
    final Path journal;
    final Path free;
    private final ConcurrentLinkedQueue<Path> freeFiles = new ConcurrentLinkedQueue<>();
    private final AtomicInteger freeCount = new AtomicInteger();
    private final AtomicLong freeNames = new AtomicLong();
    private final String freePrefix = Long.toString(System.currentTimeMillis(), 36) + "-";

    Spool(Path root) throws IOException {
        this.root = root;
        this.incoming = Files.createDirectories(root.resolve("incoming"));
        this.queue = Files.createDirectories(root.resolve("queue"));
        this.corrupt = Files.createDirectories(root.resolve("corrupt"));
        this.journal = Files.createDirectories(root.resolve("journal"));
        this.free = Files.createDirectories(root.resolve("free"));
        try (DirectoryStream<Path> files = Files.newDirectoryStream(free)) {
            for (Path file : files) {
                if (freeCount.get() < MAX_FREE) {
                    freeFiles.add(file);
                    freeCount.incrementAndGet();
                } else {
                    Files.deleteIfExists(file);
                }
            }
        }
    }

    /**
     * Opens a new file at {@code target} for writing (and reading when asked), a recycled one when there is
     * one: it may hold old bytes, so the caller truncates it to what it wrote. Fails with
     * FileAlreadyExistsException when the target exists.
     */
    FileChannel createFile(Path target, boolean read) throws IOException {
        Path recycled = freeFiles.poll();
        if (recycled != null) {
            freeCount.decrementAndGet();
            boolean moved = false;
            try {
                Files.move(recycled, target); // not ATOMIC_MOVE: that would replace an existing target
                moved = true;
                return read ? FileChannel.open(target, StandardOpenOption.WRITE, StandardOpenOption.READ)
                        : FileChannel.open(target, StandardOpenOption.WRITE);
            } catch (FileAlreadyExistsException e) {
                freeFiles.add(recycled);
                freeCount.incrementAndGet();
                throw e;
            } catch (IOException e) {
                // A free file that cannot be taken is not worth more: make a fresh one.
                Files.deleteIfExists(moved ? target : recycled);
            }
        }
        return read ? FileChannel.open(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                StandardOpenOption.READ)
                : FileChannel.open(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
    }

    /** Removes a file: into free/ for reuse while there is room, else deleted. */
    void discard(Path file) throws IOException {
        if (freeCount.get() < MAX_FREE) {
            Path target = free.resolve(freePrefix + freeNames.incrementAndGet());
            try {
                Files.move(file, target);
            } catch (NoSuchFileException e) {
                return;
            } catch (IOException e) {
                Files.deleteIfExists(file);
                return;
            }
            try {
                if (Files.size(target) > MAX_FREE_SIZE) {
                    try (FileChannel channel = FileChannel.open(target, StandardOpenOption.WRITE)) {
                        channel.truncate(0);
                    }
                }
                freeFiles.add(target);
                freeCount.incrementAndGet();
            } catch (IOException e) {
                Files.deleteIfExists(target);
            }
            return;
        }
        Files.deleteIfExists(file);
    }

    Path incomingMsg(String id) {
        return incoming.resolve(id + MSG);
    }

    Path msg(String id) {
        return queue.resolve(id + MSG);
    }

    Path env(String id) {
        return queue.resolve(id + ENV);
    }

    /** Writes a new entry's .env (no fsync: the log record makes it durable). */
    void createEnv(String id, byte[] content) throws IOException {
        try (FileChannel channel = createFile(env(id), false)) {
            writeAll(channel, content);
        }
    }

    /** Rewrites an entry's .env in place (no fsync: the log record makes it durable, and replay mends a torn one). */
    void rewriteEnv(String id, byte[] content) throws IOException {
        try (FileChannel channel = FileChannel.open(env(id), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            writeAll(channel, content);
        }
    }

    private static void writeAll(FileChannel channel, byte[] content) throws IOException {
        writeAll(channel, ByteBuffer.wrap(content));
    }

    /** Writes from the start and cuts off whatever was longer: no new blocks when the size stays in one. */
    static void writeAll(FileChannel channel, ByteBuffer content) throws IOException {
        int length = content.remaining();
        for (long position = 0; content.hasRemaining(); ) {
            position += channel.write(content, position);
        }
        channel.truncate(length);
    }

    /** Makes renames and deletions in queue/ durable. */
    void syncQueueDir() throws IOException {
        syncDir(queue);
    }

    /** Makes the creation and deletion of log files durable. */
    void syncJournalDir() throws IOException {
        syncDir(journal);
    }

    private static void syncDir(Path dir) throws IOException {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        }
    }

    /** Removes an entry's files: the .env first, so a crash in between leaves an orphan .msg, never an entry without bytes. */
    void deleteEntry(String id) throws IOException {
        discard(env(id));
        discard(msg(id));
    }

    /** Copies a file's bytes from {@code offset} on to corrupt/, under a name not taken yet, durably. */
    Path copyToCorrupt(Path file, long offset, String name) throws IOException {
        Path target = freeCorruptName(name);
        try (FileChannel from = FileChannel.open(file, StandardOpenOption.READ);
             FileChannel to = FileChannel.open(target, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            long length = from.size() - offset;
            for (long done = 0; done < length; ) {
                long n = from.transferTo(offset + done, length - done, to);
                if (n <= 0) {
                    throw new IOException("cannot copy " + file + " to " + target);
                }
                done += n;
            }
            to.force(true);
        }
        syncDir(corrupt);
        return target;
    }

    /** Moves a file to corrupt/, never overwriting an earlier one of the same name. */
    Path moveToCorrupt(Path file) throws IOException {
        return Files.move(file, freeCorruptName(file.getFileName().toString()), StandardCopyOption.ATOMIC_MOVE);
    }

    private Path freeCorruptName(String name) {
        // Only recovery calls this, before the store is in service: nothing else creates files in corrupt/.
        Path target = corrupt.resolve(name);
        for (int n = 1; Files.exists(target, LinkOption.NOFOLLOW_LINKS); n++) {
            target = corrupt.resolve(name + "." + n);
        }
        return target;
    }

    static QueueException failure(String what, IOException cause) {
        return new QueueException(what + ": " + cause, cause, isStorageFull(cause));
    }

    /** ENOSPC and EDQUOT reach Java only as message text (IOException) or a FileSystemException reason. */
    static boolean isStorageFull(Throwable error) {
        for (Throwable t = error; t != null; t = t.getCause()) {
            String text = t instanceof FileSystemException fse && fse.getReason() != null ? fse.getReason() : t.getMessage();
            if (text != null && (text.contains("No space left on device") || text.contains("Disk quota exceeded"))) {
                return true;
            }
        }
        return false;
    }
}
