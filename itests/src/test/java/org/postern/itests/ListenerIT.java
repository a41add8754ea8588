package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.Writer;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import javax.net.ssl.X509TrustManager;

import org.apache.commons.net.smtp.AuthenticatingSMTPClient;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.api.auth.AuthResult;
import org.postern.api.auth.Authenticator;
import org.postern.api.queue.QueueEntry;

/** The distribution's listeners as clients meet them: STARTTLS on the MX, submission with AUTH, pipelining, BDAT. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ListenerIT extends PosternTestSupport {

    @org.junit.Before
    public void noDelivery() throws Exception {
        keepMessagesInTheQueue();
    }


    private AuthenticatingSMTPClient tlsClient(int port) throws Exception {
        AuthenticatingSMTPClient c = new AuthenticatingSMTPClient("TLS", false, "UTF-8");
        c.setTrustManager(TRUST_ALL); // the development certificate is self-signed
        c.setDefaultTimeout(20_000);
        c.connect("127.0.0.1", port);
        assertEquals(220, c.getReplyCode());
        c.ehlo("itest.example");
        assertTrue(c.getReplyString(), c.getReplyString().contains("STARTTLS"));
        assertTrue(c.execTLS());
        c.ehlo("itest.example");
        return c;
    }

    @Test
    public void starttlsOnTheMxWithTheGeneratedCertificate() throws Exception {
        AuthenticatingSMTPClient c = tlsClient(smtpPort());
        assertFalse("an MX never offers AUTH", c.getReplyString().contains("AUTH"));
        String id = queueId(send(c, "alice@example.org", "bob@localhost", "Subject: tls\r\n\r\nsecret\r\n"));
        QueueEntry entry = queueStore().get(id).orElseThrow();
        assertTrue(entry.envelope().client().tlsProtocol(), entry.envelope().client().tlsProtocol().startsWith("TLSv1."));
        assertEquals("ESMTPS", entry.envelope().client().protocol());
        c.disconnect();
    }

    @Test
    public void submissionTakesAuthenticatedUsersOnlyAndOnlyAsThemselves() throws Exception {
        Dictionary<String, Object> props = new Hashtable<>();
        ServiceRegistration<Authenticator> reg = bundleContext.registerService(Authenticator.class,
                (user, password, authzid) -> CompletableFuture.completedFuture(
                        user.equals("carol@example.org") && new String(password).equals("pw")
                                ? AuthResult.success(user) : AuthResult.unknownUser()), props);
        try {
            AuthenticatingSMTPClient plain = new AuthenticatingSMTPClient("TLS", false, "UTF-8");
            plain.connect("127.0.0.1", submissionPort());
            plain.ehlo("itest.example");
            assertEquals(530, plain.mail("<carol@example.org>"));
            plain.disconnect();

            AuthenticatingSMTPClient c = tlsClient(submissionPort());
            assertTrue(c.getReplyString().contains("AUTH PLAIN LOGIN"));
            assertEquals(530, c.mail("<carol@example.org>"));
            assertFalse(c.auth(AuthenticatingSMTPClient.AUTH_METHOD.PLAIN, "carol@example.org", "nope"));
            assertEquals(535, c.getReplyCode());
            assertTrue(c.auth(AuthenticatingSMTPClient.AUTH_METHOD.PLAIN, "carol@example.org", "pw"));
            assertEquals(553, c.mail("<someone.else@example.org>"));
            String id = queueId(send(c, "carol@example.org", "dave@elsewhere.example", "Subject: out\r\n\r\nrelayed\r\n"));
            QueueEntry entry = queueStore().get(id).orElseThrow();
            assertEquals("carol@example.org", entry.envelope().client().authenticatedAs());
            assertTrue(entry.addedHeaders().get(0).value().contains("with ESMTPSA"));
            c.disconnect();
        } finally {
            reg.unregister();
        }
    }

    @Test
    public void pipelinedBdatInOneWrite() throws Exception {
        try (Socket s = new Socket("127.0.0.1", smtpPort())) {
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            OutputStream out = s.getOutputStream();
            assertTrue(in.readLine().startsWith("220 "));
            out.write(("EHLO itest.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@localhost>\r\n"
                    + "BDAT 20\r\nSubject: chunked\r\n\r\nBDAT 6 LAST\r\nbody\r\nQUIT\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            List<String> finals = new ArrayList<>();
            String line;
            while ((line = in.readLine()) != null) {
                if (line.charAt(3) == ' ') {
                    finals.add(line);
                }
            }
            assertEquals(6, finals.size());
            assertEquals("250 2.0.0 Ok: 20 octets received", finals.get(3));
            String id = queueId(finals.get(4));
            try (var content = queueStore().content(id).openStream()) {
                assertEquals("Subject: chunked\r\n\r\nbody\r\n", new String(content.readAllBytes(), StandardCharsets.UTF_8));
            }
            assertEquals("221 2.0.0 Bye", finals.get(5));
        }
    }

    /** A listener of our own, as an operator adds one: a factory configuration of org.postern.smtp.listener. */
    private Configuration listener(String name, Map<String, Object> values) throws Exception {
        ConfigurationAdmin admin = bundleContext.getService(bundleContext.getServiceReference(ConfigurationAdmin.class));
        Configuration c = admin.getFactoryConfiguration("org.postern.smtp.listener", name, "?");
        Dictionary<String, Object> props = new Hashtable<>(values);
        props.put("name", name);
        props.put("bind.address", "127.0.0.1");
        props.put("hostname", "itest.localhost");
        String tls = System.getProperty("karaf.data") + "/tls/postern.";
        props.put("tls.certificate", tls + "crt");
        props.put("tls.key", tls + "key");
        c.update(props);
        int port = (Integer) values.get("port");
        waitFor("listener " + name + " on port " + port, () -> {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return true;
            } catch (java.io.IOException e) {
                return false;
            }
        });
        return c;
    }

    private static int freePort() throws java.io.IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    public void implicitTlsOnASubmissionsListener() throws Exception {
        int port = freePort();
        Configuration config = listener("itest-submissions", Map.of("role", "submissions", "port", port));
        try {
            AuthenticatingSMTPClient c = new AuthenticatingSMTPClient("TLS", true, "UTF-8"); // TLS from the first byte
            c.setTrustManager(TRUST_ALL);
            c.setDefaultTimeout(20_000);
            c.connect("127.0.0.1", port);
            assertEquals(c.getReplyString(), 220, c.getReplyCode());
            assertEquals(250, c.ehlo("itest.example"));
            assertTrue(c.getReplyString(), c.getReplyString().contains("AUTH PLAIN LOGIN"));
            assertFalse("no STARTTLS under TLS", c.getReplyString().contains("STARTTLS"));
            assertEquals("AUTH before MAIL", 530, c.mail("<carol@example.org>"));
            c.disconnect();
        } finally {
            config.delete();
        }
    }

    @Test
    public void smtpUtf8AddressesAndHeaders() throws Exception {
        AuthenticatingSMTPClient c = new AuthenticatingSMTPClient("TLS", false, "UTF-8");
        c.setDefaultTimeout(20_000);
        c.connect("127.0.0.1", smtpPort());
        c.ehlo("itest.example");
        assertTrue(c.getReplyString(), c.getReplyString().contains("SMTPUTF8"));
        assertEquals("a UTF-8 address needs SMTPUTF8 on MAIL", 553, c.sendCommand("MAIL FROM:<jürgen@exämple.org>"));
        assertEquals(250, c.sendCommand("MAIL FROM:<jürgen@exämple.org> SMTPUTF8"));
        assertEquals(250, c.sendCommand("RCPT TO:<bob@localhost>"));
        assertEquals(354, c.sendCommand("DATA"));
        c.sendCommand("Subject: grüße\r\n\r\nÜmlaute\r\n.");
        String id = queueId(c.getReplyString().trim());
        QueueEntry entry = queueStore().get(id).orElseThrow();
        assertTrue(entry.envelope().smtpUtf8());
        assertEquals("jürgen@exämple.org", entry.envelope().sender().toString());
        try (var content = queueStore().content(id).openStream()) {
            assertEquals("Subject: grüße\r\n\r\nÜmlaute\r\n", new String(content.readAllBytes(), StandardCharsets.UTF_8));
        }
        c.disconnect();
    }

    /** The limits with Python's smtplib, a client Postern did not write. */
    @Test
    public void sizeAndRecipientLimitsWithPythonSmtplib() throws Exception {
        int port = freePort();
        Configuration config = listener("itest-limits", Map.of("role", "mx", "port", port,
                "max.message.size", 2000, "max.recipients", 2));
        try {
            String script = String.join("\n",
                    "import smtplib, sys",
                    "s = smtplib.SMTP('127.0.0.1', " + port + ", timeout=20)",
                    "s.ehlo('itest.example')",
                    "print('SIZE', s.esmtp_features.get('size'))",
                    "for n in (2000, 2001):",
                    "    body = ('Subject: n' + str(n) + '\\r\\n\\r\\n').encode()",
                    "    while len(body) + 100 <= n:",
                    "        body += b'x' * 98 + b'\\r\\n'",
                    "    body += b'y' * (n - len(body) - 2) + b'\\r\\n'",
                    "    try:",
                    "        s.sendmail('alice@example.org', ['bob@localhost'], body)",
                    "        print(n, 'accepted')",
                    "    except smtplib.SMTPException as e:",
                    "        print(n, 'refused', getattr(e, 'smtp_code', ''), getattr(e, 'smtp_error', b'').decode())",
                    "s.mail('alice@example.org')",
                    "for r in ('bob@localhost', 'postmaster@localhost', 'dave@localhost'):",
                    "    code, text = s.rcpt(r)",
                    "    print('RCPT', r, code, text.decode())",
                    "s.rset()",
                    "s.quit()");
            Process p = new ProcessBuilder("python3", "-c", script).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(out, p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
            assertEquals(out, 0, p.exitValue());
            assertTrue(out, out.contains("SIZE 2000\n"));
            assertTrue("exactly the limit passes: " + out, out.contains("2000 accepted\n"));
            assertTrue("one octet more: " + out, out.contains("2001 refused 552 5.3.4"));
            assertTrue(out, out.contains("RCPT bob@localhost 250"));
            assertTrue(out, out.contains("RCPT postmaster@localhost 250"));
            assertTrue(out, out.contains("RCPT dave@localhost 452 4.5.3"));
        } finally {
            config.delete();
        }
    }

    @Test
    public void smugglingASecondTransactionBehindABareLfFails() throws Exception {
        try (Socket s = new Socket("127.0.0.1", smtpPort())) {
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            Writer out = new java.io.OutputStreamWriter(s.getOutputStream(), StandardCharsets.US_ASCII);
            assertTrue(in.readLine().startsWith("220 "));
            out.write("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n");
            out.write("Subject: smuggle\r\n\r\nhi\n.\r\nMAIL FROM:<evil@example.org>\r\n.\r\n");
            out.flush();
            String line;
            String last = null;
            for (int i = 0; i < 5 && (line = in.readLine()) != null; i++) {
                last = line;
            }
            assertEquals("550 5.6.0 Message contains bare CR or LF; lines must end with CRLF", last);
        }
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
