package org.postern.queue.manager.internal;

import java.time.Duration;

/**
 * One configuration of the queue manager, checked once: values out of range are brought into it, so that a
 * typo in a .cfg slows the queue down instead of stopping it.
 *
 * @param workers deliveries running at once, in total
 * @param perDestination deliveries running at once to one destination
 * @param scanInterval time between two looks for due entries
 * @param leaseTime how long a leased entry is ours before the store gives it out again
 * @param retry backoff, lifetime and delay warnings
 */
record Settings(int workers, int perDestination, Duration scanInterval, Duration leaseTime, RetryPolicy retry) {

    static Settings of(QueueManager.Config config) {
        return new Settings(
                Math.max(1, config.workers()),
                Math.max(1, config.per_destination()),
                Duration.ofSeconds(Math.max(1, config.scan_interval())),
                Duration.ofSeconds(Math.max(1, config.lease_time())),
                new RetryPolicy(
                        Duration.ofSeconds(config.minimal_backoff()),
                        Duration.ofSeconds(config.maximal_backoff()),
                        Duration.ofSeconds(config.maximal_lifetime()),
                        Duration.ofSeconds(config.bounce_warning())));
    }
}
