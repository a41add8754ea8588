package org.postern.api.routing;

import java.util.Objects;

/**
 * A host to connect to.
 *
 * @param host a host name, or an IP address in text form
 * @param port the TCP port
 * @param preference the MX preference it came from (0 for fixed hops); lower is tried first
 */
public record NextHop(String host, int port, int preference) {

    public NextHop {
        Objects.requireNonNull(host, "host");
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("bad port " + port);
        }
    }

    @Override
    public String toString() {
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
