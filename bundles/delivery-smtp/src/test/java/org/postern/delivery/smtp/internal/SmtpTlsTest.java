package org.postern.delivery.smtp.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.postern.delivery.smtp.internal.Fixtures.cfg;
import static org.postern.delivery.smtp.internal.Fixtures.deliver;
import static org.postern.delivery.smtp.internal.Fixtures.hop;
import static org.postern.delivery.smtp.internal.Fixtures.route;
import static org.postern.delivery.smtp.internal.SmtpTransportTest.waitFor;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import javax.net.ssl.SSLContext;

import org.junit.After;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;

/**
 * The TLS policies against the scripted server with a self-signed certificate made by keytool.
 */
public class SmtpTlsTest {

    @ClassRule
    public static final TemporaryFolder TMP = new TemporaryFolder();

    private static Fixtures.Certs certs;
    private static SSLContext serverTls;

    private final List<ScriptedServer> servers = new ArrayList<>();
    private SmtpTransport transport;

    @BeforeClass
    public static void makeCertificates() throws Exception {
        certs = new Fixtures.Certs(TMP.getRoot().toPath());
        serverTls = certs.serverContext();
    }

    @After
    public void tearDown() throws IOException {
        if (transport != null) {
            transport.deactivate();
        }
        for (ScriptedServer s : servers) {
            s.close();
        }
    }

    private ScriptedServer server(String address, boolean tls) throws IOException {
        ScriptedServer s = new ScriptedServer(address);
        s.tls = tls ? serverTls : null;
        servers.add(s);
        return s;
    }

    private List<DeliveryResult> send(TlsPolicy policy, NextHop hop, Object... config) throws Exception {
        if (transport == null) {
            transport = Fixtures.transport(cfg(config));
        }
        return deliver(transport, new Fixtures.Request().to("a@example.org").via(route(policy, hop)));
    }

