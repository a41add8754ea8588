package org.postern.api.queue;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;

/**
 * A snapshot of one queued message: its envelope, state and per-recipient progress. Immutable; ask the
 * store again for fresh state.
 *
 * @param id the queue id, as in logs and the console
 * @param envelope the envelope as received
 * @param size the stored message size in octets (added headers not counted)
 * @param addedHeaders headers to prepend on delivery (Received:, filters' headers), in order
 * @param state the entry's state
 * @param recipients every recipient of the envelope with its progress, in envelope order
 * @param attempts delivery attempts made so far
 * @param nextAttempt when the entry is due, or null when held or quarantined
 * @param lastError the last temporary or permanent error, or null
 * @param reason why the entry is held or quarantined, or null
 */
public record QueueEntry(String id, Envelope envelope, long size, List<Header> addedHeaders, State state,
                         List<RecipientStatus> recipients, int attempts, Instant nextAttempt,
                         String lastError, String reason) {

    public enum State {
        /** Waiting for its first or next attempt. */
        QUEUED,
        /** Leased by a delivery worker. */
        ACTIVE,
        /** At least one attempt failed temporarily; waiting for the next. */
        DEFERRED,
        /** Kept from delivery by an operator. */
        HELD,
        /** Kept from delivery by a filter's verdict, for an operator to release or delete. */
        QUARANTINED
    }

    public QueueEntry {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(envelope, "envelope");
        Objects.requireNonNull(state, "state");
        addedHeaders = List.copyOf(addedHeaders);
        recipients = List.copyOf(recipients);
    }

    /** The recipients that still need an attempt. */
    public List<RecipientStatus> pending() {
        return recipients.stream().filter(r -> !r.isFinal()).toList();
    }
}
