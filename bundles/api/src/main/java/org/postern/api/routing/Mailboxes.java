package org.postern.api.routing;

import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ConsumerType;
import org.postern.api.mail.MailAddress;

/**
 * Which local addresses have a mailbox, so that unknown local users are refused at RCPT (550 5.1.1) instead
 * of accepted and bounced. Called by the relay policy on an event loop thread for recipients in local
 * domains; answer from memory or complete later.
 */
@ConsumerType
public interface Mailboxes {

    CompletionStage<Boolean> exists(MailAddress address);
}
