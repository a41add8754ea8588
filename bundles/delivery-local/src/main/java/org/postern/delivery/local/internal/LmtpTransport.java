package org.postern.delivery.local.internal;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.Recipient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code lmtp} transport: hands local mail to an LMTP server (RFC 2033) such as Dovecot, which answers
 * for each recipient after the data. Exists only while its configuration {@value #PID} does: no file, no
 * LMTP. Aliases of {@link LocalMailboxes} apply (postmaster goes to the user it names); Return-Path and
 * Delivered-To are the LMTP server's to add.
 *
 * <p>Blocking sockets on a small pool of its own: a session is short, local and sequential.
 */
@Component(service = Transport.class, configurationPid = LmtpTransport.PID,
        configurationPolicy = ConfigurationPolicy.REQUIRE, property = Transport.NAME_PROPERTY + "=lmtp")
@Designate(ocd = LmtpTransport.Config.class)
public class LmtpTransport implements Transport {

    static final String PID = "org.postern.delivery.lmtp";

    @ObjectClassDefinition(name = "Postern LMTP delivery",
            description = "The LMTP server (e.g. Dovecot) that local mail is handed to by the lmtp transport.")
    public @interface Config {
        @AttributeDefinition(name = "Host",
                description = "IP address of the LMTP server, or localhost. Host names are refused: "
                        + "Postern never asks the system's resolver.")
        String host();

        @AttributeDefinition(name = "Port", min = "1", max = "65535")
        int port() default 24;

        @AttributeDefinition(name = "Timeout (s)",
                description = "Seconds to wait for the connection and for each reply.", min = "1")
        int timeout() default 60;
    }

    /** Where to connect; {@code problem} says why not when the configuration is unusable. */
    record Server(InetAddress address, String host, int port, int timeoutMillis, String problem) {

        /** As Postfix logs a relay: {@code host[address]:port}. */
        String relay() {
            return address == null ? "none" : host + "[" + address.getHostAddress() + "]:" + port;
        }
    }

    private static final int THREADS = 4;
    private static final Logger LOG = LoggerFactory.getLogger(LmtpTransport.class);
    private static final AtomicInteger THREAD_COUNT = new AtomicInteger();

    @Reference
    LocalMailboxes mailboxes;

    private volatile Server server;
    private ThreadPoolExecutor executor;

    @Activate
    void activate(Config config) {
        executor = new ThreadPoolExecutor(THREADS, THREADS, 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
            Thread thread = new Thread(r, "postern-lmtp-" + THREAD_COUNT.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
        executor.allowCoreThreadTimeOut(true);
        configure(config);
    }

    @Modified
    void configure(Config config) {
        Server next = server(config);
        if (next.problem() != null) {
            LOG.error("lmtp transport: {}; local mail for LMTP is deferred until configuration {} is fixed",
                    next.problem(), PID);
        } else {
            LOG.info("lmtp transport: server {}, timeout {} s", next.relay(), next.timeoutMillis() / 1000);
        }
        server = next;
    }

    @Deactivate
    void deactivate() {
        // Sessions under way end by themselves within the timeout; the ones not started get an answer now.
        for (Runnable waiting : executor.shutdownNow()) {
            if (waiting instanceof Delivery delivery) {
                delivery.complete(deferAll(delivery.request, delivery.server, "4.3.0", "LMTP transport stopped"));
            }
        }
    }

    static Server server(Config config) {
        String host = config.host() == null ? "" : config.host().trim();
        int timeout = (int) Math.min(Integer.MAX_VALUE, Math.max(1, config.timeout()) * 1000L);
        if (host.isEmpty()) {
            return new Server(null, host, config.port(), timeout, "no LMTP host configured");
        }
        if (config.port() < 1 || config.port() > 65535) {
            return new Server(null, host, config.port(), timeout, "LMTP port " + config.port() + " is not valid");
        }
        try {
            return new Server(address(host), host, config.port(), timeout, null);
        } catch (IllegalArgumentException e) {
            return new Server(null, host, config.port(), timeout, e.getMessage());
        }
    }

    /**
     * An IP literal or {@code localhost}, turned into an address without asking any resolver: the JVM's
     * would use the system's configuration, which Postern never does (FACTS trap 1).
     */
    static InetAddress address(String host) {
        String text = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        try {
            if (text.equalsIgnoreCase("localhost")) {
                return InetAddress.getByAddress("localhost", new byte[] {127, 0, 0, 1});
            }
            // Literals only: getByName parses these without a lookup (an IPv6 text that does not parse fails).
            if (text.matches("(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}")
                    || (text.contains(":") && text.matches("[0-9A-Fa-f:.]+"))) {
                return InetAddress.getByName(text);
            }
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("LMTP host '" + host + "' is not a valid IP address");
        }
        throw new IllegalArgumentException("LMTP host '" + host
                + "' is not an IP address or localhost (host names are never resolved)");
    }

    @Override
    public CompletionStage<List<DeliveryResult>> deliver(DeliveryRequest request) {
        Server target = server;
        if (target.problem() != null) {
            LOG.error("{}: lmtp transport not usable: {}", request.entry().id(), target.problem());
            return CompletableFuture.completedFuture(log(request, target, deferAll(request, target, "4.3.5",
                    "local delivery misconfigured: " + target.problem())));
        }
        Delivery delivery = new Delivery(request, target);
        try {
            executor.execute(delivery);
        } catch (RejectedExecutionException e) {
            delivery.complete(deferAll(request, target, "4.3.0", "LMTP transport stopped"));
        }
        return delivery.result;
    }

    /** One request on the pool; completes its stage whatever happens. */
    private final class Delivery implements Runnable {
        final DeliveryRequest request;
        final Server server;
        final CompletableFuture<List<DeliveryResult>> result = new CompletableFuture<>();

        Delivery(DeliveryRequest request, Server server) {
            this.request = request;
            this.server = server;
        }

        @Override
        public void run() {
            try {
                complete(new LmtpSession(server, mailboxes, request).run());
            } catch (RuntimeException e) {
                LOG.error("{}: lmtp transport failed", request.entry().id(), e);
                result.completeExceptionally(e); // the queue manager defers every recipient
            }
        }

        void complete(List<DeliveryResult> results) {
            result.complete(log(request, server, results));
        }
    }

    private static List<DeliveryResult> deferAll(DeliveryRequest request, Server target, String status,
                                                 String text) {
        List<DeliveryResult> results = new ArrayList<>();
        String remote = target.address() == null ? null : target.host();
        for (Recipient recipient : request.recipients()) {
            results.add(new DeliveryResult(recipient, Outcome.DEFERRED, status, text, remote));
        }
        return results;
    }

    private List<DeliveryResult> log(DeliveryRequest request, Server target, List<DeliveryResult> results) {
        for (DeliveryResult result : results) {
            String user = mailboxes.userFor(result.recipient().address());
            String local = result.recipient().address().localPart();
            String finalAddress = user == null || user.equalsIgnoreCase(local)
                    ? null : LmtpSession.forwardPath(result.recipient().address(), user);
            DeliveryLog.log(LOG, request.entry().id(), result, finalAddress, target.relay(),
                    request.entry().envelope().receivedAt());
        }
        return results;
    }
}
