package org.postern.router.internal;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import java.util.stream.Collectors;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.postern.api.dns.DnsException;
import org.postern.api.dns.DnsResolver;
import org.postern.api.dns.MxRecord;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.TlsPolicy;
import org.postern.router.rules.Cidr;
import org.postern.router.rules.RelayHost;
import org.postern.router.rules.RouteEntry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes from configuration and DNS. For a recipient, in this order:
 * <ol>
 * <li>a local domain (or the bare {@code postmaster}): the local transport, no next hops;</li>
 * <li>the route configured for the recipient's domain, else the {@code *} route: fixed next hops (host names
 * resolved to their A/AAAA addresses) or MX routing, with the route's TLS policy and credentials;</li>
 * <li>the relay host, if one is set;</li>
 * <li>MX routing (RFC 5321 5.1): MX hosts by preference, shuffled among equal preferences, each resolved to its
 * addresses; no MX means the domain's own addresses (implicit MX); a null MX (RFC 7505) fails at once with
 * 5.1.10; MX hosts that are this node, and all less preferred ones, are dropped (5.4.6 when none remain).</li>
 * </ol>
 *
 * <p>Reads the same PID and form as {@link ConfiguredRelayPolicy} (which declares it), so local domains are
 * configured once for accepting and for routing.
 *
 * <p>Failures of configured next hops are always temporary: a typo or a broken smarthost name must not return a
 * day's mail. Failures of the recipient's own domain in DNS (no such domain, null MX, no MX host with an address)
 * are permanent.
 */
@Component(configurationPid = ConfiguredRelayPolicy.PID, service = Router.class)
public class ConfiguredRouter implements Router {

    static final String LOCAL_DESTINATION = "local";

    /**
     * How long an answer that needed DNS is reused for its domain: the recipients of one queue entry are routed
     * together and must get equal routes (same shuffle) to be delivered in one transaction.
     */
    static final long ANSWER_REUSE_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final int ANSWER_CACHE_MAX = 10_000;

    private static final Logger LOG = LoggerFactory.getLogger(ConfiguredRouter.class);

    /** What MX routing needs from the configuration. */
    private record MxSettings(int port, String myHostname, List<Cidr> myAddresses) {
    }

    /** What to do with a non-local domain. */
    private sealed interface Rule {
    }

    /** Fixed next hops; the route is ready when they are all literals. */
    private record Fixed(List<RelayHost> hops, TlsPolicy tls, String auth, String destination, Route ready)
            implements Rule {
    }

    private record ViaMx(TlsPolicy tls) implements Rule {
    }

    /** A configuration error: the mail waits for the fix. */
    private record Broken(String status, String text) implements Rule {
    }

    /** An answer kept for {@link #answerReuseNanos}. */
    private record Kept(CompletableFuture<Route> route, long until) {
    }

    /** One configuration, replaced as a whole. */
    private record Table(Set<String> localDomains, Route local, Map<String, Rule> routes, Rule fallback, MxSettings mx,
                         Map<String, Kept> answers) {
    }

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile DnsResolver dns;

    private final LongSupplier clock;
    private final long answerReuseNanos;

    // Until configured nothing is local and nothing routes: mail waits, it is never misrouted.
    private volatile Table table;

    public ConfiguredRouter() {
        this(System::nanoTime, ANSWER_REUSE_NANOS);
    }

    /** For tests: the clock that ages kept answers, and how long they are kept (0: never). */
    ConfiguredRouter(LongSupplier clock, long answerReuseNanos) {
        this.clock = clock;
        this.answerReuseNanos = answerReuseNanos;
    }

