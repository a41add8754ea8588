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
import java.util.ArrayList;
import java.util.List;

import javax.net.ssl.SSLContext;

import org.junit.After;
import org.junit.BeforeClass;
import org.junit.ClassRule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.routing.NextHop;
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
        assertEquals(List.of("EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "RSET"), session.verbs());
        assertEquals("EHLO again, then the whole transaction under TLS",
                List.of("EHLO", "MAIL", "RCPT", "DATA", "RSET"),
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
        assertEquals(List.of("EHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET"), s.session(0).verbs());
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
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA", "RSET"), s.session(1).verbs());
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
        assertEquals(List.of("EHLO", "MAIL", "RCPT", "DATA", "RSET"),
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
