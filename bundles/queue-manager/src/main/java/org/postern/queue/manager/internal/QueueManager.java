package org.postern.queue.manager.internal;

import java.io.InputStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.event.Event;
import org.osgi.service.event.EventAdmin;
import org.osgi.service.event.EventConstants;
import org.osgi.service.event.EventHandler;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.bounce.BounceGenerator;
import org.postern.api.bounce.GeneratedMessage;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.MessageEvents;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.QueueStore.PendingMessage;
import org.postern.api.queue.QueueStore.QueueException;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.Router.RouteException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The scheduler between the queue and the transports. It leases due entries from the {@link QueueStore},
 * routes each pending recipient, groups recipients that share a route, delivers each group through the
 * {@link Transport} the route names (within global and per-destination limits), and records the outcome per
 * recipient with the next attempt after a Postfix-style backoff. Permanent failures and entries past their
 * lifetime go to the {@link BounceGenerator}, whose notification is queued like any message.
 *
 * <p>It looks for due entries every {@code scan.interval} seconds, and at once when the store posts
 * {@link MessageEvents#QUEUED}: a new message's first attempt follows its 250 without waiting for a scan.
 *
 * <p>Threads: one scheduler thread leases; a pool of {@code workers} threads routes, calls transports and
 * records. Transports and the router answer asynchronously; their answers are taken back onto the pool.
 */
@Component(service = EventHandler.class, immediate = true, configurationPid = QueueManager.PID,
        property = EventConstants.EVENT_TOPIC + "=" + MessageEvents.QUEUED)
@Designate(ocd = QueueManager.Config.class)
public class QueueManager implements EventHandler {

    static final String PID = "org.postern.queue.manager";

    @ObjectClassDefinition(name = "Postern queue manager",
            description = "Delivers queued mail: concurrency, retries and how long to keep trying.")
    public @interface Config {

        @AttributeDefinition(name = "Workers", description = "Deliveries running at once, in total")
        int workers() default 20;

        @AttributeDefinition(name = "Per destination",
                description = "Deliveries running at once to one destination (a domain or a relay host)")
        int per_destination() default 10;

        @AttributeDefinition(name = "Minimal backoff (s)",
                description = "Delay after the first temporary failure; it doubles with each further attempt")
        long minimal_backoff() default 300;

        @AttributeDefinition(name = "Maximal backoff (s)", description = "Longest delay between two attempts")
        long maximal_backoff() default 4000;

        @AttributeDefinition(name = "Maximal lifetime (s)",
                description = "How long a message may stay in the queue before it is returned to its sender")
        long maximal_lifetime() default 5 * 24 * 3600;

        @AttributeDefinition(name = "Delay warning (s)",
                description = "After how long in the queue the sender is told of the delay; 0 for never")
        long bounce_warning() default 4 * 3600;

        @AttributeDefinition(name = "Scan interval (s)",
                description = "Time between two looks for due messages (new messages are attempted at once)")
        long scan_interval() default 5;

        @AttributeDefinition(name = "Lease time (s)",
                description = "How long an attempt may take before the queue gives the message out again")
        long lease_time() default 600;
    }

    static final String NO_BOUNCE_GENERATOR = "no bounce generator";

    private static final Logger LOG = LoggerFactory.getLogger(QueueManager.class);
    private static final Duration STOP_WAIT = Duration.ofSeconds(30);
    // Safety nets only: routers and transports have their own, shorter timeouts (DNS, RFC 5321 4.5.3.2).
    private static final Duration ROUTE_TIMEOUT = Duration.ofMinutes(5);
    private static final Duration TRANSPORT_TIMEOUT = Duration.ofHours(1);
    private static final Duration BOUNCE_COMMIT_TIMEOUT = Duration.ofMinutes(1);

    private final Clock clock;

    private final AtomicReference<QueueStore> queueStore = new AtomicReference<>();
    private final AtomicReference<Router> router = new AtomicReference<>();
    private final Map<String, Transport> transports = new ConcurrentHashMap<>();

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile BounceGenerator bounceGenerator;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile EventAdmin eventAdmin;

    /** Entries leased and not yet recorded, by id. Never more than {@code workers}. */
    private final Map<String, Attempt> active = new ConcurrentHashMap<>();
    private final AtomicBoolean pumpRequested = new AtomicBoolean();
    private final Object pumping = new Object();
    private final AtomicLong looks = new AtomicLong();
    /** The last lease was cut short by our limits: more entries may be due as soon as one attempt ends. */
    private volatile boolean moreDue;
    private volatile boolean running;
    private volatile Settings settings;
    private volatile ScheduledExecutorService scheduler;
    private ScheduledFuture<?> scan;
    private ThreadPoolExecutor executor;
    private Limiter<Job> limiter;

    public QueueManager() {
        this(Clock.systemUTC());
    }

    /** For tests: a clock to control the age of entries and the schedule. */
    QueueManager(Clock clock) {
        this.clock = clock;
    }

    // ---- references

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, unbind = "unsetQueueStore")
    void setQueueStore(QueueStore store) {
        queueStore.set(store);
        wake();
    }

    void unsetQueueStore(QueueStore store) {
        queueStore.compareAndSet(store, null);
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, unbind = "unsetRouter")
    void setRouter(Router newRouter) {
        router.set(newRouter);
        wake(); // entries waited for a router
    }

    void unsetRouter(Router oldRouter) {
        router.compareAndSet(oldRouter, null);
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, unbind = "removeTransport")
    void addTransport(Transport transport, Map<String, Object> properties) {
        Object name = properties.get(Transport.NAME_PROPERTY);
        if (name == null) {
            LOG.warn("ignoring a transport without the {} property: {}", Transport.NAME_PROPERTY, transport);
            return;
        }
        transports.put(String.valueOf(name), transport);
    }

    void removeTransport(Transport transport, Map<String, Object> properties) {
        Object name = properties.get(Transport.NAME_PROPERTY);
        if (name != null) {
            transports.remove(String.valueOf(name), transport);
        }
    }

    // ---- life cycle

    @Activate
    void activate(Config config) {
        Settings s = Settings.of(config);
        settings = s;
        limiter = new Limiter<>(s.workers(), s.perDestination());
        executor = new ThreadPoolExecutor(s.workers(), s.workers(), 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                new NamedThreads("postern-delivery-", true));
        executor.allowCoreThreadTimeOut(true);
        scheduler = Executors.newSingleThreadScheduledExecutor(new NamedThreads("postern-queue-manager-"));
        running = true;
        synchronized (this) {
            scan = scheduler.scheduleWithFixedDelay(this::pump, 0, s.scanInterval().toMillis(), TimeUnit.MILLISECONDS);
        }
        LOG.info("queue manager: {} workers, {} per destination, backoff {}-{} s, lifetime {} s, delay warning {} s",
                s.workers(), s.perDestination(), s.retry().minimalBackoff().toSeconds(),
                s.retry().maximalBackoff().toSeconds(), s.retry().maximalLifetime().toSeconds(),
                s.retry().bounceWarning().toSeconds());
    }

    /** New limits apply to the next deliveries; those running go on. */
    @Modified
    void modified(Config config) {
        Settings previous = settings;
        Settings next = Settings.of(config);
        settings = next;
        if (next.workers() > executor.getMaximumPoolSize()) {
            executor.setMaximumPoolSize(next.workers());
            executor.setCorePoolSize(next.workers());
        } else {
            executor.setCorePoolSize(next.workers());
            executor.setMaximumPoolSize(next.workers());
        }
        start(limiter.resize(next.workers(), next.perDestination()));
        if (!next.scanInterval().equals(previous.scanInterval())) {
            synchronized (this) {
                scan.cancel(false);
                scan = scheduler.scheduleWithFixedDelay(this::pump, 0, next.scanInterval().toMillis(),
                        TimeUnit.MILLISECONDS);
            }
        } else {
            wake();
        }
        LOG.info("queue manager reconfigured: {} workers, {} per destination", next.workers(), next.perDestination());
    }

    /**
     * Stops leasing, lets deliveries under way finish and be recorded for a bounded time. Entries that were
     * leased but not started are not recorded: their leases run out and they are due again.
     */
    @Deactivate
    void deactivate() {
        running = false;
        scheduler.shutdownNow();
        for (Job job : limiter.close()) {
            job.attempt.groupDone(null);
        }
        long deadline = System.nanoTime() + STOP_WAIT.toNanos();
        synchronized (active) {
            long left;
            while (!active.isEmpty() && (left = deadline - System.nanoTime()) > 0) {
                try {
                    active.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        if (!active.isEmpty()) {
            LOG.warn("stopping with {} deliveries still running; their entries are due again when their leases end",
                    active.size());
        }
        executor.shutdownNow();
    }

    // ---- finding work

    /**
     * A message was queued: look for due entries now rather than at the next scan, on the event's thread
     * (one hand-over less per message than asking the scheduler).
     */
    @Override
    public void handleEvent(Event event) {
        if (running && pumpRequested.compareAndSet(false, true)) {
            pump();
        }
    }

    /** Asks for a look at the queue soon; requests made while one is pending are one request. */
    void wake() {
        ScheduledExecutorService s = scheduler;
        if (s == null || !running || !pumpRequested.compareAndSet(false, true)) {
            return;
        }
        try {
            s.execute(this::pump);
        } catch (RejectedExecutionException e) {
            pumpRequested.set(false); // stopping
        }
    }

    /** Leases as many due entries as there are free workers and starts their attempts, one caller at a time. */
    private void pump() {
        synchronized (pumping) {
            pumpLocked();
        }
    }

    private void pumpLocked() {
        pumpRequested.set(false);
        looks.incrementAndGet();
        try {
            QueueStore store = queueStore.get();
            // Without a router nothing can be sent anywhere: leave the entries due for when one comes.
            if (!running || store == null || router.get() == null) {
                return;
            }
            Settings s = settings;
            int free = s.workers() - active.size();
            if (free <= 0) {
                moreDue = true;
                return;
            }
            List<QueueEntry> leased = store.lease(clock.instant(), free, s.leaseTime());
            moreDue = leased.size() >= free;
            for (QueueEntry entry : leased) {
                Attempt attempt = new Attempt(entry, store, s);
                if (active.putIfAbsent(entry.id(), attempt) != null) {
                    continue; // our lease ran out while we still work on it: the new lease just extends it
                }
                try {
                    executor.execute(attempt::route);
                } catch (RejectedExecutionException e) {
                    attempt.drop();
                }
            }
        } catch (RuntimeException e) {
            // Never let an exception end the scheduled scan.
            LOG.error("queue scan failed", e);
        }
    }

    // ---- one attempt of one entry

    /** A group of recipients of one entry that share a route: one call of a transport. */
    private record Job(Attempt attempt, Route route, List<Recipient> recipients) {
    }

    private final class Attempt {
        final QueueEntry entry;
        final QueueStore store;
        final Settings settings;
        private final List<RecipientStatus> outcomes = new ArrayList<>();
        private int groupsLeft;

        Attempt(QueueEntry entry, QueueStore store, Settings settings) {
            this.entry = entry;
            this.store = store;
            this.settings = settings;
        }

        String id() {
            return entry.id();
        }

        /**
         * Routes every pending recipient, then hands the groups to the limiter. Every path ends in
         * {@link #drop}: an attempt left in {@code active} would keep its entry from ever being leased again.
         */
        void route() {
            try {
                routeAll();
            } catch (RuntimeException e) {
                LOG.error("{}: cannot start the delivery attempt; it is due again when its lease ends", id(), e);
                drop();
            }
        }

        private void routeAll() {
            List<RecipientStatus> pending = entry.pending();
            Router current = router.get();
            if (pending.isEmpty()) {
                closeFinished();
                return;
            }
            if (current == null) {
                for (RecipientStatus r : pending) {
                    add(own(r.recipient(), RecipientStatus.State.DEFERRED, "4.3.5", "no router available"));
                }
                finish();
                return;
            }
            Map<Route, List<Recipient>> groups = new LinkedHashMap<>();
            CompletableFuture<?>[] routed = new CompletableFuture<?>[pending.size()];
            for (int i = 0; i < routed.length; i++) {
                Recipient recipient = pending.get(i).recipient();
                routed[i] = routeOf(current, recipient.address()).handle((route, failure) -> {
                    synchronized (this) {
                        if (failure == null && route != null) {
                            groups.computeIfAbsent(route, r -> new ArrayList<>()).add(recipient);
                        } else {
                            outcomes.add(routeFailure(recipient, failure));
                        }
                    }
                    return null;
                });
            }
            CompletableFuture<Void> all = CompletableFuture.allOf(routed);
            if (all.isDone()) {
                dispatch(groups); // routed at once, as most routes are: no hand-over
            } else {
                // Not on the thread that completes the routing (a resolver's, a timer's): dispatch may record.
                all.whenCompleteAsync((done, failure) -> dispatch(groups), executor);
            }
        }

        private void dispatch(Map<Route, List<Recipient>> groups) {
            List<Job> jobs = new ArrayList<>();
            synchronized (this) {
                groups.forEach((route, recipients) -> jobs.add(new Job(this, route, List.copyOf(recipients))));
                groupsLeft = jobs.size();
            }
            if (jobs.isEmpty()) {
                finish();
                return;
            }
            for (Job job : jobs) {
                List<Job> start = limiter.offer(job.route().destination(), job);
                if (start == null) {
                    groupDone(null); // stopping: not attempted
                } else {
                    QueueManager.this.start(start, true);
                }
            }
        }

        /** Every recipient already has its outcome (a store should not keep such an entry): recording ends it. */
        private void closeFinished() {
            try {
                store.record(id(), List.of(), clock.instant());
                LOG.info("{}: removed", id());
            } catch (QueueException e) {
                LOG.error("{}: cannot remove a finished entry: {}", id(), e.getMessage());
            } finally {
                drop();
            }
        }

        private RecipientStatus routeFailure(Recipient recipient, Throwable failure) {
            Throwable cause = unwrap(failure);
            if (cause instanceof RouteException e) {
                boolean permanent = e.permanent();
                String status = e.status() != null ? e.status() : permanent ? "5.4.4" : "4.4.3";
                return own(recipient, permanent ? RecipientStatus.State.FAILED : RecipientStatus.State.DEFERRED,
                        status, e.getMessage());
            }
            if (cause instanceof TimeoutException) {
                return own(recipient, RecipientStatus.State.DEFERRED, "4.4.3", "routing timed out");
            }
            return own(recipient, RecipientStatus.State.DEFERRED, "4.4.3",
                    cause == null ? "no route" : "routing failed: " + cause);
        }

        synchronized void add(RecipientStatus outcome) {
            outcomes.add(outcome);
        }

        /** One group ended; {@code results} is null when it was never attempted. */
        void groupDone(List<RecipientStatus> results) {
            boolean last;
            synchronized (this) {
                if (results != null) {
                    outcomes.addAll(results);
                }
                last = --groupsLeft == 0;
            }
            if (last) {
                finish();
            }
        }

        /** An outcome the manager decided itself; the transport logs its own. */
        private RecipientStatus own(Recipient recipient, RecipientStatus.State state, String status, String text) {
            LOG.info("{}: to=<{}>, relay=none, delay={}, dsn={}, status={} ({})", id(), recipient.address(),
                    delay(entry), status, state == RecipientStatus.State.FAILED ? "bounced" : "deferred", text);
            return new RecipientStatus(recipient, state, status, text, null);
        }

        void finish() {
            try {
                complete();
            } catch (RuntimeException e) {
                LOG.error("{}: cannot complete the delivery attempt", id(), e);
            } finally {
                drop();
            }
        }

        void drop() {
            synchronized (active) {
                active.remove(id(), this);
                active.notifyAll();
            }
            if (moreDue) {
                wake();
            }
        }

        private void complete() {
            List<RecipientStatus> results;
            synchronized (this) {
                results = new ArrayList<>(outcomes);
            }
            if (results.isEmpty()) {
                return; // nothing was attempted (stopping): the lease runs out and the entry is due again
            }
            Instant now = clock.instant();
            RetryPolicy retry = settings.retry();

            boolean expired = retry.expired(entry, now) && results.stream().anyMatch(QueueManager::isDeferred);
            if (expired) {
                results = expire(results);
                LOG.info("{}: expired after {} s in the queue: {} recipient(s) returned to sender", id(),
                        Duration.between(entry.envelope().receivedAt(), now).toSeconds(),
                        results.stream().filter(r -> "4.4.7".equals(r.status())
                                && r.state() == RecipientStatus.State.FAILED).count());
            }

            List<RecipientStatus> failed = results.stream()
                    .filter(r -> r.state() == RecipientStatus.State.FAILED).toList();
            String notSent = failed.isEmpty() ? null : bounce(BounceGenerator.Kind.FAILURE, failed);
            if (notSent != null) {
                // Nobody would hear of these failures: keep them, as deferred with their status, until an
                // operator acts (release retries them, and bounces them once a generator is present).
                results = results.stream().map(r -> r.state() != RecipientStatus.State.FAILED ? r
                        : new RecipientStatus(r.recipient(), RecipientStatus.State.DEFERRED, r.status(),
                                r.diagnostic(), r.remoteMta())).toList();
                boolean held = false;
                try {
                    held = store.hold(id(), "undeliverable; " + notSent);
                } catch (QueueException e) {
                    LOG.error("{}: cannot hold: {}", id(), e.getMessage());
                }
                LOG.warn("{}: bounce not sent: {}{}", id(), notSent, held ? "; held for an operator" : "");
            } else if (!expired) {
                List<RecipientStatus> deferred = results.stream().filter(QueueManager::isDeferred).toList();
                if (!deferred.isEmpty() && retry.delayWarningDue(entry, now)) {
                    String why = bounce(BounceGenerator.Kind.DELAY, deferred);
                    if (why != null) {
                        LOG.info("{}: delay notification not sent: {}", id(), why);
                    }
                }
            }

            boolean anyDeferred = results.stream().anyMatch(QueueManager::isDeferred);
            Instant next = anyDeferred ? now.plus(retry.backoff(entry.attempts())) : now;
            try {
                store.record(id(), results, next);
            } catch (QueueException e) {
                if (store.get(id()).isEmpty()) {
                    LOG.info("{}: deleted while being delivered", id());
                } else {
                    // The lease runs out and the entry is tried again; recipients delivered now may get it twice.
                    LOG.error("{}: cannot record the delivery attempt: {}", id(), e.getMessage());
                }
                return;
            }
            post(entry, results);
            if (allFinal(entry, results)) {
                LOG.info("{}: removed", id());
            }
        }

        /** Makes and queues a notification to the sender; null when done or none is due, else why not. */
        private String bounce(BounceGenerator.Kind kind, List<RecipientStatus> recipients) {
            BounceGenerator generator = bounceGenerator;
            if (generator == null) {
                return NO_BOUNCE_GENERATOR;
            }
            Optional<GeneratedMessage> dsn;
            try {
                dsn = generator.generate(kind, entry, store.content(id()), recipients);
            } catch (QueueException | RuntimeException e) {
                return "the bounce generator failed: " + e;
            }
            if (dsn == null || dsn.isEmpty()) {
                return null; // none wanted: a null sender, or NOTIFY=NEVER
            }
            try {
                String dsnId = enqueue(store, dsn.get());
                LOG.info("{}: sender {} notification: {}", id(),
                        kind == BounceGenerator.Kind.FAILURE ? "non-delivery" : kind.name().toLowerCase(Locale.ROOT),
                        dsnId);
                return null;
            } catch (Exception e) {
                if (e instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
                return "cannot queue it: " + unwrap(e);
            }
        }
    }

    // ---- deliveries

    private void start(List<Job> jobs) {
        start(jobs, false);
    }

    /**
     * Starts deliveries on workers. With {@code inline}, a worker starts the first itself (one hand-over less
     * for the common entry with one route); never where a start can lead to another (no recursion).
     */
    private void start(List<Job> jobs, boolean inline) {
        inline &= Thread.currentThread() instanceof Worker;
        for (Job job : jobs) {
            if (inline) {
                inline = false;
                deliver(job);
                continue;
            }
            try {
                executor.execute(() -> deliver(job));
            } catch (RejectedExecutionException e) {
                start(limiter.release(job.route().destination()));
                job.attempt().groupDone(null);
            }
        }
    }

    /** Calls the transport of one group; its answer comes back on the pool. */
    private void deliver(Job job) {
        Attempt attempt = job.attempt();
        Route route = job.route();
        Transport transport = transports.get(route.transport());
        if (transport == null) {
            jobDone(job, ownAll(job, "4.3.5", "transport " + route.transport() + " not available"));
            return;
        }
        CompletionStage<List<DeliveryResult>> stage;
        try {
            MessageContent content = attempt.store.content(attempt.id());
            stage = transport.deliver(new DeliveryRequest(attempt.entry, job.recipients(), route, content));
            if (stage == null) {
                throw new IllegalStateException("transport returned no result");
            }
        } catch (QueueException e) {
            jobDone(job, ownAll(job, "4.3.0", "cannot read the queued message: " + e.getMessage()));
            return;
        } catch (RuntimeException e) {
            stage = CompletableFuture.failedFuture(e);
        }
        stage.toCompletableFuture().copy()
                .orTimeout(TRANSPORT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                .whenCompleteAsync((results, failure) -> {
                    List<RecipientStatus> outcomes;
                    try {
                        outcomes = outcomes(job, results, failure);
                    } catch (RuntimeException e) {
                        outcomes = ownAll(job, "4.3.0", "unusable result from transport " + route.transport() + ": " + e);
                    }
                    jobDone(job, outcomes);
                }, executor);
    }

    private void jobDone(Job job, List<RecipientStatus> outcomes) {
        try {
            start(limiter.release(job.route().destination()));
        } finally {
            job.attempt().groupDone(outcomes);
        }
    }

    /** The transport's results, one per recipient of the group; a fault of the transport defers them all. */
    private List<RecipientStatus> outcomes(Job job, List<DeliveryResult> results, Throwable failure) {
        if (failure != null || results == null) {
            Throwable cause = unwrap(failure);
            String text = cause instanceof TimeoutException
                    ? "transport " + job.route().transport() + " gave no answer"
                    : "transport " + job.route().transport() + " failed: " + cause;
            return ownAll(job, "4.3.0", text);
        }
        Map<MailAddress, DeliveryResult> byAddress = new HashMap<>();
        for (DeliveryResult result : results) {
            if (result != null) {
                byAddress.put(result.recipient().address(), result);
            }
        }
        List<RecipientStatus> outcomes = new ArrayList<>(job.recipients().size());
        for (Recipient recipient : job.recipients()) {
            DeliveryResult result = byAddress.get(recipient.address());
            if (result == null) {
                outcomes.add(job.attempt().own(recipient, RecipientStatus.State.DEFERRED, "4.3.0",
                        "no result from transport " + job.route().transport()));
                continue;
            }
            RecipientStatus.State state = switch (result.outcome()) {
                case DELIVERED -> RecipientStatus.State.DELIVERED;
                case FAILED -> RecipientStatus.State.FAILED;
                case DEFERRED -> RecipientStatus.State.DEFERRED;
            };
            outcomes.add(new RecipientStatus(recipient, state, result.status(), result.diagnostic(), result.remoteMta()));
        }
        return outcomes;
    }

    private static List<RecipientStatus> ownAll(Job job, String status, String text) {
        return job.recipients().stream()
                .map(r -> job.attempt().own(r, RecipientStatus.State.DEFERRED, status, text)).toList();
    }

    // ---- helpers

    private static CompletableFuture<Route> routeOf(Router router, MailAddress address) {
        try {
            CompletionStage<Route> stage = router.route(address);
            if (stage == null) {
                return CompletableFuture.failedFuture(new IllegalStateException("router returned no result"));
            }
            // A copy: the timeout must not complete the router's own future.
            return stage.toCompletableFuture().copy().orTimeout(ROUTE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Temporary failures of an entry past its lifetime become permanent: RFC 3463 4.4.7. */
    private static List<RecipientStatus> expire(List<RecipientStatus> results) {
        return results.stream().map(r -> !isDeferred(r) ? r
                : new RecipientStatus(r.recipient(), RecipientStatus.State.FAILED, "4.4.7",
                        "delivery time expired" + (r.diagnostic() == null ? "" : "; last error: " + r.diagnostic()),
                        r.remoteMta())).toList();
    }

    private static boolean isDeferred(RecipientStatus r) {
        return r.state() == RecipientStatus.State.DEFERRED || r.state() == RecipientStatus.State.PENDING;
    }

    /** Whether recording these outcomes leaves no recipient to deliver (the store then removes the entry). */
    private static boolean allFinal(QueueEntry entry, List<RecipientStatus> results) {
        Map<MailAddress, RecipientStatus> byAddress = new HashMap<>();
        results.forEach(r -> byAddress.put(r.recipient().address(), r));
        return entry.recipients().stream()
                .allMatch(r -> r.isFinal() || (byAddress.containsKey(r.recipient().address())
                        && byAddress.get(r.recipient().address()).isFinal()));
    }

    /** Stores a generated message as a new entry; returns its queue id once it is durable. */
    private static String enqueue(QueueStore store, GeneratedMessage message) throws Exception {
        PendingMessage pending = store.begin();
        try (InputStream in = message.content().openStream()) {
            byte[] buffer = new byte[64 * 1024];
            for (int n; (n = in.read(buffer)) > 0; ) {
                pending.write(buffer, 0, n);
            }
            return pending.commit(message.envelope(), List.of(), null).toCompletableFuture()
                    .get(BOUNCE_COMMIT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            pending.abort();
            throw e;
        }
    }

    private void post(QueueEntry entry, List<RecipientStatus> results) {
        EventAdmin events = eventAdmin;
        if (events == null) {
            return;
        }
        for (RecipientStatus r : results) {
            String topic = switch (r.state()) {
                case DELIVERED -> MessageEvents.DELIVERED;
                case FAILED -> MessageEvents.BOUNCED;
                default -> MessageEvents.DEFERRED;
            };
            Map<String, Object> properties = new HashMap<>();
            properties.put(MessageEvents.QUEUE_ID, entry.id());
            properties.put(MessageEvents.SENDER, entry.envelope().sender().toString());
            properties.put(MessageEvents.RECIPIENTS, new String[] {r.recipient().address().toString()});
            properties.put(MessageEvents.SIZE, entry.size());
            if (r.status() != null) {
                properties.put(MessageEvents.STATUS, r.status());
            }
            if (r.diagnostic() != null) {
                properties.put(MessageEvents.DIAGNOSTIC, r.diagnostic());
            }
            try {
                events.postEvent(new Event(topic, properties));
            } catch (RuntimeException e) {
                LOG.debug("{}: cannot post {}: {}", entry.id(), topic, e.toString());
            }
        }
    }

    private String delay(QueueEntry entry) {
        long millis = Duration.between(entry.envelope().receivedAt(), clock.instant()).toMillis();
        return String.format(Locale.ROOT, "%.1f", Math.max(0, millis) / 1000.0);
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    /** For tests: how often the queue was looked at. */
    long looks() {
        return looks.get();
    }

    /** For tests: entries leased and not yet recorded. */
    int activeEntries() {
        return active.size();
    }

    private static final class NamedThreads implements ThreadFactory {
        private final String prefix;
        private final AtomicInteger count = new AtomicInteger();

        private final boolean workers;

        NamedThreads(String prefix) {
            this(prefix, false);
        }

        NamedThreads(String prefix, boolean workers) {
            this.prefix = prefix;
            this.workers = workers;
        }

        @Override
        public Thread newThread(Runnable task) {
            String name = prefix + count.incrementAndGet();
            Thread thread = workers ? new Worker(task, name) : new Thread(task, name);
            thread.setDaemon(true);
            return thread;
        }
    }

    /** A thread of the delivery pool. */
    private static final class Worker extends Thread {
        Worker(Runnable task, String name) {
            super(task, name);
        }
    }
}
