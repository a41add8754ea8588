package org.postern.delivery.smtp.internal;

import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.codec.smtp.DefaultSmtpRequest;
import io.netty.handler.codec.smtp.SmtpCommand;
import io.netty.handler.codec.smtp.SmtpRequest;
import io.netty.handler.codec.smtp.SmtpRequests;

import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.Route;
import org.postern.api.routing.TlsPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One delivery of one request: find a next hop that talks, negotiate, run one mail transaction for all
 * recipients, and give each recipient its result. Runs on a delivery worker thread and blocks it, never an
 * event loop thread. Every path ends with a result for every recipient.
 *
 * <p>Hops are tried in order while a session cannot be set up (no connection, a greeting or EHLO/HELO that
 * refuses, TLS that the policy requires and cannot have). Once MAIL has been sent, the replies decide and
 * no other hop is tried in this attempt.
 */
final class DeliveryAttempt {

    /** What the transport lends an attempt. */
    interface Context {
        SmtpClientConfig config();

        EventLoopGroup group();

        ConnectionPool pool();

        TlsContexts tls();

        /** The client AUTH credentials of that id, or null when none are configured. */
        Credentials credentials(String id);

        /** Why a smarthost refused these credentials lately, or null: then they are not tried again for a while. */
        String authRefusal(String destination, Credentials credentials);

        /** Remembers a refusal, so that a queue full of mail does not lock the account at the smarthost. */
        void authRefused(String destination, Credentials credentials, String diagnostic);
    }

    static final Logger LOG = LoggerFactory.getLogger(SmtpTransport.class);

    private static final SmtpCommand STARTTLS = SmtpCommand.valueOf("STARTTLS");
    private static final int CHUNK = 16 * 1024;

    private final Context context;
    private final SmtpClientConfig cfg;
    private final DeliveryRequest request;
    private final String queueId;
    private final String destination;
    private final TlsPolicy policy;
    /** For a route with {@code auth=ID}: the credentials of that id, or null when they are not configured. */
    private final Credentials credentials;
    private final List<Recipient> recipients;
    private final byte[] headerBytes;
    private final long messageSize;

    private final DeliveryResult[] results;
    /** What the log says after the status word, e.g. "host x[1.2.3.4] said: 550 ... (in reply to RCPT TO command)". */
    private final String[] logText;
    private final Relay[] logRelay;

    DeliveryAttempt(Context context, DeliveryRequest request) {
        this.context = context;
        this.cfg = context.config();
        this.request = request;
        this.queueId = request.entry().id();
        this.destination = request.route().destination();
        String authId = request.route().credentialsId();
        this.credentials = authId == null ? null : context.credentials(authId);
        TlsPolicy routed = request.route().tls();
        // Credentials never cross the wire in clear: a route with auth= needs TLS whatever else it says.
        this.policy = authId != null && (routed == TlsPolicy.NONE || routed == TlsPolicy.MAY) ? TlsPolicy.ENCRYPT : routed;
        this.recipients = request.recipients();
        this.headerBytes = Wire.headers(request.entry().addedHeaders());
        this.messageSize = headerBytes.length + request.content().size();
        this.results = new DeliveryResult[recipients.size()];
        this.logText = new String[recipients.size()];
        this.logRelay = new Relay[recipients.size()];
    }

    /** Delivers and logs; never throws. */
    List<DeliveryResult> run() {
        try {
            deliver();
        } catch (RuntimeException | Error e) {
            LOG.warn("{}: smtp delivery failed", queueId, e);
            fillRemaining(Outcome.DEFERRED, "4.3.0", "internal error of the smtp transport: " + e, null, null);
        }
        log();
        return List.of(results);
    }

