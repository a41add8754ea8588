package org.postern.queue.manager.internal;

import static org.junit.Assert.fail;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Function;

import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;
import org.postern.api.bounce.BounceGenerator;
import org.postern.api.bounce.GeneratedMessage;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.TlsPolicy;
import org.postern.testsupport.MutableClock;

/** The parts around the queue manager in its tests: a clock, a router, transports, a bounce generator. */
final class Harness {

    private Harness() {
    }

    /** A configuration: the metatype defaults, with some values replaced. */
    static QueueManager.Config config(Map<String, Object> overrides) {
        return (QueueManager.Config) Proxy.newProxyInstance(Harness.class.getClassLoader(),
                new Class<?>[] {QueueManager.Config.class}, (proxy, method, args) -> {
                    if (method.getName().equals("annotationType")) {
                        return QueueManager.Config.class;
                    }
                    if (overrides.containsKey(method.getName())) {
                        return overrides.get(method.getName());
                    }
                    if (method.getDefaultValue() != null) {
                        return method.getDefaultValue();
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
    }

    static Envelope envelope(String sender, Instant receivedAt, String... recipients) {
        return new Envelope(MailAddress.parse(sender),
                java.util.Arrays.stream(recipients).map(r -> Recipient.of(MailAddress.parse(r))).toList(),
                null, null, BodyType.SEVEN_BIT, false,
                new ClientInfo("192.0.2.1", null, "client.example", "ESMTP", null, null, null, "mx"), receivedAt);
    }

    static Route smtpRoute(String domain) {
        return new Route("smtp", domain, List.of(new NextHop("mx." + domain, 25, 0)), TlsPolicy.MAY, null);
    }

    /** Routes every recipient by its domain to the "smtp" transport, unless told otherwise. */
    static final class FakeRouter implements Router {
        volatile Function<MailAddress, CompletionStage<Route>> answer =
                a -> CompletableFuture.completedFuture(smtpRoute(a.asciiDomain()));

        @Override
        public CompletionStage<Route> route(MailAddress recipient) {
            return answer.apply(recipient);
        }
    }

    /**
     * A transport whose answer per recipient the test scripts, that counts how many deliveries run at once
     * (in total and per destination), and that can hold every delivery until the test opens the gate.
     */
    static final class ScriptedTransport implements Transport {
        final List<DeliveryRequest> requests = Collections.synchronizedList(new ArrayList<>());
        final List<byte[]> contents = Collections.synchronizedList(new ArrayList<>());
        volatile Function<DeliveryRequest, CompletionStage<List<DeliveryResult>>> script = ScriptedTransport::deliverAll;
        volatile CompletableFuture<Void> gate = CompletableFuture.completedFuture(null);
        final AtomicInteger inFlight = new AtomicInteger();
        final AtomicInteger maxInFlight = new AtomicInteger();
        final Map<String, AtomicInteger> inFlightPer = new java.util.concurrent.ConcurrentHashMap<>();
        final AtomicInteger maxInFlightPer = new AtomicInteger();

        @Override
        public CompletionStage<List<DeliveryResult>> deliver(DeliveryRequest request) {
            requests.add(request);
            try (InputStream in = request.content().openStream()) {
                contents.add(in.readAllBytes());
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            String destination = request.route().destination();
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            AtomicInteger per = inFlightPer.computeIfAbsent(destination, d -> new AtomicInteger());
            maxInFlightPer.accumulateAndGet(per.incrementAndGet(), Math::max);
            return gate.thenCompose(v -> {
                inFlight.decrementAndGet();
                per.decrementAndGet();
                return script.apply(request);
            });
        }

        int calls() {
            return requests.size();
        }

        static CompletionStage<List<DeliveryResult>> deliverAll(DeliveryRequest request) {
            return answer(request, DeliveryResult.Outcome.DELIVERED, "2.0.0", "250 2.0.0 Ok: queued as X");
        }

        static CompletionStage<List<DeliveryResult>> answer(DeliveryRequest request, DeliveryResult.Outcome outcome,
                                                            String status, String diagnostic) {
            return CompletableFuture.completedFuture(request.recipients().stream()
                    .map(r -> new DeliveryResult(r, outcome, status, diagnostic, "mx.example.net")).toList());
        }
    }

    /** Makes a tiny DSN to the original sender and remembers what it was asked. */
    static final class FakeBounceGenerator implements BounceGenerator {
        record Call(Kind kind, String id, List<RecipientStatus> recipients) {
        }

        final List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        private final Clock clock;

        FakeBounceGenerator(Clock clock) {
            this.clock = clock;
        }

        @Override
        public Optional<GeneratedMessage> generate(Kind kind, QueueEntry entry, MessageContent content,
                                                   List<RecipientStatus> recipients) {
            calls.add(new Call(kind, entry.id(), List.copyOf(recipients)));
            if (entry.envelope().sender().isNullSender()) {
                return Optional.empty(); // never a bounce of a bounce
            }
            byte[] body = dsnText(kind, entry.id()).getBytes(StandardCharsets.US_ASCII);
            Envelope envelope = new Envelope(MailAddress.NULL_SENDER, List.of(Recipient.of(entry.envelope().sender())),
                    null, null, BodyType.SEVEN_BIT, false, ClientInfo.LOCAL, clock.instant());
            return Optional.of(new GeneratedMessage(envelope, new MessageContent() {
                @Override
                public long size() {
                    return body.length;
                }

                @Override
                public InputStream openStream() {
                    return new ByteArrayInputStream(body);
                }
            }));
        }

        static String dsnText(Kind kind, String id) {
            return "Subject: " + kind + " notice for " + id + "\r\n\r\nsorry\r\n";
        }

        List<Call> of(Kind kind, String id) {
            synchronized (calls) {
                return calls.stream().filter(c -> c.kind() == kind && c.id().equals(id)).toList();
            }
        }
    }

    /** Keeps the events the manager posts. */
    static final class RecordingEvents implements EventAdmin {
        final List<Event> events = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void postEvent(Event event) {
            events.add(event);
        }

        @Override
        public void sendEvent(Event event) {
            fail("events are posted, not sent");
        }

        List<Event> topic(String topic) {
            synchronized (events) {
                return events.stream().filter(e -> e.getTopic().equals(topic)).toList();
            }
        }
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out waiting until " + what);
            }
            Thread.sleep(5);
        }
    }
}
