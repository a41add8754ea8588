package org.postern.delivery.smtp.internal;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import io.netty.channel.ChannelFuture;
import io.netty.util.concurrent.ScheduledFuture;

import org.postern.api.routing.NextHop;
import org.postern.api.routing.TlsPolicy;

/**
 * Idle connections kept after a transaction for the next message to the same destination, as Postfix's
 * connection cache does: a connection is found again by destination, one of the route's hops and the TLS
 * policy it was opened under (a connection opened in clear under "may" must never serve "encrypt").
 * An idle connection is closed with QUIT after the idle time.
 */
final class ConnectionPool {

    private record Idle(ClientConnection connection, ScheduledFuture<?> timer) {
    }

    private final Map<String, Deque<Idle>> idle = new HashMap<>();

    /**
     * Takes the most recently used live connection that fits, or null. A session authenticated with other
     * credentials (the operator changed them meanwhile) never fits.
     */
    synchronized ClientConnection take(String destination, List<NextHop> hops, TlsPolicy policy, Credentials credentials) {
        Deque<Idle> cached = idle.get(destination);
        if (cached == null) {
            return null;
        }
        ClientConnection found = null;
        for (Iterator<Idle> it = cached.descendingIterator(); it.hasNext() && found == null; ) {
            Idle i = it.next();
            ClientConnection c = i.connection();
            if (!c.isActive()) {
                it.remove();
                i.timer().cancel(false);
            } else if (c.policy() == policy && servesOneOf(c, hops) && Objects.equals(c.authenticated(), credentials)) {
                it.remove();
                i.timer().cancel(false);
                found = c;
            }
        }
        if (cached.isEmpty()) {
            idle.remove(destination);
        }
        return found;
    }

    private static boolean servesOneOf(ClientConnection c, List<NextHop> hops) {
        NextHop mine = c.relay().hop();
        return hops.stream().anyMatch(h -> h.host().equalsIgnoreCase(mine.host()) && h.port() == mine.port());
    }

    /**
     * Keeps a connection for reuse, unless the destination already has {@code max} cached.
     *
     * @return false when the connection was not kept: the caller says QUIT
     */
    synchronized boolean offer(String destination, ClientConnection c, int max, int idleSeconds) {
        if (max <= 0 || !c.isActive()) {
            return false;
        }
        Deque<Idle> cached = idle.computeIfAbsent(destination, d -> new ArrayDeque<>());
        cached.removeIf(i -> !i.connection().isActive());
        if (cached.size() >= max) {
            return false;
        }
        ScheduledFuture<?> timer;
        try {
            timer = c.channel().eventLoop().schedule(() -> expire(destination, c), idleSeconds, TimeUnit.SECONDS);
        } catch (RejectedExecutionException e) {
            return false; // shutting down
        }
        cached.addLast(new Idle(c, timer));
        return true;
    }

    private void expire(String destination, ClientConnection c) {
        boolean removed;
        synchronized (this) {
            Deque<Idle> cached = idle.get(destination);
            removed = cached != null && cached.removeIf(i -> i.connection() == c);
            if (cached != null && cached.isEmpty()) {
                idle.remove(destination);
            }
        }
        if (removed) {
            c.quit();
        }
    }

    /**
     * Says QUIT to every idle connection and forgets them all.
     *
     * @return the futures of their closing
     */
    List<ChannelFuture> closeAll() {
        List<Idle> all = new ArrayList<>();
        synchronized (this) {
            idle.values().forEach(all::addAll);
            idle.clear();
        }
        List<ChannelFuture> closing = new ArrayList<>();
        for (Idle i : all) {
            i.timer().cancel(false);
            closing.add(i.connection().quit());
        }
        return closing;
    }

    /** The number of idle connections cached for a destination. */
    synchronized int size(String destination) {
        Deque<Idle> cached = idle.get(destination);
        return cached == null ? 0 : cached.size();
    }
}
