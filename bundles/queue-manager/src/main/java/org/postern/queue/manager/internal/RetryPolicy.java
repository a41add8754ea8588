package org.postern.queue.manager.internal;

import java.time.Duration;
import java.time.Instant;

import org.postern.api.queue.QueueEntry;

/**
 * When to try again and when to give up, as Postfix does it: the delay after a temporary failure starts at
 * {@code minimalBackoff} and doubles with each attempt up to {@code maximalBackoff}; an entry whose age has
 * reached {@code maximalLifetime} when an attempt fails temporarily is returned to its sender.
 *
 * @param minimalBackoff the delay after the first failed attempt (at least one second)
 * @param maximalBackoff the longest delay between attempts (not below the minimal one)
 * @param maximalLifetime how long an entry may stay in the queue
 * @param bounceWarning after how long in the queue the sender is told of the delay; zero for never
 */
record RetryPolicy(Duration minimalBackoff, Duration maximalBackoff, Duration maximalLifetime, Duration bounceWarning) {

    RetryPolicy {
        if (minimalBackoff.compareTo(Duration.ofSeconds(1)) < 0) {
            minimalBackoff = Duration.ofSeconds(1);
        }
        if (maximalBackoff.compareTo(minimalBackoff) < 0) {
            maximalBackoff = minimalBackoff;
        }
        if (maximalLifetime.isNegative()) {
            maximalLifetime = Duration.ZERO;
        }
        if (bounceWarning.isNegative()) {
            bounceWarning = Duration.ZERO;
        }
    }

    /** The delay after a failed attempt of an entry that had made {@code attempts} attempts before it. */
    Duration backoff(int attempts) {
        Duration delay = minimalBackoff;
        // At most ~40 doublings before the cap: the minimum is at least a second.
        for (int i = 0; i < attempts && delay.compareTo(maximalBackoff) < 0; i++) {
            delay = delay.multipliedBy(2);
        }
        return delay.compareTo(maximalBackoff) > 0 ? maximalBackoff : delay;
    }

    /** Whether the entry has been in the queue for its maximal lifetime. */
    boolean expired(QueueEntry entry, Instant now) {
        return !now.isBefore(entry.envelope().receivedAt().plus(maximalLifetime));
    }

    /**
     * Whether an attempt at {@code now} that leaves recipients deferred should tell the sender of the delay:
     * the first attempt after the warning time. The store keeps no "warned" mark, so the previous attempt is
     * worked out from the schedule (the leased entry's next attempt minus the backoff that set it); an
     * operator's flush moves the schedule and may, near the warning time, bring a second warning.
     */
    boolean delayWarningDue(QueueEntry entry, Instant now) {
        if (bounceWarning.isZero()) {
            return false;
        }
        Instant threshold = entry.envelope().receivedAt().plus(bounceWarning);
        if (now.isBefore(threshold) || expired(entry, now)) {
            return false;
        }
        if (entry.attempts() == 0 || entry.nextAttempt() == null) {
            return true;
        }
        Instant previous = entry.nextAttempt().minus(backoff(entry.attempts() - 1));
        return previous.isBefore(threshold);
    }
}
