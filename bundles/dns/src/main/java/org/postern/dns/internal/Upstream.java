package org.postern.dns.internal;

import java.net.InetSocketAddress;
import java.net.PortUnreachableException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

import org.postern.api.dns.DnsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.xbill.DNS.DClass;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Rcode;
import org.xbill.DNS.Record;
import org.xbill.DNS.SimpleResolver;
import org.xbill.DNS.Type;

/**
 * The configured upstream servers. A question goes to the first server; a timeout, an error or an answer
 * other than NOERROR/NXDOMAIN moves it to the next one, round after round, {@code retries + 1} rounds in all,
 * each attempt bounded by the timeout.
 *
 * <p>dnsjava's ExtendedResolver is not used: it returns a SERVFAIL as an answer instead of asking the next
 * server, and its no-argument forms read the system's resolver configuration.
 */
final class Upstream {

    private static final Logger LOG = LoggerFactory.getLogger(Upstream.class);

    private final List<SimpleResolver> resolvers;
    private final Duration timeout;
    private final int rounds;
    private final Executor executor;
    private final BooleanSupplier stopped;

    /** @param stopped true once the resolver stopped: no further attempt is made */
    Upstream(List<InetSocketAddress> servers, Duration timeout, int retries, Executor executor,
            BooleanSupplier stopped) {
        if (servers.isEmpty()) {
            throw new IllegalArgumentException("no servers");
        }
        this.resolvers = servers.stream().map(server -> {
            SimpleResolver resolver = new SimpleResolver(server);
            resolver.setTimeout(timeout);
            return resolver;
        }).toList();
        this.timeout = timeout;
        this.rounds = retries + 1;
        this.executor = executor;
        this.stopped = stopped;
    }

    /**
     * Completes, on the executor, with a NOERROR or NXDOMAIN response, or exceptionally with a TEMPORARY
     * DnsException once every attempt failed.
     */
    CompletableFuture<Message> query(Name name, int type) {
        CompletableFuture<Message> result = new CompletableFuture<>();
        attempt(name, type, 0, result, null);
        return result;
    }

    private void attempt(Name name, int type, int n, CompletableFuture<Message> result, String lastFailure) {
        if (stopped.getAsBoolean()) {
            result.completeExceptionally(new DnsException(DnsException.Kind.TEMPORARY, "DNS resolver stopped"));
            return;
        }
        if (n >= resolvers.size() * rounds) {
            result.completeExceptionally(new DnsException(DnsException.Kind.TEMPORARY,
                    "DNS query " + name + " " + Type.string(type) + " failed after " + n + " attempt(s), last: "
                            + lastFailure));
            return;
        }
        SimpleResolver resolver = resolvers.get(n % resolvers.size());
        String server = describe(resolver.getAddress());
        Message query = Message.newQuery(Record.newRecord(name, type, DClass.IN));
        CompletableFuture<Message> sent;
        try {
            sent = resolver.sendAsync(query, executor).toCompletableFuture();
        } catch (RuntimeException e) {
            sent = CompletableFuture.failedFuture(e);
        }
        // Our own deadline too: dnsjava checks its timeouts only about once a second, when its selector idles.
        sent.orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS).whenCompleteAsync((response, error) -> {
            String failure;
            if (error != null) {
                failure = server + ": " + describe(error);
            } else if (response.getRcode() == Rcode.NOERROR || response.getRcode() == Rcode.NXDOMAIN) {
                result.complete(response);
                return;
            } else {
                failure = server + ": " + Rcode.string(response.getRcode());
            }
            LOG.debug("{} {} attempt {} failed: {}", name, Type.string(type), n + 1, failure);
            attempt(name, type, n + 1, result, failure);
        }, executor);
    }

    private String describe(Throwable error) {
        while ((error instanceof CompletionException || error instanceof ExecutionException)
                && error.getCause() != null) {
            error = error.getCause();
        }
        if (error instanceof TimeoutException || error instanceof SocketTimeoutException) {
            return "timed out after " + timeout.toMillis() + " ms";
        }
        if (error instanceof PortUnreachableException) {
            return "port unreachable";
        }
        return error.getMessage() == null ? error.getClass().getSimpleName() : error.getMessage();
    }

    static String describe(InetSocketAddress server) {
        String host = server.getAddress().getHostAddress();
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + server.getPort();
    }

    List<String> servers() {
        return resolvers.stream().map(r -> describe(r.getAddress())).toList();
    }
}
