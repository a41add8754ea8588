package org.postern.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.concurrent.CompletionStage;

import org.apache.commons.net.smtp.SMTPClient;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.Constants;
import org.osgi.framework.ServiceRegistration;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.filter.TransactionContext;
import org.postern.api.filter.Verdict;
import org.postern.api.mail.MailAddress;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore;

/** One message through the real distribution, the console's view of it, and the queue's durability. */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class MessagePathIT extends PosternTestSupport {

    @org.junit.Before
    public void noDelivery() throws Exception {
        keepMessagesInTheQueue();
    }


    private static final String MESSAGE = "From: Alice <alice@example.org>\r\n"
            + "To: Bob <bob@localhost>\r\n"
            + "Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?=\r\n"
            + "\r\n"
            + "Hello Bob,\r\n"
            + ".a line that starts with a dot\r\n"
            + "\r\n"
            + "Bye.\r\n";

    @Test
    public void aMessageIsStoredWithItsExactBytesAndEnvelope() throws Exception {
        SMTPClient client = connect();
        String reply = send(client, "alice@example.org", "bob@localhost", MESSAGE);
        String id = queueId(reply);
        assertEquals(221, client.sendCommand("QUIT"));
        client.disconnect();

        QueueStore store = queueStore();
        QueueEntry entry = store.get(id).orElseThrow();
        assertEquals(MailAddress.parse("alice@example.org"), entry.envelope().sender());
        assertEquals(1, entry.envelope().recipients().size());
        assertEquals(MailAddress.parse("bob@localhost"), entry.envelope().recipients().get(0).address());
        assertEquals("127.0.0.1", entry.envelope().client().address());
        assertEquals("itest.example", entry.envelope().client().heloName());
        // the queue manager may already be on it: local delivery is not there yet, so it waits in the queue
        assertTrue(entry.state().toString(), java.util.EnumSet.of(QueueEntry.State.QUEUED, QueueEntry.State.ACTIVE,
                QueueEntry.State.DEFERRED).contains(entry.state()));
        try (InputStream in = store.content(id).openStream()) {
            assertEquals(MESSAGE, new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        assertEquals(MESSAGE.getBytes(StandardCharsets.UTF_8).length, entry.size());
        assertEquals("Received", entry.addedHeaders().get(0).name());

        String list = console("mta:queue-list");
        assertTrue(list, list.contains(id));
        assertTrue(list, list.contains("alice@example.org"));
    }

    @Test
    public void relayingToAForeignDomainIsRefused() throws Exception {
        SMTPClient client = connect();
        assertEquals("250 2.1.0 Ok", command(client, "MAIL FROM:<alice@example.org>"));
        assertEquals("554 5.7.1 <victim@elsewhere.example>: Relay access denied",
                command(client, "RCPT TO:<victim@elsewhere.example>"));
        assertEquals("554 5.7.1 <victim@elsewhere.example>: Relay access denied",
                command(client, "RCPT TO:<@localhost:victim@elsewhere.example>"));
        client.disconnect();
    }

    @Test
    public void filterListShowsTheLiveChainWithRankings() throws Exception {
        Dictionary<String, Object> props = new Hashtable<>();
        props.put(SmtpFilter.NAME_PROPERTY, "itest-greylist");
        props.put(Constants.SERVICE_RANKING, 4242);
        ServiceRegistration<SmtpFilter> reg = bundleContext.registerService(SmtpFilter.class, new SmtpFilter() {
            @Override
            public CompletionStage<Verdict> mailFrom(TransactionContext t, MailAddress sender) {
                return SmtpFilter.proceed();
            }
        }, props);
        try {
            String out = console("mta:filter-list");
            String row = out.lines().filter(l -> l.contains("itest-greylist")).findFirst().orElse(null);
            assertNotNull(out, row);
            assertTrue(row, row.contains("4242"));
        } finally {
            reg.unregister();
        }
        assertFalse(console("mta:filter-list").contains("itest-greylist"));
    }

    @Test
    public void restartingTheQueueLosesNothingAndDataWaitsWhileItIsGone() throws Exception {
        SMTPClient client = connect();
        String id = queueId(send(client, "carol@example.org", "dave@localhost", "Subject: keep me\r\n\r\nbody\r\n"));
        Bundle queueBundle = bundle("org.postern.queue-file");
        assertNotNull(queueBundle);

        String out = console("bundle:restart " + queueBundle.getBundleId());
        waitFor("the queue store to come back", () -> queueStore() != null);
        assertTrue(out + " / queue after restart", queueStore().get(id).isPresent());

        queueBundle.stop();
        waitFor("the queue store to leave", () -> queueStore() == null);
        assertEquals("250 2.1.0 Ok", command(client, "MAIL FROM:<carol@example.org>"));
        assertEquals("250 2.1.5 Ok", command(client, "RCPT TO:<dave@localhost>"));
        String data = command(client, "DATA");
        assertTrue(data, data.startsWith("451 4.3.0"));
        command(client, "RSET");

        queueBundle.start();
        waitFor("the queue store to come back", () -> queueStore() != null);
        assertTrue(queueStore().get(id).isPresent());
        // the session that lived through the swap stores its next message
        String again = queueId(send(client, "carol@example.org", "dave@localhost", "Subject: again\r\n\r\nbody\r\n"));
        assertTrue(queueStore().get(again).isPresent());
        client.disconnect();
    }
}