    @Activate
    @Modified
    void configure(ConfiguredRelayPolicy.Config config) {
        Set<String> local = ConfiguredRelayPolicy.domains("local.domains", config.local_domains());
        String transport = config.local_transport() == null ? "" : config.local_transport().trim();
        if (transport.isEmpty()) {
            LOG.warn("local.transport is empty in configuration {}; using maildir", ConfiguredRelayPolicy.PID);
            transport = "maildir";
        }
        Route localRoute = new Route(transport, LOCAL_DESTINATION, List.of(), TlsPolicy.NONE, null);

        Rule viaMx;
        TlsPolicy defaultTls = TlsPolicy.MAY;
        try {
            defaultTls = RouteEntry.tlsPolicy(String.valueOf(config.smtp_tls_policy()));
            viaMx = new ViaMx(defaultTls);
        } catch (IllegalArgumentException e) {
            // Failing closed: sending in clear what should have been verified is worse than waiting.
            LOG.error("smtp.tls.policy: {} in configuration {}; mail routed by MX or by routes without tls= "
                    + "is deferred", e.getMessage(), ConfiguredRelayPolicy.PID);
            viaMx = new Broken("4.3.5", "smtp.tls.policy '" + config.smtp_tls_policy() + "' is not valid");
        }

        Map<String, Rule> routes = new LinkedHashMap<>();
        for (String item : ConfiguredRelayPolicy.items(config.routes())) {
            String domain;
            Rule rule;
            try {
                RouteEntry entry = RouteEntry.parse(item);
                domain = entry.domain();
                rule = rule(entry, viaMx);
            } catch (IllegalArgumentException e) {
                int equals = item.indexOf('=');
                try {
                    domain = RouteEntry.domain(equals < 0 ? item : item.substring(0, equals));
                } catch (IllegalArgumentException noDomain) {
                    LOG.error("routes: ignoring '{}' in configuration {}: {}", item, ConfiguredRelayPolicy.PID,
                            e.getMessage());
                    continue;
                }
                // Its domain's mail waits for the fix rather than taking another way.
                LOG.error("routes: bad entry '{}' in configuration {}: {}; mail for {} is deferred", item,
                        ConfiguredRelayPolicy.PID, e.getMessage(), domain);
                rule = new Broken("4.3.5", "route '" + item + "' is not valid: " + e.getMessage());
            }
            if (routes.putIfAbsent(domain, rule) != null) {
                LOG.error("routes: a second entry for {} in configuration {} is ignored: '{}'", domain,
                        ConfiguredRelayPolicy.PID, item);
            }
        }

        Rule fallback = routes.remove(RouteEntry.DEFAULT_DOMAIN);
        String relayhost = config.relayhost() == null ? "" : config.relayhost().trim();
        if (fallback == null && !relayhost.isEmpty() && viaMx instanceof Broken broken) {
            fallback = broken;
        } else if (fallback == null && !relayhost.isEmpty()) {
            try {
                RelayHost host = RelayHost.parse(relayhost);
                fallback = fixed(List.of(host), defaultTls, null, host.text());
            } catch (IllegalArgumentException e) {
                LOG.error("relayhost: bad value '{}' in configuration {}: {}; non-local mail is deferred",
                        relayhost, ConfiguredRelayPolicy.PID, e.getMessage());
                fallback = new Broken("4.3.5", "relayhost '" + relayhost + "' is not valid: " + e.getMessage());
            }
        } else if (fallback != null && !relayhost.isEmpty()) {
            LOG.warn("relayhost '{}' is not used: the '*' route in configuration {} takes precedence", relayhost,
                    ConfiguredRelayPolicy.PID);
        }
        if (fallback == null) {
            fallback = viaMx;
        }

        int port = config.smtp_port();
        if (port < 1 || port > 65535) {
            LOG.error("smtp.port: {} is not a port in configuration {}; using 25", port, ConfiguredRelayPolicy.PID);
            port = 25;
        }
        String myHostname = config.myhostname() == null ? "" : config.myhostname().trim().toLowerCase(Locale.ROOT);
        if (myHostname.endsWith(".")) {
            myHostname = myHostname.substring(0, myHostname.length() - 1);
        }
        MxSettings mx = new MxSettings(port, myHostname, myAddresses(config.my_addresses()));

        table = new Table(local, localRoute, Collections.unmodifiableMap(routes), fallback, mx,
                new ConcurrentHashMap<>());
        LOG.info("router: local domains {} via {}; routes {}; otherwise {}; MX port {}, myhostname {}, my addresses {}",
                local, transport, routes.keySet(), describe(fallback), port, myHostname, mx.myAddresses());
    }

