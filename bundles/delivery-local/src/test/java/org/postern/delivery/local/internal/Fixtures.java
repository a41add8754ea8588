package org.postern.delivery.local.internal;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;

/** Builders for the tests: configurations as ConfigAdmin gives them, and delivery requests. */
final class Fixtures {

    static final Header RECEIVED = new Header("Received",
            "from client.example.com ([192.0.2.7]) by mx.example.org (Postern) with ESMTP id 4QTEST");

    private Fixtures() {
    }

    /** An instance of a config annotation: the given values, the annotation's defaults for the rest. */
    @SuppressWarnings("unchecked")
    static <T> T config(Class<T> type, Map<String, Object> values) {
        return (T) Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
            if (values.containsKey(method.getName())) {
                return values.get(method.getName());
            }
            if (method.getDefaultValue() != null) {
                return method.getDefaultValue();
            }
            return switch (method.getName()) {
                case "annotationType" -> type;
                case "toString" -> type.getSimpleName() + values;
                case "hashCode" -> values.hashCode();
                case "equals" -> proxy == args[0];
                default -> throw new UnsupportedOperationException(method.getName());
            };
        });
    }

    static LocalMailboxes mailboxes(List<String> users, List<String> aliases) {
        LocalMailboxes mailboxes = new LocalMailboxes();
        mailboxes.configure(config(LocalMailboxes.Config.class, Map.of(
                "mailboxes", users.toArray(new String[0]), "aliases", aliases.toArray(new String[0]))));
        return mailboxes;
    }

    static MessageContent content(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
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

    static DeliveryRequest request(String transport, String sender, String content, String... recipients) {
        return request(transport, sender, content(content), recipients);
    }

    static DeliveryRequest request(String transport, String sender, MessageContent content, String... recipients) {
        List<Recipient> rcpts = Arrays.stream(recipients).map(r -> Recipient.of(MailAddress.parse(r))).toList();
        ClientInfo client = new ClientInfo("192.0.2.7", null, "client.example.com", "ESMTP", null, null, null, null);
        Envelope envelope = new Envelope(MailAddress.parse(sender), rcpts, null, null, BodyType.EIGHT_BIT_MIME,
                false, client, Instant.now());
        QueueEntry entry = new QueueEntry("4QTEST", envelope, content.size(), List.of(RECEIVED),
                QueueEntry.State.ACTIVE, rcpts.stream().map(RecipientStatus::pending).toList(), 0, null, null, null);
        Route route = new Route(transport, "local", List.of(), TlsPolicy.NONE, null);
        return new DeliveryRequest(entry, rcpts, route, content);
    }

    /** The result for one recipient, which must be there exactly once. */
    static DeliveryResult resultFor(List<DeliveryResult> results, String address) {
        List<DeliveryResult> found = results.stream()
                .filter(r -> r.recipient().address().equals(MailAddress.parse(address))).toList();
        if (found.size() != 1) {
            throw new AssertionError("expected one result for " + address + " in " + results);
        }
        return found.get(0);
    }
}
