package org.postern.api.auth;

import java.util.Objects;
import java.util.Set;

import org.postern.api.mail.MailAddress;

/**
 * The outcome of one authentication.
 *
 * @param status what happened
 * @param identity the authenticated identity on success (what the session and Received: header show), else null
 * @param senders the sender addresses this identity may use in MAIL FROM; empty means "decided by the
 *                listener's sender policy" (for example: the identity itself when it is an address)
 */
public record AuthResult(Status status, String identity, Set<MailAddress> senders) {

    public enum Status {
        /** The credentials are right. */
        SUCCESS,
        /** The user exists and the credentials are wrong (535 5.7.8). */
        FAILURE,
        /** This authenticator does not know the user: ask the next one. */
        UNKNOWN_USER,
        /** The backend could not answer now (454 4.7.0). */
        UNAVAILABLE
    }

    public AuthResult {
        Objects.requireNonNull(status, "status");
        if (status == Status.SUCCESS) {
            Objects.requireNonNull(identity, "identity");
        }
        senders = Set.copyOf(senders);
    }

    public static AuthResult success(String identity) {
        return new AuthResult(Status.SUCCESS, identity, Set.of());
    }

    public static AuthResult failure() {
        return new AuthResult(Status.FAILURE, null, Set.of());
    }

    public static AuthResult unknownUser() {
        return new AuthResult(Status.UNKNOWN_USER, null, Set.of());
    }

    public static AuthResult unavailable() {
        return new AuthResult(Status.UNAVAILABLE, null, Set.of());
    }
}
