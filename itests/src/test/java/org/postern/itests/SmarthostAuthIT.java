package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.InvalidSyntaxException;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.MailAddress;
import org.postern.api.queue.QueueEntry;
import org.postern.api.routing.Router;
import org.postern.testsupport.Dovecot;
import org.postern.testsupport.SmtpSink;

/**
 * A route to a provider's smarthost that wants TLS and client AUTH: a real Dovecot submission server on loopback,
 * which relays what it accepts to smtp-sink. The route is added from the console, the credentials sit in the
 * smtp transport's configuration, as an operator would set them up.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class SmarthostAuthIT extends PosternTestSupport {

    private static final String TRANSPORT_PID = "org.postern.delivery.smtp";

    private Path dir;
    private SmtpSink sink;
    private Dovecot smarthost;

    @Before
    public void smarthostWithTlsAndAuth() throws Exception {
        // Under /tmp: Dovecot's unix sockets live in it, and a socket path has at most 107 bytes
        dir = Files.createTempDirectory(Paths.get("/tmp"), "postern-smarthost");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x")); // Dovecot runs as nobody
        sink = SmtpSink.start("127.0.0.1", freePort(), dir.resolve("sink"));
        smarthost = Dovecot.startSubmission(dir.resolve("dovecot"), "relay-user", "s3cret", sink.port());

        // Verify the smarthost's certificate, as one should when sending a password to it
        Path trust = dir.resolve("trust.p12");
        Process keytool = new ProcessBuilder(Paths.get(System.getProperty("java.home"), "bin", "keytool").toString(),
                "-importcert", "-noprompt", "-alias", "smarthost", "-file", smarthost.certificate().toString(),
                "-keystore", trust.toString(), "-storetype", "PKCS12", "-storepass", "changeit")
                .redirectErrorStream(true).start();
        String keytoolOut = new String(keytool.getInputStream().readAllBytes());
        assertTrue(keytoolOut, keytool.waitFor(60, TimeUnit.SECONDS) && keytool.exitValue() == 0);

        configure(TRANSPORT_PID, Map.of("trust.store", trust.toString(), "trust.store.password", "changeit",
                "auth.provider.username", "relay-user", "auth.provider.password", "s3cret"));
        awaitTransportConfigured("(auth.provider.username=relay-user)");
        configure("org.postern.router", Map.of("trusted.networks", "127.0.0.0/8"));
        String hop = "[127.0.0.1]:" + smarthost.port();
        String out = console("mta:route-add smarthost.test \"" + hop + "\" --tls verify --auth provider");
        assertTrue(out, console("mta:route-list").contains(hop));
        Router router = bundleContext.getService(bundleContext.getServiceReference(Router.class));
        waitFor("the route to the smarthost", () -> {
            try {
                return "provider".equals(router.route(MailAddress.parse("x@smarthost.test")).toCompletableFuture()
                        .get(5, TimeUnit.SECONDS).credentialsId());
            } catch (Exception e) {
                return false;
            }
        });
    }

    @After
    public void stopSmarthost() throws Exception {
        console("mta:route-remove smarthost.test");
        if (smarthost != null) {
            smarthost.close();
        }
        if (sink != null) {
            sink.close();
        }
        if (dir != null) {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    @Test
    public void mailGoesThroughTheSmarthostAfterTlsAndAuth() throws Exception {
        String id = send("through the smarthost");
        waitFor("the message at the sink behind the smarthost\n" + smarthost.log(),
                () -> arrived("through the smarthost") == 1);
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        String log = smarthost.log();
        assertTrue(log, log.contains("Login: user=<relay-user>, method=PLAIN"));
        assertTrue("authenticated under TLS: " + log, log.matches("(?s).*Login: user=<relay-user>, method=PLAIN,[^\n]*TLS.*"));
    }

    @Test
    public void aWrongPasswordDefersUntilTheOperatorFixesIt() throws Exception {
        configure(TRANSPORT_PID, Map.of("auth.provider.password", "wrong"));
        awaitTransportConfigured("(auth.provider.password=wrong)");
        String id = send("wrong password first");
        waitFor("the attempt to be deferred", () -> queueStore().get(id)
                .filter(e -> e.state() == QueueEntry.State.DEFERRED && e.lastError() != null).isPresent());
        QueueEntry deferred = queueStore().get(id).orElseThrow();
        assertTrue(deferred.lastError(), deferred.lastError().contains("SASL authentication failed"));
        assertTrue(deferred.lastError(), deferred.lastError().contains("535 5.7.8"));
        String listed = console("mta:queue-show " + id);
        assertTrue(listed, listed.contains("SASL authentication failed"));
        assertEquals(0, arrived("wrong password first"));

        configure(TRANSPORT_PID, Map.of("auth.provider.password", "s3cret"));
        awaitTransportConfigured("(auth.provider.password=s3cret)");
        console("mta:queue-flush " + id);
        waitFor("the message at the sink once the password is right\n" + smarthost.log(),
                () -> arrived("wrong password first") == 1);
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
    }

    /** SCR publishes a component's configuration with its service: the transport has taken it then. */
    private void awaitTransportConfigured(String filter) throws InterruptedException {
        waitFor("the smtp transport with " + filter, () -> {
            try {
                return !bundleContext.getServiceReferences(Transport.class,
                        "(&(" + Transport.NAME_PROPERTY + "=smtp)" + filter + ")").isEmpty();
            } catch (InvalidSyntaxException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    private String send(String subject) throws IOException {
        SMTPClient client = connect();
        try {
            return queueId(send(client, "alice@example.org", "bob@smarthost.test",
                    "Subject: " + subject + "\r\n\r\nfor the smarthost\r\n"));
        } finally {
            client.disconnect();
        }
    }

    private long arrived(String subject) {
        try {
            return sink.arrived(subject);
        } catch (IOException e) {
            return -1;
        }
    }

    private static int freePort() throws IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
