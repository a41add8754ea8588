package org.postern.api.mail;

/** The RFC 3461 RET parameter: how much of the message a DSN returns. */
public enum Ret {
    FULL, HDRS
}
