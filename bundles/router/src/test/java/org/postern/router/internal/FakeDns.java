package org.postern.router.internal;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import org.postern.api.dns.DnsException;
import org.postern.api.dns.DnsResolver;
import org.postern.api.dns.MxRecord;

/**
 * A resolver answering from tables the test fills, as the real one answers: a name it does not know is
 * NXDOMAIN, a name with {@link #fail} is a temporary failure, MX records sorted by preference. Records every
 * question so that a test can tell what was asked.
 */
class FakeDns implements DnsResolver {

    private final Map<String, List<MxRecord>> mx = new ConcurrentHashMap<>();
    private final Map<String, List<InetAddress>> addresses = new ConcurrentHashMap<>();
    private final Map<String, String> temporary = new ConcurrentHashMap<>();
    final List<String> asked = new CopyOnWriteArrayList<>();

    /** MX records of a domain: preference, exchange, preference, exchange ... ("" for a null MX). */
    FakeDns mx(String domain, Object... pairs) {
        List<MxRecord> records = new ArrayList<>();
        for (int i = 0; i < pairs.length; i += 2) {
            records.add(new MxRecord((Integer) pairs[i], (String) pairs[i + 1], 300));
        }
        records.sort((a, b) -> Integer.compare(a.preference(), b.preference()));
        mx.put(domain, records);
        addresses.putIfAbsent(domain, List.of()); // the domain exists
        return this;
    }

    /** A and AAAA records of a host, in this order. */
    FakeDns host(String name, String... ips) {
        List<InetAddress> list = new ArrayList<>();
        for (String ip : ips) {
            try {
                list.add(InetAddress.getByName(ip)); // literals only: no lookup
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException(ip);
            }
        }
        addresses.put(name, list);
        mx.putIfAbsent(name, List.of()); // the name exists, without MX
        return this;
    }

    /** Every question about this name fails as a timeout would. */
    FakeDns fail(String name) {
        temporary.put(name, "timed out");
        return this;
    }

    @Override
    public CompletionStage<List<MxRecord>> mx(String domain) {
        asked.add("MX " + domain);
        return answer(domain, mx.get(domain));
    }

    @Override
    public CompletionStage<List<InetAddress>> addresses(String host) {
        asked.add("A " + host);
        return answer(host, addresses.get(host));
    }

    private <T> CompletionStage<T> answer(String name, T value) {
        if (temporary.containsKey(name)) {
            return CompletableFuture.failedFuture(new DnsException(DnsException.Kind.TEMPORARY,
                    "DNS query " + name + ": " + temporary.get(name)));
        }
        if (value == null) {
            return CompletableFuture.failedFuture(new DnsException(DnsException.Kind.NOT_FOUND, name + ": NXDOMAIN"));
        }
        // Completed later on another thread, as the real resolver does.
        return CompletableFuture.supplyAsync(() -> value);
    }

    @Override
    public CompletionStage<List<String>> txt(String name) {
        throw new UnsupportedOperationException();
    }

    @Override
    public CompletionStage<List<String>> ptr(InetAddress address) {
        throw new UnsupportedOperationException();
    }
}
