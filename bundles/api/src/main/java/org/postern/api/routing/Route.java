package org.postern.api.routing;

import java.util.List;
import java.util.Objects;

/**
 * How to deliver to a set of recipients that share a destination.
 *
 * @param transport the name of the {@code Transport} service to use ({@code smtp}, {@code lmtp}, {@code maildir})
 * @param destination the key under which concurrency is limited and connections are cached
 *                    (a domain, a relay host, or a local mailbox store)
 * @param nextHops hosts to try in order (empty for local transports)
 * @param tls the TLS policy towards these hosts
 * @param credentialsId the name of client AUTH credentials in the delivery configuration, or null
 */
public record Route(String transport, String destination, List<NextHop> nextHops, TlsPolicy tls, String credentialsId) {

    public Route {
        Objects.requireNonNull(transport, "transport");
        Objects.requireNonNull(destination, "destination");
        nextHops = List.copyOf(nextHops);
        Objects.requireNonNull(tls, "tls");
    }
}
