package org.postern.dns.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Proxy;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.After;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Test;
import org.postern.api.dns.DnsException;
import org.postern.api.dns.MxRecord;
import org.postern.testsupport.Dnsmasq;

/** DnsJavaResolver against real dnsmasq servers on 127.0.0.1; nothing else is ever asked. */
public class DnsJavaResolverTest {

    private static final String V6_REVERSE = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa";

    /** The records of most tests, under the reserved .test domain, answered with a 300 s TTL. */
    private static final String[] ZONE = {
            "--local=/test/", // names under .test it does not know are NXDOMAIN, not REFUSED
            "--local-ttl=300",
            "--mx-host=mx.test,mx2.test,20",
            "--mx-host=mx.test,mx1.test,10",
            "--mx-host=mx.test,mx3.test,20",
            "--mx-host=nullmx.test,.,0",
            "--host-record=mx1.test,127.0.0.2",
            "--host-record=mx2.test,127.0.0.3,::3",
            "--host-record=mx3.test,127.0.0.4",
            "--host-record=v6only.test,::4",
            "--txt-record=txt.test,v=spf1 ,-all",
            "--txt-record=txt.test,second",
            "--txt-record=_dmarc.txt.test,v=DMARC1; p=reject",
            "--cname=alias.test,mx1.test",
            "--cname=alias2.test,alias.test",
            // dnsmasq answers this CNAME without its target (not local data): the resolver must ask again
            "--cname=outside.test,target.example",
            "--address=/target.example/127.0.0.7",
            "--ptr-record=2.0.0.127.in-addr.arpa,mx1.test",
            "--ptr-record=" + V6_REVERSE + ",mx2.test",
    };

    private static Dnsmasq shared;
    private final List<DnsJavaResolver> started = new ArrayList<>();
    private final List<AutoCloseable> servers = new ArrayList<>();
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    @BeforeClass
    public static void startSharedServer() throws Exception {
        shared = Dnsmasq.start(ZONE);
    }

    @AfterClass
    public static void stopSharedServer() throws Exception {
        if (shared != null) {
            shared.close();
        }
    }

    @After
    public void stopEverything() throws Exception {
        for (DnsJavaResolver resolver : started) {
            resolver.deactivate();
        }
        for (AutoCloseable server : servers) {
            server.close();
        }
    }

    // ---- helpers

