package org.postern.api.filter;

import java.net.InetSocketAddress;
import java.util.Map;

import org.osgi.annotation.versioning.ProviderType;

/**
 * One SMTP connection as filters see it. Implemented by the listener; filters only read it and use its notes.
 * Values change as the session goes on (HELO name, TLS, authentication): read them at the stage that needs them.
 */
@ProviderType
public interface SessionContext {

    /** A short id unique on this node, as in the listener's log lines. */
    String id();

    /** The name of the listener instance (its factory configuration name, e.g. {@code mx}). */
    String listener();

    InetSocketAddress clientAddress();

    InetSocketAddress localAddress();

    /** The EHLO/HELO argument, or null before it. */
    String heloName();

    /** Whether the client used EHLO (not HELO). */
    boolean extended();

    /** e.g. {@code TLSv1.3}, or null while the session is in clear. */
    String tlsProtocol();

    /** The negotiated cipher suite, or null while the session is in clear. */
    String tlsCipher();

    /** The SMTP AUTH identity, or null. */
    String authenticatedAs();

    /**
     * Attributes filters keep for the whole session (thread-safe). Key them by the filter's name to avoid
     * clashes: {@code "spf.result"}.
     */
    Map<String, Object> notes();
}
