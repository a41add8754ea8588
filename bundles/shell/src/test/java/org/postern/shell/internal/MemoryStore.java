package org.postern.shell.internal;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueEntry.State;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

/**
 * A queue in memory with the operator actions as the file queue has them (hold, release, requeue, delete
 * answer false only for an unknown id), for the console commands' tests. Delivery methods are not needed.
 */
class MemoryStore implements QueueStore {

    static final Instant NOW = Instant.parse("2025-03-04T05:06:07Z");
    static final ClientInfo CLIENT = new ClientInfo("192.0.2.1", "client.example", "helo.example", "ESMTPS",
            "TLSv1.3", "TLS_AES_128_GCM_SHA256", null, "mx");

    final Map<String, QueueEntry> entries = new LinkedHashMap<>();
    final Map<String, byte[]> contents = new LinkedHashMap<>();
    final List<String> calls = new ArrayList<>();

    MemoryStore add(QueueEntry entry, String message) {
        entries.put(entry.id(), entry);
        contents.put(entry.id(), message.getBytes(StandardCharsets.UTF_8));
        return this;
    }

    MemoryStore add(String id, State state, String... recipients) {
        return add(entry(id, state, NOW, recipients), "Subject: " + id + "\r\n\r\nbody\r\n");
    }

    static QueueEntry entry(String id, State state, Instant arrival, String... recipients) {
        List<Recipient> rcpts = java.util.Arrays.stream(recipients).map(r -> Recipient.of(MailAddress.parse(r))).toList();
        Envelope envelope = new Envelope(MailAddress.parse("alice@example.org"), rcpts, null, null, BodyType.SEVEN_BIT,
                false, CLIENT, arrival);
        boolean held = state == State.HELD || state == State.QUARANTINED;
        return new QueueEntry(id, envelope, 100, List.of(), state, rcpts.stream().map(RecipientStatus::pending).toList(),
                state == State.DEFERRED ? 2 : 0, held ? null : arrival.plusSeconds(600), null,
                held ? "held by operator" : null);
    }

    private static QueueEntry with(QueueEntry e, State state, Instant next, String reason) {
        return new QueueEntry(e.id(), e.envelope(), e.size(), e.addedHeaders(), state, e.recipients(), e.attempts(), next,
                e.lastError(), reason);
    }

    @Override
    public Optional<QueueEntry> get(String id) {
        return Optional.ofNullable(entries.get(id));
    }

    @Override
    public MessageContent content(String id) throws QueueException {
        byte[] bytes = contents.get(id);
        if (bytes == null) {
            throw new QueueException("no such entry: " + id);
        }
        return new MessageContent() {
            @Override
            public long size() {
                return bytes.length;
            }

            @Override
            public InputStream openStream() {
                return new ByteArrayInputStream(bytes);
            }
        };
    }

    @Override
    public List<QueueEntry> list(QueueQuery query) {
        var stream = entries.values().stream().filter(query::matches).skip(query.offset());
        return (query.limit() > 0 ? stream.limit(query.limit()) : stream).toList();
    }

    @Override
    public QueueStats stats() {
        Map<State, Long> byState = new EnumMap<>(State.class);
        long size = 0;
        Instant oldest = null;
        for (QueueEntry e : entries.values()) {
            byState.merge(e.state(), 1L, Long::sum);
            size += e.size();
            if (oldest == null || e.envelope().receivedAt().isBefore(oldest)) {
                oldest = e.envelope().receivedAt();
            }
        }
        return new QueueStats(byState, size, oldest);
    }

    @Override
    public boolean hold(String id) {
        calls.add("hold " + id);
        QueueEntry e = entries.get(id);
        if (e != null && e.state() != State.HELD && e.state() != State.QUARANTINED) {
            entries.put(id, with(e, State.HELD, null, "held by operator"));
        }
        return e != null;
    }

    @Override
    public boolean release(String id) {
        calls.add("release " + id);
        QueueEntry e = entries.get(id);
        if (e != null && (e.state() == State.HELD || e.state() == State.QUARANTINED)) {
            entries.put(id, with(e, e.attempts() > 0 ? State.DEFERRED : State.QUEUED, NOW, null));
        }
        return e != null;
    }

    @Override
    public boolean requeue(String id) {
        calls.add("requeue " + id);
        QueueEntry e = entries.get(id);
        if (e != null && (e.state() == State.QUEUED || e.state() == State.DEFERRED)) {
            entries.put(id, with(e, e.state(), NOW, e.reason()));
        }
        return e != null;
    }

    @Override
    public boolean delete(String id) {
        calls.add("delete " + id);
        contents.remove(id);
        return entries.remove(id) != null;
    }

    @Override
    public PendingMessage begin() {
        throw new UnsupportedOperationException();
    }

    @Override
    public List<QueueEntry> lease(Instant now, int max, Duration leaseTime) {
        throw new UnsupportedOperationException();
    }

    @Override
    public void record(String id, List<RecipientStatus> outcomes, Instant nextAttempt) {
        throw new UnsupportedOperationException();
    }
}
