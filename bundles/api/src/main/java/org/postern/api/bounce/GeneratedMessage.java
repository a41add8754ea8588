package org.postern.api.bounce;

import java.util.Objects;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.MessageContent;

/** A message Postern made itself, to be queued like any other: its envelope and its bytes. */
public record GeneratedMessage(Envelope envelope, MessageContent content) {

    public GeneratedMessage {
        Objects.requireNonNull(envelope, "envelope");
        Objects.requireNonNull(content, "content");
    }
}
