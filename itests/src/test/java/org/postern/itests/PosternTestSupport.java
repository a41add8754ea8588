package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.ops4j.pax.exam.CoreOptions.mavenBundle;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;
import static org.ops4j.pax.exam.CoreOptions.vmOption;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.configureConsole;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.editConfigurationFilePut;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.karafDistributionConfiguration;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.keepRuntimeFolder;
import static org.ops4j.pax.exam.karaf.options.KarafDistributionOption.logLevel;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

import java.security.PrivilegedActionException;
import java.security.PrivilegedExceptionAction;

import javax.inject.Inject;
import javax.security.auth.Subject;

import org.apache.commons.net.smtp.SMTPClient;
import org.apache.karaf.jaas.boot.principal.RolePrincipal;
import org.apache.karaf.jaas.boot.principal.UserPrincipal;
import org.apache.karaf.shell.api.console.Session;
import org.junit.Before;
import org.apache.karaf.shell.api.console.SessionFactory;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.CoreOptions;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.karaf.options.LogLevelOption.LogLevel;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;
import org.postern.api.queue.QueueStore;

/**
 * Boots the built Postern distribution (not a hand-picked set of bundles) and gives tests an SMTP client
 * Postern did not write (commons-net) and the Karaf console.
 *
 * <p>{@link #config()} runs in the test JVM; test methods run inside Karaf, so ports and paths travel as
 * system properties.
 */
public abstract class PosternTestSupport {

    static final String SMTP_PORT = "postern.test.smtp.port";
    static final String SUBMISSION_PORT = "postern.test.submission.port";

    @Inject
    protected BundleContext bundleContext;

    @Inject
    protected SessionFactory sessionFactory;

    @Configuration
    public Option[] config() throws IOException {
        String karafVersion = System.getProperty("postern.karaf.version");
        String repo = System.getProperty("maven.repo.local");
        String smtpPort = String.valueOf(freePort());
        String submissionPort = String.valueOf(freePort());
        File distribution = new File(System.getProperty("postern.distribution"));
        List<Option> options = new ArrayList<>(List.of(
                karafDistributionConfiguration()
                        .frameworkUrl(distribution.toURI().toString())
                        .karafVersion(karafVersion)
                        .name("Postern")
                        .unpackDirectory(new File("target/exam"))
                        .useDeployFolder(false),
                keepRuntimeFolder(),
                configureConsole().ignoreLocalConsole(),
                logLevel(LogLevel.INFO),
                // Resolve only from the build's local repository (FACTS trap 7).
                editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.repositories", ""),
                editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.defaultRepositories",
                        "file:" + repo + "@id=local@snapshots"),
                editConfigurationFilePut("etc/org.ops4j.pax.url.mvn.cfg", "org.ops4j.pax.url.mvn.localRepository", repo),
                // Random ports: tests never collide with a running Postern or each other (FACTS trap 8).
                editConfigurationFilePut("etc/org.apache.karaf.shell.cfg", "sshPort", String.valueOf(freePort())),
                editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiRegistryPort", String.valueOf(freePort())),
                editConfigurationFilePut("etc/org.apache.karaf.management.cfg", "rmiServerPort", String.valueOf(freePort())),
                editConfigurationFilePut("etc/org.postern.smtp.listener-mx.cfg", "port", smtpPort),
                editConfigurationFilePut("etc/org.postern.smtp.listener-submission.cfg", "port", submissionPort),
                editConfigurationFilePut("etc/org.postern.delivery.local.cfg", "mailboxes", "postmaster, bob, dave"),
                systemProperty(SMTP_PORT).value(smtpPort),
                systemProperty(SUBMISSION_PORT).value(submissionPort),
                systemProperty("postern.sample.jar").value(System.getProperty("postern.sample.jar")),
                mavenBundle("commons-net", "commons-net", System.getProperty("postern.commons-net.version")).start(),
                // The test helpers (dnsmasq, Dovecot, smtp-sink) run where the test methods run. By its file, as
                // the reactor built it: a snapshot need not be installed in the local repository (FACTS trap 3).
                CoreOptions.bundle(new File(System.getProperty("postern.test-support.jar")).toURI().toString()).start()));
        // Pax Exam does not pass Karaf's Java 9+ flags (FACTS trap 5): the same set as bin/karaf.
        for (String flag : new String[] {
                "--add-reads=java.xml=java.logging",
                "--add-exports=java.base/org.apache.karaf.specs.locator=java.xml,ALL-UNNAMED",
                "--patch-module", "java.base=lib/endorsed/org.apache.karaf.specs.locator-" + karafVersion + ".jar",
                "--patch-module", "java.xml=lib/endorsed/org.apache.karaf.specs.java.xml-" + karafVersion + ".jar",
                "--add-opens", "java.base/java.security=ALL-UNNAMED",
                "--add-opens", "java.base/java.net=ALL-UNNAMED",
                "--add-opens", "java.base/java.lang=ALL-UNNAMED",
                "--add-opens", "java.base/java.util=ALL-UNNAMED",
                "--add-opens", "java.naming/javax.naming.spi=ALL-UNNAMED",
                "--add-opens", "java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.protocol.file=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.protocol.ftp=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED",
                "--add-exports=java.base/sun.net.www.content.text=ALL-UNNAMED",
                "--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED",
                "--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED",
                "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
                "--add-exports=java.security.sasl/com.sun.security.sasl=ALL-UNNAMED",
                "--add-exports=java.naming/com.sun.jndi.ldap=ALL-UNNAMED",
                "-classpath", "lib/jdk9plus/*" + File.pathSeparator + "lib/boot/*"}) {
            options.add(vmOption(flag));
        }
        return options.toArray(new Option[0]);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Tests start once the boot features are in, the listener takes connections and the commands exist. */
    @Before
    public void waitForPostern() throws InterruptedException {
        waitFor("Karaf to finish booting",
                () -> bundleContext.getServiceReference("org.apache.karaf.features.BootFinished") != null);
        waitFor("the SMTP listener", () -> {
            try (Socket s = new Socket("127.0.0.1", smtpPort())) {
                return true;
            } catch (IOException e) {
                return false;
            }
        });
        waitFor("the console commands", () -> sessionFactory.getRegistry().getCommand("mta", "filter-list") != null
                && sessionFactory.getRegistry().getCommand("bundle", "install") != null);
    }

