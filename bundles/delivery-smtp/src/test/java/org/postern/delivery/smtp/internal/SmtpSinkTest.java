package org.postern.delivery.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.postern.delivery.smtp.internal.Fixtures.cfg;
import static org.postern.delivery.smtp.internal.Fixtures.deliver;
import static org.postern.delivery.smtp.internal.Fixtures.route;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import org.junit.After;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.TlsPolicy;
import org.postern.testsupport.SmtpSink;

/**
 * Against a real receiving server: Postfix's smtp-sink (Debian package postfix), started by the test on
 * 127.0.0.1. It writes each message it takes to a dump file, headed by the envelope it saw.
 */
public class SmtpSinkTest {

    private static final int BURST = 40;

    @Rule
    public final TemporaryFolder tmp = new TemporaryFolder();

    private SmtpSink sink;
    private int port;
    private Path dumps;
    private SmtpTransport transport;

    @After
    public void tearDown() throws InterruptedException {
        if (transport != null) {
            transport.deactivate();
        }
        if (sink != null) {
            sink.close();
        }
    }

    /** Starts smtp-sink with the given options on a free port of 127.0.0.1. */
    private void startSink(String... options) throws Exception {
        // smtp-sink drops root privileges: let its user reach the dump folder.
        Files.setPosixFilePermissions(tmp.getRoot().toPath(), PosixFilePermissions.fromString("rwxr-xr-x"));
        sink = SmtpSink.start(tmp.getRoot().toPath(), options);
        port = sink.port();
        dumps = sink.dumps();
    }

    private List<DeliveryResult> send(Fixtures.Request r) throws Exception {
        if (transport == null) {
            transport = Fixtures.transport(cfg("helo_name", "out.example.org"));
        }
        r.via(route(TlsPolicy.MAY, new NextHop("127.0.0.1", port, 0)));
        return deliver(transport, r);
    }

