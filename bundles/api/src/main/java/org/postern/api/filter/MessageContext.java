package org.postern.api.filter;

import java.util.List;

import org.osgi.annotation.versioning.ProviderType;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;

/**
 * The end-of-data stage: a transaction whose message is spooled but not yet committed. Implemented by the
 * listener. Headers a filter adds are stored beside the message (never written into it) and are prepended
 * when it is delivered, above the message's own header.
 */
@ProviderType
public interface MessageContext extends TransactionContext {

    /** The message as received; reading blocks on disk, so read it off the event loop. */
    MessageContent content();

    /** The message's own header fields, unfolded, in order (parsed once, lazily; blocks on first call). */
    List<Header> headers();

    /** Adds a header field above the message's own; thread-safe; fields keep the order they were added in. */
    void addHeader(Header header);

    /** The header fields added so far, by the listener (Received:) and by filters. */
    List<Header> addedHeaders();
}