    /**
     * Stops the queue manager, so that what the listener stored stays in the queue for the test to read
     * (with it running, a message to a local user is in its Maildir a few milliseconds after the 250).
     */
    protected void keepMessagesInTheQueue() throws Exception {
        Bundle manager = bundle("org.postern.queue-manager");
        if (manager != null && manager.getState() == Bundle.ACTIVE) {
            manager.stop(Bundle.STOP_TRANSIENT);
        }
    }

    // ---- SMTP ----

    protected int smtpPort() {
        return Integer.parseInt(System.getProperty(SMTP_PORT));
    }

    protected int submissionPort() {
        return Integer.parseInt(System.getProperty(SUBMISSION_PORT));
    }

    /** A connected, greeted client that has said EHLO. */
    protected SMTPClient connect() throws IOException {
        SMTPClient client = new SMTPClient(StandardCharsets.UTF_8.name());
        client.setDefaultTimeout(20_000);
        client.connect("127.0.0.1", smtpPort());
        client.setSoTimeout(20_000);
        assertEquals(client.getReplyString(), 220, client.getReplyCode());
        assertEquals(client.getReplyString(), 250, client.sendCommand("EHLO", "itest.example"));
        return client;
    }

    /** Sends a command and returns the whole reply text (code, enhanced status, text). */
    protected static String command(SMTPClient client, String line) throws IOException {
        client.sendCommand(line);
        return client.getReplyString().trim();
    }

    /** Sends one message in its own transaction and returns the final reply to the end of data. */
    protected static String send(SMTPClient client, String from, String to, String message) throws IOException {
        String mail = command(client, "MAIL FROM:<" + from + ">");
        if (!mail.startsWith("250")) {
            return mail;
        }
        String rcpt = command(client, "RCPT TO:<" + to + ">");
        if (!rcpt.startsWith("250")) {
            command(client, "RSET");
            return rcpt;
        }
        java.io.Writer writer = client.sendMessageData(); // DATA; null unless 354
        if (writer == null) {
            return client.getReplyString().trim();
        }
        writer.write(message); // commons-net dot-stuffs and ends with CRLF.CRLF
        writer.close();
        client.completePendingCommand();
        return client.getReplyString().trim();
    }

    /** The queue id in a "250 2.0.0 Ok: queued as ID" reply. */
    protected static String queueId(String reply) {
        assertTrue(reply, reply.startsWith("250 2.0.0 Ok: queued as "));
        return reply.substring("250 2.0.0 Ok: queued as ".length()).trim();
    }

    // ---- console and services ----

    /**
     * Runs a console command as an operator with the admin roles would (command ACLs apply to a subject),
     * and returns what it printed.
     */
    protected String console(String command) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        Subject admin = new Subject();
        admin.getPrincipals().add(new UserPrincipal("admin"));
        for (String role : new String[] {"admin", "manager", "viewer", "systembundles"}) {
            admin.getPrincipals().add(new RolePrincipal(role));
        }
        Session session = sessionFactory.create(System.in, out, out);
        try {
            Object result = Subject.doAs(admin, (PrivilegedExceptionAction<Object>) () -> session.execute(command));
            if (result != null) {
                out.println(result);
            }
        } catch (PrivilegedActionException e) {
            throw e.getException();
        } finally {
            out.flush();
            session.close();
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /**
     * Sets properties of a configuration as an operator's config:property-set would; "?" binds it to whichever
     * bundle's component uses the PID, as with the files fileinstall reads from etc/.
     */
    protected void configure(String pid, Map<String, Object> values) throws IOException {
        ConfigurationAdmin admin = bundleContext.getService(bundleContext.getServiceReference(ConfigurationAdmin.class));
        org.osgi.service.cm.Configuration configuration = admin.getConfiguration(pid, "?");
        Dictionary<String, Object> props = configuration.getProperties() == null ? new Hashtable<>()
                : configuration.getProperties();
        values.forEach(props::put);
        configuration.update(props);
    }

    protected QueueStore queueStore() {
        ServiceReference<QueueStore> ref = bundleContext.getServiceReference(QueueStore.class);
        return ref == null ? null : bundleContext.getService(ref);
    }

    protected Bundle bundle(String symbolicName) {
        for (Bundle b : bundleContext.getBundles()) {
            if (symbolicName.equals(b.getSymbolicName())) {
                return b;
            }
        }
        return null;
    }

    protected static void waitFor(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 60_000;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                fail("timed out waiting for " + what);
            }
            Thread.sleep(100);
        }
    }
}
