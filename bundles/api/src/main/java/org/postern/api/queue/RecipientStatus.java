package org.postern.api.queue;

import java.util.Objects;

import org.postern.api.mail.Recipient;

/**
 * Where one recipient of a queued message stands.
 *
 * @param recipient the envelope recipient
 * @param state its state
 * @param status the RFC 3463 status of the last attempt (e.g. {@code 4.4.1}), or null before any
 * @param diagnostic the remote reply or local reason of the last attempt, or null
 * @param remoteMta the host that gave the diagnostic, or null
 */
public record RecipientStatus(Recipient recipient, State state, String status, String diagnostic, String remoteMta) {

    public enum State {
        PENDING, DEFERRED, DELIVERED, FAILED
    }

    public RecipientStatus {
        Objects.requireNonNull(recipient, "recipient");
        Objects.requireNonNull(state, "state");
    }

    public static RecipientStatus pending(Recipient recipient) {
        return new RecipientStatus(recipient, State.PENDING, null, null, null);
    }

    public boolean isFinal() {
        return state == State.DELIVERED || state == State.FAILED;
    }
}
