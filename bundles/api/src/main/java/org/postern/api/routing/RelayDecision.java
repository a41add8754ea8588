package org.postern.api.routing;

import java.util.Objects;

/**
 * The answer of a {@link RelayPolicy}.
 *
 * @param outcome what to do with the recipient
 * @param code the SMTP reply code when refused (e.g. 554, 550, 451), else 0
 * @param enhancedStatus the RFC 3463 status when refused (e.g. {@code 5.7.1}), else null
 * @param text the reply text when refused, else null
 */
public record RelayDecision(Outcome outcome, int code, String enhancedStatus, String text) {

    public enum Outcome {
        /** The recipient is in a domain this node delivers locally. */
        LOCAL,
        /** The recipient is elsewhere and this client may relay to it (relay domain, trusted network, AUTH). */
        RELAY,
        /** Refused. */
        DENY
    }

    private static final RelayDecision LOCAL = new RelayDecision(Outcome.LOCAL, 0, null, null);
    private static final RelayDecision RELAY = new RelayDecision(Outcome.RELAY, 0, null, null);

    public RelayDecision {
        Objects.requireNonNull(outcome, "outcome");
        if (outcome == Outcome.DENY && (code < 400 || code > 599 || enhancedStatus == null || text == null)) {
            throw new IllegalArgumentException("a denial needs a 4xx/5xx code, a status and a text");
        }
    }

    public static RelayDecision local() {
        return LOCAL;
    }

    public static RelayDecision relay() {
        return RELAY;
    }

    /** The classic refusal: 554 5.7.1 Relay access denied. */
    public static RelayDecision relayDenied() {
        return new RelayDecision(Outcome.DENY, 554, "5.7.1", "Relay access denied");
    }

    public static RelayDecision deny(int code, String enhancedStatus, String text) {
        return new RelayDecision(Outcome.DENY, code, enhancedStatus, text);
    }
}
