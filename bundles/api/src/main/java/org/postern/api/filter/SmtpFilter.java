package org.postern.api.filter;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ConsumerType;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;

/**
 * A check or action at one or more stages of an SMTP session, registered as an OSGi service (whiteboard).
 *
 * <p><b>Who calls it:</b> every listener, once per stage, in a chain sorted by {@code service.ranking},
 * highest first. A transaction takes a snapshot of the chain at MAIL, so a filter that arrives or leaves
 * mid-message affects only the next transaction. Stages a filter does not override answer
 * {@link Verdict#proceed()}.
 *
 * <p><b>Threads:</b> methods are called on a network event loop thread and must not block it. A filter that
 * needs DNS, a database or a remote service starts that work on its own executor and returns a stage that
 * completes later. The chain waits for each stage up to the filter's timeout
 * ({@value #TIMEOUT_PROPERTY}, in milliseconds), then applies its failure policy
 * ({@value #ON_FAILURE_PROPERTY}): {@code tempfail} (the default: fail closed, 451 4.7.0) or
 * {@code continue} (fail open). A method that throws, or a stage that completes exceptionally, counts as a
 * failure under the same policy.
 *
 * <p><b>Properties:</b> {@value #NAME_PROPERTY} names the filter in logs and the console (the component
 * name if absent); {@code service.ranking} orders it.
 */
@ConsumerType
public interface SmtpFilter {

    /** Service property: the filter's name in logs and in {@code mta:filter-list}. */
    String NAME_PROPERTY = "postern.filter.name";

    /** Service property: how long one call may take, in milliseconds (default {@value #DEFAULT_TIMEOUT_MS}). */
    String TIMEOUT_PROPERTY = "postern.filter.timeout";

    /** Service property: {@code tempfail} (default) or {@code continue} when a call fails or times out. */
    String ON_FAILURE_PROPERTY = "postern.filter.on.failure";

    long DEFAULT_TIMEOUT_MS = 30_000;

    /** A completed stage answering {@link Verdict#proceed()}, to return from stages with nothing to say. */
    static CompletionStage<Verdict> proceed() {
        return CompletableFuture.completedFuture(Verdict.proceed());
    }

    /** A client connected; no greeting has been sent yet. */
    default CompletionStage<Verdict> connect(SessionContext session) {
        return proceed();
    }

    /** The client said EHLO or HELO with this name. */
    default CompletionStage<Verdict> helo(SessionContext session, String heloName) {
        return proceed();
    }

    /** MAIL FROM, after syntax checks; {@code transaction.sender()} is already set to {@code sender}. */
    default CompletionStage<Verdict> mailFrom(TransactionContext transaction, MailAddress sender) {
        return proceed();
    }

    /** RCPT TO, after syntax and relay checks; the recipient is not yet in {@code transaction.recipients()}. */
    default CompletionStage<Verdict> rcptTo(TransactionContext transaction, Recipient recipient) {
        return proceed();
    }

    /**
     * End of data: the whole message is spooled (not yet committed) and readable through
     * {@link MessageContext#content()}. Reading it blocks on disk: do it on an executor.
     */
    default CompletionStage<Verdict> message(MessageContext message) {
        return proceed();
    }
}
