package org.postern.queue.file.internal;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.zip.CRC32;

/**
 * One file of the queue's write-ahead log: records appended in batches, each batch made durable by one
 * fdatasync. A record is
 *
 * <pre>
 * magic   u32  "PQW1"
 * type    u8   1 entry (envelope and message), 2 state (envelope), 3 remove
 * idLen   u8
 * envLen  u32  the .env file's bytes (see EntryCodec)
 * msgLen  u64  message bytes that follow (entry records only)
 * msgCrc  u32  CRC-32 of the message bytes
 * headCrc u32  CRC-32 of everything above, the id and the envelope
 * id, envelope, message
 * </pre>
 *
 * so a torn or damaged record is never taken for a good one: reading stops at the first record that does
 * not check out, and everything from there on is the file's unreadable tail.
 */
final class Wal {

    static final String SUFFIX = ".wal";
    static final byte ENTRY = 1;
    static final byte STATE = 2;
    static final byte REMOVE = 3;

    private static final int MAGIC = 0x50515731;
    private static final int HEADER = 26;
    private static final int MAX_ENV = 16 << 20;

    private Wal() {
    }

    /**
     * What one record says. The message travels either from {@code msg}'s first byte or from
     * {@code msgBytes} (a message still in memory), {@code msgLength} of them.
     */
    record Record(byte type, String id, byte[] env, FileChannel msg, byte[] msgBytes, long msgLength, int msgCrc) {

        static Record entry(String id, byte[] env, FileChannel msg, long msgLength, int msgCrc) {
            return new Record(ENTRY, id, env, msg, null, msgLength, msgCrc);
        }

        static Record entry(String id, byte[] env, byte[] msg, int msgLength, int msgCrc) {
            return new Record(ENTRY, id, env, null, msg, msgLength, msgCrc);
        }

        static Record state(String id, byte[] env) {
            return new Record(STATE, id, env, null, null, 0, 0);
        }

        static Record remove(String id) {
            return new Record(REMOVE, id, new byte[0], null, null, 0, 0);
        }
    }

    /** Where a record read back lies in its file, so its bytes can be fetched later without holding them. */
    record Position(byte type, String id, long envOffset, int envLength, long msgOffset, long msgLength) {
    }

    static String fileName(long seq) {
        return String.format("%016x", seq) + SUFFIX;
    }

