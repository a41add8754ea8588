package org.postern.delivery.smtp.internal;

import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import javax.net.ssl.SSLSession;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.smtp.DefaultLastSmtpContent;
import io.netty.handler.codec.smtp.DefaultSmtpContent;
import io.netty.handler.codec.smtp.LastSmtpContent;
import io.netty.handler.codec.smtp.SmtpRequest;
import io.netty.handler.codec.smtp.SmtpRequestEncoder;
import io.netty.handler.codec.smtp.SmtpRequests;
import io.netty.handler.codec.smtp.SmtpResponse;
import io.netty.handler.codec.smtp.SmtpResponseDecoder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.resolver.NoopAddressResolverGroup;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;

import org.postern.api.routing.TlsPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One SMTP client connection. The Netty side only decodes replies and hands each to the next waiting
 * future, in order, which is all pipelining needs; the conversation itself is driven by a delivery worker
 * thread ({@link DeliveryAttempt}) that waits on those futures with the RFC 5321 timeouts. No event loop
 * thread ever waits.
 */
final class ClientConnection {

    private static final Logger LOG = LoggerFactory.getLogger(ClientConnection.class);
    private static final int MAX_REPLY_LINE = 4096;
    private static final String STATUS_LOST = "4.4.2";

    private final Channel channel;
    private final Relay relay;
    private final TlsPolicy policy;
    /** Guards {@link #pending} and {@link #unsolicited}, shared by the worker and the event loop. */
    private final Object lock = new Object();
    private final Queue<CompletableFuture<Reply>> pending = new ArrayDeque<>();
    /** A reply that came when none was awaited, kept for the next future: e.g. a 550 in the middle of DATA. */
    private Reply unsolicited;
    /** The server said 421 (RFC 5321 3.8): it is closing the connection, which must not be cached nor reused. */
    private volatile boolean closing;
    /** One listener for every write, rather than one per write. */
    private final ChannelFutureListener writeDone = this::onWriteDone;

    private CompletableFuture<Reply> greeting;
    private Extensions extensions = Extensions.NONE;
    private String tlsInfo;
    private int transactions;
    /** The credentials this session authenticated with, or null: a cached session serves only the same ones. */
    private Credentials authenticated;

    private ClientConnection(Channel channel, Relay relay, TlsPolicy policy) {
        this.channel = channel;
        this.relay = relay;
        this.policy = policy;
    }