    private static Rule rule(RouteEntry entry, Rule viaMx) {
        if (entry.viaMx()) {
            return entry.tls() == null ? viaMx : new ViaMx(entry.tls());
        }
        if (entry.tls() == null && viaMx instanceof Broken broken) {
            return broken;
        }
        TlsPolicy tls = entry.tls() != null ? entry.tls() : ((ViaMx) viaMx).tls();
        String destination = entry.hops().stream().map(RelayHost::text).collect(Collectors.joining(" "))
                + (entry.auth() == null ? "" : " auth=" + entry.auth()); // a connection authenticated as one id
        return fixed(entry.hops(), tls, entry.auth(), destination);
    }

    private static Fixed fixed(List<RelayHost> hops, TlsPolicy tls, String auth, String destination) {
        Route ready = null;
        if (hops.stream().allMatch(RelayHost::literal)) {
            ready = new Route("smtp", destination, hops.stream().map(RelayHost::hop).toList(), tls, auth);
        }
        return new Fixed(hops, tls, auth, destination, ready);
    }

    private static String describe(Rule rule) {
        if (rule instanceof Fixed f) {
            return "next hops " + f.destination();
        }
        if (rule instanceof ViaMx) {
            return "MX";
        }
        return "deferred (" + ((Broken) rule).text() + ")";
    }

    private static List<Cidr> myAddresses(String[] values) {
        List<Cidr> networks = new ArrayList<>();
        for (String item : ConfiguredRelayPolicy.items(values)) {
            try {
                networks.add(Cidr.parse(item));
            } catch (IllegalArgumentException e) {
                LOG.error("my.addresses: ignoring bad address '{}' in configuration {}: {}", item,
                        ConfiguredRelayPolicy.PID, e.getMessage());
            }
        }
        return List.copyOf(networks);
    }

    // ---- routing

    @Override
    public CompletionStage<Route> route(MailAddress recipient) {
        Table current = table;
        if (current == null) {
            return failed("4.3.5", "router not configured", false);
        }
        String domain = recipient.asciiDomain();
        // The bare <postmaster> is ours (RFC 5321 4.5.1); an address literal never is, as in the relay policy.
        if (domain.isEmpty() || (!recipient.isAddressLiteral() && current.localDomains().contains(domain))) {
            return CompletableFuture.completedFuture(current.local());
        }
        Rule rule = recipient.isAddressLiteral() ? null : current.routes().get(domain);
        if (rule == null) {
            rule = current.fallback();
        }
        if (rule instanceof Broken broken) {
            return failed(broken.status(), broken.text(), false);
        }
        if (rule instanceof Fixed fixed && fixed.ready() != null) {
            return CompletableFuture.completedFuture(fixed.ready());
        }
        if (recipient.isAddressLiteral() && rule instanceof ViaMx viaMx) {
            return literal(current, domain, viaMx.tls());
        }
        Rule chosen = rule;
        // A copy: a caller's timeout or cancel must not touch the answer kept for others.
        return kept(current, domain, () -> chosen instanceof Fixed fixed
                ? resolveFixed(fixed)
                : mxRoute(current.mx(), domain, ((ViaMx) chosen).tls())).copy();
    }

