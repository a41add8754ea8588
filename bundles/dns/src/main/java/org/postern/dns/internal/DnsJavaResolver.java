package org.postern.dns.internal;

import java.io.ByteArrayOutputStream;
import java.net.IDN;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.dns.DnsException;
import org.postern.api.dns.DnsResolver;
import org.postern.api.dns.MxRecord;
import org.postern.dns.internal.AnswerCache.Answer;
import org.postern.dns.internal.AnswerCache.Key;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.xbill.DNS.AAAARecord;
import org.xbill.DNS.ARecord;
import org.xbill.DNS.MXRecord;
import org.xbill.DNS.Name;
import org.xbill.DNS.PTRRecord;
import org.xbill.DNS.Record;
import org.xbill.DNS.ReverseMap;
import org.xbill.DNS.TextParseException;
import org.xbill.DNS.Type;

/**
 * DnsResolver on dnsjava's asynchronous SimpleResolver, with a cache of its own keyed by name and type.
 *
 * <p>Only the configured servers are ever asked: never the JVM's resolver, never the system's
 * configuration (resolv.conf), which dnsjava would otherwise fall back to. With no usable server every
 * question fails as TEMPORARY at once.
 */
@Component(service = DnsResolver.class, configurationPid = DnsJavaResolver.PID, immediate = true)
@Designate(ocd = DnsJavaResolver.Config.class)
public class DnsJavaResolver implements DnsResolver {

    static final String PID = "org.postern.dns";

    @ObjectClassDefinition(name = "Postern DNS resolver",
            description = "Upstream DNS servers, timeouts and cache of the resolver every Postern bundle uses.")
    public @interface Config {
        @AttributeDefinition(name = "Servers",
                description = "Recursive DNS servers as IP address[:port] ([address]:port for IPv6), tried in "
                        + "order. Host names are refused, and the system's resolv.conf is never used.")
        String[] servers() default {"127.0.0.1:53"};

        @AttributeDefinition(name = "Timeout", description = "Milliseconds to wait for one answer.", min = "1")
        int timeout() default 5000;

        @AttributeDefinition(name = "Retries",
                description = "Further rounds over all servers after the first one fails.", min = "0")
        int retries() default 2;

        @AttributeDefinition(name = "Cache max TTL", description = "Seconds an answer is kept at most.", min = "0")
        long cache_max_ttl() default 86400;

        @AttributeDefinition(name = "Negative TTL",
                description = "Seconds a 'no such name' or 'no such record' answer is kept at most "
                        + "(less if the zone's SOA says so).", min = "0")
        long negative_ttl() default 300;

        @AttributeDefinition(name = "Cache size", description = "Answers kept at most; 0 disables the cache.",
                min = "0")
        int cache_size() default 10000;
    }

    /** The most CNAMEs followed for one question. */
    static final int MAX_CNAME_HOPS = 8;

    private static final Logger LOG = LoggerFactory.getLogger(DnsJavaResolver.class);
    private static final long NO_SERVER_LOG_INTERVAL = TimeUnit.MINUTES.toNanos(1);

    /** What one configuration gives; replaced as a whole by @Modified. */
    private record Settings(Upstream upstream, String unavailable, long generation, long maxTtl, long negativeTtl) {
    }

    private final LongSupplier clock;
    private final AnswerCache cache = new AnswerCache();
    private final Map<Key, CompletableFuture<Answer>> inflight = new ConcurrentHashMap<>();
    private final AtomicLong lastNoServerLog = new AtomicLong();
    private volatile boolean stopped;
    private volatile Settings settings = new Settings(null, "DNS resolver not active", 0, 0, 0);
    private ExecutorService pool;
    private Executor executor;

    public DnsJavaResolver() {
        this(System::nanoTime);
    }

    /** For tests: a nanosecond clock that decides when cached answers expire. */
    DnsJavaResolver(LongSupplier clock) {
        this.clock = clock;
    }

