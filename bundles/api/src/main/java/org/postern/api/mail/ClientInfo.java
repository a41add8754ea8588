package org.postern.api.mail;

/**
 * Where a message came from and how: kept in the envelope for Received: headers, DSNs, logs and filters.
 *
 * @param address the client's IP address as text (no brackets), or {@code "local"} for a message made
 *                inside Postern (a bounce)
 * @param hostName the client's verified reverse name, or null
 * @param heloName the name the client gave in EHLO/HELO, or null
 * @param protocol {@code SMTP}, {@code ESMTP}, {@code ESMTPS}, {@code ESMTPSA}, ... as in RFC 3848
 * @param tlsProtocol e.g. {@code TLSv1.3}, or null without TLS
 * @param tlsCipher the cipher suite, or null without TLS
 * @param authenticatedAs the SMTP AUTH identity, or null
 * @param listener the name of the listener instance that took the message, or null
 */
public record ClientInfo(String address, String hostName, String heloName, String protocol,
                         String tlsProtocol, String tlsCipher, String authenticatedAs, String listener) {

    /** For messages Postern makes itself (bounces). */
    public static final ClientInfo LOCAL = new ClientInfo("local", null, null, "LOCAL", null, null, null, null);
}