    /** The answer for this domain given less than {@link #answerReuseNanos} ago, or a new one. */
    private CompletableFuture<Route> kept(Table current, String domain, Supplier<CompletableFuture<Route>> compute) {
        if (answerReuseNanos <= 0) {
            return compute.get();
        }
        Map<String, Kept> answers = current.answers();
        long now = clock.getAsLong();
        if (answers.size() >= ANSWER_CACHE_MAX) {
            answers.values().removeIf(k -> now - k.until() >= 0);
            if (answers.size() >= ANSWER_CACHE_MAX) {
                answers.clear();
            }
        }
        // Atomic, so that recipients routed at the same moment share one answer (the resolver call only starts
        // the lookup: it does not block).
        return answers.compute(domain, (d, old) -> old != null && now - old.until() < 0 ? old
                : new Kept(compute.get(), now + answerReuseNanos)).route();
    }

    /** Mail to {@code user@[address]}: straight to that address (on the SMTP port), unless it is this node. */
    private static CompletionStage<Route> literal(Table current, String domain, TlsPolicy tls) {
        String text = domain.substring(1, domain.length() - 1);
        if (text.regionMatches(true, 0, "IPv6:", 0, 5)) {
            text = text.substring(5);
        }
        InetAddress address;
        try {
            address = InetAddress.getByName(text); // a literal checked by MailAddress: parsed, never looked up
        } catch (java.net.UnknownHostException e) {
            return failed("5.1.2", "bad address literal " + domain, true);
        }
        if (isMine(current.mx(), address)) {
            return failed("5.4.6", "mail for " + domain + " loops back to myself", true);
        }
        return CompletableFuture.completedFuture(new Route("smtp", domain,
                List.of(new NextHop(address.getHostAddress(), current.mx().port(), 0)), tls, null));
    }

    /** Fixed next hops with their names resolved, in the configured order. */
    private CompletableFuture<Route> resolveFixed(Fixed fixed) {
        DnsResolver resolver = dns;
        if (resolver == null) {
            return failed("4.4.3", "no DNS resolver to look up " + fixed.destination(), false);
        }
        List<CompletableFuture<List<InetAddress>>> lookups = new ArrayList<>();
        for (RelayHost hop : fixed.hops()) {
            lookups.add(hop.literal() ? CompletableFuture.completedFuture(List.of())
                    : call(() -> resolver.addresses(hop.hop().host())));
        }
        return CompletableFuture.allOf(lookups.toArray(CompletableFuture[]::new)).handle((ignored, error) -> {
            Hops hops = new Hops();
            List<String> problems = new ArrayList<>();
            for (int i = 0; i < lookups.size(); i++) {
                RelayHost hop = fixed.hops().get(i);
                if (hop.literal()) {
                    hops.add(hop.hop());
                    continue;
                }
                Lookup lookup = Lookup.of(lookups.get(i));
                if (lookup.addresses().isEmpty()) {
                    problems.add(hop.hop().host() + ": " + lookup.problem());
                }
                for (InetAddress address : lookup.addresses()) {
                    hops.add(new NextHop(address.getHostAddress(), hop.hop().port(), 0, hop.hop().host()));
                }
            }
            if (hops.isEmpty()) {
                // Temporary even for "not found": the next hops are ours to fix, the mail is fine.
                throw new CompletionException(new RouteException("4.4.3",
                        "cannot resolve next hop " + String.join("; ", problems), false));
            }
            return new Route("smtp", fixed.destination(), hops.list(), fixed.tls(), fixed.auth());
        });
    }

    /** MX routing of a domain (RFC 5321 5.1, RFC 7505). */
    private CompletableFuture<Route> mxRoute(MxSettings mx, String domain, TlsPolicy tls) {
        DnsResolver resolver = dns;
        if (resolver == null) {
            return failed("4.4.3", "no DNS resolver to look up the MX of " + domain, false);
        }
        return call(() -> resolver.mx(domain)).handle((records, error) -> {
            if (error != null) {
                throw new CompletionException(domainFailure(domain, "MX", error));
            }
            return records;
        }).thenCompose(records -> {
            if (records.isEmpty()) {
                return implicitMx(resolver, mx, domain, tls);
            }
            List<MxRecord> usable = records.stream().filter(r -> !r.isNullMx()).toList();
            if (usable.isEmpty()) {
                throw new CompletionException(new RouteException("5.1.10",
                        "domain " + domain + " does not accept mail (null MX)", true));
            }
            if (usable.size() < records.size()) {
                LOG.warn("{}: a null MX among other MX records (RFC 7505 forbids it); using the others", domain);
            }
            return explicitMx(resolver, mx, domain, tls, shuffled(usable));
        });
    }