    /**
     * Opens a TCP connection to the relay, waiting at most {@code timeoutSeconds}.
     *
     * @throws SessionException 4.4.1 when the connection cannot be made
     */
    static ClientConnection connect(EventLoopGroup group, Relay relay, TlsPolicy policy, int timeoutSeconds)
            throws SessionException {
        if (group.isShuttingDown()) { // deactivated while this delivery ran: no new connection, say why
            throw new SessionException("4.3.0", "smtp transport is stopping", false);
        }
        ClientConnection[] holder = new ClientConnection[1];
        Bootstrap bootstrap = new Bootstrap()
                .group(group)
                .channel(NioSocketChannel.class)
                // The address is already an IP: make sure no resolver (the JVM's, the system's DNS) is asked.
                .resolver(NoopAddressResolverGroup.INSTANCE)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, timeoutSeconds * 1000)
                .option(ChannelOption.TCP_NODELAY, true)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ClientConnection c = new ClientConnection(ch, relay, policy);
                        // The greeting may arrive before the worker asks for it: its future waits from the start.
                        c.greeting = new CompletableFuture<>();
                        synchronized (c.lock) {
                            c.pending.add(c.greeting);
                        }
                        holder[0] = c;
                        ch.pipeline().addLast("decoder", new SmtpResponseDecoder(MAX_REPLY_LINE));
                        ch.pipeline().addLast("encoder", new SmtpRequestEncoder());
                        ch.pipeline().addLast("replies", c.new ReplyHandler());
                    }
                });
        ChannelFuture connect;
        try {
            connect = bootstrap.connect(relay.socketAddress());
        } catch (RuntimeException e) { // the event loop group is shutting down
            throw new SessionException("4.4.1", "connect to " + relay + ": " + e, false);
        }
        boolean done = connect.awaitUninterruptibly(timeoutSeconds * 1000L + 1000L);
        if (!done || !connect.isSuccess()) {
            connect.channel().close();
            Throwable cause = connect.cause();
            String why = !done ? "connection timed out"
                    : cause == null ? "failed" : cause.getMessage() != null ? stripAddress(cause.getMessage()) : cause.toString();
            throw new SessionException("4.4.1", "connect to " + relay + ": " + why, false);
        }
        return holder[0];
    }

    /** Netty repeats the address in its connect errors; the log line already names it. */
    private static String stripAddress(String message) {
        int colon = message.indexOf(": /");
        return colon > 0 ? message.substring(0, colon) : message;
    }

    /** The future of the server's greeting, waiting since the connection was made. */
    CompletableFuture<Reply> greeting() {
        return greeting;
    }

    Relay relay() {
        return relay;
    }

    TlsPolicy policy() {
        return policy;
    }

    Extensions extensions() {
        return extensions;
    }

    void extensions(Extensions e) {
        this.extensions = e;
    }

    boolean isTls() {
        return tlsInfo != null;
    }

    /** e.g. {@code TLSv1.3 with cipher TLS_AES_256_GCM_SHA384}, or null in clear. */
    String tlsInfo() {
        return tlsInfo;
    }

    Credentials authenticated() {
        return authenticated;
    }

    void authenticated(Credentials credentials) {
        this.authenticated = credentials;
    }

    int transactions() {
        return transactions;
    }

    void transactionDone() {
        transactions++;
    }

    /** Whether the connection is open and the server has not announced that it closes it. */
    boolean isActive() {
        return channel.isActive() && !closing;
    }

    Channel channel() {
        return channel;
    }

    /**
     * The future of the next reply not yet claimed. Replies are matched to futures in the order the
     * futures were taken, so take them in the order the commands are written.
     */
    CompletableFuture<Reply> expect() {
        CompletableFuture<Reply> f = new CompletableFuture<>();
        synchronized (lock) {
            if (unsolicited != null) {
                f.complete(unsolicited);
                unsolicited = null;
                return f;
            }
            pending.add(f);
        }
        if (!channel.isActive()) {
            failPending(new ClosedChannelException());
        }
        return f;
    }

    /**
     * Writes commands and flushes them, in one task for the event loop rather than one per command: MAIL, every
     * RCPT and DATA under pipelining (RFC 2920) leave in one write.
     */
    void send(List<SmtpRequest> requests) {
        try {
            channel.eventLoop().execute(() -> {
                for (SmtpRequest r : requests) {
                    channel.write(r).addListener(writeDone);
                }
                channel.flush();
            });
        } catch (RejectedExecutionException e) { // the transport is stopping
            failPending(e);
            close();
        }
    }

    /** Writes and flushes one command, then waits for its reply. */
    Reply command(SmtpRequest request, int timeoutSeconds, String phase) throws SessionException {
        CompletableFuture<Reply> reply = expect();
        channel.writeAndFlush(request).addListener(writeDone);
        return await(reply, timeoutSeconds, phase);
    }

    /**
     * Waits for a reply.
     *
     * @param phase what we were doing, for the diagnostic: "receiving the initial server greeting", ...
     * @throws SessionException 4.4.2 on timeout or a lost connection; the connection is closed then
     */
    Reply await(CompletableFuture<Reply> reply, int timeoutSeconds, String phase) throws SessionException {
        try {
            return reply.get(timeoutSeconds, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            close();
            throw new SessionException(STATUS_LOST, "conversation with " + relay + " timed out while " + phase, false);
        } catch (ExecutionException e) {
            close();
            Throwable cause = e.getCause();
            if (cause instanceof IOException) { // closed, or reset by the peer
                throw new SessionException(STATUS_LOST, "lost connection with " + relay + " while " + phase, true);
            }
            throw new SessionException(STATUS_LOST, "error with " + relay + " while " + phase + ": " + cause, false);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            close();
            throw new SessionException(STATUS_LOST, "delivery interrupted while " + phase, false);
        }
    }

    /**
     * Writes one chunk of message data (already dot-stuffed), the last one with the terminating {@code .CRLF}.
     * Only the last one is flushed, so that a small message leaves in one write with its dot, unless the channel
     * is full: then the data so far is flushed and the chunk waited for, which is the back pressure from the
     * peer, bounded by the data block timeout. Stops early when {@code stop} completes: the server has replied
     * (or gone) before the end of the data.
     *
     * @return false when {@code stop} completed, and nothing more should be sent; after the last chunk, true
     *         unless the reply came before the dot went
     */
    boolean writeData(ByteBuf chunk, boolean last, int timeoutSeconds, CompletableFuture<?> stop) throws SessionException {
        if (stop.isDone()) {
            chunk.release();
            return false;
        }
        ChannelFuture written = last ? channel.writeAndFlush(new DefaultLastSmtpContent(chunk))
                : channel.write(new DefaultSmtpContent(chunk));
        written.addListener(writeDone);
        if (!channel.isWritable()) {
            if (!last) {
                channel.flush();
            }
            CompletableFuture<Void> out = new CompletableFuture<>();
            written.addListener(f -> out.complete(null));
            try {
                CompletableFuture.anyOf(out, stop).get(timeoutSeconds, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                close();
                throw new SessionException(STATUS_LOST, "conversation with " + relay + " timed out while sending message body", false);
            } catch (ExecutionException e) {
                return false; // the connection failed: the waiting reply says how
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                close();
                throw new SessionException(STATUS_LOST, "delivery interrupted while sending message body", false);
            }
        }
        if (last) {
            // A reply that came before the dot was out is an early one (the server refused halfway): the caller
            // then closes the connection, which may still owe us the reply to the dot, instead of caching it.
            return !stop.isDone() || written.isDone() && written.isSuccess();
        }
        return !stop.isDone() && (!written.isDone() || written.isSuccess());
    }

    /** Sends a lone terminating {@code .CRLF}; its reply goes to the future taken before. */
    void endData() {
        channel.writeAndFlush(LastSmtpContent.EMPTY_LAST_CONTENT).addListener(writeDone);
    }

    /**
     * Puts TLS under the session after a 220 to STARTTLS and waits for the handshake.
     *
     * @param peerHost the name the certificate must match when the context checks names
     * @throws SessionException 4.7.5 when the handshake or the certificate check fails
     */
    void startTls(SslContext context, String peerHost, int timeoutSeconds) throws SessionException {
        SslHandler ssl = context.newHandler(channel.alloc(), peerHost, relay.hop().port());
        ssl.setHandshakeTimeoutMillis(timeoutSeconds * 1000L);
        Future<Channel> handshake = ssl.handshakeFuture();
        // The wait ends with the handshake or with the connection: an SslHandler never added (the server hung
        // up right after its 220, and the pipeline is gone) never completes its handshake future.
        CompletableFuture<Void> over = new CompletableFuture<>();
        handshake.addListener(f -> over.complete(null));
        channel.closeFuture().addListener(f -> over.complete(null));
        try {
            channel.eventLoop().execute(() -> {
                if (!channel.isActive()) {
                    return;
                }
                // A fresh decoder: bytes that came in clear after the 220 must not pass for a reply under TLS.
                // The old one hands such bytes on, and the reply handler closes the connection when it sees them.
                channel.pipeline().replace("decoder", "decoder", new SmtpResponseDecoder(MAX_REPLY_LINE));
                channel.pipeline().addFirst("tls", ssl);
            });
        } catch (RejectedExecutionException e) { // the transport is stopping
            close();
            throw new SessionException("4.7.5", "TLS handshake with " + relay + " failed: transport stopping", false);
        }
        try {
            over.get(timeoutSeconds * 1000L + 1000L, TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            // judged below
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            close();
            throw new SessionException(STATUS_LOST, "delivery interrupted while starting TLS", false);
        }
        if (!handshake.isSuccess()) {
            close();
            Throwable cause = handshake.cause();
            String why = cause != null ? rootMessage(cause)
                    : over.isDone() ? "connection closed" : "timed out";
            throw new SessionException("4.7.5", "TLS handshake with " + relay + " failed: " + why, false);
        }
        SSLSession session = ssl.engine().getSession();
        tlsInfo = session.getProtocol() + " with cipher " + session.getCipherSuite();
    }

    private static String rootMessage(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root.getMessage() != null ? root.getMessage() : root.toString();
    }

    /**
     * Says goodbye without waiting: QUIT, then close on its reply or after a few seconds at most.
     *
     * @return the future of the close, for whoever wants to wait for it
     */
    ChannelFuture quit() {
        if (!channel.isActive()) {
            return channel.closeFuture();
        }
        CompletableFuture<Reply> reply = expect();
        channel.writeAndFlush(SmtpRequests.quit()).addListener(writeDone);
        reply.whenComplete((r, e) -> close());
        try {
            channel.eventLoop().schedule(this::close, 5, TimeUnit.SECONDS);
        } catch (RejectedExecutionException e) {
            close(); // the event loop is shutting down
        }
        return channel.closeFuture();
    }

    void close() {
        channel.close();
    }

    private void onWriteDone(Future<? super Void> f) {
        if (!f.isSuccess()) {
            LOG.debug("write to {} failed", relay, f.cause());
            failPending(f.cause());
            channel.close();
        }
    }

    private void failPending(Throwable cause) {
        List<CompletableFuture<Reply>> failed;
        synchronized (lock) {
            failed = new ArrayList<>(pending);
            pending.clear();
        }
        failed.forEach(f -> f.completeExceptionally(cause));
    }

    /** Hands each decoded reply to the oldest waiting future. */
    private final class ReplyHandler extends ChannelInboundHandlerAdapter {

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof SmtpResponse response)) {
                ReferenceCountUtil.release(msg);
                LOG.debug("data from {} that is no reply (in clear after STARTTLS?): closing", relay);
                failPending(new IOException("unexpected data from the server"));
                ctx.close();
                return;
            }
            Reply reply = Reply.of(response);
            if (reply.code() == 421) {
                closing = true;
            }
            CompletableFuture<Reply> f;
            synchronized (lock) {
                f = pending.poll();
                if (f == null) {
                    unsolicited = reply;
                }
            }
            if (f == null) {
                // A reply nobody asked for: 421 before the server closes an idle connection, or a refusal in
                // the middle of the data. Nothing sensible can follow; the next future gets the reply.
                LOG.debug("unexpected reply from {}: {}", relay, reply);
                ctx.close();
                return;
            }
            f.complete(reply);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            failPending(new ClosedChannelException());
            super.channelInactive(ctx);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debug("connection to {} failed", relay, cause);
            failPending(cause);
            ctx.close();
        }
    }
}