    @Activate
    void activate(Config config) {
        AtomicInteger threads = new AtomicInteger();
        // Threads come and go with the load: a caller that blocks in a callback cannot starve the others.
        pool = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 60, TimeUnit.SECONDS, new SynchronousQueue<>(), task -> {
            Thread thread = new Thread(task, "postern-dns-" + threads.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        });
        // Never rejects: a completion arriving while the pool shuts down runs where it is rather than being
        // lost (a rejection inside dnsjava's selector thread would kill that thread).
        ExecutorService current = pool;
        executor = task -> {
            try {
                current.execute(task);
            } catch (RejectedExecutionException e) {
                task.run();
            }
        };
        configure(config);
    }

    @Modified
    void modified(Config config) {
        configure(config);
    }

    @Deactivate
    void deactivate() {
        stopped = true; // queries on their way make no further attempt, which would reopen dnsjava's I/O
        settings = new Settings(null, "DNS resolver stopped", cache.reset(0), 0, 0);
        DnsException stopped = new DnsException(DnsException.Kind.TEMPORARY, "DNS resolver stopped");
        for (CompletableFuture<Answer> pending : List.copyOf(inflight.values())) {
            pending.completeExceptionally(stopped);
        }
        inflight.clear();
        DnsjavaIo.close();
        pool.shutdown();
    }

    private void configure(Config config) {
        ServerAddresses.Parsed parsed = ServerAddresses.parse(config.servers());
        for (String invalid : parsed.invalid()) {
            LOG.error("DNS server '{}' ignored: an IP address[:port] is expected (host names are not resolved)",
                    invalid);
        }
        int timeout = config.timeout() > 0 ? config.timeout() : 5000;
        int retries = Math.max(0, config.retries());
        long maxTtl = Math.max(0, config.cache_max_ttl());
        long negativeTtl = Math.max(0, config.negative_ttl());
        long generation = cache.reset(Math.max(0, config.cache_size()));
        inflight.clear(); // questions already sent complete for their callers but are not joined nor cached
        if (parsed.servers().isEmpty()) {
            String reason = "no usable DNS server configured in " + PID + " (servers: "
                    + (parsed.invalid().isEmpty() ? "none" : String.join(", ", parsed.invalid()))
                    + "); every DNS query fails until one is";
            LOG.error("{}", reason);
            settings = new Settings(null, reason, generation, maxTtl, negativeTtl);
            return;
        }
        Upstream upstream = new Upstream(parsed.servers(), Duration.ofMillis(timeout), retries, executor,
                () -> stopped);
        settings = new Settings(upstream, null, generation, maxTtl, negativeTtl);
        LOG.info("DNS resolver using {} (timeout {} ms, {} retries, cache {} entries, max TTL {} s, negative TTL {} s)",
                upstream.servers(), timeout, retries, config.cache_size(), maxTtl, negativeTtl);
    }

    // ---- DnsResolver

    @Override
    public CompletionStage<List<MxRecord>> mx(String domain) {
        return ask(domain, Type.MX, (answer, now) -> {
            long ttl = answer.remainingSeconds(now);
            List<MxRecord> result = new ArrayList<>();
            for (Record r : answer.records()) {
                MXRecord mx = (MXRecord) r;
                // A "." exchange is a null MX (RFC 7505): the domain accepts no mail.
                String exchange = mx.getTarget().equals(Name.root) ? "" : text(mx.getTarget());
                result.add(new MxRecord(mx.getPriority(), exchange, ttl));
            }
            result.sort(Comparator.comparingInt(MxRecord::preference)); // stable: servers' order among equals
            return List.copyOf(result);
        });
    }

