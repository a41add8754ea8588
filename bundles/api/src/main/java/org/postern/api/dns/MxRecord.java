package org.postern.api.dns;

import java.util.Objects;

/**
 * One MX record.
 *
 * @param preference lower is preferred
 * @param exchange the host name without the trailing dot; {@code ""} for a null MX (RFC 7505)
 * @param ttl seconds the answer may be cached
 */
public record MxRecord(int preference, String exchange, long ttl) {

    public MxRecord {
        Objects.requireNonNull(exchange, "exchange");
    }

    public boolean isNullMx() {
        return exchange.isEmpty();
    }
}
