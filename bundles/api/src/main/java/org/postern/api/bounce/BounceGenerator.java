package org.postern.api.bounce;

import java.util.List;
import java.util.Optional;

import org.osgi.annotation.versioning.ConsumerType;
import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;

/**
 * Makes RFC 3464 delivery status notifications. Called by the queue manager off the event loop when
 * recipients fail for good, are delayed past the warning time, or (NOTIFY=SUCCESS) are relayed; the queue
 * manager stores the result as a new queue entry. It answers empty when no DSN is due (a null sender, or
 * NOTIFY=NEVER for every recipient).
 */
@ConsumerType
public interface BounceGenerator {

    enum Kind {
        FAILURE, DELAY, SUCCESS
    }

    /**
     * @param entry the original entry (envelope, headers, id)
     * @param content the original message, for RET=FULL or the headers
     * @param recipients the recipients to report, with their status and diagnostic
     */
    Optional<GeneratedMessage> generate(Kind kind, QueueEntry entry, MessageContent content,
                                        List<RecipientStatus> recipients);
}
