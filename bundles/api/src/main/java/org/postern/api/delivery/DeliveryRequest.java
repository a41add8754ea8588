package org.postern.api.delivery;

import java.util.List;
import java.util.Objects;

import org.postern.api.mail.Recipient;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueEntry;
import org.postern.api.routing.Route;

/**
 * What a transport delivers.
 *
 * @param entry the queue entry (envelope, added headers to prepend)
 * @param recipients the recipients to deliver now, all sharing {@code route}
 * @param route how to reach them
 * @param content the message bytes, without the added headers
 */
public record DeliveryRequest(QueueEntry entry, List<Recipient> recipients, Route route, MessageContent content) {

    public DeliveryRequest {
        Objects.requireNonNull(entry, "entry");
        recipients = List.copyOf(recipients);
        Objects.requireNonNull(route, "route");
        Objects.requireNonNull(content, "content");
    }
}
