package org.postern.delivery.smtp.internal;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.SSLException;

import io.netty.channel.ChannelFuture;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.util.concurrent.DefaultThreadFactory;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.Designate;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.Transport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code smtp} transport: delivers to the next hops of a route over SMTP, on Netty.
 *
 * <p>Each delivery runs on a worker thread of its own (the queue manager bounds how many run at once),
 * which drives the conversation and reads the queued message from disk; Netty's event loops only move
 * bytes, encode commands and decode replies.
 */
@Component(service = Transport.class, configurationPid = SmtpTransport.PID,
        property = Transport.NAME_PROPERTY + "=smtp")
@Designate(ocd = SmtpClientConfig.class)
public class SmtpTransport implements Transport, DeliveryAttempt.Context {

    static final String PID = "org.postern.delivery.smtp";
    /** How long credentials that a smarthost refused (5xx) rest before they are tried again. */
    static final int AUTH_REFUSAL_MINUTES = 10;

    private static final Logger LOG = LoggerFactory.getLogger(SmtpTransport.class);

    private final ConnectionPool pool = new ConnectionPool();
    private volatile SmtpClientConfig config;
    private volatile TlsContexts tls;
    private volatile Map<String, Credentials> credentials = Map.of();
    private final Map<List<Object>, AuthRefusal> authRefusals = new ConcurrentHashMap<>();

    private record AuthRefusal(String diagnostic, long until) {
    }
    private EventLoopGroup group;
    private ExecutorService workers;

    @Activate
    void activate(SmtpClientConfig cfg, Map<String, Object> properties) throws SSLException {
        this.tls = TlsContexts.create(cfg.trust_store(), cfg.trust_store_password());
        this.credentials = readCredentials(properties);
        this.config = cfg;
        int threads = cfg.io_threads() > 0 ? cfg.io_threads() : Runtime.getRuntime().availableProcessors();
        group = new MultiThreadIoEventLoopGroup(threads, new DefaultThreadFactory("postern-smtp-client", true),
                NioIoHandler.newFactory());
        // No queue: a delivery starts at once or not at all; the queue manager limits concurrency.
        workers = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 60, TimeUnit.SECONDS, new SynchronousQueue<>(),
                new DefaultThreadFactory("postern-smtp-delivery", true));
        LOG.info("smtp transport ready (helo name {})", cfg.helo_name());
    }

    @Modified
    void modified(SmtpClientConfig cfg, Map<String, Object> properties) throws SSLException {
        this.tls = TlsContexts.create(cfg.trust_store(), cfg.trust_store_password());
        this.credentials = readCredentials(properties);
        this.config = cfg;
        authRefusals.clear(); // new settings deserve a new try
        // Cached sessions were opened with the old name and trust: start afresh. Running deliveries finish
        // with the settings they started with.
        pool.closeAll();
        LOG.info("smtp transport reconfigured");
    }

    private static Map<String, Credentials> readCredentials(Map<String, Object> properties) {
        Set<String> incomplete = new TreeSet<>();
        Map<String, Credentials> read = Credentials.parse(properties, incomplete);
        if (!incomplete.isEmpty()) {
            LOG.error("client credentials {} are incomplete: each needs auth.ID.username and auth.ID.password in {}; "
                    + "routes with these ids are deferred", incomplete, PID);
        }
        if (!read.isEmpty()) {
            LOG.info("client credentials for smarthosts: {}", new TreeSet<>(read.keySet()));
        }
        return read;
    }

    @Deactivate
    void deactivate() {
        // QUIT to the cached sessions, and a moment for the replies, before the event loops go.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        for (ChannelFuture closing : pool.closeAll()) {
            closing.awaitUninterruptibly(Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
        }
        workers.shutdown();
        // Closes every connection, so that running deliveries end (deferred) instead of waiting for timeouts.
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        try {
            if (!workers.awaitTermination(5, TimeUnit.SECONDS)) {
                workers.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.info("smtp transport stopped");
    }

    @Override
    public CompletionStage<List<DeliveryResult>> deliver(DeliveryRequest request) {
        CompletableFuture<List<DeliveryResult>> done = new CompletableFuture<>();
        try {
            DeliveryAttempt attempt = new DeliveryAttempt(this, request);
            workers.execute(() -> {
                try {
                    done.complete(attempt.run());
                } catch (Throwable t) { // run() catches what it can; the stage must complete regardless
                    done.complete(deferAll(request, "internal error of the smtp transport: " + t));
                    throw t;
                }
            });
        } catch (RejectedExecutionException e) {
            done.complete(deferAll(request, "smtp transport is stopping"));
        } catch (RuntimeException e) {
            LOG.warn("{}: smtp delivery could not start", request.entry().id(), e);
            done.complete(deferAll(request, "internal error of the smtp transport: " + e));
        }
        return done;
    }

    private static List<DeliveryResult> deferAll(DeliveryRequest request, String why) {
        return request.recipients().stream()
                .map(r -> new DeliveryResult(r, DeliveryResult.Outcome.DEFERRED, "4.3.0", why, null))
                .toList();
    }

    @Override
    public SmtpClientConfig config() {
        return config;
    }

    @Override
    public EventLoopGroup group() {
        return group;
    }

    @Override
    public ConnectionPool pool() {
        return pool;
    }

    @Override
    public TlsContexts tls() {
        return tls;
    }

    @Override
    public Credentials credentials(String id) {
        return credentials.get(id.toLowerCase(Locale.ROOT));
    }

    @Override
    public String authRefusal(String destination, Credentials used) {
        List<Object> key = List.of(destination, used);
        AuthRefusal refusal = authRefusals.get(key);
        if (refusal == null) {
            return null;
        }
        if (System.nanoTime() - refusal.until() > 0) {
            authRefusals.remove(key, refusal);
            return null;
        }
        return refusal.diagnostic();
    }

    @Override
    public void authRefused(String destination, Credentials used, String diagnostic) {
        authRefusals.put(List.of(destination, used),
                new AuthRefusal(diagnostic, System.nanoTime() + TimeUnit.MINUTES.toNanos(AUTH_REFUSAL_MINUTES)));
    }
}