    /** A Config as ConfigAdmin would hand it: given values, annotation defaults for the rest. */
    static DnsJavaResolver.Config config(Object... pairs) {
        Map<String, Object> values = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            values.put((String) pairs[i], pairs[i + 1]);
        }
        return (DnsJavaResolver.Config) Proxy.newProxyInstance(DnsJavaResolver.Config.class.getClassLoader(),
                new Class<?>[] {DnsJavaResolver.Config.class},
                (proxy, method, args) -> values.containsKey(method.getName())
                        ? values.get(method.getName()) : method.getDefaultValue());
    }

    /** A resolver on a clock the test moves; short timeouts so that failures show quickly. */
    private DnsJavaResolver resolver(Object... pairs) {
        Object[] all = new Object[pairs.length + 4];
        all[0] = "timeout";
        all[1] = 1000;
        all[2] = "retries";
        all[3] = 1;
        System.arraycopy(pairs, 0, all, 4, pairs.length);
        DnsJavaResolver resolver = new DnsJavaResolver(now::get);
        resolver.activate(config(all));
        started.add(resolver);
        return resolver;
    }

    private DnsJavaResolver resolverOn(Dnsmasq server, Object... pairs) {
        Object[] all = new Object[pairs.length + 2];
        all[0] = "servers";
        all[1] = new String[] {server.server()};
        System.arraycopy(pairs, 0, all, 2, pairs.length);
        return resolver(all);
    }

    private static <T> T get(CompletionStage<T> stage) throws Exception {
        try {
            return stage.toCompletableFuture().get(20, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw (Exception) e.getCause();
        }
    }

    private static DnsException failure(CompletionStage<?> stage) throws Exception {
        try {
            Object value = get(stage);
            fail("expected a DnsException, got " + value);
            return null;
        } catch (DnsException e) {
            return e;
        }
    }

    private static void assertFails(DnsException.Kind kind, CompletionStage<?> stage) throws Exception {
        DnsException e = failure(stage);
        assertEquals(e.getMessage(), kind, e.kind());
    }

    private static InetAddress ip(String literal) {
        return ServerAddresses.literal(literal);
    }

    private void advanceSeconds(long seconds) {
        now.addAndGet(TimeUnit.SECONDS.toNanos(seconds));
    }

    // ---- answers

    @Test
    public void mxSortedByPreferenceInTheServersOrder() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        List<MxRecord> mx = get(resolver.mx("mx.test"));
        assertEquals(3, mx.size());
        assertEquals(new MxRecord(10, "mx1.test", 300), mx.get(0));
        assertEquals(20, mx.get(1).preference());
        assertEquals(20, mx.get(2).preference());
        assertEquals(Set.of("mx2.test", "mx3.test"), Set.of(mx.get(1).exchange(), mx.get(2).exchange()));
        assertFalse(mx.get(0).isNullMx());
        // Not shuffled: asking again (from the cache) gives the same order.
        for (int i = 0; i < 5; i++) {
            assertEquals(mx, get(resolver.mx("mx.test.")));
        }
    }

    @Test
    public void nullMxHasAnEmptyExchange() throws Exception {
        List<MxRecord> mx = get(resolverOn(shared).mx("nullmx.test"));
        assertEquals(List.of(new MxRecord(0, "", 300)), mx);
        assertTrue(mx.get(0).isNullMx());
    }

    @Test
    public void aNameWithoutMxHasAnEmptyList() throws Exception {
        // mx1.test exists (it has an A record) but no MX: the caller falls back to the implicit MX.
        assertEquals(List.of(), get(resolverOn(shared).mx("mx1.test")));
    }

    @Test
    public void aNameThatDoesNotExistIsNotFound() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        DnsException e = failure(resolver.mx("nope.test"));
        assertEquals(DnsException.Kind.NOT_FOUND, e.kind());
        assertTrue(e.getMessage(), e.getMessage().contains("nope.test"));
        assertFails(DnsException.Kind.NOT_FOUND, resolver.addresses("nope.test"));
        assertFails(DnsException.Kind.NOT_FOUND, resolver.txt("nope.test"));
    }

    @Test
    public void addressesAreAThenAaaa() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        List<InetAddress> both = get(resolver.addresses("mx2.test"));
        assertEquals(List.of(ip("127.0.0.3"), ip("::3")), both);
        // They carry the name they were found under, so nothing asks the system resolver for it.
        assertEquals("mx2.test", both.get(0).getHostName());
        assertEquals(List.of(ip("127.0.0.2")), get(resolver.addresses("mx1.test")));
        assertEquals(List.of(ip("::4")), get(resolver.addresses("v6only.test")));
        // txt.test exists without any address.
        assertEquals(List.of(), get(resolver.addresses("txt.test")));
    }

    @Test
    public void anAddressLiteralIsItselfWithoutAQuery() throws Exception {
        // No usable server: any query would fail, so success proves none was made.
        DnsJavaResolver resolver = resolver("servers", new String[0]);
        assertEquals(List.of(ip("192.0.2.1")), get(resolver.addresses("192.0.2.1")));
        assertEquals(List.of(ip("2001:db8::1")), get(resolver.addresses("2001:db8::1")));
        assertEquals(List.of(ip("192.0.2.1")), get(resolver.addresses("[192.0.2.1]")));
        assertEquals(List.of(ip("2001:db8::1")), get(resolver.addresses("[IPv6:2001:db8::1]")));
        assertFails(DnsException.Kind.TEMPORARY, resolver.addresses("mx1.test"));
    }

    @Test
    public void cnameChainsAreFollowed() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        // alias2 -> alias -> mx1, all in one answer
        assertEquals(List.of(ip("127.0.0.2")), get(resolver.addresses("alias2.test")));
        assertEquals("alias2.test", get(resolver.addresses("alias2.test")).get(0).getHostName());
        // the chain ends at a name without MX
        assertEquals(List.of(), get(resolver.mx("alias2.test")));
        // The answer holds only the CNAME: the target is asked for in a second query. dnsmasq refuses the
        // AAAA question for it (no local data): the A answer is used all the same.
        assertEquals(List.of(ip("127.0.0.7")), get(resolver.addresses("outside.test")));
        assertTrue(shared.queries("target.example", "A") >= 1);
        assertTrue(shared.queries("target.example", "AAAA") >= 1);
    }

    @Test
    public void txtStringsAreJoinedPerRecord() throws Exception {
        List<String> txt = get(resolverOn(shared).txt("txt.test"));
        assertEquals(Set.of("v=spf1 -all", "second"), Set.copyOf(txt));
        assertEquals(2, txt.size());
        assertEquals(List.of("v=DMARC1; p=reject"), get(resolverOn(shared).txt("_dmarc.txt.test")));
    }

    @Test
    public void ptrForIpv4AndIpv6() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        assertEquals(List.of("mx1.test"), get(resolver.ptr(ip("127.0.0.2"))));
        assertEquals(List.of("mx2.test"), get(resolver.ptr(ip("::3"))));
    }

    @Test
    public void aRefusedQueryIsTemporary() throws Exception {
        // dnsmasq has no upstream: it refuses names outside its own data.
        DnsException e = failure(resolverOn(shared).mx("elsewhere.example"));
        assertEquals(DnsException.Kind.TEMPORARY, e.kind());
        assertTrue(e.getMessage(), e.getMessage().contains("REFUSED"));
        assertFails(DnsException.Kind.TEMPORARY, resolverOn(shared).addresses("elsewhere.example"));
    }

    @Test
    public void anInvalidNameIsNotFound() throws Exception {
        DnsJavaResolver resolver = resolverOn(shared);
        assertFails(DnsException.Kind.NOT_FOUND, resolver.mx("bad..name.test"));
        assertFails(DnsException.Kind.NOT_FOUND, resolver.addresses(""));
        assertFails(DnsException.Kind.NOT_FOUND, resolver.txt("a".repeat(64) + ".test"));
    }

    @Test
    public void internationalizedNamesAreAskedInTheirAsciiForm() throws Exception {
        try (Dnsmasq server = Dnsmasq.start("--local=/test/", "--host-record=xn--bcher-kva.test,127.0.0.8")) {
            assertEquals(List.of(ip("127.0.0.8")), get(resolverOn(server).addresses("bücher.test")));
        }
    }

    // ---- cache

    @Test
    public void answersComeFromTheCacheUntilTheirTtlRunsOut() throws Exception {
        Dnsmasq server = Dnsmasq.start(ZONE);
        servers.add(server);
        DnsJavaResolver resolver = resolverOn(server, "negative_ttl", 60L);
        List<MxRecord> mx = get(resolver.mx("mx.test"));
        assertFails(DnsException.Kind.NOT_FOUND, resolver.mx("nope.test"));
        assertEquals(List.of(), get(resolver.mx("mx1.test")));

        server.stop();
        advanceSeconds(59);
        assertEquals(List.of(new MxRecord(10, "mx1.test", 241)), get(resolver.mx("mx.test")).subList(0, 1));
        assertEquals(mx.get(1).exchange(), get(resolver.mx("mx.test")).get(1).exchange());
        assertFails(DnsException.Kind.NOT_FOUND, resolver.mx("nope.test"));
        assertEquals(List.of(), get(resolver.mx("mx1.test")));

        advanceSeconds(2); // 61 s: negative answers (no SOA from dnsmasq) lived negative_ttl = 60 s
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("nope.test"));
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx1.test"));
        assertEquals(3, get(resolver.mx("mx.test")).size());

        advanceSeconds(240); // 301 s: past the records' TTL
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx.test"));
    }

    @Test
    public void cacheMaxTtlCapsTheRecordsTtl() throws Exception {
        Dnsmasq server = Dnsmasq.start(ZONE);
        servers.add(server);
        DnsJavaResolver resolver = resolverOn(server, "cache_max_ttl", 10L);
        assertEquals(10, get(resolver.mx("mx.test")).get(0).ttl());
        server.stop();
        advanceSeconds(9);
        assertEquals(3, get(resolver.mx("mx.test")).size());
        advanceSeconds(2);
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx.test"));
    }

    @Test
    public void anSoaInANegativeAnswerShortensItsTime() throws Exception {
        // As an authoritative server dnsmasq adds the zone's SOA (TTL and minimum 30 s) to negative answers.
        Dnsmasq server = Dnsmasq.start("--auth-zone=test", "--auth-server=ns.test,127.0.0.1", "--auth-ttl=30",
                "--host-record=mx1.test,127.0.0.2");
        servers.add(server);
        DnsJavaResolver resolver = resolverOn(server, "negative_ttl", 300L);
        assertFails(DnsException.Kind.NOT_FOUND, resolver.mx("nope.test"));
        assertEquals(List.of(), get(resolver.mx("mx1.test")));
        server.stop();
        advanceSeconds(29);
        assertFails(DnsException.Kind.NOT_FOUND, resolver.mx("nope.test"));
        assertEquals(List.of(), get(resolver.mx("mx1.test")));
        advanceSeconds(2);
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("nope.test"));
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx1.test"));
    }

    @Test
    public void theCacheKeepsTheMostRecentlyUsedAnswers() throws Exception {
        Dnsmasq server = Dnsmasq.start(ZONE);
        servers.add(server);
        DnsJavaResolver resolver = resolverOn(server, "cache_size", 2);
        get(resolver.mx("mx.test"));
        get(resolver.mx("nullmx.test"));
        get(resolver.mx("mx.test")); // used again: nullmx.test is now the least recently used
        get(resolver.mx("mx1.test")); // a third answer: nullmx.test leaves
        server.stop();
        assertEquals(3, get(resolver.mx("mx.test")).size());
        assertEquals(List.of(), get(resolver.mx("mx1.test")));
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("nullmx.test"));
    }

    @Test
    public void aZeroCacheSizeAsksEveryTime() throws Exception {
        Dnsmasq server = Dnsmasq.start(ZONE);
        servers.add(server);
        DnsJavaResolver resolver = resolverOn(server, "cache_size", 0);
        get(resolver.mx("mx.test"));
        server.stop();
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx.test"));
    }

    // ---- servers, timeouts, configuration

    @Test
    public void anUnansweredQueryTimesOutAfterEveryRetry() throws Exception {
        try (SilentServer silent = new SilentServer()) {
            DnsJavaResolver resolver = resolver("servers", new String[] {silent.server()}, "timeout", 300,
                    "retries", 2);
            long start = System.nanoTime();
            DnsException e = failure(resolver.mx("mx.test"));
            long elapsed = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertEquals(DnsException.Kind.TEMPORARY, e.kind());
            assertTrue(e.getMessage(), e.getMessage().contains("timed out after 300 ms"));
            assertTrue("3 attempts of 300 ms took " + elapsed + " ms", elapsed >= 850 && elapsed < 3000);
            assertEquals(3, silent.awaitPackets(3));
        }
    }

    @Test
    public void theNextServerIsAskedWhenOneFails() throws Exception {
        int closed = Dnsmasq.freePort(); // nothing listens: ICMP port unreachable
        try (SilentServer silent = new SilentServer()) {
            DnsJavaResolver resolver = resolver("servers",
                    new String[] {"127.0.0.1:" + closed, silent.server() + ", " + shared.server()},
                    "timeout", 300, "retries", 0);
            assertEquals(3, get(resolver.mx("mx.test")).size());
            assertEquals(1, silent.awaitPackets(1));
        }
    }

    @Test
    public void withoutUsableServersEveryQueryFailsAtOnceAndNothingIsAsked() throws Exception {
        // dnsjava's own fallback (ResolverConfig) would read this property before resolv.conf: it must not be used.
        try (SilentServer fallback = new SilentServer()) {
            String previous = System.setProperty("dns.server", fallback.server());
            try {
                for (String[] servers : List.of(new String[0], new String[] {""},
                        new String[] {"dns.example.com", "300.1.1.1:53", "127.0.0.1:99999", "[::1"})) {
                    ByteArrayOutputStream err = new ByteArrayOutputStream();
                    PrintStream original = System.err;
                    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
                    DnsJavaResolver resolver;
                    CompletableFuture<List<MxRecord>> mx;
                    try {
                        resolver = resolver("servers", servers);
                        mx = resolver.mx("mx.test").toCompletableFuture();
                    } finally {
                        System.setErr(original);
                    }
                    assertTrue("failed without waiting for any network", mx.isDone());
                    DnsException e = failure(mx);
                    assertEquals(DnsException.Kind.TEMPORARY, e.kind());
                    assertTrue(e.getMessage(), e.getMessage().contains("no usable DNS server configured"));
                    assertTrue(err.toString(StandardCharsets.UTF_8),
                            err.toString(StandardCharsets.UTF_8).contains("ERROR"));
                    assertFails(DnsException.Kind.TEMPORARY, resolver.addresses("mx1.test"));
                    assertFails(DnsException.Kind.TEMPORARY, resolver.txt("txt.test"));
                    assertFails(DnsException.Kind.TEMPORARY, resolver.ptr(ip("127.0.0.2")));
                }
                Thread.sleep(300);
                assertEquals(0, fallback.packets());
            } finally {
                if (previous == null) {
                    System.clearProperty("dns.server");
                } else {
                    System.setProperty("dns.server", previous);
                }
            }
        }
    }

    @Test
    public void aNewServerListAppliesWithoutRestartAndClearsTheCache() throws Exception {
        Dnsmasq first = Dnsmasq.start("--local=/test/", "--local-ttl=300", "--mx-host=mx.test,first.test,10");
        servers.add(first);
        Dnsmasq second = Dnsmasq.start("--local=/test/", "--local-ttl=300", "--mx-host=mx.test,second.test,10");
        servers.add(second);
        DnsJavaResolver resolver = resolverOn(first);
        assertEquals("first.test", get(resolver.mx("mx.test")).get(0).exchange());

        resolver.modified(config("servers", new String[] {second.server()}, "timeout", 1000, "retries", 0));
        assertEquals("second.test", get(resolver.mx("mx.test")).get(0).exchange());

        resolver.modified(config("servers", new String[0]));
        assertFails(DnsException.Kind.TEMPORARY, resolver.mx("mx.test"));

        resolver.modified(config("servers", new String[] {first.server()}));
        assertEquals("first.test", get(resolver.mx("mx.test")).get(0).exchange());
    }

    @Test
    public void deactivateClosesDnsjavaIoAndFailsLaterQueries() throws Exception {
        DnsJavaResolver resolver = new DnsJavaResolver(now::get);
        resolver.activate(config("servers", new String[] {shared.server()}));
        get(resolver.mx("mx.test"));
        assertTrue("dnsjava's I/O thread runs", selectorThreadRuns());
        resolver.deactivate();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (selectorThreadRuns() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertFalse("dnsjava's I/O thread stopped, so it cannot hold the JVM on shutdown", selectorThreadRuns());
        DnsException e = failure(resolver.mx("mx.test"));
        assertEquals(DnsException.Kind.TEMPORARY, e.kind());
        assertTrue(e.getMessage(), e.getMessage().contains("stopped"));
    }

    @Test
    public void deactivateFailsQueriesInFlight() throws Exception {
        try (SilentServer silent = new SilentServer()) {
            DnsJavaResolver resolver = new DnsJavaResolver(now::get);
            resolver.activate(config("servers", new String[] {silent.server()}, "timeout", 10000));
            CompletableFuture<List<MxRecord>> pending = resolver.mx("mx.test").toCompletableFuture();
            silent.awaitPackets(1);
            long start = System.nanoTime();
            resolver.deactivate();
            assertFails(DnsException.Kind.TEMPORARY, pending);
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 5000);
            Thread.sleep(300);
            assertFalse("no further attempt reopened dnsjava's I/O", selectorThreadRuns());
            assertEquals(1, silent.packets());
        }
    }

    private static boolean selectorThreadRuns() {
        return Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.isAlive() && t.getName().equals("dnsjava NIO selector"));
    }

    /** A UDP port that receives queries and never answers them. */
    static final class SilentServer implements AutoCloseable {
        private final DatagramSocket socket;
        private final AtomicInteger packets = new AtomicInteger();
        private final Thread reader;

        SilentServer() throws SocketException {
            socket = new DatagramSocket(new InetSocketAddress(Dnsmasq.LOOPBACK, 0));
            reader = new Thread(() -> {
                byte[] buffer = new byte[4096];
                while (!socket.isClosed()) {
                    try {
                        socket.receive(new DatagramPacket(buffer, buffer.length));
                        packets.incrementAndGet();
                    } catch (java.io.IOException closed) {
                        return;
                    }
                }
            }, "silent-dns");
            reader.setDaemon(true);
            reader.start();
        }

        String server() {
            return "127.0.0.1:" + socket.getLocalPort();
        }

        int packets() {
            return packets.get();
        }

        /** Waits up to 5 s for at least this many packets; returns how many arrived. */
        int awaitPackets(int count) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (packets.get() < count && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            return packets.get();
        }

        @Override
        public void close() throws InterruptedException {
            socket.close();
            reader.join(2000);
        }
    }
}
