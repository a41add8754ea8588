package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Dictionary;
import java.util.Hashtable;

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
import org.postern.testsupport.SmtpSink;

/**
 * Relaying through the queue to a real receiving server (Postfix's smtp-sink) on loopback, and the
 * operator's console on the way: retries, permanent failures, hold, release, flush, delete.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class RelayIT extends PosternTestSupport {

    private Path work;
    private int sinkPort;
    private SmtpSink sink;

    @Before
    public void relayToTheSink() throws Exception {
        work = Files.createTempDirectory(new File(System.getProperty("karaf.data")).toPath(), "sink");
        // smtp-sink runs as nobody, who must reach its dump folders inside
        Files.setPosixFilePermissions(work, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
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
    public void stopSink() throws InterruptedException {
        if (sink != null) {
            sink.close();
            sink = null;
        }
    }

    /** A new smtp-sink with these options on the relay host's port; what an earlier one received is not counted. */
    private void startSink(String... options) throws Exception {
        sink = SmtpSink.start("127.0.0.1", sinkPort, work, options);
    }

    private String relay(String subject) throws Exception {
        SMTPClient client = connect();
        String id = queueId(send(client, "alice@example.org", "bob@elsewhere.example", "Subject: " + subject + "\r\n\r\nrelayed\r\n"));
        client.disconnect();
        return id;
    }

    private long arrived(String subject) throws IOException {
        return sink == null ? 0 : sink.arrived(subject);
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