    /** The sequence number in a log file's name, or -1 when the name is not one. */
    static long seq(Path file) {
        String name = file.getFileName().toString();
        if (!name.endsWith(SUFFIX) || name.length() != 16 + SUFFIX.length()) {
            return -1;
        }
        try {
            return Long.parseUnsignedLong(name.substring(0, 16), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Appends to one log file; used by one thread at a time. */
    static final class Writer implements AutoCloseable {
        final Path file;
        final long seq;
        private final FileChannel channel;
        private long size;

        Writer(Path file, long seq) throws IOException {
            this.file = file;
            this.seq = seq;
            this.channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        }

        long size() {
            return size;
        }

        /**
         * Writes the records at the end (page cache only); {@link #sync} makes them durable. Records whose
         * bytes are all in memory go out together through {@code staging}, a direct buffer the caller keeps
         * for every batch: heap buffers handed to a write would each be copied into a temporary direct buffer
         * of their size, which the JDK then keeps per thread.
         */
        void append(List<Record> records, ByteBuffer staging) throws IOException {
            channel.position(size);
            staging.clear();
            for (Record record : records) {
                byte[] id = record.id().getBytes(StandardCharsets.US_ASCII);
                ByteBuffer head = ByteBuffer.allocate(HEADER + id.length + record.env().length);
                head.putInt(MAGIC).put(record.type()).put((byte) id.length).putInt(record.env().length)
                        .putLong(record.msgLength()).putInt(record.msgCrc());
                CRC32 crc = new CRC32();
                crc.update(head.array(), 0, HEADER - 4);
                crc.update(id);
                crc.update(record.env());
                head.putInt((int) crc.getValue()).put(id).put(record.env()).flip();
                stage(head, staging);
                if (record.msgBytes() != null) {
                    stage(ByteBuffer.wrap(record.msgBytes(), 0, (int) record.msgLength()), staging);
                } else if (record.msgLength() > 0) {
                    flush(staging);
                    for (long done = 0; done < record.msgLength(); ) {
                        long n = record.msg().transferTo(done, record.msgLength() - done, channel);
                        if (n <= 0) {
                            throw new IOException(record.id() + ": message file shorter than its size");
                        }
                        done += n;
                    }
                }
            }
            flush(staging);
            size = channel.position();
        }

        private void stage(ByteBuffer bytes, ByteBuffer staging) throws IOException {
            while (bytes.hasRemaining()) {
                if (!staging.hasRemaining()) {
                    flush(staging);
                }
                int n = Math.min(bytes.remaining(), staging.remaining());
                staging.put(bytes.slice(bytes.position(), n));
                bytes.position(bytes.position() + n);
            }
        }

        private void flush(ByteBuffer staging) throws IOException {
            staging.flip();
            while (staging.hasRemaining()) {
                channel.write(staging);
            }
            staging.clear();
        }

        /** One fdatasync for everything appended since the last one. */
        void sync() throws IOException {
            channel.force(false);
        }

        /** Cuts off a batch whose write or sync failed, so a later batch never follows unreadable bytes. */
        void truncate(long length) throws IOException {
            channel.truncate(length);
            channel.force(false);
            size = length;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    interface Visitor {
        void record(Position position) throws IOException;
    }

    /**
     * Reads every good record from the start of a log file, in order, checking both checksums.
     *
     * @return the length of the good part: where the unreadable tail starts, or the file's size
     */
    static long scan(Path file, Visitor visitor) throws IOException {
        long size = Files.size(file);
        long good = 0;
        byte[] buffer = new byte[64 * 1024];
        try (InputStream raw = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new BufferedInputStream(raw, 1 << 20))) {
            while (good + HEADER <= size) {
                byte[] head = new byte[HEADER];
                in.readFully(head);
                ByteBuffer h = ByteBuffer.wrap(head);
                int magic = h.getInt();
                byte type = h.get();
                int idLength = h.get() & 0xff;
                int envLength = h.getInt();
                long msgLength = h.getLong();
                int msgCrc = h.getInt();
                int headCrc = h.getInt();
                long envOffset = good + HEADER + idLength;
                if (magic != MAGIC || type < ENTRY || type > REMOVE || idLength == 0 || envLength < 0
                        || envLength > MAX_ENV || msgLength < 0 || (type != ENTRY && msgLength != 0)
                        || envOffset + envLength + msgLength > size) {
                    break;
                }
                byte[] id = new byte[idLength];
                byte[] env = new byte[envLength];
                in.readFully(id);
                in.readFully(env);
                CRC32 crc = new CRC32();
                crc.update(head, 0, HEADER - 4);
                crc.update(id);
                crc.update(env);
                if ((int) crc.getValue() != headCrc || !isId(id)) {
                    break;
                }
                crc.reset();
                for (long left = msgLength; left > 0; ) {
                    int n = in.read(buffer, 0, (int) Math.min(buffer.length, left));
                    if (n < 0) {
                        throw new EOFException();
                    }
                    crc.update(buffer, 0, n);
                    left -= n;
                }
                if (type == ENTRY && (int) crc.getValue() != msgCrc) {
                    break;
                }
                visitor.record(new Position(type, new String(id, StandardCharsets.US_ASCII), envOffset, envLength,
                        envOffset + envLength, msgLength));
                good = envOffset + envLength + msgLength;
            }
        } catch (EOFException e) {
            // the file ended inside a record: that record is the start of the tail
        }
        return good;
    }

    /** Queue ids only (see QueueIds): a damaged or foreign log never names a path outside the spool. */
    private static boolean isId(byte[] id) {
        for (byte b : id) {
            if (!(b >= '0' && b <= '9' || b >= 'A' && b <= 'Z')) {
                return false;
            }
        }
        return true;
    }
}