    /** By preference, lowest first, and in random order among equal preferences (RFC 5321 5.1). */
    static List<MxRecord> shuffled(List<MxRecord> records) {
        List<MxRecord> sorted = new ArrayList<>(records);
        sorted.sort((a, b) -> Integer.compare(a.preference(), b.preference()));
        int start = 0;
        for (int i = 1; i <= sorted.size(); i++) {
            if (i == sorted.size() || sorted.get(i).preference() != sorted.get(start).preference()) {
                Collections.shuffle(sorted.subList(start, i), ThreadLocalRandom.current());
                start = i;
            }
        }
        return sorted;
    }

    private CompletableFuture<Route> explicitMx(DnsResolver resolver, MxSettings mx, String domain, TlsPolicy tls,
            List<MxRecord> records) {
        List<MxRecord> hosts = new ArrayList<>();
        List<CompletableFuture<List<InetAddress>>> lookups = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        for (MxRecord record : records) {
            String name = record.exchange().toLowerCase(Locale.ROOT);
            if (RelayHost.isAddress(name)) {
                // RFC 5321 5.1: an MX names a host, never an address; such a record is not followed.
                LOG.warn("{}: MX host {} is an IP address, not a host name (RFC 5321 5.1); skipped", domain, name);
                problems.add(name + ": an IP address is not an MX host name");
                continue;
            }
            hosts.add(new MxRecord(record.preference(), name, record.ttl()));
            // A CNAME is followed by the resolver (RFC 5321 5.1 discourages it but it works).
            lookups.add(call(() -> resolver.addresses(name)));
        }
        return CompletableFuture.allOf(lookups.toArray(CompletableFuture[]::new)).handle((ignored, error) -> {
            List<Lookup> found = lookups.stream().map(Lookup::of).toList();
            // Loop check (RFC 5321 5.1 and Postfix): when this node is an MX host, only better ones are used.
            int mine = Integer.MAX_VALUE;
            for (int i = 0; i < hosts.size(); i++) {
                MxRecord host = hosts.get(i);
                if (host.exchange().equals(mx.myHostname())
                        || found.get(i).addresses().stream().anyMatch(a -> isMine(mx, a))) {
                    mine = Math.min(mine, host.preference());
                }
            }
            Hops hops = new Hops();
            boolean temporary = false;
            boolean better = false;
            for (int i = 0; i < hosts.size(); i++) {
                MxRecord host = hosts.get(i);
                if (host.preference() >= mine) {
                    continue;
                }
                better = true;
                Lookup lookup = found.get(i);
                if (lookup.addresses().isEmpty()) {
                    problems.add(host.exchange() + ": " + lookup.problem());
                    temporary |= lookup.temporary();
                }
                for (InetAddress address : lookup.addresses()) {
                    hops.add(new NextHop(address.getHostAddress(), mx.port(), host.preference(), host.exchange()));
                }
            }
            if (mine != Integer.MAX_VALUE && !better) {
                throw new CompletionException(new RouteException("5.4.6",
                        "mail for " + domain + " loops back to myself", true));
            }
            if (hops.isEmpty()) {
                throw new CompletionException(temporary
                        ? new RouteException("4.4.3", "cannot look up the MX hosts of " + domain + ": "
                                + String.join("; ", problems), false)
                        : new RouteException("5.4.4", "no MX host of " + domain + " has an address: "
                                + String.join("; ", problems), true));
            }
            return new Route("smtp", domain, hops.list(), tls, null);
        });
    }

