package org.postern.api.mail;

import java.io.IOException;
import java.io.InputStream;

/**
 * The bytes of a message as received (header and body, CRLF line ends, dot-stuffing removed), stored once
 * and read as a stream, never as one byte[]. Each call to {@link #openStream()} gives an independent stream
 * from the first byte. Reading blocks on disk: never read on an event loop thread.
 */
public interface MessageContent {

    /** The number of octets {@link #openStream()} yields. */
    long size();

    InputStream openStream() throws IOException;
}
