package org.postern.api.queue;

import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ProviderType;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;

/**
 * The durable queue: where a message lives from the 250 after DATA until every recipient has an outcome.
 *
 * <p><b>Storing</b> is two steps. The listener calls {@link #begin()} when DATA starts and streams the
 * message into the {@link PendingMessage} as it arrives; end-of-data filters read it from there; then the
 * listener commits it (with the final envelope and the headers filters added) or aborts it. A commit
 * completes only once message and envelope are on stable storage: a 250 after DATA is that promise.
 *
 * <p><b>Delivering:</b> the queue manager {@link #lease leases} due entries, so that two delivery workers
 * (or two nodes sharing a store) never deliver the same entry at once, then {@link #record records} the
 * outcome per recipient. A lease that is not followed by a record before it expires is given up: the
 * entry becomes due again.
 *
 * <p><b>Threads:</b> {@code begin}, {@code PendingMessage.write} and {@code commit}'s call may be made on an
 * event loop (they only buffer); everything else blocks on disk or network and must be called off the
 * event loop (queue manager threads, console commands). Failures are {@link QueueException}s.
 *
 * <p>Implemented by queue bundles (queue-file by default); one QueueStore service is active at a time.
 */
@ProviderType
public interface QueueStore {

    /** Opens a pending entry to stream a new message into. */
    PendingMessage begin() throws QueueException;

    /** One entry by id, with its envelope and per-recipient state. */
    Optional<QueueEntry> get(String id);

    /** The stored message bytes of an entry (without the added headers: see {@link QueueEntry#addedHeaders()}). */
    MessageContent content(String id) throws QueueException;

    /** Entries matching a query, oldest first. */
    List<QueueEntry> list(QueueQuery query);

    /** Counts of entries per state. */
    QueueStats stats();

    /**
     * Takes up to {@code max} entries that are due at {@code now} and not held, quarantined or leased,
     * and leases them for {@code leaseTime}. Returned entries are in {@link QueueEntry.State#ACTIVE}.
     */
    List<QueueEntry> lease(Instant now, int max, Duration leaseTime);

    /**
     * Records the outcome of a delivery attempt for some recipients of a leased entry, and ends the lease.
     * Recipients that are delivered or failed are final. When every recipient is final the entry is
     * removed. Otherwise the entry is due again at {@code nextAttempt}.
     *
     * @throws QueueException when the entry is gone or the change could not be made durable
     */
    void record(String id, List<RecipientStatus> outcomes, Instant nextAttempt) throws QueueException;

    /** Keeps an entry from delivery until {@link #release}; false when there is no such entry. */
    boolean hold(String id) throws QueueException;

    /**
     * Holds an entry as {@link #hold(String)} does, with the reason operators see in the queue listing.
     * The queue manager uses it for an entry it cannot finish on its own (a failure it cannot report).
     *
     * @since 1.1
     */
    default boolean hold(String id, String reason) throws QueueException {
        return hold(id);
    }

    /** Makes a held or quarantined entry deliverable again, due now. */
    boolean release(String id) throws QueueException;

    /** Makes a deferred entry due now (flush). */
    boolean requeue(String id) throws QueueException;

    /** Removes an entry for good, without a bounce. */
    boolean delete(String id) throws QueueException;

    /** A message being received: streamed in, then committed or aborted exactly once. */
    @ProviderType
    interface PendingMessage {

        /** The queue id the entry will have once committed (known from the start, for logs and Received:). */
        String id();

        /** Appends message bytes (CRLF line ends, dot-stuffing already removed). The caller may reuse the array after the call returns. */
        void write(byte[] bytes, int offset, int length) throws QueueException;

        /** Octets written so far. */
        long size();

        /** The bytes written so far, for end-of-data filters. */
        MessageContent content();

        /**
         * Makes the entry durable and deliverable (or held, when {@code quarantineReason} is not null).
         * The stage completes with the queue id once message and envelope are on stable storage, or
         * exceptionally with a {@link QueueException}; the caller must not answer 250 before that.
         */
        CompletionStage<String> commit(Envelope envelope, List<Header> addedHeaders, String quarantineReason);

        /** Throws the message away; harmless after a failed commit. */
        void abort();
    }

    /** A queue operation failed. {@link #isStorageFull()} tells "no space" (452 4.3.1) from other faults. */
    class QueueException extends IOException {
        private static final long serialVersionUID = 1L;
        private final boolean storageFull;

        public QueueException(String message, Throwable cause, boolean storageFull) {
            super(message, cause);
            this.storageFull = storageFull;
        }

        public QueueException(String message) {
            this(message, null, false);
        }

        public boolean isStorageFull() {
            return storageFull;
        }
    }
}
