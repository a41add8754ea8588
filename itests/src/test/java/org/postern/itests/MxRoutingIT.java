package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.OptionUtils;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.testsupport.Dnsmasq;
import org.postern.testsupport.SmtpSink;

/**
 * MX routing of the built distribution against a real DNS server (dnsmasq) and real receiving servers (smtp-sink),
 * each MX host at its own 127.0.0.x address on one port: preference order, fallback to the next MX when the first
 * is down, implicit MX, null MX.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class MxRoutingIT extends PosternTestSupport {

    static final String DNS_PORT = "postern.test.dns.port";
    static final String MX_PORT = "postern.test.mx.port";

    private static final String MX1 = "127.0.0.2";
    private static final String MX2 = "127.0.0.3";
    private static final String IMPLICIT = "127.0.0.4";

    private Dnsmasq dns;
    private final List<SmtpSink> sinks = new ArrayList<>();
    private Path work;

    /** The distribution asks only our dnsmasq, and sends to MX hosts on a port of ours; 127.0.0.1 may relay. */
    @Configuration
    @Override
    public Option[] config() throws IOException {
        String dnsPort = String.valueOf(Dnsmasq.freePort());
        String mxPort = String.valueOf(mxPort());
        return OptionUtils.combine(super.config(),
                editConfigurationFilePut("etc/org.postern.dns.cfg", "servers", "127.0.0.1:" + dnsPort),
                editConfigurationFilePut("etc/org.postern.router.cfg", "smtp.port", mxPort),
                editConfigurationFilePut("etc/org.postern.router.cfg", "trusted.networks", "127.0.0.0/8"),
                systemProperty(DNS_PORT).value(dnsPort),
                systemProperty(MX_PORT).value(mxPort));
    }

    /** A port free on every MX address (loopback has the whole 127.0.0.0/8). */
    private static int mxPort() throws IOException {
        for (int attempt = 0; attempt < 20; attempt++) {
            int port;
            try (ServerSocket first = new ServerSocket()) {
                first.bind(new InetSocketAddress(InetAddress.getByName(MX1), 0));
                port = first.getLocalPort();
            }
            boolean free = true;
            for (String address : List.of(MX1, MX2, IMPLICIT)) {
                try (ServerSocket s = new ServerSocket()) {
                    s.bind(new InetSocketAddress(InetAddress.getByName(address), port));
                } catch (IOException taken) {
                    free = false;
                }
            }
            if (free) {
                return port;
            }
        }
        throw new IOException("no port free on " + MX1 + ", " + MX2 + " and " + IMPLICIT);
    }

    @Before
    public void startDns() throws Exception {
        work = Files.createTempDirectory(Paths.get(System.getProperty("karaf.data")), "mx");
        // smtp-sink runs as nobody, who must reach its dump folders inside
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        dns = Dnsmasq.start(Integer.parseInt(System.getProperty(DNS_PORT)), work,
                "--local=/test/", // names under .test it does not know are NXDOMAIN, never asked upstream
                "--mx-host=pref.test,mx2.pref.test,20",
                "--mx-host=pref.test,mx1.pref.test,10",
                "--host-record=mx1.pref.test," + MX1,
                "--host-record=mx2.pref.test," + MX2,
                "--host-record=implicit.test," + IMPLICIT,
                "--mx-host=nullmx.test,.,0");
    }

    @After
    public void stopServers() throws Exception {
        for (SmtpSink sink : sinks) {
            sink.close();
        }
        sinks.clear();
        if (dns != null) {
            dns.close();
        }
    }

    private SmtpSink sink(String address) throws Exception {
        SmtpSink sink = SmtpSink.start(address, Integer.parseInt(System.getProperty(MX_PORT)), work);
        sinks.add(sink);
        return sink;
    }

    private String send(String to, String subject) throws Exception {
        SMTPClient client = connect();
        try {
            return queueId(send(client, "alice@example.org", to, "Subject: " + subject + "\r\n\r\nrouted by MX\r\n"));
        } finally {
            client.disconnect();
        }
    }

    private void waitDelivered(String id, SmtpSink sink, String subject) throws InterruptedException {
        waitFor(subject + " at " + sink.address(), () -> {
            try {
                return sink.arrived(subject) > 0;
            } catch (IOException e) {
                return false;
            }
        });
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
    }

    @Test
    public void theMostPreferredMxGetsTheMail() throws Exception {
        SmtpSink mx1 = sink(MX1);
        SmtpSink mx2 = sink(MX2);
        String id = send("bob@pref.test", "preference");
        waitDelivered(id, mx1, "preference");
        assertEquals(1, mx1.arrived("preference"));
        assertEquals("the less preferred MX is not used while the first takes mail", 0, mx2.arrived("preference"));
    }

    @Test
    public void whenTheFirstMxIsDownTheNextGetsTheMail() throws Exception {
        SmtpSink mx1 = sink(MX1);
        SmtpSink mx2 = sink(MX2);
        String first = send("bob@pref.test", "before the outage");
        waitDelivered(first, mx1, "before the outage");

        mx1.close(); // also cuts a connection the smtp transport may keep open to it
        String second = send("bob@pref.test", "during the outage");
        waitDelivered(second, mx2, "during the outage");
        assertEquals(1, mx2.arrived("during the outage"));
        assertEquals(0, mx1.arrived("during the outage"));
        assertEquals(0, mx2.arrived("before the outage"));
    }

    @Test
    public void aDomainWithoutMxGetsItsMailAtItsAddress() throws Exception {
        SmtpSink host = sink(IMPLICIT);
        String id = send("carol@implicit.test", "implicit MX");
        waitDelivered(id, host, "implicit MX");
        assertEquals(1, host.arrived("implicit MX"));
    }

    @Test
    public void aNullMxFailsTheRecipientAtOnce() throws Exception {
        // Every MX host listens: whatever was tried would have been delivered.
        SmtpSink mx1 = sink(MX1);
        SmtpSink mx2 = sink(MX2);
        SmtpSink host = sink(IMPLICIT);
        String id = send("dave@nullmx.test", "null MX");
        // Without a bounce generator the queue manager keeps the entry for an operator, held, with the
        // recipient's permanent status (stored as deferred so that a release retries or bounces it).
        waitFor("the failure to be recorded", () -> queueStore().get(id)
                .filter(e -> e.state() == QueueEntry.State.HELD).isPresent());
        QueueEntry held = queueStore().get(id).orElseThrow();
        assertEquals("one attempt, no retry", 1, held.attempts());
        assertTrue(held.reason(), held.reason().startsWith("undeliverable"));
        RecipientStatus dave = held.recipients().get(0);
        assertEquals(dave.toString(), "5.1.10", dave.status());
        assertTrue(dave.diagnostic(), dave.diagnostic().contains("null MX"));
        String show = console("mta:queue-show " + id);
        assertTrue(show, show.contains("dave@nullmx.test") && show.contains("5.1.10"));
        for (SmtpSink sink : List.of(mx1, mx2, host)) {
            assertEquals(sink.address(), 0, sink.arrived("null MX"));
        }
        console("mta:queue-delete " + id);
        assertTrue(queueStore().get(id).isEmpty());
    }
}
