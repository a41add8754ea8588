package org.postern.api.routing;

import java.util.Objects;

/**
 * A host to connect to.
 *
 * @param host a host name, or an IP address in text form
 * @param port the TCP port
 * @param preference the MX preference it came from (0 for fixed hops); lower is tried first
 * @param name the host name the router resolved {@code host} from (an MX host or a configured smarthost), or
 *             null when {@code host} is all there is; a TLS client checks the certificate against this name
 * @since routing 1.1.0 for {@code name}
 */
public record NextHop(String host, int port, int preference, String name) {

    public NextHop {
        Objects.requireNonNull(host, "host");
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("bad port " + port);
        }
    }

    /** A hop known by its host alone (an address literal, or a name left to the transport). */
    public NextHop(String host, int port, int preference) {
        this(host, port, preference, null);
    }

    /** The name to verify a certificate against and to log: {@link #name()} if known, else {@link #host()}. */
    public String hostName() {
        return name != null ? name : host;
    }

    /** {@code host:port}, {@code [v6]:port}, or Postfix's {@code name[address]:port} when the name is known. */
    @Override
    public String toString() {
        String address = host.indexOf(':') >= 0 ? "[" + host + "]" : host;
        return (name != null ? name + "[" + host + "]" : address) + ":" + port;
    }
}
