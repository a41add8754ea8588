package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
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
import org.osgi.framework.ServiceReference;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.api.mail.MailAddress;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;

/**
 * Relaying through the queue to a real receiving server (Postfix's smtp-sink) on loopback, and the
 * operator's console on the way: retries, permanent failures, hold, release, flush, delete.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class RelayIT extends PosternTestSupport {

    private final List<Process> sinks = new ArrayList<>();
    private Path dumps;
    private int sinkPort;

    @Before
    public void relayToTheSink() throws Exception {
        dumps = Files.createTempDirectory(new File(System.getProperty("karaf.data")).toPath(), "sink");
        // smtp-sink drops root for nobody, who must be able to write its dumps here
        Files.setPosixFilePermissions(dumps, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        try (ServerSocket s = new ServerSocket(0)) {
            sinkPort = s.getLocalPort();
        }
        ServiceReference<ConfigurationAdmin> ref = bundleContext.getServiceReference(ConfigurationAdmin.class);
        Configuration router = bundleContext.getService(ref).getConfiguration("org.postern.router", null);
        Dictionary<String, Object> props = router.getProperties() == null ? new Hashtable<>() : router.getProperties();
        props.put("relayhost", "[127.0.0.1]:" + sinkPort);
        props.put("trusted.networks", "127.0.0.0/8");
        router.update(props);
        Router routing = bundleContext.getService(bundleContext.getServiceReference(Router.class));
        waitFor("the relayhost route", () -> {
            try {
                Route route = routing.route(MailAddress.parse("x@elsewhere.example")).toCompletableFuture().get();
                return route.nextHops().stream().anyMatch(h -> h.port() == sinkPort);
            } catch (Exception e) {
                return false;
            }
        });
    }

    @After
    public void stopSinks() {
        sinks.forEach(p -> {
            p.destroyForcibly();
            try {
                p.waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    private void startSink(String... options) throws Exception {
        if (!new File("/usr/sbin/smtp-sink").canExecute()) {
            fail("smtp-sink is missing: apt-get install postfix (see .ci/run)");
        }
        List<String> cmd = new ArrayList<>(List.of("/usr/sbin/smtp-sink", "-4", "-d", dumps + "/%M."));
        if ("root".equals(System.getProperty("user.name"))) {
            cmd.addAll(List.of("-u", "nobody"));
        }
        cmd.addAll(List.of(options));
        cmd.addAll(List.of("127.0.0.1:" + sinkPort, "64"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dumps.resolveSibling(dumps.getFileName() + ".log").toFile()).start();
        sinks.add(p);
        waitFor("smtp-sink to listen", () -> {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", sinkPort)) {
                return true;
            } catch (IOException e) {
                return false;
            }
        });
    }

    private void stopSink() throws Exception {
        for (Process p : sinks) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
        }
        sinks.clear();
    }

    private String relay(String subject) throws Exception {
        SMTPClient client = connect();
        String id = queueId(send(client, "alice@example.org", "bob@elsewhere.example", "Subject: " + subject + "\r\n\r\nrelayed\r\n"));
        client.disconnect();
        return id;
    }

    private long arrived(String subject) throws IOException {
        try (Stream<Path> files = Files.list(dumps)) {
            return files.filter(f -> {
                try {
                    // smtp-sink writes its dumps with LF line ends
                    return Files.readString(f, StandardCharsets.ISO_8859_1).replace("\r\n", "\n")
                            .contains("\nSubject: " + subject + "\n");
                } catch (IOException e) {
                    return false;
                }
            }).count();
        }
    }

    private void waitArrived(String subject) throws InterruptedException {
        waitFor(subject + " at the sink", () -> {
            try {
                return arrived(subject) > 0;
            } catch (IOException e) {
                return false;
            }
        });
    }

    private QueueEntry waitState(String id, String what, java.util.function.Predicate<QueueEntry> condition) throws InterruptedException {
        waitFor(what, () -> queueStore().get(id).filter(condition).isPresent());
        return queueStore().get(id).orElseThrow();
    }

    @Test
    public void relaysToARealServerAndLeavesTheQueue() throws Exception {
        startSink();
        String id = relay("straight through");
        waitArrived("straight through");
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        assertEquals(1, arrived("straight through"));
    }

    @Test
    public void aTemporaryFailureGivesOneRetryAndOneDelivery() throws Exception {
        startSink("-r", "RCPT");
        String id = relay("try again");
        QueueEntry deferred = waitState(id, "a deferral", e -> e.state() == QueueEntry.State.DEFERRED);
        assertEquals(1, deferred.attempts());
        assertTrue(deferred.lastError(), deferred.lastError().contains("450"));
        assertTrue(console("mta:queue-list --state DEFERRED").contains(id));

        stopSink();
        startSink();
        String out = console("mta:queue-flush " + id);
        assertTrue(out, out.contains(id));
        waitArrived("try again");
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        assertEquals(1, arrived("try again"));
    }

    @Test
    public void aPermanentFailureFailsTheRecipient() throws Exception {
        startSink("-f", "RCPT");
        String id = relay("no such user");
        // without a bounce generator the entry is kept for an operator, with the remote 5xx
        QueueEntry held = waitState(id, "the failure to be recorded", e -> e.state() == QueueEntry.State.HELD);
        RecipientStatus bob = held.recipients().get(0);
        assertTrue(bob.toString(), bob.status().startsWith("5."));
        assertTrue(bob.diagnostic(), bob.diagnostic().contains("500"));
        String show = console("mta:queue-show " + id);
        assertTrue(show, show.contains("bob@elsewhere.example") && show.contains(bob.status()));
        console("mta:queue-delete " + id);
        assertTrue(queueStore().get(id).isEmpty());
        assertEquals(0, arrived("no such user"));
    }

    @Test
    public void holdAndReleaseFromTheConsole() throws Exception {
        String id = relay("held back"); // nothing listens on the sink port yet: deferred
        waitState(id, "a deferral", e -> e.state() == QueueEntry.State.DEFERRED);
        console("mta:queue-hold " + id);
        assertEquals(QueueEntry.State.HELD, queueStore().get(id).orElseThrow().state());
        assertTrue(console("mta:queue-list --state HELD").contains(id));
        startSink();
        console("mta:queue-flush");
        Thread.sleep(2000);
        assertEquals("a held entry is not flushed", 0, arrived("held back"));
        console("mta:queue-release " + id);
        waitArrived("held back");
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
    }
}