    private void deliver() {
        Route route = request.route();
        if (recipients.isEmpty()) {
            return;
        }
        if (route.credentialsId() != null && credentials == null) {
            // Deferred, not failed: the mail is fine, the configuration lacks something an operator can add.
            fillRemaining(Outcome.DEFERRED, "4.3.5", "route to " + destination + " asks for client credentials '"
                    + route.credentialsId() + "', which are not configured (auth." + route.credentialsId()
                    + ".username and auth." + route.credentialsId() + ".password in " + SmtpTransport.PID + ")",
                    null, null);
            return;
        }
        if (credentials != null) {
            String refusal = context.authRefusal(destination, credentials);
            if (refusal != null) {
                fillRemaining(Outcome.DEFERRED, "4.7.0", refusal + " (not tried again until the credentials change or "
                        + SmtpTransport.AUTH_REFUSAL_MINUTES + " minutes have passed)", null, null);
                return;
            }
        }
        if (policy == TlsPolicy.VERIFY && context.tls().verified() == null) {
            fillRemaining(Outcome.DEFERRED, "4.7.5", "cannot verify certificates: " + context.tls().verifyProblem(), null, null);
            return;
        }
        List<NextHop> hops = route.nextHops();
        if (hops.isEmpty()) {
            fillRemaining(Outcome.DEFERRED, "4.4.4", "no next hop for " + destination, null, null);
            return;
        }
        ClientConnection cached = context.pool().take(destination, hops, policy, credentials);
        if (cached != null) {
            if (transact(cached, true)) {
                return;
            }
            LOG.debug("{}: cached connection to {} was closed; connecting anew", queueId, cached.relay());
        }
        SessionException last = null;
        Relay lastAnswered = null;
        for (NextHop hop : hops) {
            InetAddress address = Relay.literalAddress(hop.host());
            if (address == null) {
                last = new SessionException("4.4.1", "next hop " + hop + " is a host name: the smtp transport "
                        + "connects to IP addresses only (names are the router's to resolve)", false);
                LOG.info("{}: {}", queueId, last.diagnostic());
                continue;
            }
            Relay relay = new Relay(hop, address);
            HopSetup setup = new HopSetup();
            try {
                ClientConnection c = open(relay, policy != TlsPolicy.NONE, setup);
                transact(c, false);
                return;
            } catch (SessionException e) {
                LOG.info("{}: {}", queueId, e.diagnostic());
                last = e;
                lastAnswered = setup.answered ? relay : null;
            }
        }
        fillRemaining(Outcome.DEFERRED, last.status(), last.diagnostic(),
                lastAnswered == null ? null : lastAnswered.host(), lastAnswered);
    }

    /** Whether the peer said anything at all before the setup failed (then it is the remote MTA). */
    private static final class HopSetup {
        boolean answered;
    }

    /**
     * Connects, reads the greeting, says EHLO (or HELO), and puts TLS under the session as the policy says.
     *
     * @param tls whether to try STARTTLS at all ("may" tries again without after a failed handshake)
     */
    private ClientConnection open(Relay relay, boolean tls, HopSetup setup) throws SessionException {
        ClientConnection c = ClientConnection.connect(context.group(), relay, policy, cfg.connect_timeout());
        boolean handshaking = false;
        try {
            Reply greeting = c.await(c.greeting(), cfg.greeting_timeout(), "receiving the initial server greeting");
            setup.answered = true;
            if (!greeting.isPositive()) {
                throw new SessionException("4.4.1", "host " + relay + " refused to talk to me: " + greeting.text(), false);
            }
            hello(c);
            if (tls) {
                Extensions ext = c.extensions();
                boolean required = policy == TlsPolicy.ENCRYPT || policy == TlsPolicy.VERIFY;
                if (!ext.startTls()) {
                    if (required) {
                        throw new SessionException("4.7.4", "TLS is required, but was not offered by host " + relay, false);
                    }
                    return c;
                }
                Reply reply = c.command(new DefaultSmtpRequest(STARTTLS), cfg.starttls_timeout(), "sending STARTTLS");
                if (reply.code() != 220) {
                    if (required) {
                        throw new SessionException("4.7.4", "TLS is required, but host " + relay
                                + " refused to start TLS: " + reply.text(), false);
                    }
                    return c; // the session goes on in clear, as after any refused command
                }
                boolean verify = policy == TlsPolicy.VERIFY;
                handshaking = true;
                c.startTls(verify ? context.tls().verified() : context.tls().unchecked(), relay.host(), cfg.starttls_timeout());
                handshaking = false;
                LOG.info("{}: {} TLS connection established to {}: {}", queueId, verify ? "Verified" : "Untrusted",
                        relay, c.tlsInfo());
                hello(c); // RFC 3207 4.2: forget what was learnt in clear
            }
            if (credentials != null) {
                authenticate(c);
            }
            return c;
        } catch (SessionException e) {
            c.quit();
            if (handshaking && policy == TlsPolicy.MAY) {
                // Opportunistic TLS must not cost the delivery: try the same hop again in clear, as Postfix does.
                LOG.info("{}: {}; trying again without TLS", queueId, e.diagnostic());
                return open(relay, false, setup);
            }
            throw e;
        }
    }