    @Test
    public void mayUpgradesWhenOffered() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = send(TlsPolicy.MAY, hop(s)).get(0);
        assertEquals(Outcome.DELIVERED, r.outcome());
        ScriptedServer.Session session = s.session(0);
        assertEquals(List.of("EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA"), session.verbs());
        assertEquals("EHLO again, then the whole transaction under TLS",
                List.of("EHLO", "MAIL", "RCPT", "DATA"),
                session.tlsCommands.stream().map(c -> c.split(" ")[0]).toList());
        assertEquals(1, s.messages().size());
    }

    @Test
    public void mayGoesInClearWhenNotOffered() throws Exception {
        ScriptedServer s = server("127.0.0.1", false);
        assertEquals(Outcome.DELIVERED, send(TlsPolicy.MAY, hop(s)).get(0).outcome());
        assertFalse(s.session(0).verbs().contains("STARTTLS"));
    }

    @Test
    public void mayGoesInClearWhenStartTlsIsRefused() throws Exception {
        ScriptedServer s = server("127.0.0.1", false);
        s.extensions.add("STARTTLS");
        s.script = (session, line) -> line.equals("STARTTLS") ? "454 4.7.0 TLS not available due to local problem" : null;
        assertEquals(Outcome.DELIVERED, send(TlsPolicy.MAY, hop(s)).get(0).outcome());
        assertEquals(List.of("EHLO", "STARTTLS", "MAIL", "RCPT", "DATA"), s.session(0).verbs());
    }

    @Test
    public void mayTriesAgainInClearAfterAFailedHandshake() throws Exception {
        // The server says 220 to STARTTLS but cannot do TLS: the handshake fails (here: times out).
        ScriptedServer s = server("127.0.0.1", false);
        s.extensions.add("STARTTLS");
        s.script = (session, line) -> line.equals("STARTTLS") ? "220 2.0.0 Ready to start TLS" : null;
        DeliveryResult r = send(TlsPolicy.MAY, hop(s), "starttls_timeout", 1).get(0);
        assertEquals(Outcome.DELIVERED, r.outcome());
        assertEquals(2, s.sessions.size());
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA"), s.session(1).verbs());
        assertEquals(1, s.messages().size());
    }

    @Test
    public void hangUpRightAfterTheStartTlsReplyEndsTheHandshakeAtOnce() throws Exception {
        // The connection is gone before TLS is put under it: nothing is left to wait for, whatever the timeout.
        ScriptedServer s = server("127.0.0.1", false);
        s.extensions.add("STARTTLS");
        s.script = (session, line) -> {
            if (line.equals("STARTTLS") && session.verbs().size() == 2) {
                session.closeAfterAnswer = true;
                return "220 2.0.0 Ready to start TLS";
            }
            return null;
        };
        transport = Fixtures.transport(cfg("starttls_timeout", 60));
        long start = System.nanoTime();
        DeliveryResult r = send(TlsPolicy.MAY, hop(s)).get(0);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertTrue("took " + millis + " ms", millis < 5000);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertEquals("tried again in clear", 2, s.sessions.size());
    }

    @Test
    public void noneNeverStartsTls() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        assertEquals(Outcome.DELIVERED, send(TlsPolicy.NONE, hop(s)).get(0).outcome());
        assertFalse(s.session(0).verbs().contains("STARTTLS"));
    }

    @Test
    public void encryptRefusesToSendInClear() throws Exception {
        ScriptedServer s = server("127.0.0.1", false);
        DeliveryResult r = send(TlsPolicy.ENCRYPT, hop(s)).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.4", r.status());
        assertEquals("TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]:" + s.port(), r.diagnostic());
        waitFor(() -> s.session(0).ended, "the session to end");
        assertEquals(List.of("EHLO", "QUIT"), s.session(0).verbs());
        assertTrue(s.messages().isEmpty());
    }

    @Test
    public void encryptRefusesWhenStartTlsIsRefused() throws Exception {
        ScriptedServer s = server("127.0.0.1", false);
        s.extensions.add("STARTTLS");
        s.script = (session, line) -> line.equals("STARTTLS") ? "454 4.7.0 TLS not available" : null;
        DeliveryResult r = send(TlsPolicy.ENCRYPT, hop(s)).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.4", r.status());
        assertFalse(s.session(0).verbs().contains("MAIL"));
    }

    @Test
    public void encryptTakesAnyCertificate() throws Exception {
        ScriptedServer s = server("127.0.0.2", true); // self-signed, and not even for this address
        DeliveryResult r = send(TlsPolicy.ENCRYPT, hop(s)).get(0);
        assertEquals(Outcome.DELIVERED, r.outcome());
        assertTrue(s.session(0).isTls());
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA"),
                s.session(0).tlsCommands.stream().map(c -> c.split(" ")[0]).toList());
    }

    @Test
    public void encryptTriesTheNextHopWhenTlsIsMissing() throws Exception {
        ScriptedServer clear = server("127.0.0.1", false);
        ScriptedServer secure = server("127.0.0.2", true);
        transport = Fixtures.transport(cfg());
        DeliveryResult r = deliver(transport, new Fixtures.Request().to("a@example.org")
                .via(route(TlsPolicy.ENCRYPT, hop(clear), hop(secure)))).get(0);
        assertEquals(Outcome.DELIVERED, r.outcome());
        assertEquals("127.0.0.2", r.remoteMta());
        assertTrue(clear.messages().isEmpty());
    }

    @Test
    public void verifyRejectsASelfSignedCertificateNotInTheJdkTrustStore() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = send(TlsPolicy.VERIFY, hop(s)).get(0);
        assertVerifyFailed(s, r);
    }

    @Test
    public void verifyRejectsACertificateNotInTheConfiguredTrustStore() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = send(TlsPolicy.VERIFY, hop(s), "trust_store", certs.otherTrustStore.toString(),
                "trust_store_password", Fixtures.Certs.PASSWORD).get(0);
        assertVerifyFailed(s, r);
    }

    @Test
    public void verifyAcceptsATrustedCertificateForTheHopsAddress() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = send(TlsPolicy.VERIFY, hop(s), "trust_store", certs.trustStore.toString(),
                "trust_store_password", Fixtures.Certs.PASSWORD).get(0);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertTrue(s.session(0).isTls());
        assertEquals(1, s.messages().size());
    }

    @Test
    public void verifyAcceptsATrustedCertificateForTheHopsName() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = send(TlsPolicy.VERIFY, new NextHop("localhost", s.port(), 0),
                "trust_store", certs.trustStore.toString(), "trust_store_password", Fixtures.Certs.PASSWORD).get(0);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertEquals("localhost", r.remoteMta());
    }

    @Test
    public void verifyRejectsATrustedCertificateForAnotherName() throws Exception {
        // The certificate is trusted but names localhost and 127.0.0.1, not 127.0.0.2.
        ScriptedServer s = server("127.0.0.2", true);
        DeliveryResult r = send(TlsPolicy.VERIFY, hop(s), "trust_store", certs.trustStore.toString(),
                "trust_store_password", Fixtures.Certs.PASSWORD).get(0);
        assertVerifyFailed(s, r);
    }

    @Test
    public void unreadableTrustStoreHoldsVerifyMailOnlyAndSaysWhy() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        String missing = TMP.getRoot().toPath().resolve("missing.p12").toString();
        DeliveryResult r = send(TlsPolicy.VERIFY, hop(s), "trust_store", missing).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.5", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().startsWith("cannot verify certificates: trust store " + missing));
        assertTrue("nothing was even tried", s.sessions.isEmpty());
        // the transport itself works: other policies deliver
        assertEquals(Outcome.DELIVERED, send(TlsPolicy.MAY, hop(s)).get(0).outcome());
    }

    // ---- client AUTH towards a smarthost (route auth=ID) ----

    private static final String[] RELAY_CREDENTIALS = {"auth.relay.username", "relay-user", "auth.relay.password", "s3cret pass"};

    private List<DeliveryResult> sendAuth(TlsPolicy policy, ScriptedServer s, String id, Object... config) throws Exception {
        if (transport == null) {
            transport = Fixtures.transport(cfg(config));
        }
        Route route = new Route("smtp", s.host() + ":" + s.port() + " auth=" + id, List.of(hop(s)), policy, id);
        return deliver(transport, new Fixtures.Request().to("a@example.org").via(route));
    }

    private static String base64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    public void authPlainAfterStartTlsThenTheTransaction() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        s.extensions.add("AUTH LOGIN PLAIN");
        String expected = "AUTH PLAIN " + base64("\0relay-user\0s3cret pass");
        s.script = (session, line) -> line.startsWith("AUTH ")
                ? (session.isTls() && line.equals(expected) ? "235 2.7.0 Authentication successful" : "535 5.7.8 bad")
                : null;
        DeliveryResult r = sendAuth(TlsPolicy.ENCRYPT, s, "relay", (Object[]) RELAY_CREDENTIALS).get(0);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA"),
                s.session(0).tlsCommands.stream().filter(c -> !c.startsWith("AUTH")).map(c -> c.split(" ")[0]).toList());
        assertEquals(List.of(expected), s.session(0).tlsCommands.stream().filter(c -> c.startsWith("AUTH")).toList());
        assertEquals(1, s.messages().size());
    }

    @Test
    public void authLoginWhenPlainIsNotOffered() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        s.extensions.add("AUTH=LOGIN");
        s.script = (session, line) -> {
            if (line.equals("AUTH LOGIN")) {
                return "334 VXNlcm5hbWU6";
            }
            if (line.equals(base64("relay-user"))) {
                return "334 UGFzc3dvcmQ6";
            }
            if (line.equals(base64("s3cret pass"))) {
                return "235 2.7.0 Authentication successful";
            }
            return line.startsWith("AUTH") ? "504 5.5.4 unknown mechanism" : null;
        };
        DeliveryResult r = sendAuth(TlsPolicy.VERIFY, s, "relay", "trust_store", certs.trustStore.toString(),
                "trust_store_password", Fixtures.Certs.PASSWORD, RELAY_CREDENTIALS[0], RELAY_CREDENTIALS[1],
                RELAY_CREDENTIALS[2], RELAY_CREDENTIALS[3]).get(0);
        assertEquals(r.toString(), Outcome.DELIVERED, r.outcome());
        assertEquals(List.of("EHLO", "AUTH", base64("relay-user"), base64("s3cret pass"), "MAIL", "RCPT", "DATA"),
                s.session(0).tlsCommands.stream().map(c -> c.split(" ")[0]).toList());
    }

    @Test
    public void refusedCredentialsDeferWithTheServersReplyAndSendNoMail() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        s.extensions.add("AUTH PLAIN");
        s.script = (session, line) -> line.startsWith("AUTH ") ? "535 5.7.8 Error: authentication failed" : null;
        DeliveryResult r = sendAuth(TlsPolicy.ENCRYPT, s, "relay", (Object[]) RELAY_CREDENTIALS).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.0", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().startsWith("SASL authentication failed; host 127.0.0.1[127.0.0.1]:"
                + s.port() + " said: 535 5.7.8 Error: authentication failed"));
        waitFor(() -> s.session(0).ended, "the session to end");
        assertFalse(s.session(0).verbs().contains("MAIL"));
        assertEquals("QUIT", s.session(0).verbs().get(s.session(0).verbs().size() - 1));

        // The next message does not knock again with the same password (smarthosts lock accounts that do)
        DeliveryResult again = sendAuth(TlsPolicy.ENCRYPT, s, "relay").get(0);
        assertEquals(Outcome.DEFERRED, again.outcome());
        assertTrue(again.diagnostic(), again.diagnostic().contains("535 5.7.8 Error: authentication failed")
                && again.diagnostic().contains("not tried again until the credentials change"));
        assertEquals("no second connection", 1, s.sessions.size());

        // New credentials are tried at once
        transport.modified(Fixtures.config(cfg((Object[]) RELAY_CREDENTIALS)),
                cfg("auth.relay.username", "relay-user", "auth.relay.password", "new password"));
        s.script = (session, line) -> line.startsWith("AUTH ") ? "235 2.7.0 Authentication successful" : null;
        assertEquals(Outcome.DELIVERED, sendAuth(TlsPolicy.ENCRYPT, s, "relay").get(0).outcome());
        assertEquals(2, s.sessions.size());
    }

    @Test
    public void credentialsAreNeverSentInClearEvenUnderMay() throws Exception {
        ScriptedServer s = server("127.0.0.1", false); // no STARTTLS offered, but AUTH in clear
        s.extensions.add("AUTH PLAIN LOGIN");
        DeliveryResult r = sendAuth(TlsPolicy.MAY, s, "relay", (Object[]) RELAY_CREDENTIALS).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.4", r.status());
        waitFor(() -> s.session(0).ended, "the session to end");
        assertFalse("no AUTH in clear: " + s.session(0).commands,
                s.session(0).verbs().contains("AUTH") || s.session(0).verbs().contains("MAIL"));
    }

    @Test
    public void serverWithoutAuthDefers() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = sendAuth(TlsPolicy.ENCRYPT, s, "relay", (Object[]) RELAY_CREDENTIALS).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.0", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().contains("offers no AUTH"));
        assertFalse(s.session(0).verbs().contains("MAIL"));
    }

    @Test
    public void unknownCredentialsIdDefersWithoutConnecting() throws Exception {
        ScriptedServer s = server("127.0.0.1", true);
        DeliveryResult r = sendAuth(TlsPolicy.ENCRYPT, s, "other", (Object[]) RELAY_CREDENTIALS).get(0);
        assertEquals(Outcome.DEFERRED, r.outcome());
        assertEquals("4.3.5", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().contains("'other', which are not configured (auth.other.username"));
        assertTrue(s.sessions.isEmpty());
    }

    @Test
    public void incompleteCredentialsAreLeftOutAndNamed() {
        Set<String> incomplete = new TreeSet<>();
        Map<String, Credentials> read = Credentials.parse(Map.of("auth.a.username", "u", "auth.a.password", "p",
                "auth.b.username", "only-user", "auth.c.password", "only-password", "helo_name", "x"), incomplete);
        assertEquals(Map.of("a", new Credentials("u", "p")), read);
        assertEquals(Set.of("b", "c"), incomplete);
        assertEquals("the password never shows", "u", read.get("a").toString());
        assertEquals("ids ignore case, as ConfigAdmin keys do", Set.of("smarthost"),
                Credentials.parse(Map.of("auth.SmartHost.username", "u", "auth.SmartHost.password", "p"), incomplete).keySet());
    }

    private static void assertVerifyFailed(ScriptedServer s, DeliveryResult r) throws InterruptedException {
        assertEquals(r.toString(), Outcome.DEFERRED, r.outcome());
        assertEquals("4.7.5", r.status());
        assertTrue(r.diagnostic(), r.diagnostic().startsWith("TLS handshake with " + s.host() + "[" + s.host() + "]:"
                + s.port() + " failed: "));
        waitFor(() -> s.session(0).ended, "the session to end");
        assertNotNull("the server saw the handshake fail", s.session(0).handshakeError);
        assertEquals(List.of("EHLO", "STARTTLS"), s.session(0).verbs());
        assertEquals("no second attempt in clear under verify", 1, s.sessions.size());
        assertTrue(s.messages().isEmpty());
    }
}
