package org.postern.api.dns;

/** A DNS question that got no usable answer. */
public class DnsException extends Exception {
    private static final long serialVersionUID = 1L;

    public enum Kind {
        /** NXDOMAIN: the name does not exist (a permanent failure for mail routing). */
        NOT_FOUND,
        /** Timeout, SERVFAIL, refused: try again later. */
        TEMPORARY
    }

    private final Kind kind;

    public DnsException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