    /**
     * Client AUTH (RFC 4954) with PLAIN, or LOGIN when the server offers only that; only under TLS. A refusal
     * defers the mail, as Postfix does by default: a wrong password is an operator's problem to fix, not the
     * sender's, and the mail must still be there when it is fixed.
     */
    private void authenticate(ClientConnection c) throws SessionException {
        Relay relay = c.relay();
        if (!c.isTls()) {
            throw new SessionException("4.7.4", "will not send credentials to " + relay + " in clear", false);
        }
        List<String> offered = c.extensions().auth();
        String phase = "authenticating"; // no account name: this text may reach the sender in a bounce
        Reply reply;
        if (offered.contains("PLAIN")) {
            // authorization id empty: act as the authenticated user
            String response = base64("\0" + credentials.username() + "\0" + credentials.password());
            reply = c.command(SmtpRequests.auth("PLAIN", response), cfg.helo_timeout(), phase);
        } else if (offered.contains("LOGIN")) {
            reply = c.command(SmtpRequests.auth("LOGIN"), cfg.helo_timeout(), phase);
            if (reply.code() == 334) {
                reply = c.command(SmtpRequests.empty(base64(credentials.username())), cfg.helo_timeout(), phase);
            }
            if (reply.code() == 334) {
                reply = c.command(SmtpRequests.empty(base64(credentials.password())), cfg.helo_timeout(), phase);
            }
        } else {
            throw new SessionException("4.7.0", "SASL authentication failed: host " + relay + " offers "
                    + (offered.isEmpty() ? "no AUTH" : "AUTH " + String.join(" ", offered) + " but neither PLAIN nor LOGIN"),
                    false);
        }
        if (reply.code() != 235) {
            if (reply.code() == 334) {
                c.command(SmtpRequests.empty("*"), cfg.helo_timeout(), phase); // RFC 4954 4: cancel the exchange
            }
            String diagnostic = "SASL authentication failed; host " + relay + " said: " + reply.text();
            if (reply.isPermanent()) {
                context.authRefused(destination, credentials, diagnostic);
            }
            throw new SessionException("4.7.0", diagnostic, false);
        }
        c.authenticated(credentials);
        LOG.info("{}: authenticated to {} as {}", queueId, relay, credentials.username());
    }

    private static String base64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    /** EHLO, or HELO when EHLO is refused with 5xx (RFC 5321 3.2). */
    private void hello(ClientConnection c) throws SessionException {
        Reply ehlo = c.command(SmtpRequests.ehlo(cfg.helo_name()), cfg.helo_timeout(), "performing the EHLO handshake");
        if (ehlo.isPositive()) {
            c.extensions(Extensions.parse(ehlo));
            return;
        }
        Reply refusal = ehlo;
        if (ehlo.isPermanent() && !c.isTls()) {
            Reply helo = c.command(SmtpRequests.helo(cfg.helo_name()), cfg.helo_timeout(), "performing the HELO handshake");
            if (helo.isPositive()) {
                c.extensions(Extensions.NONE);
                return;
            }
            refusal = helo;
        }
        throw new SessionException("4.4.1", "host " + c.relay() + " refused to talk to me: " + refusal.text(), false);
    }

