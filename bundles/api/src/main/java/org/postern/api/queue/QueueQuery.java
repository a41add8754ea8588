package org.postern.api.queue;

/**
 * Which entries {@link QueueStore#list} returns. Null fields match everything.
 *
 * @param state only entries in this state
 * @param sender only entries whose sender contains this text (case-insensitive)
 * @param recipient only entries with a recipient containing this text (case-insensitive)
 * @param offset skip this many matching entries (oldest first)
 * @param limit at most this many; 0 or less for no limit
 */
public record QueueQuery(QueueEntry.State state, String sender, String recipient, int offset, int limit) {

    public static final QueueQuery ALL = new QueueQuery(null, null, null, 0, 0);

    public boolean matches(QueueEntry entry) {
        if (state != null && entry.state() != state) {
            return false;
        }
        if (sender != null && !entry.envelope().sender().toString().toLowerCase().contains(sender.toLowerCase())) {
            return false;
        }
        return recipient == null || entry.envelope().recipients().stream()
                .anyMatch(r -> r.address().toString().toLowerCase().contains(recipient.toLowerCase()));
    }
}
