package org.postern.queue.manager.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import org.junit.Test;
import org.postern.api.mail.Envelope;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;

public class RetryPolicyTest {

    private static final Instant T0 = Instant.parse("2026-03-01T10:00:00Z");

    private static RetryPolicy postfix() {
        return Settings.of(Harness.config(Map.of())).retry();
    }

    private static QueueEntry entry(Instant receivedAt, int attempts, Instant nextAttempt) {
        Envelope envelope = Harness.envelope("a@example.org", receivedAt, "b@example.net");
        return new QueueEntry("ID", envelope, 10, List.of(), QueueEntry.State.ACTIVE,
                envelope.recipients().stream().map(RecipientStatus::pending).toList(), attempts, nextAttempt, null, null);
    }

    @Test
    public void defaultsArePostfixs() {
        RetryPolicy retry = postfix();
        assertEquals(Duration.ofSeconds(300), retry.minimalBackoff());
        assertEquals(Duration.ofSeconds(4000), retry.maximalBackoff());
        assertEquals(Duration.ofDays(5), retry.maximalLifetime());
        assertEquals(Duration.ofHours(4), retry.bounceWarning());
    }

    @Test
    public void backoffDoublesUpToTheMaximum() {
        RetryPolicy retry = postfix();
        long[] expected = {300, 600, 1200, 2400, 4000, 4000, 4000};
        for (int attempts = 0; attempts < expected.length; attempts++) {
            assertEquals(Duration.ofSeconds(expected[attempts]), retry.backoff(attempts));
        }
        assertEquals("no overflow after many attempts", Duration.ofSeconds(4000), retry.backoff(Integer.MAX_VALUE));
    }

    @Test
    public void outOfRangeValuesAreBroughtIntoRange() {
        RetryPolicy retry = new RetryPolicy(Duration.ZERO, Duration.ofSeconds(-5), Duration.ofSeconds(-1),
                Duration.ofSeconds(-1));
        assertEquals(Duration.ofSeconds(1), retry.backoff(0));
        assertEquals("maximum below minimum: the minimum", Duration.ofSeconds(1), retry.backoff(10));
        RetryPolicy inverted = new RetryPolicy(Duration.ofSeconds(600), Duration.ofSeconds(60), Duration.ofDays(1),
                Duration.ZERO);
        assertEquals(Duration.ofSeconds(600), inverted.backoff(3));

        Settings settings = Settings.of(Harness.config(Map.of("workers", 0, "per_destination", -3, "scan_interval", 0L)));
        assertEquals(1, settings.workers());
        assertEquals(1, settings.perDestination());
        assertEquals(Duration.ofSeconds(1), settings.scanInterval());
    }

    @Test
    public void anEntryExpiresAtItsLifetime() {
        RetryPolicy retry = postfix();
        Instant now = T0.plus(Duration.ofDays(5));
        assertTrue(retry.expired(entry(T0, 30, now), now));
        assertFalse(retry.expired(entry(T0.plusSeconds(1), 30, now), now));
    }

    @Test
    public void theDelayWarningIsDueAtTheFirstAttemptPastTheWarningTime() {
        RetryPolicy retry = postfix(); // warning at 4 h = 14400 s
        // Attempts at 12500 s (the 7th, scheduled by a 4000 s backoff after 8500 s) and 16500 s.
        Instant at12500 = T0.plusSeconds(12500);
        Instant at16500 = T0.plusSeconds(16500);
        assertFalse("before the warning time", retry.delayWarningDue(entry(T0, 6, at12500), at12500));
        assertTrue("first attempt after it", retry.delayWarningDue(entry(T0, 7, at16500), at16500));
        assertFalse("the next one", retry.delayWarningDue(entry(T0, 8, T0.plusSeconds(20500)), T0.plusSeconds(20500)));
        assertTrue("an entry never tried before (released from quarantine)",
                retry.delayWarningDue(entry(T0, 0, T0.plusSeconds(20000)), T0.plusSeconds(20000)));
        assertFalse("expired entries get a failure notice instead",
                retry.delayWarningDue(entry(T0, 40, T0.plus(Duration.ofDays(6))), T0.plus(Duration.ofDays(6))));
        RetryPolicy never = new RetryPolicy(Duration.ofSeconds(300), Duration.ofSeconds(4000), Duration.ofDays(5),
                Duration.ZERO);
        assertFalse("0 turns warnings off", never.delayWarningDue(entry(T0, 7, at16500), at16500));
    }
}