    /**
     * One mail transaction on a session that is ready.
     *
     * @param reused whether the connection came from the cache
     * @return false only when a cached connection turned out closed before its first reply, or answered it
     *         with 421: nothing was decided, the caller connects anew
     */
    private boolean transact(ClientConnection c, boolean reused) {
        Relay relay = c.relay();
        Extensions ext = c.extensions();
        Envelope env = request.entry().envelope();
        if (ext.sizeLimit() > 0 && messageSize > ext.sizeLimit()) {
            fillRemaining(Outcome.FAILED, "5.3.4", "message size " + messageSize + " exceeds size limit "
                    + ext.sizeLimit() + " of server " + relay, relay.host(), relay);
            keep(c);
            return true;
        }
        boolean needsUtf8 = env.sender().needsSmtpUtf8()
                || recipients.stream().anyMatch(r -> r.address().needsSmtpUtf8());
        if (needsUtf8 && !ext.smtpUtf8()) {
            fillRemaining(Outcome.FAILED, "5.6.7", "SMTPUTF8 is required, but was not offered by host " + relay,
                    relay.host(), relay);
            keep(c);
            return true;
        }
        InputStream in;
        try {
            in = request.content().openStream();
        } catch (IOException e) {
            fillRemaining(Outcome.DEFERRED, "4.3.0", "cannot read the queued message: " + e.getMessage(), null, null);
            keep(c);
            return true;
        }
        try (in) {
            return transact(c, reused, mail(ext, env, needsUtf8), in);
        } catch (IOException e) {
            return true; // closing the stream failed after the transaction: nothing to do about it
        }
    }

    private boolean transact(ClientConnection c, boolean reused, SmtpRequest mail, InputStream in) {
        Relay relay = c.relay();
        Extensions ext = c.extensions();
        boolean pipelining = ext.pipelining();
        int n = recipients.size();
        boolean answered = false;
        try {
            CompletableFuture<Reply> mailFuture = c.expect();
            List<SmtpRequest> commands = new ArrayList<>(pipelining ? n + 2 : 1);
            commands.add(mail);
            List<CompletableFuture<Reply>> rcptFutures = new ArrayList<>(n);
            CompletableFuture<Reply> dataFuture = null;
            if (pipelining) {
                // RFC 2920: MAIL, every RCPT and DATA in one flush; the replies come back in the same order.
                for (Recipient r : recipients) {
                    rcptFutures.add(c.expect());
                    commands.add(rcpt(ext, r));
                }
                dataFuture = c.expect();
                commands.add(SmtpRequests.data());
            }
            c.send(commands);
            Reply mailReply = c.await(mailFuture, cfg.mail_timeout(), "sending MAIL FROM");
            if (reused && mailReply.code() == 421) {
                // The server closed the cached session (idle too long, too many messages) as it was taken:
                // nothing was decided, a new connection may do.
                c.close();
                return false;
            }
            answered = true;
            boolean mailOk = mailReply.isPositive();
            if (!mailOk) {
                for (int i = 0; i < n; i++) {
                    setFromReply(i, mailReply, "MAIL FROM", relay, false);
                }
            }
            boolean anyAccepted = false;
            for (int i = 0; i < n && (mailOk || pipelining); i++) {
                Reply rcpt = pipelining
                        ? c.await(rcptFutures.get(i), cfg.rcpt_timeout(), "sending RCPT TO")
                        : c.command(rcpt(ext, recipients.get(i)), cfg.rcpt_timeout(), "sending RCPT TO");
                if (!mailOk) {
                    continue; // replies to a pipelined RCPT after a refused MAIL mean nothing
                }
                if (rcpt.isPositive()) {
                    anyAccepted = true;
                } else {
                    setFromReply(i, rcpt, "RCPT TO", relay, false);
                }
            }
            Reply data = pipelining ? c.await(dataFuture, cfg.data_timeout(), "sending DATA")
                    : anyAccepted ? c.command(SmtpRequests.data(), cfg.data_timeout(), "sending DATA")
                    : null;
            if (data != null && data.code() == 354) {
                // The reply to the end of data is awaited from now on: a server may give it early, and stop
                // reading, when it refuses the message halfway.
                CompletableFuture<Reply> dotFuture = c.expect();
                if (!anyAccepted) {
                    // 354 with no valid recipient (RFC 2920 3.1 says a server must not): end the empty message
                    // at once, there is no one it could go to.
                    c.endData();
                    c.await(dotFuture, cfg.final_dot_timeout(), "sending end of data");
                } else if (sendContent(c, in, dotFuture)) {
                    Reply dot = c.await(dotFuture, cfg.final_dot_timeout(),
                            "sending end of data -- message may be sent more than once");
                    for (int i = 0; i < n; i++) {
                        if (results[i] == null) {
                            setFromReply(i, dot, "end of DATA", relay, true);
                        }
                    }
                } else {
                    Reply early = c.await(dotFuture, cfg.final_dot_timeout(), "sending message body");
                    for (int i = 0; i < n; i++) {
                        if (results[i] == null) {
                            setFromReply(i, early, "message body", relay, false);
                        }
                    }
                    c.close(); // the data was cut short: no state worth keeping
                    return true;
                }
                finish(c, false); // the reply to the dot ended the transaction (RFC 5321 4.1.1.4)
                return true;
            } else if (anyAccepted) {
                for (int i = 0; i < n; i++) {
                    if (results[i] == null) {
                        setFromReply(i, data, "DATA", relay, false);
                    }
                }
            }
            finish(c, true);
            return true;
        } catch (SessionException e) {
            if (reused && !answered && e.connectionLost()) {
                return false;
            }
            fillRemaining(Outcome.DEFERRED, e.status(), e.diagnostic(), relay.host(), relay);
            c.close();
            return true;
        } catch (IOException e) {
            // The queued message cannot be read to its end: close without the final dot, so that the server
            // throws the partial message away.
            c.close();
            fillRemaining(Outcome.DEFERRED, "4.3.0", "cannot read the queued message: " + e.getMessage(), null, null);
            return true;
        }
    }

