package org.postern.api.filter;

import java.util.List;
import java.util.Map;

import org.osgi.annotation.versioning.ProviderType;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;

/**
 * One mail transaction (MAIL to end of data or RSET) as filters see it. Implemented by the listener.
 */
@ProviderType
public interface TransactionContext {

    SessionContext session();

    /** The reverse path given at MAIL. */
    MailAddress sender();

    /** The recipients accepted so far, in order. */
    List<Recipient> recipients();

    /** The SIZE parameter of MAIL, or -1. */
    long declaredSize();

    BodyType body();

    boolean smtpUtf8();

    /** RFC 3461 ENVID, or null. */
    String envId();

    /** RFC 3461 RET, or null. */
    Ret ret();

    /**
     * Attributes filters keep for this transaction only (thread-safe), e.g. what a check learned at MAIL
     * for use at end of data. Cleared by RSET and at the end of the transaction.
     */
    Map<String, Object> notes();
}
