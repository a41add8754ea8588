package org.postern.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.Writer;
import java.lang.reflect.Field;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

import org.apache.commons.net.smtp.AuthenticatingSMTPClient;
import org.junit.After;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.auth.AuthResult;
import org.postern.api.auth.Authenticator;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;

/** A real listener on a loopback port, driven by real clients: commons-net and the JDK's TLS sockets. */
public class ListenerTest {

    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private final MemoryQueue queue = new MemoryQueue();
    private org.postern.api.queue.QueueStore store = queue;
    private SmtpListener listener;
    private int port;

    private static final Authenticator ALICE = (user, password, authzid) -> CompletableFuture.completedFuture(
            user.equals("alice@example.org") && new String(password).equals("secret")
                    ? AuthResult.success("alice@example.org") : AuthResult.unknownUser());

    private void start(String role, Map<String, Object> extra) throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Map<String, Object> cfg = new HashMap<>();
        cfg.put("name", role);
        cfg.put("role", role);
        cfg.put("port", port);
        cfg.put("tls_certificate", tmp.getRoot().toPath().resolve("tls/cert.pem").toString());
        cfg.put("tls_key", tmp.getRoot().toPath().resolve("tls/key.pem").toString());
        cfg.put("tls_self_signed", true);
        cfg.putAll(extra);
        listener = new SmtpListener();
        set("queueStore", store);
        set("relayPolicy", (RelayPolicy) (s, rcpt) -> CompletableFuture.completedFuture(
                rcpt.domain().equals("localhost") ? RelayDecision.local()
                        : s.authenticatedAs() != null ? RelayDecision.relay() : RelayDecision.relayDenied()));
        listener.addAuthenticator(ALICE, Map.of());
        listener.activate(SmtpSessionTest.config(cfg));
    }

    private void set(String field, Object value) throws Exception {
        Field f = SmtpListener.class.getDeclaredField(field);
        f.setAccessible(true);
        f.set(listener, value);
    }

    @After
    public void stop() {
        if (listener != null) {
            listener.deactivate();
        }
    }

    private AuthenticatingSMTPClient client() throws Exception {
        AuthenticatingSMTPClient c = new AuthenticatingSMTPClient("TLS", false, "UTF-8");
        c.setTrustManager(TRUST_ALL);
        c.setDefaultTimeout(10_000);
        c.connect("127.0.0.1", port);
        assertEquals(220, c.getReplyCode());
        return c;
    }

    @Test
    public void submissionNeedsTlsThenAuthThenTheUsersOwnAddress() throws Exception {
        start("submission", Map.of());
        AuthenticatingSMTPClient c = client();
        c.ehlo("laptop.example");
        assertTrue(c.getReplyString(), c.getReplyString().contains("STARTTLS"));
        assertFalse("no AUTH in clear", c.getReplyString().contains("AUTH"));
        assertEquals(530, c.mail("<alice@example.org>"));
        assertEquals(538, c.sendCommand("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA=="));

        assertTrue(c.execTLS());
        c.ehlo("laptop.example");
        assertTrue(c.getReplyString(), c.getReplyString().contains("AUTH PLAIN LOGIN"));
        assertFalse(c.getReplyString().contains("STARTTLS"));
        assertEquals(503, c.sendCommand("STARTTLS"));
        assertFalse(c.auth(AuthenticatingSMTPClient.AUTH_METHOD.PLAIN, "alice@example.org", "wrong"));
        assertEquals("535 5.7.8 Authentication credentials invalid", c.getReplyString().trim());
        assertTrue(c.auth(AuthenticatingSMTPClient.AUTH_METHOD.LOGIN, "alice@example.org", "secret"));
        assertEquals("235 2.7.0 Authentication successful", c.getReplyString().trim());

        assertFalse(c.setSender("mallory@example.org"));
        assertEquals("553 5.7.1 <mallory@example.org>: Sender address not owned by user alice@example.org",
                c.getReplyString().trim());
        assertTrue(c.setSender("alice@example.org"));
        assertTrue("authenticated users may relay", c.addRecipient("bob@elsewhere.example"));
        Writer w = c.sendMessageData();
        w.write("Subject: hi\r\n\r\nvia submission\r\n");
        w.close();
        assertTrue(c.getReplyString(), c.completePendingCommand());
        MemoryQueue.Stored stored = queue.stored.get(0);
        assertEquals("alice@example.org", stored.envelope().client().authenticatedAs());
        assertTrue(stored.envelope().client().tlsProtocol().startsWith("TLSv1."));
        assertEquals("ESMTPSA", stored.envelope().client().protocol());
        assertTrue(stored.added().get(0).value(), stored.added().get(0).value().contains("with ESMTPSA"));
        c.disconnect();
    }

    @Test
    public void plaintextPipelinedAfterStarttlsIsDiscarded() throws Exception {
        start("mx", Map.of());
        try (Socket plain = new Socket("127.0.0.1", port)) {
            BufferedReader in = new BufferedReader(new InputStreamReader(plain.getInputStream(), StandardCharsets.US_ASCII));
            OutputStream out = plain.getOutputStream();
            assertTrue(in.readLine().startsWith("220 "));
            out.write("EHLO a\r\n".getBytes(StandardCharsets.US_ASCII));
            String line;
            do {
                line = in.readLine();
            } while (line.startsWith("250-"));
            // CVE-2011-0411: a command injected behind STARTTLS must not be answered after the handshake
            // (an RSET would be answered 250, so an answered injection shows in the first line inside TLS)
            out.write("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertEquals("220 2.0.0 Ready to start TLS", in.readLine());
            SSLContext ssl = SSLContext.getInstance("TLS");
            ssl.init(null, new TrustManager[] {TRUST_ALL}, null);
            SSLSocket tls = (SSLSocket) ssl.getSocketFactory().createSocket(plain, "localhost", port, true);
            tls.startHandshake();
            BufferedReader tin = new BufferedReader(new InputStreamReader(tls.getInputStream(), StandardCharsets.US_ASCII));
            tls.getOutputStream().write("MAIL FROM:<a@example.org>\r\n".getBytes(StandardCharsets.US_ASCII));
            assertEquals("after STARTTLS the session starts over: no HELO yet",
                    "503 5.5.1 Error: send HELO/EHLO first", tin.readLine());
        }
    }

    @Test
    public void implicitTlsAndARenewedCertificateWithoutRestart() throws Exception {
        start("submissions", Map.of());
        X509Certificate first = serverCertificate();
        Path dir = tmp.getRoot().toPath().resolve("tls");
        Files.delete(dir.resolve("cert.pem"));
        Files.delete(dir.resolve("key.pem"));
        TlsContexts.writeSelfSigned("renewed.example", dir.resolve("cert.pem"), dir.resolve("key.pem"));
        Files.setLastModifiedTime(dir.resolve("cert.pem"),
                java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 5000));
        X509Certificate second = serverCertificate();
        assertNotEquals(first.getSerialNumber(), second.getSerialNumber());
        assertTrue(second.getSubjectX500Principal().getName().contains("renewed.example"));
    }

    private X509Certificate serverCertificate() throws Exception {
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(null, new TrustManager[] {TRUST_ALL}, null);
        try (SSLSocket s = (SSLSocket) ssl.getSocketFactory().createSocket("127.0.0.1", port)) {
            s.startHandshake();
            assertTrue(List.of("TLSv1.3", "TLSv1.2").contains(s.getSession().getProtocol()));
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            assertTrue(in.readLine().startsWith("220 "));
            return (X509Certificate) s.getSession().getPeerCertificates()[0];
        }
    }

    @Test
    public void connectionsPerClientAreLimited() throws Exception {
        start("mx", Map.of("max_connections_per_client", 2));
        try (Socket a = new Socket("127.0.0.1", port); Socket b = new Socket("127.0.0.1", port);
             Socket c = new Socket("127.0.0.1", port)) {
            // the three are accepted on different event loops: any one of them may be the third
            List<String> greetings = new java.util.ArrayList<>();
            for (Socket s : List.of(a, b, c)) {
                greetings.add(new BufferedReader(new InputStreamReader(s.getInputStream())).readLine());
            }
            assertEquals(greetings.toString(), 2, greetings.stream().filter(g -> g.startsWith("220 ")).count());
            assertTrue(greetings.toString(), greetings.contains("421 4.7.0 localhost Error: too many connections"));
        }
        // a closed connection gives its place back
        Thread.sleep(200);
        try (Socket d = new Socket("127.0.0.1", port)) {
            assertTrue(new BufferedReader(new InputStreamReader(d.getInputStream())).readLine().startsWith("220"));
        }
    }

    @Test
    public void mxOffersStarttlsButNeverAuth() throws Exception {
        start("mx", Map.of());
        AuthenticatingSMTPClient c = client();
        c.ehlo("relay.example");
        assertTrue(c.execTLS());
        c.ehlo("relay.example");
        assertFalse(c.getReplyString().contains("AUTH"));
        assertEquals(503, c.sendCommand("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA=="));
        assertTrue(c.setSender("someone@example.org"));
        assertFalse(c.addRecipient("x@elsewhere.example"));
        assertEquals(554, c.getReplyCode());
        c.disconnect();
        assertTrue(queue.stored.isEmpty());
    }

    @Test
    public void proxyProtocolGivesTheRealClientAddress() throws Exception {
        start("mx", Map.of("proxy_protocol", true));
        try (Socket s = new Socket("127.0.0.1", port)) {
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            OutputStream out = s.getOutputStream();
            out.write(("PROXY TCP4 192.0.2.99 127.0.0.1 40001 25\r\nHELO lb.example\r\nMAIL FROM:<a@example.org>\r\n"
                    + "RCPT TO:<b@localhost>\r\nDATA\r\nSubject: x\r\n\r\nproxied\r\n.\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertTrue(in.readLine().startsWith("220 "));
            String line = null;
            for (int i = 0; i < 5; i++) {
                line = in.readLine();
            }
            assertEquals("250 2.0.0 Ok: queued as Q1", line);
        }
        assertEquals("192.0.2.99", queue.stored.get(0).envelope().client().address());
    }

    // ---- a 50 MB message streams to the store ----

    private static final int LINES = 50_000;
    private static final byte[] LINE = ("x".repeat(998) + "\r\n").getBytes(StandardCharsets.US_ASCII); // 1000 octets

    @Test
    public void fiftyMegabytesByDataStreamToTheStoreWithoutGrowingTheHeap() throws Exception {
        streamFiftyMegabytes(false);
    }

    @Test
    public void fiftyMegabytesInOneBdatChunkStreamToTheStoreWithoutGrowingTheHeap() throws Exception {
        streamFiftyMegabytes(true);
    }

    private void streamFiftyMegabytes(boolean bdat) throws Exception {
        FileQueue files = new FileQueue(tmp.newFolder("spool").toPath());
        store = files;
        start("mx", Map.of("max_message_size", 52_428_800L));
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(30_000);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            OutputStream out = new java.io.BufferedOutputStream(s.getOutputStream(), 64 * 1024);
            assertTrue(in.readLine().startsWith("220 "));
            out.write(("HELO big.example\r\nMAIL FROM:<a@example.org> SIZE=50000000\r\nRCPT TO:<b@localhost>\r\n"
                    + (bdat ? "BDAT " + LINES * LINE.length + " LAST\r\n" : "DATA\r\n")).getBytes(StandardCharsets.US_ASCII));
            out.flush();
            assertEquals("250 localhost", in.readLine());
            assertEquals("250 2.1.0 Ok", in.readLine());
            assertEquals("250 2.1.5 Ok", in.readLine());
            if (!bdat) {
                assertEquals("354 End data with <CR><LF>.<CR><LF>", in.readLine());
            }
            long before = usedHeapAfterGc();
            java.util.zip.CRC32 sent = new java.util.zip.CRC32();
            int first = LINES * 9 / 10; // 45 MB, then look at the heap while the message is still open
            for (int i = 0; i < first; i++) {
                out.write(LINE);
                sent.update(LINE);
            }
            out.flush();
            long deadline = System.currentTimeMillis() + 30_000;
            while (files.written.get() < (long) first * LINE.length && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertEquals("the listener passed every octet on", (long) first * LINE.length, files.written.get());
            long during = usedHeapAfterGc();
            long growth = during - before;
            System.out.printf("heap before %d KB, with 45 MB received %d KB: growth %d KB; largest store write %d octets%n",
                    before / 1024, during / 1024, growth / 1024, files.largestWrite.get());
            assertTrue("heap grew by " + growth / 1024 + " KB while 45 MB went through", growth < 8L * 1024 * 1024);
            for (int i = first; i < LINES; i++) {
                out.write(LINE);
                sent.update(LINE);
            }
            if (!bdat) {
                out.write(".\r\n".getBytes(StandardCharsets.US_ASCII));
            }
            out.flush();
            assertEquals("250 2.0.0 Ok: queued as F1", in.readLine());
            // the listener hands the store bounded pieces, and DATA content in runs of lines, not a line at a time
            assertTrue("largest write " + files.largestWrite.get(), files.largestWrite.get() <= MessageScan.MAX_COPY);
            assertTrue("largest write " + files.largestWrite.get(), files.largestWrite.get() > LINE.length);
        }
        Path file = files.stored.get("F1");
        assertEquals((long) LINES * LINE.length, Files.size(file));
        java.util.zip.CRC32 got = new java.util.zip.CRC32();
        try (java.io.InputStream f = Files.newInputStream(file)) {
            byte[] b = new byte[64 * 1024];
            int n;
            while ((n = f.read(b)) > 0) {
                got.update(b, 0, n);
            }
        }
        assertEquals(sentCrc(), got.getValue());
    }

    private static long sentCrc() {
        java.util.zip.CRC32 crc = new java.util.zip.CRC32();
        for (int i = 0; i < LINES; i++) {
            crc.update(LINE);
        }
        return crc.getValue();
    }

    private static long usedHeapAfterGc() throws InterruptedException {
        java.lang.management.MemoryMXBean memory = java.lang.management.ManagementFactory.getMemoryMXBean();
        for (int i = 0; i < 3; i++) {
            memory.gc();
            Thread.sleep(50);
        }
        return memory.getHeapMemoryUsage().getUsed();
    }

    private static final X509TrustManager TRUST_ALL = new X509TrustManager() {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    };
}
