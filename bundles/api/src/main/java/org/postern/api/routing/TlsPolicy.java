package org.postern.api.routing;

/** TLS towards a next hop, as in Postfix's smtp_tls_security_level. */
public enum TlsPolicy {
    /** Never use TLS. */
    NONE,
    /** Use STARTTLS when offered, else send in clear (opportunistic). */
    MAY,
    /** Require TLS; do not check the certificate. */
    ENCRYPT,
    /** Require TLS with a certificate chain that verifies and matches the host name. */
    VERIFY
}
