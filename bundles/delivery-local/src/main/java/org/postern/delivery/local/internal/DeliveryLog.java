package org.postern.delivery.local.internal;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.time.Instant;

import org.postern.api.delivery.DeliveryResult;
import org.slf4j.Logger;

/** The one line per recipient that operators grep, in Postfix's words (sent, deferred, bounced). */
final class DeliveryLog {

    private DeliveryLog() {
    }

    /**
     * Logs one result.
     *
     * @param finalAddress the address mail was delivered as, when an alias changed it; else null
     */
    static void log(Logger log, String queueId, DeliveryResult result, String finalAddress, String relay,
                    Instant receivedAt) {
        String word = switch (result.outcome()) {
            case DELIVERED -> "sent";
            case DEFERRED -> "deferred";
            case FAILED -> "bounced";
        };
        String to = finalAddress == null
                ? "to=<" + result.recipient().address() + ">"
                : "to=<" + finalAddress + ">, orig_to=<" + result.recipient().address() + ">";
        log.info("{}: {}, relay={}, delay={}, dsn={}, status={} ({})", queueId, to, relay, delay(receivedAt),
                result.status(), word, result.diagnostic());
    }

    /** Seconds since the message arrived, as Postfix writes them: 0.12, 3.4, 61. */
    static String delay(Instant since) {
        long millis = Math.max(0, Duration.between(since, Instant.now()).toMillis());
        return BigDecimal.valueOf(millis, 3).setScale(2, RoundingMode.HALF_UP).stripTrailingZeros().toPlainString();
    }
}
