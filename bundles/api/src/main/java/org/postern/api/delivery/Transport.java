package org.postern.api.delivery;

import java.util.List;
import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Delivers one queue entry's recipients over one route: SMTP to a next hop, LMTP, Maildir, ...
 * Registered as a service with {@value #NAME_PROPERTY} naming it; a {@code Route} names the transport it needs.
 *
 * <p>Called by the queue manager off the event loop, once per entry and route. The stage completes with a
 * result for every recipient of the request, in any order; it completes exceptionally only for a fault of
 * the transport itself, which the queue manager treats as a temporary failure of every recipient.
 */
@ConsumerType
public interface Transport {

    /** Service property: the transport's name, e.g. {@code smtp}. */
    String NAME_PROPERTY = "postern.transport";

    CompletionStage<List<DeliveryResult>> deliver(DeliveryRequest request);
}
