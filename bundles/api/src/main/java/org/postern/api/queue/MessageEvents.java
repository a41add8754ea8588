package org.postern.api.queue;

/**
 * EventAdmin topics and property names for what happens to messages, so observers (metrics, Decanter,
 * audit) need no hook in the hot path. Events are posted asynchronously after the fact.
 */
public final class MessageEvents {

    public static final String TOPIC_PREFIX = "org/postern/message/";
    /** A message was committed to the queue. */
    public static final String QUEUED = TOPIC_PREFIX + "QUEUED";
    /** A recipient was delivered. */
    public static final String DELIVERED = TOPIC_PREFIX + "DELIVERED";
    /** A delivery attempt failed temporarily. */
    public static final String DEFERRED = TOPIC_PREFIX + "DEFERRED";
    /** A recipient failed for good and a DSN was made. */
    public static final String BOUNCED = TOPIC_PREFIX + "BOUNCED";
    /** A transaction or recipient was refused by the listener. */
    public static final String REJECTED = TOPIC_PREFIX + "REJECTED";

    public static final String QUEUE_ID = "queue.id";
    public static final String SENDER = "sender";
    public static final String RECIPIENTS = "recipients";
    public static final String SIZE = "size";
    public static final String CLIENT = "client";
    public static final String STATUS = "status";
    public static final String DIAGNOSTIC = "diagnostic";

    private MessageEvents() {
    }
}
