package org.postern.smtp.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.TimeUnit;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.ssl.SslContext;

import org.osgi.framework.Constants;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.Designate;
import org.postern.api.auth.Authenticator;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.queue.QueueStore;
import org.postern.api.routing.RelayPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One SMTP listener per factory configuration ({@code org.postern.smtp.listener-<name>.cfg}).
 *
 * <p>Filters, the queue store and the relay policy are dynamic references: they come and go while the
 * listener keeps its port and its sessions. A session reads them when it needs them (the chain once per
 * transaction), so a swap affects the next transaction only, and an absent safety service fails closed.
 */
@Component(name = "org.postern.smtp.listener", configurationPolicy = ConfigurationPolicy.REQUIRE, service = {})
@Designate(ocd = ListenerConfig.class, factory = true)
public class SmtpListener implements SmtpSession.Services {

    private static final Logger LOG = LoggerFactory.getLogger(SmtpListener.class);

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile QueueStore queueStore;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile RelayPolicy relayPolicy;

    private volatile FilterChain chain = FilterChain.EMPTY;
    private final Object chainLock = new Object();
    private final Map<Authenticator, Integer> authenticatorRanks = new ConcurrentHashMap<>();
    private volatile List<Authenticator> authenticators = List.of();
    private final ConcurrentHashMap<InetAddress, AtomicInteger> perClient = new ConcurrentHashMap<>();
    private final AtomicInteger connections = new AtomicInteger();
    private volatile TlsContexts tls;

    private volatile ListenerConfig config;
    private EventLoopGroup bossGroup;
    private EventLoopGroup workerGroup;
    private Channel serverChannel;

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void addFilter(SmtpFilter filter, Map<String, Object> props) {
        synchronized (chainLock) {
            chain = chain.with(FilterChain.Entry.of(filter, props));
        }
        LOG.info("filter {} added (ranking {})", FilterChain.Entry.of(filter, props).name(),
                FilterChain.Entry.of(filter, props).ranking());
    }

    void updatedFilter(SmtpFilter filter, Map<String, Object> props) {
        synchronized (chainLock) {
            chain = chain.with(FilterChain.Entry.of(filter, props));
        }
    }

    void removeFilter(SmtpFilter filter, Map<String, Object> props) {
        synchronized (chainLock) {
            chain = chain.without(filter);
        }
        LOG.info("filter {} removed", FilterChain.Entry.of(filter, props).name());
    }

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    void addAuthenticator(Authenticator authenticator, Map<String, Object> props) {
        Object ranking = props.get(Constants.SERVICE_RANKING);
        authenticatorRanks.put(authenticator, ranking instanceof Integer i ? i : 0);
        sortAuthenticators();
    }

    void removeAuthenticator(Authenticator authenticator) {
        authenticatorRanks.remove(authenticator);
        sortAuthenticators();
    }

    private synchronized void sortAuthenticators() {
        List<Authenticator> list = new ArrayList<>(authenticatorRanks.keySet());
        list.sort(Comparator.comparing((Authenticator a) -> authenticatorRanks.getOrDefault(a, 0)).reversed());
        authenticators = List.copyOf(list);
    }

    @Activate
    void activate(ListenerConfig cfg) throws InterruptedException {
        SmtpSession.Role role = SmtpSession.Role.of(cfg.role()); // fails activation on a bad role
        this.tls = TlsContexts.fromConfig(cfg);
        if (role == SmtpSession.Role.SUBMISSIONS && (tls == null || tls.current() == null)) {
            throw new IllegalStateException("listener " + cfg.name() + ": role submissions needs a TLS certificate");
        }
        if (role.requiresAuth() && (tls == null || tls.current() == null)) {
            LOG.warn("listener {}: no TLS certificate, so AUTH can never be offered and every MAIL is refused", cfg.name());
        }
        this.config = cfg;
        bossGroup = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        workerGroup = new MultiThreadIoEventLoopGroup(0, NioIoHandler.newFactory());
        try {
            bind(cfg);
        } catch (RuntimeException | InterruptedException e) {
            shutdownGroups();
            throw e;
        }
    }

    @Modified
    void modified(ListenerConfig cfg) throws InterruptedException {
        ListenerConfig old = this.config;
        SmtpSession.Role.of(cfg.role());
        this.tls = TlsContexts.fromConfig(cfg);
        this.config = cfg; // new sessions take the new limits; open sessions keep theirs
        if (!old.bind_address().equals(cfg.bind_address()) || old.port() != cfg.port()) {
            Channel previous = serverChannel;
            bind(cfg);
            previous.close().sync();
            LOG.info("listener {} moved from {}:{} to {}:{}; open sessions go on", cfg.name(),
                    old.bind_address(), old.port(), cfg.bind_address(), cfg.port());
        }
    }

    private void bind(ListenerConfig cfg) throws InterruptedException {
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(bossGroup, workerGroup)
                .channel(NioServerSocketChannel.class)
                .option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        SmtpSession.configure(ch.pipeline(), SmtpListener.this, config);
                    }
                });
        serverChannel = bootstrap.bind(new InetSocketAddress(cfg.bind_address(), cfg.port())).sync().channel();
        LOG.info("listener {} on {}:{}", cfg.name(), cfg.bind_address(), cfg.port());
    }

    @Deactivate
    void deactivate() {
        if (serverChannel != null) {
            serverChannel.close().syncUninterruptibly();
        }
        shutdownGroups();
        LOG.info("listener {} stopped", config.name());
    }

    private void shutdownGroups() {
        if (bossGroup != null) {
            bossGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).syncUninterruptibly();
        }
        if (workerGroup != null) {
            workerGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    @Override
    public QueueStore queueStore() {
        return queueStore;
    }

    @Override
    public RelayPolicy relayPolicy() {
        return relayPolicy;
    }

    @Override
    public FilterChain filterChain() {
        return chain;
    }

    @Override
    public List<Authenticator> authenticators() {
        return authenticators;
    }

    @Override
    public SslContext tls() {
        TlsContexts t = tls;
        return t == null ? null : t.current();
    }

    @Override
    public boolean admit(InetAddress client) {
        ListenerConfig cfg = config;
        if (connections.incrementAndGet() > cfg.max_connections()) {
            connections.decrementAndGet();
            return false;
        }
        AtomicInteger mine = perClient.computeIfAbsent(client, k -> new AtomicInteger());
        if (mine.incrementAndGet() > cfg.max_connections_per_client()) {
            release(client);
            return false;
        }
        return true;
    }

    @Override
    public void release(InetAddress client) {
        connections.decrementAndGet();
        perClient.computeIfPresent(client, (k, n) -> n.decrementAndGet() <= 0 ? null : n);
    }
}
