package org.postern.delivery.smtp.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;

import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The two client TLS contexts, TLS 1.2 and 1.3 only, on the JDK's provider:
 * <ul>
 * <li>{@code unchecked} for the may and encrypt policies: any certificate, no name check. Opportunistic
 * TLS defeats passive eavesdropping only, and refusing a self-signed certificate there would send the
 * mail in clear instead, which is worse.</li>
 * <li>{@code verified} for the verify policy: the chain must verify against the trust store (the JDK's, or
 * the configured PKCS#12 file) and the certificate must match the next hop's name, as HTTPS checks it.</li>
 * </ul>
 */
record TlsContexts(SslContext unchecked, SslContext verified, String verifyProblem) {

    private static final Logger LOG = LoggerFactory.getLogger(TlsContexts.class);
    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    /**
     * Builds both contexts. A trust store that cannot be read leaves {@code verified} null and says why in
     * {@code verifyProblem}: mail under the verify policy then waits, and every other mail still goes.
     */
    static TlsContexts create(String trustStore, String password) throws SSLException {
        SslContext unchecked = SslContextBuilder.forClient()
                .sslProvider(SslProvider.JDK)
                .protocols(PROTOCOLS)
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .endpointIdentificationAlgorithm(null) // Netty 4.2 checks names by default
                .build();
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trustStore == null || trustStore.isBlank() ? null : load(Path.of(trustStore), password));
            SslContext verified = SslContextBuilder.forClient()
                    .sslProvider(SslProvider.JDK)
                    .protocols(PROTOCOLS)
                    .trustManager(tmf)
                    .endpointIdentificationAlgorithm("HTTPS")
                    .build();
            return new TlsContexts(unchecked, verified, null);
        } catch (IOException | GeneralSecurityException | RuntimeException e) {
            String problem = (trustStore == null || trustStore.isBlank() ? "the JDK trust store" : "trust store " + trustStore)
                    + " cannot be used: " + e;
            LOG.error("smtp transport: {}; mail under the verify TLS policy will be deferred", problem, e);
            return new TlsContexts(unchecked, null, problem);
        }
    }

    private static KeyStore load(Path file, String password) throws IOException, GeneralSecurityException {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(file)) {
            ks.load(in, password == null || password.isEmpty() ? null : password.toCharArray());
        }
        return ks;
    }
}
