package org.postern.queue.file.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

import org.postern.api.queue.QueueStore.QueueException;

/**
 * The spool's layout and its durable file operations.
 *
 * <pre>
 * incoming/&lt;id&gt;.msg   a message being received; discarded at start (its transaction never ended)
 * queue/&lt;id&gt;.msg      the message bytes of a committed entry
 * queue/&lt;id&gt;.env      its envelope and state; an entry exists iff this file exists
 * corrupt/             what recovery could not load, kept for an operator to look at
 * </pre>
 *
 * Every change to an .env is write-temp, fsync, rename, fsync the directory: after a crash the file is
 * either the old one or the new one, never a mix.
 */
final class Spool {

    static final String MSG = ".msg";
    static final String ENV = ".env";
    static final String TMP = ".tmp";

    final Path root;
    final Path incoming;
    final Path queue;
    final Path corrupt;

    Spool(Path root) throws IOException {
        this.root = root;
        this.incoming = Files.createDirectories(root.resolve("incoming"));
        this.queue = Files.createDirectories(root.resolve("queue"));
        this.corrupt = Files.createDirectories(root.resolve("corrupt"));
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

    /** Writes the file through a fsynced temp file and renames it into place; the caller syncs the directory. */
    void writeEnv(String id, byte[] content) throws IOException {
        Path tmp = queue.resolve(id + ENV + TMP);
        try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buffer = ByteBuffer.wrap(content);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
            channel.force(true);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, env(id), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Makes renames and deletions in queue/ durable. */
    void syncQueueDir() throws IOException {
        try (FileChannel dir = FileChannel.open(queue, StandardOpenOption.READ)) {
            dir.force(true);
        }
    }

    /** Removes an entry: the .env first, so a crash in between leaves an orphan .msg, never an entry without bytes. */
    void deleteEntry(String id) throws IOException {
        Files.deleteIfExists(env(id));
        Files.deleteIfExists(msg(id));
        syncQueueDir();
    }

    /** Moves a file to corrupt/, never overwriting an earlier one of the same name. */
    Path moveToCorrupt(Path file) throws IOException {
        // Only recovery calls this, before the store is in service: nothing else creates files in corrupt/.
        Path target = corrupt.resolve(file.getFileName());
        for (int n = 1; Files.exists(target, LinkOption.NOFOLLOW_LINKS); n++) {
            target = corrupt.resolve(file.getFileName() + "." + n);
        }
        return Files.move(file, target, StandardCopyOption.ATOMIC_MOVE);
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
