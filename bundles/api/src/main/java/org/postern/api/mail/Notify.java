package org.postern.api.mail;

/** The RFC 3461 NOTIFY values of a recipient: when its sender wants a delivery status notification. */
public enum Notify {
    NEVER, SUCCESS, FAILURE, DELAY
}