    private SmtpRequest mail(Extensions ext, Envelope env, boolean needsUtf8) {
        List<CharSequence> params = new ArrayList<>();
        params.add(Wire.arg("FROM:<" + env.sender() + ">"));
        if (ext.size()) {
            params.add("SIZE=" + messageSize);
        }
        if (env.body() != BodyType.SEVEN_BIT && ext.eightBitMime()) {
            // BINARYMIME would need BDAT; a binary body goes as 8BITMIME, the best DATA can say.
            params.add("BODY=8BITMIME");
        }
        if ((needsUtf8 || env.smtpUtf8()) && ext.smtpUtf8()) {
            params.add("SMTPUTF8");
        }
        if (ext.dsn()) {
            if (env.ret() != null) {
                params.add("RET=" + env.ret().name());
            }
            if (env.envId() != null) {
                params.add("ENVID=" + Wire.xtext(env.envId()));
            }
        }
        return new DefaultSmtpRequest(SmtpCommand.MAIL, params.toArray(CharSequence[]::new));
    }

    private static SmtpRequest rcpt(Extensions ext, Recipient r) {
        List<CharSequence> params = new ArrayList<>();
        params.add(Wire.arg("TO:<" + r.address() + ">"));
        if (ext.dsn()) {
            if (!r.notifyOn().isEmpty()) {
                params.add("NOTIFY=" + (r.notifyOn().contains(Notify.NEVER) ? "NEVER"
                        : r.notifyOn().stream().sorted().map(Enum::name).collect(Collectors.joining(","))));
            }
            if (r.orcpt() != null) {
                params.add(Wire.arg("ORCPT=" + r.orcpt()));
            }
        }
        return new DefaultSmtpRequest(SmtpCommand.RCPT, params.toArray(CharSequence[]::new));
    }

    /**
     * The added headers, then the stored message, dot-stuffed, in chunks read on this (worker) thread, then the
     * final dot. The headers share the first chunk and the last chunk carries the dot: a small message is one write.
     *
     * @return false when the server replied before the end (the reply is in {@code early}), true when the
     *         dot went and its reply is awaited
     */
    private boolean sendContent(ClientConnection c, InputStream in, CompletableFuture<Reply> early)
            throws IOException, SessionException {
        DotStuffer stuffer = new DotStuffer();
        ByteBufAllocator alloc = c.channel().alloc();
        int timeout = cfg.data_block_timeout();
        // No bigger than the message (most are a few KiB) nor than a chunk; never tiny, should the size be off.
        byte[] buffer = new byte[(int) Math.min(CHUNK, Math.max(messageSize - headerBytes.length, 1024))];
        ByteBuf out = alloc.buffer(headerBytes.length + buffer.length + buffer.length / 16 + 16);
        try {
            stuffer.stuff(headerBytes, 0, headerBytes.length, out);
            int read;
            while ((read = in.read(buffer)) != -1) {
                stuffer.stuff(buffer, 0, read, out);
                if (out.readableBytes() >= CHUNK) {
                    ByteBuf full = out;
                    out = null;
                    if (!c.writeData(full, false, timeout, early)) {
                        return false;
                    }
                    out = alloc.buffer(CHUNK + CHUNK / 16 + 16);
                }
            }
            stuffer.finish(out);
            ByteBuf last = out;
            out = null;
            return c.writeData(last, true, timeout, early);
        } finally {
            if (out != null) { // the stream failed: this chunk never went
                out.release();
            }
        }
    }

