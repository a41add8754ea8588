package org.postern.smtp.internal;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;

import org.postern.api.mail.MessageContent;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

/** The part of a queue store the listener never calls: the test stores only receive messages. */
abstract class ReceiveOnlyStore implements QueueStore {

    @Override
    public Optional<QueueEntry> get(String id) {
        return Optional.empty();
    }

    @Override
    public MessageContent content(String id) {
        throw new UnsupportedOperationException();
    }

    @Override
    public List<QueueEntry> list(QueueQuery query) {
        return List.of();
    }

    @Override
    public QueueStats stats() {
        throw new UnsupportedOperationException();
    }

    @Override
    public List<QueueEntry> lease(Instant now, int max, Duration leaseTime) {
        return List.of();
    }

    @Override
    public void record(String id, List<RecipientStatus> outcomes, Instant nextAttempt) {
    }

    @Override
    public boolean hold(String id) {
        return false;
    }

    @Override
    public boolean release(String id) {
        return false;
    }

    @Override
    public boolean requeue(String id) {
        return false;
    }

    @Override
    public boolean delete(String id) {
        return false;
    }
}
