package org.postern.queue.manager.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.postern.queue.manager.internal.Harness.await;
import static org.postern.queue.manager.internal.Harness.envelope;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;
import org.postern.api.bounce.BounceGenerator;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.queue.MessageEvents;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router.RouteException;
import org.postern.queue.file.internal.FileQueueStore;
import org.postern.queue.file.internal.FileQueueStores;
import org.postern.queue.manager.internal.Harness.FakeBounceGenerator;
import org.postern.queue.manager.internal.Harness.FakeRouter;
import org.postern.testsupport.MutableClock;
import org.postern.queue.manager.internal.Harness.RecordingEvents;
import org.postern.queue.manager.internal.Harness.ScriptedTransport;

/** The scheduler against the real file queue, with a scripted router and transport. */
public class QueueManagerTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");
    private static final String MESSAGE = "Subject: test\r\n\r\nhello\r\n";

    @Rule
    public final TemporaryFolder folder = new TemporaryFolder();

    private final MutableClock clock = new MutableClock(T0);
    private final FakeRouter router = new FakeRouter();
    private final ScriptedTransport smtp = new ScriptedTransport();
    private final RecordingEvents events = new RecordingEvents();
    private FileQueueStore store;
    private QueueManager manager;
    /** Whether the store tells the manager of new messages (as EventAdmin would). */
    private volatile boolean queuedEvents = true;

    @Before
    public void setUp() throws IOException {
        EventAdmin toManager = new EventAdmin() {
            @Override
            public void postEvent(Event event) {
                QueueManager m = manager;
                if (queuedEvents && m != null && event.getTopic().equals(MessageEvents.QUEUED)) {
                    m.handleEvent(event);
                }
            }

            @Override
            public void sendEvent(Event event) {
                postEvent(event);
            }
        };
        store = FileQueueStores.start(folder.newFolder("spool").toPath(), clock, toManager);
    }

    @After
    public void tearDown() {
        if (manager != null) {
            smtp.gate.complete(null);
            manager.deactivate();
        }
        FileQueueStores.stop(store);
    }

    /** A manager wired like DS would wire it; scans are rare, so only the QUEUED event or wake() moves it. */
    private QueueManager start(Map<String, Object> config, boolean withRouter, FakeBounceGenerator bounces)
            throws InterruptedException {
        Map<String, Object> settings = new HashMap<>(Map.of("scan_interval", 3600L));
        settings.putAll(config);
        QueueManager m = new QueueManager(clock);
        m.setQueueStore(store);
        if (withRouter) {
            m.setRouter(router);
        }
        m.addTransport(smtp, Map.of(Transport.NAME_PROPERTY, "smtp"));
        m.bounceGenerator = bounces;
        m.eventAdmin = events;
        m.activate(Harness.config(settings));
        manager = m;
        await("the first scan is done", () -> m.looks() >= 1);
        return m;
    }

    private QueueManager start() throws InterruptedException {
        return start(Map.of(), true, new FakeBounceGenerator(clock));
    }

    private String queue(Envelope envelope) throws Exception {
        PendingMessage pending = store.begin();
        byte[] bytes = MESSAGE.getBytes(StandardCharsets.US_ASCII);
        pending.write(bytes, 0, bytes.length);
        return pending.commit(envelope, List.of(), null).toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    private String queue(String sender, String... recipients) throws Exception {
        return queue(envelope(sender, clock.instant(), recipients));
    }

    private QueueEntry entry(String id) {
        return store.get(id).orElse(null);
    }

    /** Waits until the attempt that is under way (if any) is recorded. */
    private void settle() throws InterruptedException {
        await("no attempt is running", () -> manager.activeEntries() == 0);
    }

    private void awaitAttempts(String id, int attempts) throws InterruptedException {
        await(id + " has " + attempts + " attempt(s) recorded", () -> {
            QueueEntry e = entry(id);
            return e != null && e.attempts() == attempts && e.state() != QueueEntry.State.ACTIVE
                    && manager.activeEntries() == 0;
        });
    }

    // ---- the first attempt

    @Test
    public void theQueuedEventStartsTheFirstAttemptWithoutWaitingForAScan() throws Exception {
        start();
        long looks = manager.looks();
        long before = System.nanoTime();
        String id = queue("alice@example.org", "bob@example.net");
        await("delivered", () -> entry(id) == null && smtp.calls() == 1);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - before);
        assertTrue("first attempt took " + millis + " ms", millis < 2000);
        assertTrue("looked again because of the event", manager.looks() > looks);

        DeliveryRequest request = smtp.requests.get(0);
        assertEquals(id, request.entry().id());
        assertEquals(List.of("bob@example.net"), request.recipients().stream().map(r -> r.address().toString()).toList());
        assertEquals(Harness.smtpRoute("example.net"), request.route());
        assertArrayEquals(MESSAGE.getBytes(StandardCharsets.US_ASCII), smtp.contents.get(0));

        await("the delivered event", () -> events.topic(MessageEvents.DELIVERED).size() == 1);
        Event delivered = events.topic(MessageEvents.DELIVERED).get(0);
        assertEquals(id, delivered.getProperty(MessageEvents.QUEUE_ID));
        assertArrayEquals(new String[] {"bob@example.net"}, (String[]) delivered.getProperty(MessageEvents.RECIPIENTS));
        assertEquals("2.0.0", delivered.getProperty(MessageEvents.STATUS));
    }

    @Test
    public void withoutTheEventANewMessageWaitsForTheNextScan() throws Exception {
        queuedEvents = false;
        start();
        String id = queue("alice@example.org", "bob@example.net");
        Thread.sleep(300);
        assertEquals(0, smtp.calls());
        assertEquals(QueueEntry.State.QUEUED, entry(id).state());

        manager.wake(); // what the next scan does
        await("delivered", () -> entry(id) == null);
        assertEquals(1, smtp.calls());
    }

    // ---- retries

    @Test
    public void aTemporaryFailureThenSuccessIsOneRetryAndOneDelivery() throws Exception {
        smtp.script = r -> r.entry().attempts() == 0
                ? ScriptedTransport.answer(r, DeliveryResult.Outcome.DEFERRED, "4.4.1", "451 4.4.1 try again later")
                : ScriptedTransport.deliverAll(r);
        start();
        String id = queue("alice@example.org", "bob@example.net");
        awaitAttempts(id, 1);

        QueueEntry deferred = entry(id);
        assertEquals(QueueEntry.State.DEFERRED, deferred.state());
        assertEquals(T0.plusSeconds(300), deferred.nextAttempt());
        assertEquals("451 4.4.1 try again later", deferred.lastError());
        RecipientStatus bob = deferred.recipients().get(0);
        assertEquals(RecipientStatus.State.DEFERRED, bob.state());
        assertEquals("4.4.1", bob.status());
        assertEquals("mx.example.net", bob.remoteMta());

        // Not due yet: a look at the queue leaves it alone.
        clock.advance(Duration.ofSeconds(299));
        manager.wake();
        Thread.sleep(200);
        assertEquals(1, smtp.calls());

        clock.advance(Duration.ofSeconds(1));
        manager.wake();
        await("delivered on the retry", () -> entry(id) == null);
        settle();
        assertEquals(2, smtp.calls());
        assertEquals(1, events.topic(MessageEvents.DEFERRED).size());
        assertEquals(1, events.topic(MessageEvents.DELIVERED).size());
        assertEquals(List.of(), store.list(QueueQuery.ALL));
    }

    @Test
    public void backoffDoublesFromTheMinimumUpToTheMaximum() throws Exception {
        smtp.script = r -> ScriptedTransport.answer(r, DeliveryResult.Outcome.DEFERRED, "4.4.1", "451 busy");
        start();
        String id = queue("alice@example.org", "bob@example.net");
        long[] expected = {300, 600, 1200, 2400, 4000, 4000};
        for (int i = 0; i < expected.length; i++) {
            awaitAttempts(id, i + 1);
            QueueEntry e = entry(id);
            assertEquals("delay after attempt " + (i + 1), clock.instant().plusSeconds(expected[i]), e.nextAttempt());
            clock.set(e.nextAttempt());
            manager.wake();
        }
        awaitAttempts(id, expected.length + 1);
        assertEquals(expected.length + 1, smtp.calls());
    }

    // ---- permanent failures and bounces

    @Test
    public void aPermanentFailureIsBouncedAndTheBounceIsQueuedAndDelivered() throws Exception {
        smtp.script = r -> r.entry().envelope().sender().isNullSender()
                ? ScriptedTransport.deliverAll(r)
                : ScriptedTransport.answer(r, DeliveryResult.Outcome.FAILED, "5.1.1", "550 5.1.1 no such user");
        FakeBounceGenerator bounces = new FakeBounceGenerator(clock);
        start(Map.of(), true, bounces);
        String id = queue("alice@example.org", "nobody@example.net");

        await("the bounce is delivered", () -> smtp.calls() == 2 && manager.activeEntries() == 0);
        assertNull("the original is gone", entry(id));
        assertEquals(1, bounces.calls.size());
        FakeBounceGenerator.Call call = bounces.calls.get(0);
        assertEquals(BounceGenerator.Kind.FAILURE, call.kind());
        assertEquals(id, call.id());
        RecipientStatus failed = call.recipients().get(0);
        assertEquals("nobody@example.net", failed.recipient().address().toString());
        assertEquals(RecipientStatus.State.FAILED, failed.state());
        assertEquals("5.1.1", failed.status());
        assertEquals("550 5.1.1 no such user", failed.diagnostic());

        DeliveryRequest bounce = smtp.requests.get(1);
        assertTrue(bounce.entry().envelope().sender().isNullSender());
        assertEquals(List.of(MailAddress.parse("alice@example.org")),
                bounce.recipients().stream().map(r -> r.address()).toList());
        assertArrayEquals(FakeBounceGenerator.dsnText(BounceGenerator.Kind.FAILURE, id).getBytes(StandardCharsets.US_ASCII),
                smtp.contents.get(1));
        Event bounced = events.topic(MessageEvents.BOUNCED).get(0);
        assertEquals(id, bounced.getProperty(MessageEvents.QUEUE_ID));
        assertEquals("5.1.1", bounced.getProperty(MessageEvents.STATUS));
    }

    @Test
    public void withoutABounceGeneratorAFailedEntryIsHeldAndReleasedLater() throws Exception {
        start(Map.of(), true, null);
        smtp.script = r -> r.entry().envelope().sender().isNullSender() || r.route().destination().equals("example.org")
                ? ScriptedTransport.deliverAll(r)
                : ScriptedTransport.answer(r, DeliveryResult.Outcome.FAILED, "5.1.1", "550 5.1.1 no such user");
        String id = queue("alice@example.org", "nobody@example.net", "ok@example.org");
        awaitAttempts(id, 1);

        QueueEntry held = entry(id);
        assertEquals(QueueEntry.State.HELD, held.state());
        assertEquals("undeliverable; no bounce generator", held.reason());
        RecipientStatus nobody = held.recipients().get(0);
        // Kept, not final: the failure is in its status and text, for the operator and a later bounce.
        assertEquals(RecipientStatus.State.DEFERRED, nobody.state());
        assertEquals("5.1.1", nobody.status());
        assertEquals("550 5.1.1 no such user", nobody.diagnostic());
        assertEquals(RecipientStatus.State.DELIVERED, held.recipients().get(1).state());
        assertEquals(List.of(), store.lease(clock.instant().plusSeconds(86400), 10, Duration.ofMinutes(1)));

        // A bounce generator arrives, the operator releases: one more try, then the bounce.
        FakeBounceGenerator bounces = new FakeBounceGenerator(clock);
        manager.bounceGenerator = bounces;
        assertTrue(store.release(id));
        manager.wake();
        await("bounced and removed", () -> entry(id) == null && bounces.calls.size() == 1);
        await("the bounce is delivered", () -> smtp.requests.stream()
                .anyMatch(r -> r.entry().envelope().sender().isNullSender()));
        assertEquals(List.of("nobody@example.net"),
                bounces.calls.get(0).recipients().stream().map(r -> r.recipient().address().toString()).toList());
        assertEquals("ok@example.org was delivered once, and not again", 1,
                smtp.requests.stream().filter(r -> !r.entry().envelope().sender().isNullSender()
                        && r.route().destination().equals("example.org")).count());
    }

    @Test
    public void anEntryPastItsLifetimeIsReturnedAfterItsLastTemporaryFailure() throws Exception {
        smtp.script = r -> r.entry().envelope().sender().isNullSender()
                ? ScriptedTransport.deliverAll(r)
                : ScriptedTransport.answer(r, DeliveryResult.Outcome.DEFERRED, "4.4.1", "451 4.4.1 connection refused");
        FakeBounceGenerator bounces = new FakeBounceGenerator(clock);
        start(Map.of("maximal_lifetime", 5L * 24 * 3600, "bounce_warning", 0L), true, bounces);

        String young = queue(envelope("alice@example.org", T0.minus(Duration.ofDays(5)).plusSeconds(60), "bob@example.net"));
        awaitAttempts(young, 1);
        assertEquals(QueueEntry.State.DEFERRED, entry(young).state());
        assertEquals(0, bounces.calls.size());

        String old = queue(envelope("carol@example.org", T0.minus(Duration.ofDays(5)).minusSeconds(1), "dave@example.net"));
        await("expired and removed", () -> entry(old) == null && bounces.calls.size() == 1);
        FakeBounceGenerator.Call call = bounces.calls.get(0);
        assertEquals(BounceGenerator.Kind.FAILURE, call.kind());
        assertEquals(old, call.id());
        RecipientStatus dave = call.recipients().get(0);
        assertEquals(RecipientStatus.State.FAILED, dave.state());
        assertEquals("4.4.7", dave.status());
        assertEquals("delivery time expired; last error: 451 4.4.1 connection refused", dave.diagnostic());
    }

    @Test
    public void theSenderIsWarnedOnceOfADelay() throws Exception {
        smtp.script = r -> ScriptedTransport.answer(r, DeliveryResult.Outcome.DEFERRED, "4.4.1", "451 busy");
        FakeBounceGenerator bounces = new FakeBounceGenerator(clock);
        start(Map.of("bounce_warning", 4L * 3600), true, bounces);
        String id = queue("alice@example.org", "bob@example.net");
        // Attempts at 0, 300, 900, 2100, 4500, 8500, 12500, 16500 (past 4 h: warn), 20500 s.
        int attempts = 9;
        for (int i = 1; i <= attempts; i++) {
            awaitAttempts(id, i);
            long age = Duration.between(T0, clock.instant()).toSeconds();
            assertEquals("delay warnings after the attempt at " + age + " s", age >= 4 * 3600 ? 1 : 0,
                    bounces.of(BounceGenerator.Kind.DELAY, id).size());
            clock.set(entry(id).nextAttempt());
            manager.wake();
        }
        FakeBounceGenerator.Call warning = bounces.of(BounceGenerator.Kind.DELAY, id).get(0);
        assertEquals(RecipientStatus.State.DEFERRED, warning.recipients().get(0).state());
        assertEquals("451 busy", warning.recipients().get(0).diagnostic());
        await("the warning went into the queue", () -> store.list(QueueQuery.ALL).stream()
                .anyMatch(e -> e.envelope().sender().isNullSender()));
    }

    // ---- concurrency

    @Test
    public void noMoreThanPerDestinationDeliveriesRunToOneDestination() throws Exception {
        smtp.gate = new CompletableFuture<>();
        start(Map.of("workers", 10, "per_destination", 2), true, new FakeBounceGenerator(clock));
        for (int i = 0; i < 6; i++) {
            queue("alice@example.org", "user" + i + "@busy.example");
        }
        await("two deliveries run", () -> smtp.inFlight.get() == 2);
        Thread.sleep(300);
        assertEquals("the others wait", 2, smtp.calls());

        smtp.gate.complete(null);
        await("all delivered", () -> store.list(QueueQuery.ALL).isEmpty() && smtp.calls() == 6);
        assertEquals(2, smtp.maxInFlightPer.get());
    }

    @Test
    public void noMoreThanWorkersDeliveriesRunInTotal() throws Exception {
        smtp.gate = new CompletableFuture<>();
        start(Map.of("workers", 3, "per_destination", 10), true, new FakeBounceGenerator(clock));
        for (int i = 0; i < 7; i++) {
            queue("alice@example.org", "user@d" + i + ".example");
        }
        await("three deliveries run", () -> smtp.inFlight.get() == 3);
        Thread.sleep(300);
        assertEquals(3, smtp.calls());
        assertEquals("no more leased than can run", 3, manager.activeEntries());

        smtp.gate.complete(null);
        await("all delivered", () -> store.list(QueueQuery.ALL).isEmpty() && smtp.calls() == 7);
        assertEquals(3, smtp.maxInFlight.get());
        assertEquals(1, smtp.maxInFlightPer.get());
    }

    @Test
    public void recipientsAreGroupedByRoute() throws Exception {
        start();
        String id = queue("alice@example.org", "a1@one.example", "b@two.example", "a2@one.example");
        await("delivered", () -> entry(id) == null);
        settle();
        assertEquals(2, smtp.calls());
        Map<String, List<String>> byDestination = new HashMap<>();
        for (DeliveryRequest r : smtp.requests) {
            byDestination.put(r.route().destination(), r.recipients().stream().map(x -> x.address().toString()).toList());
        }
        assertEquals(Map.of("one.example", List.of("a1@one.example", "a2@one.example"),
                "two.example", List.of("b@two.example")), byDestination);
    }

    // ---- what is missing or failing

    @Test
    public void withoutARouterNothingIsLeasedUntilOneComes() throws Exception {
        start(Map.of(), false, new FakeBounceGenerator(clock));
        String id = queue("alice@example.org", "bob@example.net");
        manager.wake();
        Thread.sleep(300);
        QueueEntry waiting = entry(id);
        assertEquals(QueueEntry.State.QUEUED, waiting.state());
        assertEquals(0, waiting.attempts());
        assertEquals(0, smtp.calls());

        manager.setRouter(router);
        await("delivered", () -> entry(id) == null);
        assertEquals(1, smtp.calls());
    }

    @Test
    public void aMissingTransportDefersWith435() throws Exception {
        router.answer = a -> CompletableFuture.completedFuture(
                new Route("local", "local", List.of(), org.postern.api.routing.TlsPolicy.NONE, null));
        start();
        String id = queue("alice@example.org", "bob@localhost");
        awaitAttempts(id, 1);
        RecipientStatus bob = entry(id).recipients().get(0);
        assertEquals(RecipientStatus.State.DEFERRED, bob.state());
        assertEquals("4.3.5", bob.status());
        assertEquals("transport local not available", bob.diagnostic());
        assertEquals(0, smtp.calls());
    }

    @Test
    public void routeFailuresArePermanentOrTemporaryAsTheRouterSays() throws Exception {
        router.answer = a -> switch (a.asciiDomain()) {
            case "gone.example" -> CompletableFuture.failedFuture(new RouteException("5.1.2", "no such domain", true));
            case "slow.example" -> CompletableFuture.failedFuture(new RouteException("4.4.3", "DNS timeout", false));
            default -> CompletableFuture.completedFuture(Harness.smtpRoute(a.asciiDomain()));
        };
        FakeBounceGenerator bounces = new FakeBounceGenerator(clock);
        start(Map.of(), true, bounces);
        String id = queue("alice@example.org", "x@gone.example", "y@slow.example", "z@fine.example");
        awaitAttempts(id, 1);

        List<RecipientStatus> r = entry(id).recipients();
        assertEquals(RecipientStatus.State.FAILED, r.get(0).state());
        assertEquals("5.1.2", r.get(0).status());
        assertEquals("no such domain", r.get(0).diagnostic());
        assertEquals(RecipientStatus.State.DEFERRED, r.get(1).state());
        assertEquals("4.4.3", r.get(1).status());
        assertEquals(RecipientStatus.State.DELIVERED, r.get(2).state());
        assertEquals(1, bounces.calls.size());
        assertEquals(List.of("x@gone.example"),
                bounces.calls.get(0).recipients().stream().map(s -> s.recipient().address().toString()).toList());
    }

    @Test
    public void aFaultOfTheTransportDefersEveryRecipientOfTheGroup() throws Exception {
        smtp.script = r -> CompletableFuture.failedFuture(new IllegalStateException("connection pool closed"));
        start();
        String id = queue("alice@example.org", "a@example.net", "b@example.net");
        awaitAttempts(id, 1);
        for (RecipientStatus r : entry(id).recipients()) {
            assertEquals(RecipientStatus.State.DEFERRED, r.state());
            assertEquals("4.3.0", r.status());
            assertTrue(r.diagnostic(), r.diagnostic().contains("connection pool closed"));
        }
        assertEquals(T0.plusSeconds(300), entry(id).nextAttempt());
    }

    @Test
    public void aRecipientTheTransportForgotIsDeferred() throws Exception {
        smtp.script = r -> CompletableFuture.completedFuture(List.of(new DeliveryResult(r.recipients().get(0),
                DeliveryResult.Outcome.DELIVERED, "2.0.0", "250 ok", "mx.example.net")));
        start();
        String id = queue("alice@example.org", "a@example.net", "b@example.net");
        awaitAttempts(id, 1);
        List<RecipientStatus> r = entry(id).recipients();
        assertEquals(RecipientStatus.State.DELIVERED, r.get(0).state());
        assertEquals(RecipientStatus.State.DEFERRED, r.get(1).state());
        assertEquals("no result from transport smtp", r.get(1).diagnostic());
    }

    // ---- stopping

    @Test
    public void stoppingWaitsForDeliveriesUnderWayAndRecordsThem() throws Exception {
        smtp.gate = new CompletableFuture<>();
        start();
        String id = queue("alice@example.org", "bob@example.net");
        await("delivery under way", () -> smtp.inFlight.get() == 1);

        Thread stopper = new Thread(manager::deactivate);
        stopper.start();
        Thread.sleep(200);
        assertTrue("deactivate waits", stopper.isAlive());
        smtp.gate.complete(null);
        stopper.join(10_000);
        assertFalse(stopper.isAlive());
        manager = null;
        assertNull("recorded before the stop ended", entry(id));
    }
}
