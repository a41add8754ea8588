package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.api.queue.QueueStore;

/**
 * The spool on a file system that fills up (a 2 MB tmpfs): DATA gets 452 4.3.1, every message already
 * acknowledged stays whole, and mail is taken again as soon as there is room.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class DiskFullIT extends PosternTestSupport {

    private Path mount;
    private Object previousSpool;

    @Before
    public void spoolOnASmallFileSystem() throws Exception {
        keepMessagesInTheQueue();
        mount = Files.createTempDirectory(Paths.get("/tmp"), "postern-full");
        run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount.toString());
        previousSpool = spool(mount.resolve("spool").toString());
    }

    @After
    public void spoolBack() throws Exception {
        if (mount != null) {
            spool(previousSpool);
            run("umount", "-l", mount.toString());
            Files.deleteIfExists(mount);
        }
    }

    /** Points the store at another spool and waits for it there; returns the setting it had. */
    private Object spool(Object dir) throws Exception {
        QueueStore before = queueStore();
        ConfigurationAdmin admin = bundleContext.getService(bundleContext.getServiceReference(ConfigurationAdmin.class));
        Configuration config = admin.getConfiguration("org.postern.queue.file", "?");
        Dictionary<String, Object> props = config.getProperties() == null ? new Hashtable<>() : config.getProperties();
        Object old = props.get("spool.dir");
        if (dir == null) {
            props.remove("spool.dir");
        } else {
            props.put("spool.dir", dir);
        }
        config.update(props);
        waitFor("the queue store on " + dir, () -> {
            QueueStore now = queueStore();
            return now != null && now != before;
        });
        return old;
    }

    @Test
    public void aFullSpoolRefusesWith452AndKeepsWhatItAcknowledged() throws Exception {
        String body = "Subject: filler\r\n\r\n" + ("x".repeat(98) + "\r\n").repeat(1000); // about 100 kB
        List<String> accepted = new ArrayList<>();
        String refusal = null;
        SMTPClient client = connect();
        try {
            for (int i = 0; i < 100 && refusal == null; i++) {
                String reply = send(client, "alice@example.org", "bob@localhost", body);
                if (reply.startsWith("250")) {
                    accepted.add(queueId(reply));
                } else {
                    refusal = reply;
                }
            }
        } finally {
            client.disconnect();
        }
        assertTrue("2 MB cannot hold 100 messages of 100 kB", refusal != null);
        assertTrue(refusal, refusal.startsWith("452 4.3.1 "));
        assertTrue("some fitted before: " + accepted.size(), accepted.size() >= 3);
        QueueStore store = queueStore();
        for (String id : accepted) {
            assertTrue(id + " acknowledged, so it must be there", store.get(id).isPresent());
            try (InputStream in = store.content(id).openStream()) {
                assertEquals(id, body.length(), in.readAllBytes().length);
            }
        }

        // Room again: the next message is taken at once, no restart needed
        run("mount", "-o", "remount,size=64m", mount.toString());
        SMTPClient again = connect();
        try {
            String id = queueId(send(again, "alice@example.org", "bob@localhost", "Subject: after\r\n\r\nroom\r\n"));
            assertTrue(store.get(id).isPresent());
        } finally {
            again.disconnect();
        }
        assertEquals("and nothing acknowledged was lost", accepted.size() + 1, store.list(
                new org.postern.api.queue.QueueQuery(null, null, null, 0, 0)).size());
    }

    private static void run(String... command) throws IOException, InterruptedException {
        if (!"root".equals(System.getProperty("user.name"))) {
            fail("this test mounts a small tmpfs for the spool, which needs root (CI runs as root): " + String.join(" ", command));
        }
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            fail(String.join(" ", command) + " failed: " + out);
        }
    }
}
