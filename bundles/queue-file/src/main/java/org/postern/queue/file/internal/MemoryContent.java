package org.postern.queue.file.internal;

import java.io.ByteArrayInputStream;
import java.io.InputStream;

import org.postern.api.mail.MessageContent;

/** Message bytes still in memory: the first {@code size} octets of an array nobody writes below that. */
final class MemoryContent implements MessageContent {

    private final byte[] bytes;
    private final int size;

    MemoryContent(byte[] bytes, int size) {
        this.bytes = bytes;
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public InputStream openStream() {
        return new ByteArrayInputStream(bytes, 0, size);
    }
}