    /**
     * After a transaction: cache the connection, unless it has carried enough. RSET first when the transaction was
     * cut short (MAIL, every RCPT or DATA refused): the server may hold part of it, and the encoder still expects
     * data after a pipelined DATA. After the reply to the dot there is nothing to reset.
     */
    private void finish(ClientConnection c, boolean reset) {
        c.transactionDone();
        if (c.transactions() >= cfg.max_messages_per_connection() || !c.isActive()) {
            c.quit();
            return;
        }
        if (reset) {
            try {
                Reply rset = c.command(SmtpRequests.rset(), cfg.rset_timeout(), "sending RSET");
                if (!rset.isPositive()) {
                    c.quit();
                    return;
                }
            } catch (SessionException e) {
                return; // closed already; the results stand
            }
        }
        keep(c);
    }

    /** Caches a connection that is between transactions, or says QUIT when the cache does not take it. */
    private void keep(ClientConnection c) {
        if (!context.pool().offer(destination, c, cfg.max_cached_connections_per_destination(), cfg.connection_idle_time())) {
            c.quit();
        }
    }

    /**
     * 4xx deferred, 5xx failed; 2xx delivered when it is the reply to the final dot; anything else deferred.
     */
    private void setFromReply(int i, Reply reply, String command, Relay relay, boolean finalReply) {
        Outcome outcome;
        String status;
        if (reply.isPositive() && finalReply) {
            outcome = Outcome.DELIVERED;
            status = reply.status();
        } else if (reply.isTransient() || reply.isPermanent()) {
            outcome = reply.isTransient() ? Outcome.DEFERRED : Outcome.FAILED;
            status = reply.status();
        } else {
            outcome = Outcome.DEFERRED;
            status = "4.5.0"; // a reply that makes no sense here, e.g. 354 to MAIL or 250 to DATA
        }
        results[i] = new DeliveryResult(recipients.get(i), outcome, status, reply.text(), relay.host());
        logText[i] = outcome == Outcome.DELIVERED ? reply.text()
                : "host " + relay + " said: " + reply.text() + " (in reply to " + command + " command)";
        logRelay[i] = relay;
    }

    private void fillRemaining(Outcome outcome, String status, String diagnostic, String remoteMta, Relay relay) {
        for (int i = 0; i < results.length; i++) {
            if (results[i] == null) {
                results[i] = new DeliveryResult(recipients.get(i), outcome, status, diagnostic, remoteMta);
                logText[i] = diagnostic;
                logRelay[i] = relay;
            }
        }
    }

    /** One line per recipient, as Postfix writes them, so the same greps work. */
    private void log() {
        String delay = delay(request.entry().envelope().receivedAt());
        for (int i = 0; i < results.length; i++) {
            DeliveryResult r = results[i];
            String word = switch (r.outcome()) {
                case DELIVERED -> "sent";
                case DEFERRED -> "deferred";
                case FAILED -> "bounced";
            };
            LOG.info("{}: to=<{}>, relay={}, delay={}, dsn={}, status={} ({})", queueId, r.recipient().address(),
                    logRelay[i] == null ? "none" : logRelay[i], delay, r.status(), word, logText[i]);
        }
    }

    static String delay(Instant since) {
        long millis = Math.max(0, Duration.between(since, Instant.now()).toMillis());
        return BigDecimal.valueOf(millis, 3).setScale(2, RoundingMode.HALF_UP).stripTrailingZeros().toPlainString();
    }
}
