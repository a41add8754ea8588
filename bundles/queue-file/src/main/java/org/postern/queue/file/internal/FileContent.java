package org.postern.queue.file.internal;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import org.postern.api.mail.MessageContent;

/** Message bytes in a spool file, read as many times as asked; never more than {@link #size()} octets. */
final class FileContent implements MessageContent {

    /** Gives the file to read, after making sure every byte counted in the size is in it. */
    interface Source {
        Path prepare() throws IOException;
    }

    private final Source source;
    private final long size;

    FileContent(Source source, long size) {
        this.source = source;
        this.size = size;
    }

    static FileContent of(Path file, long size) {
        return new FileContent(() -> file, size);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public InputStream openStream() throws IOException {
        return new Limited(Files.newInputStream(source.prepare()), size);
    }

    /** Stops at the size taken when the content was handed out, even if the file grew since. */
    private static final class Limited extends FilterInputStream {
        private long remaining;

        Limited(InputStream in, long limit) {
            super(in);
            this.remaining = limit;
        }

        @Override
        public int read() throws IOException {
            if (remaining <= 0) {
                return -1;
            }
            int b = super.read();
            if (b >= 0) {
                remaining--;
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (remaining <= 0) {
                return len == 0 ? 0 : -1;
            }
            int n = super.read(b, off, (int) Math.min(len, remaining));
            if (n > 0) {
                remaining -= n;
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long skipped = super.skip(Math.min(n, remaining));
            remaining -= skipped;
            return skipped;
        }

        @Override
        public int available() throws IOException {
            return (int) Math.min(super.available(), remaining);
        }

        @Override
        public boolean markSupported() {
            return false;
        }
    }
}
