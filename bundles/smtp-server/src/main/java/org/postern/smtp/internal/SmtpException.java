package org.postern.smtp.internal;

/** A reply to send instead of going on: thrown by command parsing, caught by the session. */
final class SmtpException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int code;
    private final String status;

    SmtpException(int code, String status, String text) {
        super(text, null, false, false);
        this.code = code;
        this.status = status;
    }

    int code() {
        return code;
    }

    String status() {
        return status;
    }
}
