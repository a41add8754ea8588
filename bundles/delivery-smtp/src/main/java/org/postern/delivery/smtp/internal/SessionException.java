package org.postern.delivery.smtp.internal;

/**
 * A session with a next hop went wrong without a reply that says so: a timeout, a lost connection, a TLS
 * failure, a protocol error. Carries the RFC 3463 status and the diagnostic that the recipients get.
 */
final class SessionException extends Exception {

    private static final long serialVersionUID = 1L;

    private final String status;
    private final boolean connectionLost;

    SessionException(String status, String diagnostic, boolean connectionLost) {
        super(diagnostic);
        this.status = status;
        this.connectionLost = connectionLost;
    }

    String status() {
        return status;
    }

    String diagnostic() {
        return getMessage();
    }

    /** True when the peer closed the connection (as opposed to a timeout or a broken reply). */
    boolean connectionLost() {
        return connectionLost;
    }
}
