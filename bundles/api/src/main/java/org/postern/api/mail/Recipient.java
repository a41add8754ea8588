package org.postern.api.mail;

import java.util.Objects;
import java.util.Set;

/**
 * One envelope recipient with its RFC 3461 DSN parameters.
 *
 * @param address the forward path
 * @param notifyOn NOTIFY values; empty when the client gave none (then failures and delays are reported)
 * @param orcpt the ORCPT parameter as given ({@code addr-type;xtext}), or null
 */
public record Recipient(MailAddress address, Set<Notify> notifyOn, String orcpt) {

    public Recipient {
        Objects.requireNonNull(address, "address");
        notifyOn = Set.copyOf(notifyOn);
    }

    public static Recipient of(MailAddress address) {
        return new Recipient(address, Set.of(), null);
    }

    /** Whether the sender wants to hear of this kind of event for this recipient (RFC 3461 defaults). */
    public boolean wants(Notify event) {
        if (notifyOn.isEmpty()) {
            return event == Notify.FAILURE || event == Notify.DELAY;
        }
        return notifyOn.contains(event);
    }
}
