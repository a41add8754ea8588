package org.postern.smtp.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.Writer;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Objects;

import javax.net.ssl.KeyManagerFactory;

import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;

import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The listener's server TLS context, built from its configuration (PEM certificate chain and PKCS#8 key,
 * or a PKCS#12 keystore), TLS 1.2 and 1.3 only. The files are checked again for each new TLS session, so
 * a renewed certificate is taken without a restart; a broken renewal keeps the last good context.
 */
final class TlsContexts {

    private static final Logger LOG = LoggerFactory.getLogger(TlsContexts.class);
    static final List<String> PROTOCOLS = List.of("TLSv1.3", "TLSv1.2");

    private final Path certificate;
    private final Path key;
    private final Path keystore;
    private final char[] keystorePassword;

    private SslContext context;
    private List<FileTime> stamp;

    private TlsContexts(Path certificate, Path key, Path keystore, char[] keystorePassword) {
        this.certificate = certificate;
        this.key = key;
        this.keystore = keystore;
        this.keystorePassword = keystorePassword;
    }

    /** Null when the configuration names no certificate: then the listener offers no TLS. */
    static TlsContexts fromConfig(ListenerConfig cfg) {
        if (!cfg.tls_keystore().isBlank()) {
            return new TlsContexts(null, null, Paths.get(cfg.tls_keystore()), cfg.tls_keystore_password().toCharArray());
        }
        if (cfg.tls_certificate().isBlank() || cfg.tls_key().isBlank()) {
            return null;
        }
        Path cert = Paths.get(cfg.tls_certificate());
        Path key = Paths.get(cfg.tls_key());
        if (cfg.tls_self_signed()) {
            synchronized (TlsContexts.class) { // listeners sharing the files may start at the same time
                if (!Files.exists(cert) && !Files.exists(key)) {
                    try {
                        writeSelfSigned(cfg.hostname(), cert, key);
                        LOG.warn("generated a self-signed certificate for {} in {}: replace it with a real one",
                                cfg.hostname(), cert);
                    } catch (Exception e) {
                        LOG.error("cannot generate a self-signed certificate in {}: {}", cert, e.toString());
                    }
                }
            }
        }
        return new TlsContexts(cert, key, null, null);
    }

    /** The current context, reloaded when the files changed; null when none could ever be built. */
    synchronized SslContext current() {
        List<FileTime> now;
        try {
            now = keystore != null ? List.of(Files.getLastModifiedTime(keystore))
                    : List.of(Files.getLastModifiedTime(certificate), Files.getLastModifiedTime(key));
        } catch (IOException e) {
            if (context == null) {
                LOG.error("TLS unavailable: {}", e.toString());
            }
            return context;
        }
        if (!Objects.equals(now, stamp)) {
            try {
                context = build();
                LOG.info("TLS certificate loaded from {}", keystore != null ? keystore : certificate);
            } catch (Exception e) {
                LOG.error("cannot load the TLS certificate from {}: {}{}", keystore != null ? keystore : certificate,
                        e.toString(), context != null ? "; keeping the previous one" : "");
            }
            stamp = now;
        }
        return context;
    }

    private SslContext build() throws Exception {
        SslContextBuilder builder;
        if (keystore != null) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(keystore)) {
                ks.load(in, keystorePassword);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, keystorePassword);
            builder = SslContextBuilder.forServer(kmf);
        } else {
            builder = SslContextBuilder.forServer(certificate.toFile(), key.toFile());
        }
        return builder.sslProvider(SslProvider.JDK).protocols(PROTOCOLS).build();
    }

    /** A self-signed RSA certificate for {@code hostname}, valid a year, written as PEM (key readable by owner only). */
    static void writeSelfSigned(String hostname, Path certFile, Path keyFile) throws Exception {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(2048, new SecureRandom());
        KeyPair pair = generator.generateKeyPair();
        Instant now = Instant.now();
        X500Name subject = new X500Name("CN=" + hostname.replaceAll("[,=+<>#;\"\\\\]", ""));
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject,
                new BigInteger(64, new SecureRandom()), Date.from(now.minus(Duration.ofHours(1))),
                Date.from(now.plus(Duration.ofDays(365))), subject, pair.getPublic());
        builder.addExtension(Extension.subjectAlternativeName, false,
                new GeneralNames(new GeneralName(GeneralName.dNSName, hostname)));
        X509Certificate cert = new JcaX509CertificateConverter()
                .getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withRSA").build(pair.getPrivate())));
        Files.createDirectories(certFile.toAbsolutePath().getParent());
        Files.createDirectories(keyFile.toAbsolutePath().getParent());
        Path tmpKey = keyFile.resolveSibling(keyFile.getFileName() + ".tmp");
        Files.deleteIfExists(tmpKey);
        try {
            Files.createFile(tmpKey, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException e) {
            Files.createFile(tmpKey);
        }
        try (Writer w = Files.newBufferedWriter(tmpKey, StandardCharsets.US_ASCII); JcaPEMWriter pem = new JcaPEMWriter(w)) {
            pem.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(pair.getPrivate(), null));
        }
        Path tmpCert = certFile.resolveSibling(certFile.getFileName() + ".tmp");
        try (Writer w = Files.newBufferedWriter(tmpCert, StandardCharsets.US_ASCII); JcaPEMWriter pem = new JcaPEMWriter(w)) {
            pem.writeObject(cert);
        }
        Files.move(tmpKey, keyFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        Files.move(tmpCert, certFile, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }
}
