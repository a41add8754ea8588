package org.postern.api.delivery;

import java.util.Objects;

import org.postern.api.mail.Recipient;

/**
 * The outcome of one delivery attempt for one recipient.
 *
 * @param recipient the recipient
 * @param outcome delivered (2xx), deferred (4xx, connection trouble) or failed (5xx)
 * @param status the RFC 3463 status, e.g. {@code 2.0.0}, {@code 4.4.1}, {@code 5.1.1}
 * @param diagnostic the remote reply (e.g. {@code 550 5.1.1 no such user}) or a local reason
 * @param remoteMta the host that answered, or null when none did
 */
public record DeliveryResult(Recipient recipient, Outcome outcome, String status, String diagnostic, String remoteMta) {

    public enum Outcome {
        DELIVERED, DEFERRED, FAILED
    }

    public DeliveryResult {
        Objects.requireNonNull(recipient, "recipient");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(status, "status");
    }
}
