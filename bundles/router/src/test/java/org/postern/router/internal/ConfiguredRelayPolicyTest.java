package org.postern.router.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Proxy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;

import org.junit.Test;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.Mailboxes;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayDecision.Outcome;

public class ConfiguredRelayPolicyTest {

    private static final String UNTRUSTED = "203.0.113.9";

    /** A Config as ConfigAdmin would hand it: given values, annotation defaults for the rest. */
    private static ConfiguredRelayPolicy.Config config(Object... pairs) {
        Map<String, Object> values = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            values.put((String) pairs[i], pairs[i + 1]);
        }
        return (ConfiguredRelayPolicy.Config) Proxy.newProxyInstance(ConfiguredRelayPolicy.Config.class.getClassLoader(),
                new Class<?>[] {ConfiguredRelayPolicy.Config.class},
                (proxy, method, args) -> values.containsKey(method.getName())
                        ? values.get(method.getName()) : method.getDefaultValue());
    }

    private static ConfiguredRelayPolicy policy(ConfiguredRelayPolicy.Config config) {
        ConfiguredRelayPolicy policy = new ConfiguredRelayPolicy();
        policy.configure(config);
        return policy;
    }

    private static SessionContext session(String clientIp, String authenticatedAs) throws Exception {
        InetSocketAddress client = new InetSocketAddress(InetAddress.getByName(clientIp), 40000);
        Map<String, Object> notes = new ConcurrentHashMap<>();
        return new SessionContext() {
            public String id() { return "s1"; }
            public String listener() { return "mx"; }
            public InetSocketAddress clientAddress() { return client; }
            public InetSocketAddress localAddress() { return new InetSocketAddress(25); }
            public String heloName() { return "client.example"; }
            public boolean extended() { return true; }
            public String tlsProtocol() { return null; }
            public String tlsCipher() { return null; }
            public String authenticatedAs() { return authenticatedAs; }
            public Map<String, Object> notes() { return notes; }
        };
    }

    private static RelayDecision check(ConfiguredRelayPolicy policy, String clientIp, String recipient) throws Exception {
        return check(policy, session(clientIp, null), recipient);
    }

    private static RelayDecision check(ConfiguredRelayPolicy policy, SessionContext session, String recipient) {
        CompletableFuture<RelayDecision> stage = policy.check(session, MailAddress.parse(recipient)).toCompletableFuture();
        assertTrue("answered from memory, at once", stage.isDone());
        return stage.join();
    }

    private static void assertDenied(RelayDecision decision) {
        assertEquals(Outcome.DENY, decision.outcome());
        assertEquals(554, decision.code());
        assertEquals("5.7.1", decision.enhancedStatus());
        assertEquals("Relay access denied", decision.text());
    }

    /** Runs the action and returns what it logged (slf4j-simple writes to System.err). */
    private static String logOf(Runnable action) {
        PrintStream saved = System.err;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buffer, true, StandardCharsets.UTF_8));
        try {
            action.run();
        } finally {
            System.setErr(saved);
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }

    @Test
    public void defaultsAcceptLocalhostAndPostmasterAndRefuseTheRest() throws Exception {
        ConfiguredRelayPolicy policy = policy(config());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@localhost").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@LocalHost").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "postmaster").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "PostMaster").outcome());
        assertDenied(check(policy, UNTRUSTED, "user@elsewhere.example"));
        // No trusted network by default, not even loopback.
        assertDenied(check(policy, "127.0.0.1", "user@elsewhere.example"));
    }

    @Test
    public void localDomainsCompareCaseInsensitivelyInIdnAsciiForm() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"Bücher.Example", "mail.example.org."}));
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@bücher.example").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@BÜCHER.EXAMPLE").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@xn--bcher-kva.example").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@MAIL.example.org").outcome());
        // localhost is a default only: an explicit list replaces it.
        assertDenied(check(policy, UNTRUSTED, "user@localhost"));
        // A subdomain is another domain.
        assertDenied(check(policy, UNTRUSTED, "user@sub.mail.example.org"));
    }

    @Test
    public void relayDomainsAreRelayedForAnyone() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("relay_domains", new String[] {"backup.example"}));
        assertEquals(Outcome.RELAY, check(policy, UNTRUSTED, "user@Backup.Example").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@localhost").outcome());
        assertDenied(check(policy, UNTRUSTED, "user@other.example"));
    }

    @Test
    public void trustedIpv4NetworkRelaysAnywhere() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("trusted_networks", new String[] {"192.0.2.0/24", "198.51.100.7"}));
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.0", "user@elsewhere.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.255", "user@elsewhere.example").outcome());
        assertDenied(check(policy, "192.0.3.0", "user@elsewhere.example"));
        // A bare address is a single host.
        assertEquals(Outcome.RELAY, check(policy, "198.51.100.7", "user@elsewhere.example").outcome());
        assertDenied(check(policy, "198.51.100.8", "user@elsewhere.example"));
        // Local stays local for a trusted client.
        assertEquals(Outcome.LOCAL, check(policy, "192.0.2.1", "user@localhost").outcome());
    }

    @Test
    public void trustedIpv6Network() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("trusted_networks", new String[] {"2001:DB8:1::/48", "::1"}));
        assertEquals(Outcome.RELAY, check(policy, "2001:db8:1:ffff::5", "user@elsewhere.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "2001:db8:1::", "user@elsewhere.example").outcome());
        assertDenied(check(policy, "2001:db8:2::1", "user@elsewhere.example"));
        assertEquals(Outcome.RELAY, check(policy, "::1", "user@elsewhere.example").outcome());
        assertDenied(check(policy, "::2", "user@elsewhere.example"));
        // An IPv6 network never matches an IPv4 client, and the other way round.
        assertDenied(check(policy, "127.0.0.1", "user@elsewhere.example"));
        ConfiguredRelayPolicy v4 = policy(config("trusted_networks", new String[] {"0.0.0.0/0"}));
        assertDenied(check(v4, "2001:db8:1::1", "user@elsewhere.example"));
        assertEquals(Outcome.RELAY, check(v4, "203.0.113.200", "user@elsewhere.example").outcome());
    }

    @Test
    public void oddPrefixLengthsMatchBitByBit() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("trusted_networks", new String[] {"10.1.2.64/27", "2001:db8::/33"}));
        assertEquals(Outcome.RELAY, check(policy, "10.1.2.95", "u@x.example").outcome());
        assertDenied(check(policy, "10.1.2.96", "u@x.example"));
        assertDenied(check(policy, "10.1.2.63", "u@x.example"));
        assertEquals(Outcome.RELAY, check(policy, "2001:db8:7fff::1", "u@x.example").outcome());
        assertDenied(check(policy, "2001:db8:8000::1", "u@x.example"));
    }

    @Test
    public void badEntriesAreLoggedAtErrorAndSkippedAndTheRestStillApplies() throws Exception {
        ConfiguredRelayPolicy policy = new ConfiguredRelayPolicy();
        String log = logOf(() -> policy.configure(config(
                "local_domains", new String[] {"good.example", "bad domain!", "[127.0.0.1]"},
                "trusted_networks", new String[] {"10.0.0.0/33", "192.0.2.0/24", "localhost", "10.0.0.0/x", "fe80::1%eth0"})));
        assertTrue(log, log.contains("ERROR") && log.contains("'10.0.0.0/33'"));
        assertTrue(log, log.contains("'localhost'"));
        assertTrue(log, log.contains("'10.0.0.0/x'"));
        assertTrue(log, log.contains("'fe80::1%eth0'"));
        assertTrue(log, log.contains("'bad domain!'"));
        assertTrue(log, log.contains("'[127.0.0.1]'"));
        // The good entries apply; the bad network trusts nobody (fail closed).
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@good.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.10", "user@elsewhere.example").outcome());
        assertDenied(check(policy, "10.0.0.1", "user@elsewhere.example"));
        assertDenied(check(policy, "127.0.0.1", "user@elsewhere.example"));
        // An address literal listed as a "local domain" does not make literals local.
        assertDenied(check(policy, UNTRUSTED, "user@[127.0.0.1]"));
    }

    @Test
    public void hostBitsAreIgnoredWithAWarning() throws Exception {
        ConfiguredRelayPolicy policy = new ConfiguredRelayPolicy();
        String log = logOf(() -> policy.configure(config("trusted_networks", new String[] {"10.1.2.3/8"})));
        assertTrue(log, log.contains("WARN") && log.contains("10.1.2.3/8"));
        assertEquals(Outcome.RELAY, check(policy, "10.200.0.1", "user@elsewhere.example").outcome());
    }

    @Test
    public void listsGivenAsOneCommaSeparatedStringAreSplit() throws Exception {
        // What a plain etc/org.postern.router.cfg line "local.domains = a.example, b.example" gives.
        ConfiguredRelayPolicy policy = policy(config(
                "local_domains", new String[] {"a.example, b.example"},
                "trusted_networks", new String[] {"192.0.2.0/24,2001:db8::/32"}));
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@a.example").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user@b.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.1", "user@x.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "2001:db8::1", "user@x.example").outcome());
    }

    @Test
    public void authenticatedSessionsRelay() throws Exception {
        ConfiguredRelayPolicy policy = policy(config());
        assertEquals(Outcome.RELAY, check(policy, session(UNTRUSTED, "alice"), "bob@elsewhere.example").outcome());
        assertDenied(check(policy, session(UNTRUSTED, null), "bob@elsewhere.example"));
        assertDenied(check(policy, session(UNTRUSTED, ""), "bob@elsewhere.example"));
    }

    @Test
    public void modifiedConfigurationAppliesToTheNextCheck() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"old.example"},
                "trusted_networks", new String[] {"192.0.2.0/24"}));
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "u@old.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.5", "u@x.example").outcome());

        policy.configure(config("local_domains", new String[] {"new.example"},
                "relay_domains", new String[] {"old.example"}));

        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "u@new.example").outcome());
        assertEquals(Outcome.RELAY, check(policy, UNTRUSTED, "u@old.example").outcome());
        assertDenied(check(policy, "192.0.2.5", "u@x.example"));
    }

    @Test
    public void theLocalPartNeverGrantsRelaying() throws Exception {
        ConfiguredRelayPolicy policy = policy(config());
        // The percent hack, a bang path and a quoted @ all belong to a local recipient at localhost:
        // local delivery, never a relay to evil.example.
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "user%evil.example@localhost").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "evil.example!user@localhost").outcome());
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "\"user@evil.example\"@localhost").outcome());
        // And the other way round: a local domain in the local part does not make a foreign recipient local.
        assertDenied(check(policy, UNTRUSTED, "user%localhost@evil.example"));
        assertDenied(check(policy, UNTRUSTED, "\"user@localhost\"@evil.example"));
    }

    @Test
    public void addressLiteralsAreNeverLocalByLiteral() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("trusted_networks", new String[] {"192.0.2.0/24"}));
        assertDenied(check(policy, UNTRUSTED, "user@[127.0.0.1]"));
        assertDenied(check(policy, UNTRUSTED, "user@[IPv6:::1]"));
        // A trusted client may relay to a literal like to any other destination.
        assertEquals(Outcome.RELAY, check(policy, "192.0.2.1", "user@[127.0.0.1]").outcome());
    }

    @Test
    public void beforeActivationEverythingIsRefused() throws Exception {
        assertDenied(check(new ConfiguredRelayPolicy(), UNTRUSTED, "user@localhost"));
    }

    // ---- the mailbox table

    /** A mailbox service knowing these local parts; it records who was asked. */
    private static final class KnownMailboxes implements Mailboxes {
        final java.util.List<String> asked = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final java.util.Set<String> users;

        KnownMailboxes(String... users) {
            this.users = java.util.Set.of(users);
        }

        @Override
        public CompletionStage<Boolean> exists(MailAddress address) {
            asked.add(address.toString());
            return CompletableFuture.supplyAsync(() -> users.contains(address.localPart().toLowerCase()));
        }
    }

    /** Waits for an answer that may come from another thread. */
    private static RelayDecision await(ConfiguredRelayPolicy policy, String recipient) throws Exception {
        return policy.check(session(UNTRUSTED, null), MailAddress.parse(recipient)).toCompletableFuture()
                .get(10, java.util.concurrent.TimeUnit.SECONDS);
    }

    @Test
    public void unknownLocalUsersAreRefusedAtRcpt() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"example.org"},
                "relay_domains", new String[] {"backup.example"}));
        KnownMailboxes mailboxes = new KnownMailboxes("alice");
        policy.mailboxes = mailboxes;
        assertEquals(Outcome.LOCAL, await(policy, "alice@example.org").outcome());
        RelayDecision unknown = await(policy, "mallory@Example.ORG");
        assertEquals(Outcome.DENY, unknown.outcome());
        assertEquals(550, unknown.code());
        assertEquals("5.1.1", unknown.enhancedStatus());
        assertEquals("User unknown in local recipient table", unknown.text());
        // Relay domains and relaying are not the mailbox table's business.
        assertEquals(Outcome.RELAY, await(policy, "anyone@backup.example").outcome());
        assertDenied(await(policy, "anyone@elsewhere.example"));
        assertEquals(java.util.List.of("alice@example.org", "mallory@Example.ORG"), mailboxes.asked);
    }

    @Test
    public void postmasterIsAlwaysAccepted() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"example.org"}));
        KnownMailboxes mailboxes = new KnownMailboxes();
        policy.mailboxes = mailboxes;
        assertEquals(Outcome.LOCAL, await(policy, "postmaster").outcome());
        assertEquals(Outcome.LOCAL, await(policy, "PostMaster@example.org").outcome());
        assertEquals(Outcome.DENY, await(policy, "root@example.org").outcome());
        assertEquals(java.util.List.of("root@example.org"), mailboxes.asked);
    }

    @Test
    public void withoutAMailboxServiceEveryLocalUserIsAccepted() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"example.org"}));
        policy.mailboxes = new KnownMailboxes();
        assertEquals(Outcome.DENY, await(policy, "nobody@example.org").outcome());
        policy.mailboxes = null; // the service went away
        assertEquals(Outcome.LOCAL, check(policy, UNTRUSTED, "nobody@example.org").outcome());
    }

    private static void assertTryLater(RelayDecision decision) {
        assertEquals(Outcome.DENY, decision.outcome());
        assertEquals(451, decision.code());
        assertEquals("4.3.0", decision.enhancedStatus());
        assertEquals("Recipient lookup failed, try again later", decision.text());
    }

    @Test
    public void aFailingMailboxLookupIsATemporaryRefusal() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"example.org"}));
        policy.mailboxes = address -> CompletableFuture.failedFuture(new IllegalStateException("LDAP down"));
        String log = logOf(() -> {
            try {
                assertTryLater(await(policy, "alice@example.org"));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertTrue(log, log.contains("mailbox lookup for <alice@example.org> failed") && log.contains("LDAP down"));
        policy.mailboxes = address -> {
            throw new IllegalStateException("bug");
        };
        assertTryLater(await(policy, "alice@example.org"));
        policy.mailboxes = address -> null;
        assertTryLater(await(policy, "alice@example.org"));
        policy.mailboxes = address -> CompletableFuture.completedFuture(null);
        assertTryLater(await(policy, "alice@example.org"));
    }

    @Test
    public void aSlowMailboxLookupTimesOut() throws Exception {
        ConfiguredRelayPolicy policy = policy(config("local_domains", new String[] {"example.org"},
                "mailbox_timeout", 100L));
        CompletableFuture<Boolean> never = new CompletableFuture<>();
        policy.mailboxes = address -> never;
        long start = System.nanoTime();
        String log = logOf(() -> {
            try {
                assertTryLater(await(policy, "alice@example.org"));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        long ms = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(ms + " ms", ms >= 100 && ms < 5000);
        assertTrue(log, log.contains("timed out after 100 ms"));
        assertTrue("the service's own future is left alone", !never.isDone());
    }
}
