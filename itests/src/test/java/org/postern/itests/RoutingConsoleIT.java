package org.postern.itests;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;

import java.io.IOException;
import java.io.Reader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Properties;
import java.util.function.Predicate;
import java.util.stream.Stream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.OptionUtils;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.ServiceReference;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.api.routing.Router;
import org.postern.testsupport.SmtpSink;

/**
 * The routing rules administered from the console (through SessionFactory, as an operator would): each change
 * shows in the next SMTP transaction, lands in etc/org.postern.router.cfg, and survives a restart of the router
 * bundle; a bad value changes nothing.
 *
 * <p>Every test client comes from 127.0.0.1, which is trusted only when a test makes it so.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class RoutingConsoleIT extends PosternTestSupport {

    private static final String PID = "org.postern.router";
    private static final String RELAY_DENIED = "554 5.7.1 ";

    private SmtpSink sink;

    @Configuration
    @Override
    public Option[] config() throws IOException {
        return OptionUtils.combine(super.config(),
                editConfigurationFilePut("etc/org.postern.router.cfg", "trusted.networks", ""));
    }

    /** Back to the distribution's rules, so that every test starts from them. */
    @After
    public void resetRules() throws Exception {
        if (sink != null) {
            sink.close();
        }
        org.osgi.service.cm.Configuration router = configAdmin().getConfiguration(PID, null);
        Dictionary<String, Object> props = router.getProperties() == null ? new Hashtable<>() : router.getProperties();
        props.put("local.domains", "localhost");
        props.put("trusted.networks", "");
        props.put("relay.domains", "");
        props.put("routes", "");
        router.update(props);
        waitForRcpt("someone@example.net", r -> r.startsWith(RELAY_DENIED));
    }

    private ConfigurationAdmin configAdmin() {
        ServiceReference<ConfigurationAdmin> ref = bundleContext.getServiceReference(ConfigurationAdmin.class);
        return bundleContext.getService(ref);
    }

    // ---- SMTP ----

    /** The reply to RCPT TO:<to> in a new transaction from 127.0.0.1; null when the listener is not there. */
    private String rcpt(String to) {
        try {
            SMTPClient client = connect();
            try {
                String mail = command(client, "MAIL FROM:<alice@example.org>");
                return mail.startsWith("250") ? command(client, "RCPT TO:<" + to + ">") : mail;
            } finally {
                client.disconnect();
            }
        } catch (IOException | AssertionError e) {
            return null; // not listening (the router restarting): asked again
        }
    }

    /** Waits (bounded) for the reply to RCPT to match: a change applies a moment after the command returns. */
    private String waitForRcpt(String to, Predicate<String> expected) throws InterruptedException {
        String[] last = new String[1];
        try {
            waitFor("a RCPT TO:<" + to + "> reply as expected", () -> {
                last[0] = rcpt(to);
                return last[0] != null && expected.test(last[0]);
            });
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; last reply: " + last[0], e);
        }
        return last[0];
    }

    private String sendOne(String to, String subject) throws IOException {
        SMTPClient client = connect();
        try {
            return queueId(send(client, "alice@example.org", to, "Subject: " + subject + "\r\n\r\nhello\r\n"));
        } finally {
            client.disconnect();
        }
    }

    // ---- etc/org.postern.router.cfg ----

    private static Path routerFile() {
        return Paths.get(System.getProperty("karaf.etc"), PID + ".cfg");
    }

    private static Properties readRouterFile() throws IOException {
        Properties properties = new Properties();
        try (Reader reader = Files.newBufferedReader(routerFile(), StandardCharsets.ISO_8859_1)) {
            properties.load(reader);
        }
        return properties;
    }

    /** The items of a list property as the file has it (comma separated). */
    private static List<String> fileList(String key) throws IOException {
        String value = readRouterFile().getProperty(key, "");
        return Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    }

    /** fileinstall writes a ConfigAdmin change back to etc/ a moment later. */
    private void waitForFile(String what, String key, Predicate<List<String>> expected) throws InterruptedException {
        waitFor(what + " in " + routerFile(), () -> {
            try {
                return expected.test(fileList(key));
            } catch (IOException e) {
                return false;
            }
        });
    }

    private List<Path> newMail(String user) throws IOException {
        Path dir = Paths.get(System.getProperty("karaf.data"), "mail", user, "Maildir", "new");
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.toList();
        }
    }

    // ---- tests ----

    @Test
    public void aLocalDomainAddedAndRemovedFromTheConsole() throws Exception {
        String before = rcpt("postmaster@example.net");
        assertTrue(before, before.startsWith(RELAY_DENIED));

        String out = console("mta:domain-add example.net");
        assertTrue(out, out.contains("Added local domain example.net"));
        waitForRcpt("postmaster@example.net", r -> r.startsWith("250 "));
        // local now: the mailbox table decides
        String unknown = rcpt("nobody@example.net");
        assertTrue(unknown, unknown.startsWith("550 5.1.1 "));
        String id = sendOne("bob@example.net", "for bob at example.net");
        waitFor("bob's new mail", () -> {
            try {
                return newMail("bob").stream().anyMatch(f -> {
                    try {
                        return Files.readString(f, StandardCharsets.UTF_8).contains("Subject: for bob at example.net\n");
                    } catch (IOException e) {
                        return false;
                    }
                });
            } catch (IOException e) {
                return false;
            }
        });
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());
        assertTrue(console("mta:domain-list").contains("example.net"));
        waitForFile("example.net as a local domain", "local.domains", l -> l.contains("example.net"));
        assertTrue(fileList("local.domains").contains("localhost"));

        out = console("mta:domain-remove example.net");
        assertTrue(out, out.contains("example.net"));
        waitForRcpt("postmaster@example.net", r -> r.startsWith(RELAY_DENIED));
        waitForFile("example.net gone", "local.domains", l -> !l.contains("example.net") && l.contains("localhost"));
    }

    @Test
    public void networksAndRoutesFromTheConsoleSurviveARestartOfTheRouter() throws Exception {
        // the next hop of the route: a real server on its own loopback address
        int port;
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.9"), 0));
            port = s.getLocalPort();
        }
        Path work = Files.createTempDirectory(Paths.get(System.getProperty("karaf.data")), "route");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x")); // smtp-sink is nobody
        sink = SmtpSink.start("127.0.0.9", port, work);
        String hop = "[127.0.0.9]:" + port;

        String before = rcpt("someone@example.net");
        assertTrue(before, before.startsWith(RELAY_DENIED));
        String out = console("mta:relay-add 127.0.0.1/32");
        assertTrue(out, out.contains("Added trusted network 127.0.0.1/32"));
        waitForRcpt("someone@example.net", r -> r.startsWith("250 "));
        assertTrue(console("mta:relay-list").contains("127.0.0.1/32"));

        // Gogo reads [..] as a list: the next hop is quoted, as an operator types it
        out = console("mta:route-add example.net \"" + hop + "\" --tls none");
        assertTrue(out, out.contains("Added route example.net"));
        String test = waitForRouteTest(hop);
        assertTrue(test, test.contains("Transport:   smtp"));
        assertTrue(test, test.contains("TLS:         none"));
        assertTrue(test, test.contains("127.0.0.9") && test.contains(String.valueOf(port)));
        // from an internet client the same address is refused; from us it is relayed
        assertTrue(test, test.contains("RCPT:        refused: 554 5.7.1"));
        String trusted = console("mta:route-test --client 127.0.0.1 someone@example.net");
        assertTrue(trusted, trusted.contains("RCPT:        accepted, relayed"));
        assertTrue(console("mta:route-list").contains(hop));

        String id = sendOne("someone@example.net", "by the route");
        waitFor("the message at the route's next hop", () -> arrived("by the route"));
        waitFor("the entry to leave the queue", () -> queueStore().get(id).isEmpty());

        waitForFile("the trusted network", "trusted.networks", l -> l.equals(List.of("127.0.0.1/32")));
        waitForFile("the route", "routes", l -> l.size() == 1 && l.get(0).startsWith("example.net = " + hop));

        // a restart of the router bundle: a new Router from the same rules
        Bundle routerBundle = bundle("org.postern.router");
        Object routerId = bundleContext.getServiceReference(Router.class).getProperty("service.id");
        console("bundle:restart org.postern.router");
        waitFor("the router bundle to be active", () -> routerBundle.getState() == Bundle.ACTIVE);
        waitFor("a new Router service", () -> {
            ServiceReference<Router> ref = bundleContext.getServiceReference(Router.class);
            return ref != null && !routerId.equals(ref.getProperty("service.id"));
        });
        assertNotEquals(routerId, bundleContext.getServiceReference(Router.class).getProperty("service.id"));
        waitForRcpt("someone@example.net", r -> r.startsWith("250 "));
        test = waitForRouteTest(hop);
        assertTrue(test, test.contains("127.0.0.9"));
        String again = sendOne("someone@example.net", "after the restart");
        waitFor("the message at the route's next hop", () -> arrived("after the restart"));
        waitFor("the entry to leave the queue", () -> queueStore().get(again).isEmpty());
        assertEquals(List.of("127.0.0.1/32"), fileList("trusted.networks"));

        out = console("mta:route-remove example.net");
        assertTrue(out, out.contains("example.net"));
        out = console("mta:relay-remove 127.0.0.1/32");
        assertTrue(out, out.contains("127.0.0.1/32"));
        waitForRcpt("someone@example.net", r -> r.startsWith(RELAY_DENIED));
        waitForFile("no trusted network", "trusted.networks", List::isEmpty);
        waitForFile("no route", "routes", List::isEmpty);
    }

    private boolean arrived(String subject) {
        try {
            return sink.arrived(subject) > 0;
        } catch (IOException e) {
            return false;
        }
    }

    /** route-test output once the route through this next hop applies. */
    private String waitForRouteTest(String hop) throws Exception {
        String[] last = new String[1];
        try {
            waitFor("mta:route-test to show " + hop, () -> {
                try {
                    last[0] = console("mta:route-test someone@example.net");
                } catch (Exception e) {
                    last[0] = e.toString();
                }
                return last[0].contains("Destination: " + hop);
            });
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; last output:\n" + last[0], e);
        }
        return last[0];
    }

    @Test
    public void aBadValueGetsAClearMessageAndChangesNothing() throws Exception {
        // a known state of the file first (the @After of another test may just have written it)
        waitForFile("no trusted network", "trusted.networks", List::isEmpty);
        byte[] file = Files.readAllBytes(routerFile());
        Dictionary<String, Object> config = configAdmin().getConfiguration(PID, null).getProperties();

        assertRefused("mta:relay-add 10.0.0.0/33", "Bad network '10.0.0.0/33'");
        // one bad value among good ones: none of them is added
        assertRefused("mta:relay-add 192.0.2.0/24 10.0.0.0/33", "Bad network '10.0.0.0/33'");
        assertRefused("mta:route-add example.org \"[127.0.0.1]:65536\"", "bad port '65536'");
        assertRefused("mta:route-add example.org mx --tls sometimes", "bad TLS policy 'sometimes'");
        assertRefused("mta:domain-add exa_mple..net", "Bad domain");

        Thread.sleep(2000); // fileinstall would have written a change by now
        assertArrayEquals("etc/" + PID + ".cfg changed", file, Files.readAllBytes(routerFile()));
        Dictionary<String, Object> after = configAdmin().getConfiguration(PID, null).getProperties();
        for (String key : List.of("trusted.networks", "routes", "local.domains", "relay.domains")) {
            assertEquals(key, String.valueOf(config.get(key)), String.valueOf(after.get(key)));
        }
        assertTrue(console("mta:relay-list").contains("No trusted networks"));
        String denied = rcpt("someone@example.net");
        assertTrue(denied, denied.startsWith(RELAY_DENIED));
    }

    private void assertRefused(String command, String message) {
        try {
            String out = console(command);
            fail(command + " was accepted: " + out);
        } catch (Exception e) {
            assertTrue(command + ": " + e, String.valueOf(e.getMessage()).contains(message));
        }
    }
}