    /** No MX records: the domain's own addresses, as if it were its own MX of preference 0 (RFC 5321 5.1). */
    private CompletableFuture<Route> implicitMx(DnsResolver resolver, MxSettings mx, String domain, TlsPolicy tls) {
        return call(() -> resolver.addresses(domain)).handle((addresses, error) -> {
            if (error != null) {
                throw new CompletionException(domainFailure(domain, "A/AAAA", error));
            }
            if (addresses.isEmpty()) {
                throw new CompletionException(new RouteException("5.4.4",
                        "domain " + domain + " has no MX and no address record", true));
            }
            if (domain.equals(mx.myHostname()) || addresses.stream().anyMatch(a -> isMine(mx, a))) {
                throw new CompletionException(new RouteException("5.4.6",
                        "mail for " + domain + " loops back to myself", true));
            }
            Hops hops = new Hops();
            for (InetAddress address : addresses) {
                hops.add(new NextHop(address.getHostAddress(), mx.port(), 0, domain));
            }
            return new Route("smtp", domain, hops.list(), tls, null);
        });
    }

    /** A failed question about the recipient's domain itself: NXDOMAIN is permanent, the rest temporary. */
    private static RouteException domainFailure(String domain, String type, Throwable error) {
        Throwable cause = unwrap(error);
        if (cause instanceof DnsException dnsError && dnsError.kind() == DnsException.Kind.NOT_FOUND) {
            return new RouteException("5.1.2", "domain " + domain + " does not exist (NXDOMAIN)", true);
        }
        return new RouteException("4.4.3", "cannot look up " + type + " of " + domain + ": " + message(cause), false);
    }

    private static boolean isMine(MxSettings mx, InetAddress address) {
        for (Cidr network : mx.myAddresses()) {
            if (network.contains(address)) {
                return true;
            }
        }
        return false;
    }

    // ---- helpers

    /** Next hops without repeats: two MX names for one address give one hop. */
    private static final class Hops {
        private final Map<String, NextHop> hops = new LinkedHashMap<>();

        void add(NextHop hop) {
            hops.putIfAbsent(hop.host() + " " + hop.port(), hop);
        }

        boolean isEmpty() {
            return hops.isEmpty();
        }

        List<NextHop> list() {
            return List.copyOf(hops.values());
        }
    }

    /** The outcome of one address lookup, read after it completed. */
    private record Lookup(List<InetAddress> addresses, boolean temporary, String problem) {

        static Lookup of(CompletableFuture<List<InetAddress>> lookup) {
            try {
                List<InetAddress> addresses = lookup.join();
                Set<InetAddress> unique = new LinkedHashSet<>(addresses == null ? List.of() : addresses);
                return new Lookup(List.copyOf(unique), false, "no address record");
            } catch (CompletionException | java.util.concurrent.CancellationException e) {
                Throwable cause = unwrap(e);
                boolean notFound = cause instanceof DnsException d && d.kind() == DnsException.Kind.NOT_FOUND;
                return new Lookup(List.of(), !notFound, notFound ? "host not found" : message(cause));
            }
        }
    }

    /** The stage of a resolver call; a call that throws or returns null is a failed stage, not an exception. */
    private static <T> CompletableFuture<T> call(Supplier<CompletionStage<T>> question) {
        try {
            CompletionStage<T> stage = question.get();
            return stage == null ? CompletableFuture.failedFuture(new IllegalStateException("the resolver gave no answer"))
                    : stage.toCompletableFuture();
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private static Throwable unwrap(Throwable error) {
        Throwable cause = error;
        while ((cause instanceof CompletionException || cause instanceof java.util.concurrent.ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause;
    }

    private static String message(Throwable cause) {
        return cause.getMessage() != null ? cause.getMessage() : cause.toString();
    }

    private static <T> CompletableFuture<T> failed(String status, String text, boolean permanent) {
        return CompletableFuture.failedFuture(new RouteException(status, text, permanent));
    }
}