    @Override
    public CompletionStage<List<InetAddress>> addresses(String host) {
        InetAddress literal = addressLiteral(host);
        if (literal != null) {
            return CompletableFuture.completedFuture(List.of(literal));
        }
        Name name;
        try {
            name = toName(host);
        } catch (DnsException e) {
            return CompletableFuture.failedFuture(e);
        }
        CompletableFuture<Answer> v4 = lookup(name, Type.A);
        CompletableFuture<Answer> v6 = lookup(name, Type.AAAA);
        CompletableFuture<List<InetAddress>> result = new CompletableFuture<>();
        CompletableFuture.allOf(v4, v6).whenComplete((ignored, error) -> {
            try {
                result.complete(combine(name, v4, v6));
            } catch (DnsException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    @Override
    public CompletionStage<List<String>> txt(String name) {
        return ask(name, Type.TXT, (answer, now) -> {
            List<String> result = new ArrayList<>();
            for (Record r : answer.records()) {
                result.add(joinedText(r.rdataToWireCanonical()));
            }
            return List.copyOf(result);
        });
    }

    @Override
    public CompletionStage<List<String>> ptr(InetAddress address) {
        return ask(ReverseMap.fromAddress(address), Type.PTR, (answer, now) -> {
            List<String> result = new ArrayList<>();
            for (Record r : answer.records()) {
                result.add(text(((PTRRecord) r).getTarget()));
            }
            return List.copyOf(result);
        });
    }

    // ---- questions, cache and upstream

    private interface Reader<T> {
        T read(Answer answer, long now) throws DnsException;
    }

    private <T> CompletionStage<T> ask(String text, int type, Reader<T> reader) {
        try {
            return ask(toName(text), type, reader);
        } catch (DnsException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Looks the question up and hands the answer to the reader; NXDOMAIN fails as NOT_FOUND. */
    private <T> CompletionStage<T> ask(Name name, int type, Reader<T> reader) {
        CompletableFuture<T> result = new CompletableFuture<>();
        lookup(name, type).whenComplete((answer, error) -> {
            try {
                if (error != null) {
                    throw unwrap(error);
                }
                if (answer.nxdomain()) {
                    throw notFound(name);
                }
                result.complete(reader.read(answer, clock.getAsLong()));
            } catch (DnsException | RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    /** From the cache, from a question already on its way, or from the servers. */
    private CompletableFuture<Answer> lookup(Name name, int type) {
        Settings current = settings;
        if (current.upstream() == null) {
            long now = System.nanoTime();
            long last = lastNoServerLog.get();
            if (now - last >= NO_SERVER_LOG_INTERVAL || last == 0) {
                if (lastNoServerLog.compareAndSet(last, now)) {
                    LOG.error("DNS query {} {} refused: {}", name, Type.string(type), current.unavailable());
                }
            }
            return CompletableFuture.failedFuture(new DnsException(DnsException.Kind.TEMPORARY,
                    "DNS query " + name + " " + Type.string(type) + " refused: " + current.unavailable()));
        }
        Key key = Key.of(name, type);
        Answer cached = cache.get(key, clock.getAsLong());
        if (cached != null) {
            return CompletableFuture.completedFuture(cached);
        }
        CompletableFuture<Answer> mine = new CompletableFuture<>();
        CompletableFuture<Answer> running = inflight.putIfAbsent(key, mine);
        if (running != null) {
            return running;
        }
        resolve(current, name, name, type, 0, Long.MAX_VALUE).whenComplete((answer, error) -> {
            // Cached before any caller hears of it, so that a caller's next question finds it.
            if (answer != null) {
                cache.put(key, answer, current.generation(), clock.getAsLong());
            }
            inflight.remove(key, mine);
            if (error != null) {
                mine.completeExceptionally(unwrap(error));
            } else {
                mine.complete(answer);
            }
        });
        return mine;
    }

    /** Asks for (name, type), following CNAMEs, again upstream when a server gave a chain without its end. */
    private CompletableFuture<Answer> resolve(Settings current, Name question, Name name, int type, int hops,
            long ttl) {
        return current.upstream().query(name, type).thenCompose(response -> {
            Answers.Reading reading = Answers.read(response, name, type, current.negativeTtl(), MAX_CNAME_HOPS);
            int hopsNow = hops + reading.hops();
            if (hopsNow > MAX_CNAME_HOPS) {
                throw new CompletionException(new DnsException(DnsException.Kind.TEMPORARY, "DNS query " + question
                        + " " + Type.string(type) + ": more than " + MAX_CNAME_HOPS + " CNAMEs (a loop?)"));
            }
            long ttlNow = Math.min(ttl, reading.ttl());
            if (reading.followUp() != null) {
                return resolve(current, question, reading.followUp(), type, hopsNow, ttlNow);
            }
            long seconds = Math.min(ttlNow, current.maxTtl());
            LOG.debug("{} {}: {}", question, Type.string(type),
                    reading.nxdomain() ? "NXDOMAIN" : reading.records().size() + " record(s), ttl " + seconds);
            return CompletableFuture.completedFuture(new Answer(reading.records(), reading.nxdomain(),
                    clock.getAsLong() + TimeUnit.SECONDS.toNanos(seconds)));
        });
    }

    /**
     * A and AAAA together: the addresses either gave (IPv4 first), even if the other failed; otherwise a
     * temporary failure of either, then NXDOMAIN, then no addresses at all.
     */
    private List<InetAddress> combine(Name name, CompletableFuture<Answer> v4, CompletableFuture<Answer> v6)
            throws DnsException {
        List<InetAddress> found = new ArrayList<>();
        DnsException temporary = null;
        boolean nxdomain = false;
        for (CompletableFuture<Answer> lookup : List.of(v4, v6)) {
            Answer answer;
            try {
                answer = lookup.get();
            } catch (ExecutionException | InterruptedException e) {
                DnsException failure = unwrap(e);
                if (failure.kind() == DnsException.Kind.TEMPORARY) {
                    temporary = failure;
                } else {
                    nxdomain = true;
                }
                continue;
            }
            nxdomain |= answer.nxdomain();
            for (Record r : answer.records()) {
                found.add(withName(text(name), r instanceof ARecord a ? a.getAddress() : ((AAAARecord) r).getAddress()));
            }
        }
        if (!found.isEmpty()) {
            if (temporary != null) {
                LOG.debug("{}: using the addresses found; the other family failed: {}", name, temporary.getMessage());
            }
            return List.copyOf(found);
        }
        if (temporary != null) {
            throw temporary;
        }
        if (nxdomain) {
            throw notFound(name);
        }
        return List.of();
    }

    // ---- names and addresses

    /** A domain name as given by a caller: trailing dot optional, Unicode (IDN) accepted. */
    static Name toName(String text) throws DnsException {
        String trimmed = text.trim();
        if (trimmed.endsWith(".")) {
            trimmed = trimmed.substring(0, trimmed.length() - 1);
        }
        try {
            if (trimmed.isEmpty()) {
                throw new IllegalArgumentException("empty");
            }
            return Name.fromString(IDN.toASCII(trimmed) + ".");
        } catch (TextParseException | IllegalArgumentException e) {
            throw new DnsException(DnsException.Kind.NOT_FOUND, "'" + text + "' is not a valid domain name");
        }
    }

    /** An address literal (plain, or bracketed as in RFC 5321: [192.0.2.1], [IPv6:2001:db8::1]), or null. */
    static InetAddress addressLiteral(String host) {
        String text = host.trim();
        if (text.startsWith("[") && text.endsWith("]")) {
            text = text.substring(1, text.length() - 1);
            if (text.regionMatches(true, 0, "IPv6:", 0, 5)) {
                text = text.substring(5);
            }
        }
        return ServerAddresses.literal(text);
    }

    /** The address carrying the name it was found under, so that nobody asks the system for it again. */
    private static InetAddress withName(String host, InetAddress address) {
        try {
            return InetAddress.getByAddress(host, address.getAddress());
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e); // only for a wrong length, which A and AAAA records never have
        }
    }

    /**
     * A TXT record's character-strings joined, from its wire form (length-prefixed strings); read from the
     * wire because dnsjava's raw accessor is recent (3.6.5). Joined as bytes first, so a UTF-8 sequence split
     * across two strings decodes whole.
     */
    static String joinedText(byte[] rdata) {
        ByteArrayOutputStream joined = new ByteArrayOutputStream(rdata.length);
        int i = 0;
        while (i < rdata.length) {
            int length = Math.min(rdata[i] & 0xFF, rdata.length - i - 1);
            joined.write(rdata, i + 1, length);
            i += 1 + length;
        }
        return joined.toString(StandardCharsets.UTF_8);
    }

    private static String text(Name name) {
        return name.toString(true);
    }

    private static DnsException notFound(Name name) {
        return new DnsException(DnsException.Kind.NOT_FOUND, text(name) + ": no such domain (NXDOMAIN)");
    }

    private static DnsException unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        if (cause instanceof DnsException dns) {
            return dns;
        }
        if (cause instanceof InterruptedException) {
            Thread.currentThread().interrupt();
        }
        return new DnsException(DnsException.Kind.TEMPORARY, "DNS query failed: " + cause);
    }
}
