package org.postern.delivery.smtp.internal;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;

/** Builders for the tests: configurations, requests, certificates. */
final class Fixtures {

    private Fixtures() {
    }

    /** A configuration as ConfigAdmin would give it: the given values, the annotation's defaults for the rest. */
    static SmtpClientConfig config(Map<String, Object> values) {
        return (SmtpClientConfig) Proxy.newProxyInstance(SmtpClientConfig.class.getClassLoader(),
                new Class<?>[] {SmtpClientConfig.class}, (proxy, method, args) -> {
                    if (values.containsKey(method.getName())) {
                        return values.get(method.getName());
                    }
                    if (method.getDefaultValue() != null) {
                        return method.getDefaultValue();
                    }
                    return switch (method.getName()) {
                        case "annotationType" -> SmtpClientConfig.class;
                        case "toString" -> "SmtpClientConfig" + values;
                        case "hashCode" -> values.hashCode();
                        case "equals" -> proxy == args[0];
                        default -> throw new UnsupportedOperationException(method.getName());
                    };
                });
    }

    static SmtpTransport transport(Map<String, Object> values) throws Exception {
        SmtpTransport t = new SmtpTransport();
        t.activate(config(values), values);
        return t;
    }

    static Recipient rcpt(String address) {
        return Recipient.of(MailAddress.parse(address));
    }

    static Route route(TlsPolicy tls, NextHop... hops) {
        return new Route("smtp", "example.org", List.of(hops), tls, null);
    }

    static NextHop hop(ScriptedServer server) {
        return new NextHop(server.host(), server.port(), 0);
    }

    /** A port on which nothing listens (just closed). */
    static int closedPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** A delivery request with all the knobs a test may turn. */
    static final class Request {
        String queueId = "4QTEST";
        String sender = "sender@example.org";
        List<Recipient> recipients = new ArrayList<>();
        List<Header> added = new ArrayList<>();
        byte[] content = "Subject: test\r\n\r\nHello.\r\n".getBytes(StandardCharsets.US_ASCII);
        BodyType body = BodyType.SEVEN_BIT;
        boolean smtpUtf8;
        String envId;
        Ret ret;
        Route route;
        MessageContent contentOverride;

        Request to(String... addresses) {
            for (String a : addresses) {
                recipients.add(rcpt(a));
            }
            return this;
        }

        Request content(String text) {
            content = text.getBytes(StandardCharsets.UTF_8);
            return this;
        }

        Request header(String name, String value) {
            added.add(new Header(name, value));
            return this;
        }

        Request via(Route r) {
            route = r;
            return this;
        }

        DeliveryRequest build() {
            Envelope env = new Envelope(MailAddress.parse(sender), recipients, envId, ret, body, smtpUtf8,
                    ClientInfo.LOCAL, Instant.now());
            QueueEntry entry = new QueueEntry(queueId, env, content.length, added, QueueEntry.State.ACTIVE,
                    recipients.stream().map(RecipientStatus::pending).toList(), 0, null, null, null);
            MessageContent mc = contentOverride != null ? contentOverride : bytes(content);
            return new DeliveryRequest(entry, recipients, route, mc);
        }
    }

    static MessageContent bytes(byte[] content) {
        return new MessageContent() {
            @Override
            public long size() {
                return content.length;
            }

            @Override
            public InputStream openStream() {
                return new ByteArrayInputStream(content);
            }
        };
    }

    /** A message of {@code size} octets made up as it is read, counting what was read. */
    static MessageContent generated(long size, AtomicLong read) {
        byte[] line = ("x".repeat(78) + "\r\n").getBytes(StandardCharsets.US_ASCII);
        return new MessageContent() {
            @Override
            public long size() {
                return size;
            }

            @Override
            public InputStream openStream() {
                return new InputStream() {
                    @Override
                    public int read() {
                        byte[] one = new byte[1];
                        return read(one, 0, 1) < 0 ? -1 : one[0];
                    }

                    @Override
                    public int read(byte[] b, int off, int len) {
                        long pos = read.get();
                        if (pos >= size) {
                            return -1;
                        }
                        int n = (int) Math.min(len, size - pos);
                        for (int i = 0; i < n; i++) {
                            b[off + i] = line[(int) ((pos + i) % line.length)];
                        }
                        read.addAndGet(n);
                        return n;
                    }
                };
            }
        };
    }

    static List<DeliveryResult> deliver(SmtpTransport t, Request r) throws Exception {
        return t.deliver(r.build()).toCompletableFuture().get(60, TimeUnit.SECONDS);
    }

    static Map<String, Object> cfg(Object... keyValues) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put((String) keyValues[i], keyValues[i + 1]);
        }
        return m;
    }

    /**
     * Certificates made with the JDK's keytool: a self-signed server certificate for localhost and
     * 127.0.0.1, a trust store holding it, and a trust store holding an unrelated certificate.
     */
    static final class Certs {
        static final String PASSWORD = "changeit";
        final Path serverKeyStore;
        final Path trustStore;
        final Path otherTrustStore;

        Certs(Path dir) throws Exception {
            serverKeyStore = dir.resolve("server.p12");
            trustStore = dir.resolve("trust.p12");
            otherTrustStore = dir.resolve("other-trust.p12");
            Path other = dir.resolve("other.p12");
            keytool("-genkeypair", "-alias", "server", "-keyalg", "EC", "-groupname", "secp256r1",
                    "-dname", "CN=localhost", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-validity", "2",
                    "-storetype", "PKCS12", "-keystore", serverKeyStore.toString(), "-storepass", PASSWORD);
            keytool("-exportcert", "-rfc", "-alias", "server", "-keystore", serverKeyStore.toString(),
                    "-storepass", PASSWORD, "-file", dir.resolve("server.pem").toString());
            keytool("-importcert", "-noprompt", "-alias", "server", "-file", dir.resolve("server.pem").toString(),
                    "-storetype", "PKCS12", "-keystore", trustStore.toString(), "-storepass", PASSWORD);
            keytool("-genkeypair", "-alias", "other", "-keyalg", "EC", "-groupname", "secp256r1",
                    "-dname", "CN=other", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-validity", "2",
                    "-storetype", "PKCS12", "-keystore", other.toString(), "-storepass", PASSWORD);
            keytool("-exportcert", "-rfc", "-alias", "other", "-keystore", other.toString(),
                    "-storepass", PASSWORD, "-file", dir.resolve("other.pem").toString());
            keytool("-importcert", "-noprompt", "-alias", "other", "-file", dir.resolve("other.pem").toString(),
                    "-storetype", "PKCS12", "-keystore", otherTrustStore.toString(), "-storepass", PASSWORD);
        }

        SSLContext serverContext() throws Exception {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(serverKeyStore)) {
                ks.load(in, PASSWORD.toCharArray());
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, PASSWORD.toCharArray());
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), null, null);
            return ctx;
        }

        private static void keytool(String... args) throws Exception {
            Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
            if (!Files.isExecutable(keytool)) {
                throw new AssertionError("the JDK's keytool is needed to make test certificates: " + keytool);
            }
            List<String> command = new ArrayList<>();
            command.add(keytool.toString());
            command.addAll(List.of(args));
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new AssertionError("keytool " + args[0] + " failed: " + output);
            }
        }
    }
}
