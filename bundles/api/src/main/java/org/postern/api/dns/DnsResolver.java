package org.postern.api.dns;

import java.net.InetAddress;
import java.util.List;
import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ProviderType;

/**
 * Asynchronous DNS for every bundle: routing (MX, A/AAAA), checks (TXT for SPF/DKIM/DMARC, PTR, DNSBL).
 * Answers come from a cache honouring TTLs or from the configured upstream servers, never from the JVM's
 * resolver. Safe to call on an event loop thread: stages complete on the resolver's own threads.
 *
 * <p>A name that does not exist completes with {@link DnsException.Kind#NOT_FOUND}; a name that exists
 * without records of the type asked completes with an empty list; a timeout or server failure completes
 * with {@link DnsException.Kind#TEMPORARY}.
 */
@ProviderType
public interface DnsResolver {

    /** MX records, sorted by preference (lowest first), unshuffled. */
    CompletionStage<List<MxRecord>> mx(String domain);

    /** A and AAAA addresses of a host. */
    CompletionStage<List<InetAddress>> addresses(String host);

    /** TXT records, each one string (its character-strings concatenated). */
    CompletionStage<List<String>> txt(String name);

    /** PTR names of an address, without the trailing dot. */
    CompletionStage<List<String>> ptr(InetAddress address);
}
