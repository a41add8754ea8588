package org.postern.delivery.smtp.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Locale;

import io.netty.util.NetUtil;

import org.postern.api.routing.NextHop;

/**
 * A next hop with the address we connect to. Written the Postfix way in logs: {@code host[ip]:port}.
 */
record Relay(NextHop hop, InetAddress address) {

    /**
     * The address of a hop without asking any resolver: an IP literal (bare, or in brackets, or
     * {@code [IPv6:...]}) or {@code localhost}. A host name gives null: names are the router's to resolve,
     * through the DNS bundle, so that no JVM resolver (the system's DNS) is ever queried from here.
     */
    static InetAddress literalAddress(String host) {
        String h = host;
        if (h.startsWith("[") && h.endsWith("]")) {
            h = h.substring(1, h.length() - 1);
        }
        if (h.regionMatches(true, 0, "IPv6:", 0, 5)) {
            h = h.substring(5);
        }
        if (h.toLowerCase(Locale.ROOT).equals("localhost")) {
            return InetAddress.getLoopbackAddress();
        }
        return NetUtil.createInetAddressFromIpAddressString(h);
    }

    InetSocketAddress socketAddress() {
        return new InetSocketAddress(address, hop.port());
    }

    /** The name the router resolved (an MX or smarthost name) when it kept one, else the host as given:
     *  what the certificate must match under the verify policy, and what logs and DSNs call the relay. */
    String host() {
        return hop.hostName();
    }

    @Override
    public String toString() {
        return hop.hostName() + "[" + address.getHostAddress() + "]:" + hop.port();
    }
}
