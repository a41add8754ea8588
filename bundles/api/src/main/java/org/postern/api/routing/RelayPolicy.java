package org.postern.api.routing;

import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ConsumerType;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.MailAddress;

/**
 * Decides at RCPT whether this session may send to this recipient: the guard against being an open relay.
 *
 * <p>Called by the listener on an event loop thread for every RCPT, after the address parsed; answer at
 * once from memory, or complete later from an executor. The listener fails closed: with no RelayPolicy
 * service, or when the stage fails or times out, the recipient is refused with a 4xx.
 */
@ConsumerType
public interface RelayPolicy {

    CompletionStage<RelayDecision> check(SessionContext session, MailAddress recipient);
}
