package org.postern.delivery.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.postern.delivery.smtp.internal.Fixtures.cfg;
import static org.postern.delivery.smtp.internal.Fixtures.hop;
import static org.postern.delivery.smtp.internal.Fixtures.route;

import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import org.junit.After;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.routing.TlsPolicy;

/**
 * A peer that goes silent in any state of the conversation: the delivery must end, with a result for every
 * recipient, within the timeout of that state. One case per state in which the client waits for the peer.
 */
@RunWith(Parameterized.class)
public class StalledServerTest {

    /** One second for the state under test; the other timeouts stay at their defaults (minutes). */
    private static final int TIMEOUT = 1;

    private record Case(String name, TlsPolicy policy, String timeoutProperty, Consumer<ScriptedServer> stall,
            Outcome outcome, String status, String diagnostic) {
        @Override
        public String toString() {
            return name;
        }
    }

    @Parameters(name = "{0}")
    public static List<Object[]> cases() {
        return List.of(
                deferred("greeting", "greeting_timeout", s -> s.greeting = ScriptedServer.HANG,
                        "timed out while receiving the initial server greeting"),
                deferred("EHLO", "helo_timeout", hangAt("EHLO"), "timed out while performing the EHLO handshake"),
                new Case("STARTTLS reply", TlsPolicy.MAY, "starttls_timeout", s -> {
                    s.extensions.add("STARTTLS");
                    s.script = (session, line) -> line.equals("STARTTLS") ? ScriptedServer.HANG : null;
                }, Outcome.DEFERRED, "4.4.2", "timed out while sending STARTTLS"),
                // 220 to STARTTLS, then not a byte of TLS: the handshake has its own timeout.
                new Case("TLS handshake", TlsPolicy.ENCRYPT, "starttls_timeout", s -> {
                    s.extensions.add("STARTTLS");
                    s.script = (session, line) -> line.equals("STARTTLS") ? "220 2.0.0 Ready to start TLS"
                            : session.verbs().contains("STARTTLS") ? ScriptedServer.HANG : null;
                }, Outcome.DEFERRED, "4.7.5", "TLS handshake with "),
                deferred("MAIL", "mail_timeout", hangAt("MAIL"), "timed out while sending MAIL FROM"),
                deferred("RCPT", "rcpt_timeout", hangAt("RCPT"), "timed out while sending RCPT TO"),
                deferred("DATA", "data_timeout", hangAt("DATA"), "timed out while sending DATA"),
                // 354, then the server reads no more: the socket buffers fill and the writes stop completing.
                deferred("message body", "data_block_timeout", s -> {
                    s.extensions.removeIf(e -> e.startsWith("SIZE"));
                    s.script = (session, line) -> {
                        if (line.equals("DATA")) {
                            session.stopReading = true;
                        }
                        return null;
                    };
                }, "timed out while sending message body"),
                deferred("final dot", "final_dot_timeout", hangAt("."), "timed out while sending end of data"),
                // RSET follows a transaction cut short (every recipient refused): the results stand, only the
                // connection is not kept.
                new Case("RSET", TlsPolicy.NONE, "rset_timeout",
                        s -> s.script = (session, line) -> line.startsWith("RCPT") ? "550 5.1.1 no such user"
                                : line.equals("RSET") ? ScriptedServer.HANG : null,
                        Outcome.FAILED, "5.1.1", "550 5.1.1 no such user"))
                .stream().map(c -> new Object[] {c}).toList();
    }

    private static Case deferred(String name, String timeoutProperty, Consumer<ScriptedServer> stall, String diagnostic) {
        return new Case(name, TlsPolicy.NONE, timeoutProperty, stall, Outcome.DEFERRED, "4.4.2", diagnostic);
    }

    /** Silent from the command on: no reply to it nor to anything pipelined after it. */
    private static Consumer<ScriptedServer> hangAt(String verb) {
        return s -> s.script = (session, line) -> line.split(" ", 2)[0].equals(verb) || session.verbs().contains(verb)
                ? ScriptedServer.HANG : null;
    }

    private final Case c;
    private ScriptedServer server;
    private SmtpTransport transport;

    public StalledServerTest(Case c) {
        this.c = c;
    }

    @After
    public void tearDown() throws IOException {
        if (transport != null) {
            transport.deactivate();
        }
        if (server != null) {
            server.close();
        }
    }

    @Test
    public void endsWithinTheTimeoutOfTheStateWithAResultForEveryRecipient() throws Exception {
        server = new ScriptedServer("127.0.0.1");
        c.stall().accept(server);
        transport = Fixtures.transport(cfg(c.timeoutProperty(), TIMEOUT));
        Fixtures.Request r = new Fixtures.Request().to("a@example.org", "b@example.org").via(route(c.policy(), hop(server)));
        if (c.timeoutProperty().equals("data_block_timeout")) {
            // Large enough to fill the socket buffers of loopback once the server stops reading.
            r.contentOverride = Fixtures.generated(64L << 20, new AtomicLong());
        }

        long start = System.nanoTime();
        List<DeliveryResult> results = transport.deliver(r.build()).toCompletableFuture().get(60, TimeUnit.SECONDS);
        long millis = (System.nanoTime() - start) / 1_000_000;

        assertTrue(c + " took " + millis + " ms", millis < TIMEOUT * 1000L + 4000);
        assertEquals(2, results.size());
        for (DeliveryResult result : results) {
            assertEquals(result.toString(), c.outcome(), result.outcome());
            assertEquals(result.toString(), c.status(), result.status());
            assertTrue(result.toString(), result.diagnostic().contains(c.diagnostic()));
        }
        assertEquals("a stalled connection is never cached", 0, transport.pool().size("example.org"));
    }
}
