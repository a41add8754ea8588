package org.postern.api.filter;

import java.util.Objects;

/**
 * What a filter decided at one stage. Immutable. What a check found is the filter's business; what to do
 * about it (reject, tempfail, quarantine, tag only) should be the filter instance's configuration.
 *
 * <p>A verdict that ends the stage with an error carries an SMTP reply code (5xx for {@link Action#REJECT},
 * 4xx for {@link Action#TEMPFAIL}), an RFC 3463 enhanced status code and a one-line text; defaults are
 * filled in when the filter gives none. {@link #disconnect()} closes the session after the reply (421 is
 * then sent by the listener for temporary failures).
 */
public final class Verdict {

    /** What the listener does with the stage. */
    public enum Action {
        /** No opinion: ask the next filter; after the last one the stage succeeds. */
        CONTINUE,
        /** Succeed the stage now, skipping the filters after this one. */
        ACCEPT,
        /** Refuse with a permanent (5xx) reply. */
        REJECT,
        /** Refuse with a temporary (4xx) reply. */
        TEMPFAIL,
        /** Answer success but throw the message away (only meaningful at end of data; elsewhere as ACCEPT). */
        DISCARD,
        /** Store the message but hold it for an operator instead of delivering it. */
        QUARANTINE
    }

    private static final Verdict PROCEED = new Verdict(Action.CONTINUE, 0, null, null, false);
    private static final Verdict ACCEPT = new Verdict(Action.ACCEPT, 0, null, null, false);
    private static final Verdict DISCARD = new Verdict(Action.DISCARD, 0, null, null, false);

    private final Action action;
    private final int code;
    private final String enhancedStatus;
    private final String text;
    private final boolean disconnect;

    private Verdict(Action action, int code, String enhancedStatus, String text, boolean disconnect) {
        this.action = action;
        this.code = code;
        this.enhancedStatus = enhancedStatus;
        this.text = text;
        this.disconnect = disconnect;
    }

    public static Verdict proceed() {
        return PROCEED;
    }

    public static Verdict accept() {
        return ACCEPT;
    }

    public static Verdict discard() {
        return DISCARD;
    }

    /** A permanent refusal: 550 unless {@link #withCode(int)} says otherwise. */
    public static Verdict reject(String enhancedStatus, String text) {
        return new Verdict(Action.REJECT, 550, checkStatus(enhancedStatus, '5'), checkText(text), false);
    }

    /** A temporary refusal: 451 unless {@link #withCode(int)} says otherwise. */
    public static Verdict tempfail(String enhancedStatus, String text) {
        return new Verdict(Action.TEMPFAIL, 451, checkStatus(enhancedStatus, '4'), checkText(text), false);
    }

    /** Keep the message but hold it for an operator; {@code reason} is recorded with the entry. */
    public static Verdict quarantine(String reason) {
        return new Verdict(Action.QUARANTINE, 0, null, checkText(reason), false);
    }

    /** The same verdict with another reply code of the same class (e.g. 554 or 450). */
    public Verdict withCode(int newCode) {
        char expected = action == Action.REJECT ? '5' : action == Action.TEMPFAIL ? '4' : 0;
        if (expected == 0 || newCode < 400 || newCode > 599 || String.valueOf(newCode).charAt(0) != expected) {
            throw new IllegalArgumentException("reply code " + newCode + " does not fit " + action);
        }
        return new Verdict(action, newCode, enhancedStatus, text, disconnect);
    }

    /** The same verdict, and close the session after replying. */
    public Verdict withDisconnect() {
        return new Verdict(action, code, enhancedStatus, text, true);
    }

    private static String checkStatus(String status, char klass) {
        Objects.requireNonNull(status, "enhancedStatus");
        if (!status.matches("[245]\\.\\d{1,3}\\.\\d{1,3}") || status.charAt(0) != klass) {
            throw new IllegalArgumentException("bad enhanced status code " + status + " (want " + klass + ".x.y)");
        }
        return status;
    }

    private static String checkText(String text) {
        Objects.requireNonNull(text, "text");
        if (text.indexOf('\r') >= 0 || text.indexOf('\n') >= 0) {
            throw new IllegalArgumentException("verdict text must be one line");
        }
        return text;
    }

    public Action action() {
        return action;
    }

    /** The SMTP reply code for REJECT and TEMPFAIL; 0 otherwise. */
    public int code() {
        return code;
    }

    /** The RFC 3463 status for REJECT and TEMPFAIL; null otherwise. */
    public String enhancedStatus() {
        return enhancedStatus;
    }

    /** The reply text, or the quarantine reason; null otherwise. */
    public String text() {
        return text;
    }

    public boolean disconnect() {
        return disconnect;
    }

    @Override
    public String toString() {
        return action + (code != 0 ? " " + code + " " + enhancedStatus + " " + text : "")
                + (disconnect ? " (disconnect)" : "");
    }
}
