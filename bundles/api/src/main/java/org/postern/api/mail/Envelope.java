package org.postern.api.mail;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * Everything about a message that is not its content: who sent it to whom, with which SMTP parameters,
 * from where and how. Immutable; built by the listener, stored with the message by the QueueStore,
 * read by routing, delivery and bounces.
 *
 * @param sender the reverse path, {@link MailAddress#NULL_SENDER} for bounces
 * @param recipients the accepted forward paths, in the order given, at least one
 * @param envId the RFC 3461 ENVID, or null
 * @param ret the RFC 3461 RET, or null
 * @param body the BODY parameter ({@link BodyType#SEVEN_BIT} when none was given)
 * @param smtpUtf8 whether the client asked for SMTPUTF8
 * @param client where the message came from and how
 * @param receivedAt when the transaction ended (end of data)
 */
public record Envelope(MailAddress sender, List<Recipient> recipients, String envId, Ret ret, BodyType body,
                       boolean smtpUtf8, ClientInfo client, Instant receivedAt) {

    public Envelope {
        Objects.requireNonNull(sender, "sender");
        recipients = List.copyOf(recipients);
        if (recipients.isEmpty()) {
            throw new IllegalArgumentException("an envelope needs at least one recipient");
        }
        Objects.requireNonNull(body, "body");
        Objects.requireNonNull(client, "client");
        Objects.requireNonNull(receivedAt, "receivedAt");
    }

    /** The same envelope with other recipients, e.g. the ones still to deliver. */
    public Envelope withRecipients(List<Recipient> others) {
        return new Envelope(sender, others, envId, ret, body, smtpUtf8, client, receivedAt);
    }
}