    /** The dump files, once {@code count} are complete. */
    private List<String> dumps(int count) throws Exception {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (true) {
            List<Path> files;
            try (Stream<Path> s = Files.list(dumps)) {
                files = s.sorted().toList();
            }
            if (files.size() >= count) {
                List<String> texts = new ArrayList<>();
                for (Path f : files) {
                    texts.add(Files.readString(f, StandardCharsets.UTF_8));
                }
                if (texts.stream().allMatch(t -> t.endsWith("\n\n"))) {
                    return texts;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("expected " + count + " dump files in " + dumps + ", found " + files);
            }
            Thread.sleep(50);
        }
    }

    @Test
    public void realServerTakesTheMessageWithItsEnvelope() throws Exception {
        startSink();
        String content = "Subject: to the sink\r\nFrom: sender@example.org\r\n\r\n.starts with a dot\r\n..two\r\n.\r\nend\r\n";
        Fixtures.Request r = new Fixtures.Request().content(content)
                .header("Received", "from client.example.org by localhost with ESMTP id 4QTEST")
                .header("X-Postern-Test", "added");
        r.recipients.add(new Recipient(MailAddress.parse("a@example.org"), Set.of(Notify.SUCCESS, Notify.FAILURE),
                "rfc822;a@example.org"));
        r.recipients.add(Fixtures.rcpt("b@example.org"));
        r.body = BodyType.EIGHT_BIT_MIME;
        r.ret = Ret.HDRS;
        r.envId = "Q1";
        List<DeliveryResult> results = send(r);

        for (DeliveryResult result : results) {
            assertEquals(result.toString(), Outcome.DELIVERED, result.outcome());
            assertEquals("2.0.0", result.status());
            assertEquals("250 2.0.0 Ok", result.diagnostic());
            assertEquals("127.0.0.1", result.remoteMta());
        }
        String dump = dumps(1).get(0);
        // smtp-sink announces no SIZE: none is sent; 8BITMIME and DSN it announces.
        assertTrue(dump, dump.contains("X-Helo-Args: out.example.org\n"));
        assertTrue(dump, dump.contains("X-Mail-Args: <sender@example.org> BODY=8BITMIME RET=HDRS ENVID=Q1\n"));
        assertTrue(dump, dump.contains("X-Rcpt-Args: <a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@example.org\n"
                + "X-Rcpt-Args: <b@example.org>\n"));
        // After smtp-sink's own three-line Received: comes what we sent, dots unstuffed again, LF line ends.
        String[] lines = dump.split("\n", -1);
        int start = 0;
        while (!lines[start].startsWith("Received: from out.example.org")) {
            start++;
        }
        String received = String.join("\n", List.of(lines).subList(start + 3, lines.length));
        String expected = ("Received: from client.example.org by localhost with ESMTP id 4QTEST\r\n"
                + "X-Postern-Test: added\r\n" + content).replace("\r\n", "\n");
        assertEquals(expected + "\n", received);
    }

    @Test
    public void realServerRefusingEveryRecipient() throws Exception {
        startSink("-f", "RCPT"); // implies -p: no PIPELINING, so one command at a time
        List<DeliveryResult> results = send(new Fixtures.Request().to("a@example.org", "b@example.org"));
        for (DeliveryResult r : results) {
            assertEquals(Outcome.FAILED, r.outcome());
            assertEquals("5.3.0", r.status());
            assertEquals("500 5.3.0 Error: command failed", r.diagnostic());
        }
    }

    @Test
    public void realServerDeferringTheFinalDot() throws Exception {
        startSink("-r", ".");
        List<DeliveryResult> results = send(new Fixtures.Request().to("a@example.org", "b@example.org"));
        for (DeliveryResult r : results) {
            assertEquals(Outcome.DEFERRED, r.outcome());
            assertEquals("4.3.0", r.status());
            assertEquals("450 4.3.0 Error: command failed", r.diagnostic());
        }
    }

    @Test
    public void realServerClosingAtMail() throws Exception {
        startSink("-Q", "MAIL");
        List<DeliveryResult> results = send(new Fixtures.Request().to("a@example.org"));
        DeliveryResult r = results.get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.0.0", r.status());
        assertEquals("421 4.0.0 Server closing connection", r.diagnostic());
        assertEquals(0, transport.pool().size("example.org"));
    }

    @Test
    public void realServerRefusingInTheMiddleOfTheData() throws Exception {
        startSink("-A", "0"); // 354, then at once 550, and it reads no more
        long size = 256L << 20;
        AtomicLong read = new AtomicLong();
        Fixtures.Request r = new Fixtures.Request().to("a@example.org", "b@example.org");
        r.contentOverride = Fixtures.generated(size, read);
        long start = System.nanoTime();
        List<DeliveryResult> results = send(r);
        long millis = (System.nanoTime() - start) / 1_000_000;
        for (DeliveryResult result : results) {
            assertEquals(result.toString(), Outcome.FAILED, result.outcome());
            assertTrue(result.diagnostic(), result.diagnostic().startsWith("550 "));
        }
        assertTrue("stopped sending at the early reply: " + read.get() + " of " + size + " octets read",
                read.get() < size);
        assertTrue("took " + millis + " ms", millis < 10_000);
    }

    @Test
    public void manyDeliveriesAtOnce() throws Exception {
        startSink();
        // A session that stalls must show up as a deferral with its diagnostic, well within the wait below.
        transport = Fixtures.transport(cfg("greeting_timeout", 20, "helo_timeout", 20, "mail_timeout", 20,
                "rcpt_timeout", 20, "data_timeout", 20, "data_block_timeout", 20, "final_dot_timeout", 20));
        List<CompletableFuture<List<DeliveryResult>>> running = new ArrayList<>();
        for (int i = 0; i < BURST; i++) {
            Fixtures.Request r = new Fixtures.Request().to("a" + i + "@example.org", "b" + i + "@example.org");
            r.via(route(TlsPolicy.MAY, new NextHop("127.0.0.1", port, 0)));
            running.add(transport.deliver(r.build()).toCompletableFuture());
        }
        for (CompletableFuture<List<DeliveryResult>> f : running) {
            List<DeliveryResult> results = f.get(60, TimeUnit.SECONDS);
            assertEquals(2, results.size());
            results.forEach(r -> assertEquals(r.toString(), Outcome.DELIVERED, r.outcome()));
        }
        assertEquals(BURST, dumps(BURST).size());
        assertTrue(transport.pool().size("example.org") <= 2);
    }

    @Test
    public void realServerTakesMessagesOneAfterTheOther() throws Exception {
        startSink();
        for (int i = 0; i < 5; i++) {
            DeliveryResult r = send(new Fixtures.Request().to("rcpt" + i + "@example.org")).get(0);
            assertEquals(Outcome.DELIVERED, r.outcome());
        }
        List<String> texts = dumps(5);
        for (int i = 0; i < 5; i++) {
            int n = i;
            assertTrue(texts.stream().anyMatch(t -> t.contains("X-Rcpt-Args: <rcpt" + n + "@example.org>\n")));
        }
        assertEquals("kept for the next message", 1, transport.pool().size("example.org"));
    }
}
