package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.io.Writer;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.After;
import org.junit.Test;
import org.postern.testsupport.SmtpSink;

/**
 * The promise of a 250 under fire: the built distribution runs as its own process and relays to a real
 * receiving server (Postfix's smtp-sink); while a burst of messages is coming in, the process is killed
 * with SIGKILL, then started again. Every message that got a 250 must reach the receiving server; only
 * messages in flight to it may arrive twice (reported, not failed).
 */
public class CrashIT {

    private static final Pattern SUBJECT = Pattern.compile("^Subject: crash-(\\d+)$", Pattern.MULTILINE);
    private static final int MESSAGES = 3000;
    private static final int SENDERS = 8;

    private final List<Process> processes = new ArrayList<>();
    private Path home;
    private SmtpSink sink;
    private Path dumps;
    private int smtpPort;

    @After
    public void stopEverything() throws InterruptedException {
        if (sink != null) {
            sink.close();
        }
        for (Process p : processes) {
            kill(p);
        }
    }

    @Test
    public void everyAcceptedMessageSurvivesAKill9() throws Exception {
        Path work = Paths.get("target", "crash-" + System.currentTimeMillis()).toAbsolutePath();
        Files.createDirectories(work);
        run(work, "tar", "xzf", System.getProperty("postern.distribution"));
        try (Stream<Path> s = Files.list(work)) {
            home = s.filter(Files::isDirectory).findFirst().orElseThrow();
        }
        // smtp-sink runs as nobody, who must reach its dump folder inside
        Files.setPosixFilePermissions(work, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        sink = SmtpSink.start(work);
        dumps = sink.dumps();
        int sinkPort = sink.port();
        smtpPort = freePort();
        set("org.postern.smtp.listener-mx.cfg", "port", String.valueOf(smtpPort));
        set("org.postern.smtp.listener-submission.cfg", "port", String.valueOf(freePort()));
        set("org.apache.karaf.shell.cfg", "sshPort", String.valueOf(freePort()));
        set("org.apache.karaf.management.cfg", "rmiRegistryPort", String.valueOf(freePort()));
        set("org.apache.karaf.management.cfg", "rmiServerPort", String.valueOf(freePort()));
        set("org.postern.router.cfg", "relayhost", "[127.0.0.1]:" + sinkPort);
        set("org.postern.router.cfg", "trusted.networks", "127.0.0.0/8");
        set("org.postern.queue.manager.cfg", "scan.interval", "1");

        Process postern = startPostern(work.resolve("postern-1.log"));
        Set<Integer> accepted = ConcurrentHashMap.newKeySet();
        AtomicInteger next = new AtomicInteger();
        ExecutorService senders = Executors.newFixedThreadPool(SENDERS);
        for (int i = 0; i < SENDERS; i++) {
            senders.submit(() -> burst(next, accepted));
        }
        // pull the plug in the middle of the burst
        long deadline = System.currentTimeMillis() + 120_000;
        while (accepted.size() < MESSAGES / 3 && System.currentTimeMillis() < deadline) {
            Thread.sleep(20);
        }
        kill(postern);
        int acceptedAtKill = accepted.size();
        senders.shutdown();
        assertTrue(senders.awaitTermination(60, TimeUnit.SECONDS));
        assertTrue("the burst got going before the kill: " + acceptedAtKill, acceptedAtKill >= MESSAGES / 3);

        startPostern(work.resolve("postern-2.log"));
        Map<Integer, Integer> received = Map.of();
        deadline = System.currentTimeMillis() + 180_000;
        while (System.currentTimeMillis() < deadline) {
            received = received();
            if (received.keySet().containsAll(accepted)) {
                break;
            }
            Thread.sleep(500);
        }
        Set<Integer> lost = new java.util.TreeSet<>(accepted);
        lost.removeAll(received.keySet());
        long duplicates = received.values().stream().filter(n -> n > 1).count();
        System.out.printf("crash test: %d accepted with 250 (%d before the kill), %d received, %d lost, %d duplicated%n",
                accepted.size(), acceptedAtKill, received.size(), lost.size(), duplicates);
        assertEquals("messages that got a 250 and never arrived: " + lost, Set.of(), lost);
    }

    /** One SMTP session sending messages until the burst is over or the server dies. */
    private void burst(AtomicInteger next, Set<Integer> accepted) {
        try {
            SMTPClient client = new SMTPClient("UTF-8");
            client.setDefaultTimeout(10_000);
            client.connect("127.0.0.1", smtpPort);
            client.setSoTimeout(10_000);
            client.helo("crash.example");
            int n;
            while ((n = next.getAndIncrement()) < MESSAGES) {
                if (!client.setSender("burst@crash.example") || !client.addRecipient("sink@elsewhere.example")) {
                    return;
                }
                Writer w = client.sendMessageData();
                if (w == null) {
                    return;
                }
                w.write("Subject: crash-" + n + "\r\n\r\nmessage " + n + " of the crash test\r\n");
                w.close();
                if (client.completePendingCommand()) {
                    accepted.add(n);
                } else {
                    return;
                }
            }
            client.logout();
        } catch (IOException e) {
            // the server was killed under us: what got a 250 is all that counts
        }
    }

    private Map<Integer, Integer> received() throws IOException {
        Map<Integer, Integer> counts = new HashMap<>();
        try (Stream<Path> files = Files.list(dumps)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Matcher m = SUBJECT.matcher(Files.readString(f, StandardCharsets.ISO_8859_1).replace("\r\n", "\n"));
                while (m.find()) {
                    counts.merge(Integer.parseInt(m.group(1)), 1, Integer::sum);
                }
            }
        }
        return counts;
    }

    private Process startPostern(Path log) throws Exception {
        Process p = new ProcessBuilder(home.resolve("bin/karaf").toString(), "server")
                .directory(home.toFile()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        processes.add(p);
        long deadline = System.currentTimeMillis() + 90_000;
        while (System.currentTimeMillis() < deadline) {
            try (Socket s = new Socket("127.0.0.1", smtpPort)) {
                return p;
            } catch (IOException e) {
                if (!p.isAlive()) {
                    fail("Postern exited; see " + log);
                }
                Thread.sleep(200);
            }
        }
        fail("Postern did not open its SMTP port; see " + log);
        return p;
    }

    /** SIGKILL to the process and everything it started (bin/karaf runs java as a child). */
    private static void kill(Process p) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void set(String file, String key, String value) throws IOException {
        Path cfg = home.resolve("etc").resolve(file);
        List<String> lines = Files.exists(cfg) ? new ArrayList<>(Files.readAllLines(cfg)) : new ArrayList<>();
        boolean done = false;
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i).trim();
            if (l.startsWith(key) && l.substring(key.length()).trim().startsWith("=")) {
                lines.set(i, key + " = " + value);
                done = true;
            }
        }
        if (!done) {
            lines.add(key + " = " + value);
        }
        Files.write(cfg, lines);
    }

    private static void run(Path dir, String... command) throws Exception {
        Process p = new ProcessBuilder(command).directory(dir.toFile()).inheritIO().start();
        assertEquals(String.join(" ", command), 0, p.waitFor());
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
