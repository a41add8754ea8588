package org.postern.dns.internal;

import java.lang.reflect.Proxy;
import java.util.Map;

import org.postern.api.dns.DnsResolver;

/**
 * The DNS bundle's real resolver, started and stopped as DS would, for the router's test against dnsmasq. It
 * lives in the resolver's package because its lifecycle methods are package-private.
 */
public final class RealResolver {

    private RealResolver() {
    }

    /** A resolver asking only this server (address:port), with short timeouts so that failures show quickly. */
    public static DnsResolver start(String server, int timeoutMs, int retries) {
        Map<String, Object> values = Map.of("servers", new String[] {server}, "timeout", timeoutMs,
                "retries", retries);
        DnsJavaResolver.Config config = (DnsJavaResolver.Config) Proxy.newProxyInstance(
                DnsJavaResolver.Config.class.getClassLoader(), new Class<?>[] {DnsJavaResolver.Config.class},
                (proxy, method, args) -> values.containsKey(method.getName())
                        ? values.get(method.getName()) : method.getDefaultValue());
        DnsJavaResolver resolver = new DnsJavaResolver();
        resolver.activate(config);
        return resolver;
    }

    public static void stop(DnsResolver resolver) {
        ((DnsJavaResolver) resolver).deactivate();
    }
}
