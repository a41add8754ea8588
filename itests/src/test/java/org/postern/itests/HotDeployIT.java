package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.InputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.InvalidSyntaxException;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.mail.Header;

/**
 * The promise of the design: a filter bundle installed, removed, dropped into deploy/ and updated at runtime
 * changes the verdicts of new transactions, while a connection opened before it all stays up and a
 * transaction that started before a change completes under the rules it started with.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class HotDeployIT extends PosternTestSupport {

    @org.junit.Before
    public void noDelivery() throws Exception {
        keepMessagesInTheQueue();
    }


    private static final String SAMPLE = "org.postern.filter-sample";
    private static final String BLOCKED = "spammer@blocked.example";
    private static final String CHANGED = "someone@changed.example";
    private static final String MESSAGE = "Subject: hot swap\r\n\r\nstill here\r\n";

    @Test
    public void filtersComeAndGoWhileMailKeepsFlowing() throws Exception {
        Path jar = Paths.get(System.getProperty("postern.sample.jar"));
        SMTPClient survivor = connect(); // stays open through every change below

        // A transaction that starts before the install ...
        assertEquals("250 2.1.0 Ok", command(survivor, "MAIL FROM:<" + BLOCKED + ">"));

        // 1. install at runtime
        console("bundle:install -s " + jar.toUri());
        waitFor("the sample filter", this::sampleFilterPresent);
        // ... completes under the chain it started with
        assertEquals("250 2.1.5 Ok", command(survivor, "RCPT TO:<bob@localhost>"));
        assertTrue(finishData(survivor, MESSAGE).startsWith("250 2.0.0 Ok: queued as "));
        // new transactions, on the old connection and on a new one, meet the filter
        assertBlocked(survivor, BLOCKED);
        SMTPClient fresh = connect();
        assertBlocked(fresh, BLOCKED);
        String id = queueId(send(fresh, "alice@example.org", "bob@localhost", MESSAGE));
        assertTrue(queueStore().get(id).orElseThrow().addedHeaders()
                .contains(new Header("X-Postern-Sample", "passed")));
        fresh.disconnect();
        String list = console("mta:filter-list");
        assertTrue(list, list.lines().anyMatch(l -> l.contains("sample") && l.contains("100")));

        // 2. uninstall removes the effect
        console("bundle:uninstall " + bundle(SAMPLE).getBundleId());
        waitFor("the sample filter to leave", () -> !sampleFilterPresent());
        assertAccepted(survivor, BLOCKED);

        // 3. dropping the jar into deploy/ installs it again
        Path deployed = Paths.get(System.getProperty("karaf.base"), "deploy", "postern-filter-sample.jar");
        Files.copy(jar, deployed, StandardCopyOption.REPLACE_EXISTING);
        waitFor("the deployed sample filter", this::sampleFilterPresent);
        assertBlocked(survivor, BLOCKED);

        // 4. bundle:update to a changed build swaps the behaviour for new transactions
        Path changed = changedBuild(jar, ".*@changed\\.example");
        long bundleId = bundle(SAMPLE).getBundleId();
        console("bundle:update " + bundleId + " " + changed.toUri());
        waitFor("the changed build to be active", () -> {
            try {
                return sampleFilterPresent() && command(survivor, "MAIL FROM:<" + CHANGED + ">").startsWith("550")
                        || resetAndFalse(survivor);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        assertEquals(bundleId, bundle(SAMPLE).getBundleId());
        assertAccepted(survivor, BLOCKED);
        assertBlocked(survivor, CHANGED);

        // 5. taking it out of deploy/ uninstalls it
        Files.delete(deployed);
        waitFor("the sample bundle to be uninstalled", () -> bundle(SAMPLE) == null);
        assertAccepted(survivor, CHANGED);

        // the connection opened before it all still delivers mail
        assertTrue(send(survivor, BLOCKED, "bob@localhost", MESSAGE).startsWith("250 2.0.0 Ok: queued as "));
        assertEquals(221, survivor.sendCommand("QUIT"));
        survivor.disconnect();
    }

    private boolean resetAndFalse(SMTPClient client) throws Exception {
        command(client, "RSET");
        return false;
    }

    private boolean sampleFilterPresent() {
        try {
            return !bundleContext.getServiceReferences(SmtpFilter.class,
                    "(" + SmtpFilter.NAME_PROPERTY + "=sample)").isEmpty();
        } catch (InvalidSyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private void assertBlocked(SMTPClient client, String sender) throws Exception {
        assertEquals("550 5.7.1 Sender <" + sender + "> is blocked by the sample filter",
                command(client, "MAIL FROM:<" + sender + ">"));
    }

    private void assertAccepted(SMTPClient client, String sender) throws Exception {
        assertEquals("250 2.1.0 Ok", command(client, "MAIL FROM:<" + sender + ">"));
        assertEquals("250 2.0.0 Ok", command(client, "RSET"));
    }

    private static String finishData(SMTPClient client, String message) throws Exception {
        Writer writer = client.sendMessageData();
        assertNotNull(client.getReplyString(), writer);
        writer.write(message);
        writer.close();
        client.completePendingCommand();
        return client.getReplyString().trim();
    }

    /**
     * The sample as an operator would rebuild it with another built-in default: the same classes, with a
     * {@code reject.senders} property added to its component description.
     */
    private static Path changedBuild(Path jar, String rejectPattern) throws Exception {
        Path out = Files.createTempFile(new File(System.getProperty("karaf.data")).toPath(), "sample-changed", ".jar");
        try (ZipFile in = new ZipFile(jar.toFile());
             ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(out))) {
            boolean patched = false;
            for (ZipEntry e : java.util.Collections.list(in.entries())) {
                byte[] bytes;
                try (InputStream is = in.getInputStream(e)) {
                    bytes = is.readAllBytes();
                }
                String name = e.getName();
                if (name.startsWith("OSGI-INF/") && name.endsWith(".xml") && !name.contains("metatype")) {
                    String xml = new String(bytes, StandardCharsets.UTF_8);
                    int at = xml.indexOf("<implementation");
                    xml = xml.substring(0, at) + "<property name=\"reject.senders\" type=\"String\" value=\""
                            + rejectPattern + "\"/>" + xml.substring(at);
                    bytes = xml.getBytes(StandardCharsets.UTF_8);
                    patched = true;
                }
                zip.putNextEntry(new ZipEntry(name));
                zip.write(bytes);
                zip.closeEntry();
            }
            assertTrue("no component description found in " + jar, patched);
        }
        return out;
    }
}
