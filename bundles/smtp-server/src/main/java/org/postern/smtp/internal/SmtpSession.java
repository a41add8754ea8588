package org.postern.smtp.internal;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import javax.net.ssl.SSLSession;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;

import org.postern.api.auth.AuthResult;
import org.postern.api.auth.Authenticator;
import org.postern.api.filter.SessionContext;
import org.postern.api.filter.Verdict;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.QueueStore;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server side of one SMTP connection (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES,
 * SMTPUTF8, DSN, CHUNKING, STARTTLS and AUTH): a state machine fed by {@link SmtpFrameDecoder}.
 *
 * <p>Frames are processed strictly in order. While a step waits for something asynchronous (a filter's
 * verdict, the relay policy, an authenticator, the queue's commit), later frames wait in a small inbox and
 * the channel stops reading, so a pipelining client gets its replies in order and cannot make us buffer
 * without bound.
 */
final class SmtpSession extends ChannelInboundHandlerAdapter implements SessionContext {

    private static final Logger LOG = LoggerFactory.getLogger(SmtpSession.class);
    private static final AtomicLong IDS = new AtomicLong(System.currentTimeMillis() % 1_000_000);
    private static final DateTimeFormatter RFC5322 = DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT);

    /** What the listener lends its sessions; each call gives the current service (may be null or empty). */
    interface Services {
        QueueStore queueStore();

        RelayPolicy relayPolicy();

        FilterChain filterChain();

        /** Authenticators in ranking order, highest first. */
        List<Authenticator> authenticators();

        /** The TLS context, or null when this listener has no certificate. */
        SslContext tls();

        /** Counts a new connection from this address in; false when a limit says no. */
        boolean admit(java.net.InetAddress client);

        void release(java.net.InetAddress client);
    }

    private enum State { GREETING, COMMAND, DATA, CLOSED }

    private final Services services;
    private final ListenerConfig config;
    private final Role role;
    private final String id = Long.toString(IDS.incrementAndGet(), 36).toUpperCase(Locale.ROOT);
    private final Map<String, Object> notes = new ConcurrentHashMap<>();
    private final ArrayDeque<Object> inbox = new ArrayDeque<>();

    private ChannelHandlerContext ctx;
    private SessionTimer timer;
    private SmtpFrameDecoder frames;
    private boolean replied;
    private String lastVerb = "CONNECT";
    private int junk;
    private InetSocketAddress client;
    private boolean admitted;
    private State state = State.GREETING;
    private boolean busy;
    private int errors;
    private String heloName;
    private boolean extended;
    private Transaction transaction;

    private String tlsProtocol;
    private String tlsCipher;
    private String authenticatedAs;
    private Set<MailAddress> authSenders = Set.of();
    private AuthExchange auth;

    // message data, by DATA or BDAT
    private MessageScan scan;
    private long bdatRemaining;
    private boolean bdatLast;
    private String bdatError;
    private boolean bdatStarted;

    SmtpSession(Services services, ListenerConfig config) {
        this.services = services;
        this.config = config;
        this.role = Role.of(config.role());
    }

    enum Role {
        MX, SUBMISSION, SUBMISSIONS;

        static Role of(String name) {
            try {
                return valueOf(name.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("role must be mx, submission or submissions, not " + name);
            }
        }

        boolean requiresAuth() {
            return this != MX;
        }
    }

    static void configure(ChannelPipeline pipeline, Services services, ListenerConfig config) {
        if (config.proxy_protocol()) {
            pipeline.addLast("proxy", new HAProxyMessageDecoder());
        }
        if (Role.of(config.role()) == Role.SUBMISSIONS) {
            SslContext tls = services.tls();
            if (tls == null) {
                throw new IllegalStateException("submissions needs a TLS certificate");
            }
            pipeline.addLast("tls", tls.newHandler(pipeline.channel().alloc()));
        }
        pipeline.addLast("timer", new SessionTimer(orIdle(config.command_timeout(), config),
                orIdle(config.data_timeout(), config), config.data_min_rate()));
        pipeline.addLast("frames", new SmtpFrameDecoder(Math.max(config.max_text_line(), config.max_command_line())));
        pipeline.addLast("smtp", new SmtpSession(services, config));
    }

    private static int orIdle(int seconds, ListenerConfig config) {
        return seconds > 0 ? seconds : config.idle_timeout();
    }

    // ---- Netty events ----

    @Override
    public void channelActive(ChannelHandlerContext context) {
        this.ctx = context;
        this.timer = context.pipeline().get(SessionTimer.class);
        this.frames = context.pipeline().get(SmtpFrameDecoder.class);
        timer.command(); // the PROXY header and the greeting's wait fall under the command timeout too
        context.channel().config().setAutoRead(false);
        if (config.proxy_protocol()) {
            context.read(); // the PROXY header comes first; the session starts when it has been read
            return;
        }
        SocketAddress remote = context.channel().remoteAddress();
        start(remote instanceof InetSocketAddress isa ? isa : new InetSocketAddress("0.0.0.0", 0));
    }

    private void start(InetSocketAddress from) {
        this.client = from;
        LOG.info("{}: connect from [{}] to listener {}", id, clientIp(), config.name());
        if (!services.admit(from.getAddress())) {
            LOG.info("{}: too many connections from [{}]", id, clientIp());
            replyAndClose(421, "4.7.0", config.hostname() + " Error: too many connections");
            return;
        }
        admitted = true;
        busy = true;
        timer.pause(); // the connect filters have their own timeouts
        ctx.read(); // an early talker's first lines wait in the inbox until the greeting is out
        services.filterChain().run("connect", id, ctx.executor(), f -> f.connect(this)).whenComplete((v, e) -> {
            busy = false;
            if (state == State.CLOSED) {
                return;
            }
            if (e != null || v.action() == Verdict.Action.REJECT || v.action() == Verdict.Action.TEMPFAIL) {
                // RFC 5321 3.1: a server that refuses service greets with 554 (or 421 when it is temporary)
                boolean perm = e == null && v.action() == Verdict.Action.REJECT;
                replyAndClose(perm ? 554 : 421, perm ? v.enhancedStatus() : "4.3.2",
                        e == null ? v.text() : "Service not available, closing connection");
                return;
            }
            state = State.COMMAND;
            reply(220, null, config.hostname() + " ESMTP Postern");
            drain();
        });
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (msg instanceof HAProxyMessage proxy) {
            try {
                if (client == null) {
                    start(proxy.sourceAddress() == null ? (InetSocketAddress) context.channel().remoteAddress()
                            : new InetSocketAddress(proxy.sourceAddress(), proxy.sourcePort()));
                }
            } finally {
                proxy.release();
            }
            return;
        }
        if (state == State.CLOSED) {
            release(msg);
            return;
        }
        inbox.add(msg);
        drain();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        LOG.info("{}: connection error from [{}]: {}", id, clientIp(), cause.toString());
        state = State.CLOSED;
        context.close();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext context, Object evt) {
        if (evt instanceof SessionTimer.Expired expired) {
            if (state != State.CLOSED && !busy) {
                LOG.info("{}: timeout after {}{} from [{}]", id, lastVerb,
                        expired.phase() == SessionTimer.Phase.DATA && scan != null && transaction != null
                                && transaction.pending() != null ? " (" + transaction.pending().size() + " octets)" : "",
                        clientIp());
                replyAndClose(421, "4.4.2", config.hostname() + " Error: timeout exceeded");
            }
        } else if (evt instanceof SslHandshakeCompletionEvent done) {
            if (done.isSuccess()) {
                SSLSession tls = context.pipeline().get(SslHandler.class).engine().getSession();
                tlsProtocol = tls.getProtocol();
                tlsCipher = tls.getCipherSuite();
                LOG.info("{}: TLS established from [{}]: {} with cipher {}", id, clientIp(), tlsProtocol, tlsCipher);
            } else {
                LOG.info("{}: TLS handshake failed from [{}]: {}", id, clientIp(), done.cause().toString());
                state = State.CLOSED;
                context.close();
            }
        } else {
            context.fireUserEventTriggered(evt);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        state = State.CLOSED;
        resetTransaction();
        clearInbox();
        if (admitted) {
            services.release(client.getAddress());
        }
        LOG.info("{}: disconnect from [{}]", id, clientIp());
    }

    // ---- the inbox: one frame at a time, in order ----

    private void drain() {
        Object frame;
        while (!busy && state != State.CLOSED && (frame = inbox.poll()) != null) {
            try {
                if (frame == SmtpFrameDecoder.LINE_TOO_LONG) {
                    lineTooLong();
                } else if (frame instanceof SmtpFrameDecoder.LongLineEnd end) {
                    if (state == State.DATA && scan != null) {
                        // a "." line counts as the end only after CRLF, also after a line we dropped
                        scan.lastLineEndedWithCrlf = end.crlf();
                    }
                } else if (frame instanceof SmtpFrameDecoder.Chunk chunk) {
                    chunk(chunk);
                } else if (frame instanceof SmtpFrameDecoder.Lines lines) {
                    plainLines(lines.data());
                } else if (auth != null) {
                    auth.line(text((ByteBuf) frame));
                } else if (state == State.DATA) {
                    dataLine((ByteBuf) frame);
                } else {
                    command((ByteBuf) frame);
                }
            } finally {
                release(frame);
            }
        }
        if (state == State.CLOSED || ctx == null) {
            return;
        }
        if (!busy) {
            // Waiting for the client again: message content runs under the data timeout (one phase for the
            // whole message), anything else under the command timeout, restarted by each reply.
            if (state == State.DATA || bdatStarted) {
                timer.data();
            } else if (replied || timer.phase() != SessionTimer.Phase.COMMAND) {
                timer.command();
            }
            replied = false;
        }
        ctx.channel().config().setAutoRead(!busy);
        ctx.flush();
    }

    private void clearInbox() {
        Object frame;
        while ((frame = inbox.poll()) != null) {
            release(frame);
        }
    }

    private static void release(Object frame) {
        ReferenceCountUtil.release(frame instanceof SmtpFrameDecoder.Chunk c ? c.data()
                : frame instanceof SmtpFrameDecoder.Lines l ? l.data() : frame);
    }

    /** Runs an asynchronous step: reading stops until {@code then} has run on the event loop. */
    private <T> void await(CompletionStage<T> stage, Consumer<T> then, Consumer<Throwable> failed) {
        busy = true;
        timer.pause();
        ctx.channel().config().setAutoRead(false);
        stage.whenCompleteAsync((value, error) -> {
            busy = false;
            if (state == State.CLOSED) {
                return;
            }
            try {
                if (error != null) {
                    failed.accept(error instanceof CompletionException && error.getCause() != null ? error.getCause() : error);
                } else {
                    then.accept(value);
                }
            } catch (RuntimeException e) {
                LOG.error("{}: internal error", id, e);
                reply(451, "4.3.0", "Internal error, try again later");
            }
            drain();
        }, ctx.executor());
    }

    private static String text(ByteBuf line) {
        int length = line.readableBytes();
        int end = length;
        if (end > 0 && line.getByte(line.readerIndex() + end - 1) == '\n') {
            end--;
            if (end > 0 && line.getByte(line.readerIndex() + end - 1) == '\r') {
                end--;
            }
        }
        return line.toString(line.readerIndex(), end, StandardCharsets.UTF_8);
    }

    // ---- commands ----

    private void lineTooLong() {
        if (state == State.DATA) {
            scan.lineTooLong = true;
            return;
        }
        // RFC 5321 4.5.3.1.4; a client that sends endless lines is not talking SMTP
        LOG.info("{}: command line too long from [{}]", id, clientIp());
        replyAndClose(500, "5.5.2", "Error: line too long");
    }

    private void command(ByteBuf buf) {
        if (buf.readableBytes() == 0 || buf.getByte(buf.writerIndex() - 1) != '\n') {
            return; // the remains of a connection closed mid-line
        }
        String line = text(buf);
        int space = line.indexOf(' ');
        String verb = (space < 0 ? line : line.substring(0, space)).toUpperCase(Locale.ROOT);
        String arg = space < 0 ? "" : line.substring(space + 1);
        lastVerb = verb.length() <= 12 && verb.chars().allMatch(c -> c >= 'A' && c <= 'Z') ? verb : "UNKNOWN";
        if ((verb.equals("NOOP") || verb.equals("RSET") || verb.equals("VRFY") || verb.equals("HELP")) && tooMuchJunk()) {
            return;
        }
        if (buf.readableBytes() > config.max_command_line() && !verb.equals("AUTH")) {
            replyAndClose(500, "5.5.2", "Error: line too long");
            return;
        }
        if (bdatStarted && !verb.equals("BDAT") && !verb.equals("RSET") && !verb.equals("QUIT") && !verb.equals("NOOP")) {
            error(503, "5.5.1", "Error: only BDAT, RSET, NOOP or QUIT during a BDAT transfer");
            return;
        }
        switch (verb) {
            case "EHLO" -> helo(arg, true);
            case "HELO" -> helo(arg, false);
            case "STARTTLS" -> startTls(arg);
            case "AUTH" -> auth(arg);
            case "MAIL" -> mail(arg);
            case "RCPT" -> rcpt(arg);
            case "DATA" -> data(arg);
            case "BDAT" -> bdat(arg);
            case "RSET" -> {
                resetTransaction();
                reply(250, "2.0.0", "Ok");
            }
            case "NOOP" -> reply(250, "2.0.0", "Ok");
            case "QUIT" -> replyAndClose(221, "2.0.0", "Bye");
            case "VRFY" -> {
                if (config.vrfy()) {
                    reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
                } else {
                    error(502, "5.5.1", "VRFY command is disabled");
                }
            }
            case "HELP" -> reply(214, "2.0.0", "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
            default -> error(500, "5.5.2", "Error: command not recognized");
        }
    }

    /** Counts a junk command; past the limit each one counts as an error too (the session may close). */
    private boolean tooMuchJunk() {
        if (++junk <= config.max_junk_commands()) {
            return false;
        }
        if (++errors >= config.max_errors()) {
            LOG.info("{}: too many errors from [{}]", id, clientIp());
            replyAndClose(421, "4.7.0", config.hostname() + " Error: too many errors");
            return true;
        }
        return false;
    }

    private boolean tlsActive() {
        return tlsProtocol != null;
    }

    private boolean authOffered() {
        return role.requiresAuth() && tlsActive();
    }

    private void helo(String arg, boolean ehlo) {
        String name = arg.trim();
        if (name.isEmpty() || name.indexOf(' ') >= 0) {
            error(501, "5.5.4", "Syntax: " + (ehlo ? "EHLO" : "HELO") + " hostname");
            return;
        }
        resetTransaction();
        await(services.filterChain().run("helo", id, ctx.executor(), f -> f.helo(this, name)), v -> {
            if (refused(v)) {
                return;
            }
            heloName = name;
            extended = ehlo;
            if (!ehlo) {
                reply(250, null, config.hostname());
                return;
            }
            List<String> lines = new ArrayList<>(List.of(config.hostname(), "PIPELINING",
                    "SIZE " + config.max_message_size(), "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN", "CHUNKING"));
            if (!tlsActive() && services.tls() != null) {
                lines.add("STARTTLS");
            }
            if (authOffered() && authenticatedAs == null) {
                lines.add("AUTH PLAIN LOGIN");
            }
            reply(250, null, lines);
        }, this::filterFailed);
    }

    private void startTls(String arg) {
        if (!arg.isBlank()) {
            error(501, "5.5.4", "Syntax: STARTTLS");
            return;
        }
        if (tlsActive() || ctx.pipeline().get(SslHandler.class) != null) {
            error(503, "5.5.1", "Error: TLS already active");
            return;
        }
        SslContext tls = services.tls();
        if (tls == null) {
            error(454, "4.7.0", "TLS not available due to local problem");
            return;
        }
        // RFC 3207 4.2: forget everything the client said in clear, including what it pipelined after
        // STARTTLS (CVE-2011-0411), and start over with no HELO.
        clearInbox();
        ctx.pipeline().get(SmtpFrameDecoder.class).reset();
        resetTransaction();
        heloName = null;
        extended = false;
        SslHandler handler = new SslHandler(tls.newEngine(ctx.alloc()), true); // the 220 below goes in clear
        ctx.pipeline().addFirst("tls", handler);
        reply(220, "2.0.0", "Ready to start TLS");
    }

    // ---- AUTH (RFC 4954) ----

    private void auth(String arg) {
        if (!role.requiresAuth()) {
            error(503, "5.5.1", "Error: authentication not enabled");
            return;
        }
        if (!tlsActive()) {
            error(538, "5.7.11", "Encryption required for requested authentication mechanism");
            return;
        }
        if (heloName == null) {
            error(503, "5.5.1", "Error: send HELO/EHLO first");
            return;
        }
        if (authenticatedAs != null) {
            error(503, "5.5.1", "Error: already authenticated");
            return;
        }
        if (transaction != null) {
            error(503, "5.5.1", "Error: MAIL transaction in progress");
            return;
        }
        String[] parts = arg.trim().split(" +");
        String mechanism = parts[0].toUpperCase(Locale.ROOT);
        if (mechanism.isEmpty()) {
            error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
            return;
        }
        String initial = parts.length > 1 ? parts[1] : null;
        if (parts.length > 2) {
            error(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
            return;
        }
        switch (mechanism) {
            case "PLAIN" -> auth = new AuthExchange(true);
            case "LOGIN" -> auth = new AuthExchange(false);
            default -> {
                error(504, "5.5.4", "Unrecognized authentication type");
                return;
            }
        }
        if (initial != null) {
            auth.line(initial);
        } else {
            reply(334, null, auth.plain ? "" : "VXNlcm5hbWU6"); // "Username:"
        }
    }

    /** A SASL exchange in progress: the next lines are responses, not commands. */
    private final class AuthExchange {
        final boolean plain;
        String username;

        AuthExchange(boolean plain) {
            this.plain = plain;
        }

        void line(String response) {
            if (response.equals("*")) {
                auth = null;
                error(501, "5.0.0", "Authentication aborted");
                return;
            }
            byte[] decoded;
            try {
                decoded = response.equals("=") ? new byte[0] : java.util.Base64.getDecoder().decode(response);
            } catch (IllegalArgumentException e) {
                auth = null;
                error(501, "5.5.2", "Cannot decode response");
                return;
            }
            String text = new String(decoded, StandardCharsets.UTF_8);
            if (plain) {
                String[] fields = text.split("\0", -1);
                auth = null;
                if (fields.length != 3 || fields[1].isEmpty()) {
                    error(501, "5.5.2", "Invalid PLAIN response");
                    return;
                }
                verify(fields[1], fields[2].toCharArray(), fields[0].isEmpty() ? null : fields[0]);
            } else if (username == null) {
                username = text;
                reply(334, null, "UGFzc3dvcmQ6"); // "Password:"
            } else {
                auth = null;
                verify(username, text.toCharArray(), null);
            }
        }
    }

    private void verify(String username, char[] password, String authzid) {
        List<Authenticator> authenticators = services.authenticators();
        CompletableFuture<AuthResult> result = new CompletableFuture<>();
        tryAuthenticator(authenticators, 0, username, password, authzid, result);
        ctx.executor().schedule(() -> result.completeExceptionally(new java.util.concurrent.TimeoutException()),
                config.auth_timeout(), TimeUnit.SECONDS);
        await(result, r -> {
            java.util.Arrays.fill(password, '\0');
            switch (r.status()) {
                case SUCCESS -> {
                    authenticatedAs = r.identity();
                    authSenders = r.senders();
                    LOG.info("{}: authenticated from [{}] as {}", id, clientIp(), authenticatedAs);
                    reply(235, "2.7.0", "Authentication successful");
                }
                case UNAVAILABLE -> reply(454, "4.7.0", "Temporary authentication failure");
                default -> {
                    LOG.info("{}: authentication failed from [{}] for {}", id, clientIp(), username);
                    error(535, "5.7.8", "Authentication credentials invalid");
                }
            }
        }, e -> {
            java.util.Arrays.fill(password, '\0');
            LOG.warn("{}: authentication unavailable: {}", id, e.toString());
            reply(454, "4.7.0", "Temporary authentication failure");
        });
    }

    private void tryAuthenticator(List<Authenticator> list, int index, String user, char[] password, String authzid,
                                  CompletableFuture<AuthResult> result) {
        if (index >= list.size()) {
            result.complete(list.isEmpty() ? AuthResult.unavailable() : AuthResult.failure());
            return;
        }
        CompletionStage<AuthResult> stage;
        try {
            stage = list.get(index).authenticate(user, password.clone(), authzid);
        } catch (RuntimeException e) {
            result.completeExceptionally(e);
            return;
        }
        stage.whenComplete((r, e) -> {
            if (e != null || r == null) {
                result.completeExceptionally(e != null ? e : new NullPointerException("no result"));
            } else if (r.status() == AuthResult.Status.UNKNOWN_USER) {
                tryAuthenticator(list, index + 1, user, password, authzid, result);
            } else {
                result.complete(r);
            }
        });
    }

    /** Whether the authenticated user may use this sender (they send only as themselves). */
    private boolean owns(MailAddress sender) {
        if (!authSenders.isEmpty()) {
            return authSenders.contains(sender);
        }
        if (sender.isNullSender()) {
            return false;
        }
        if (authenticatedAs.indexOf('@') > 0) {
            try {
                return MailAddress.parse(authenticatedAs).equals(sender)
                        || sender.toString().equalsIgnoreCase(authenticatedAs);
            } catch (IllegalArgumentException e) {
                return false;
            }
        }
        return sender.localPart().equalsIgnoreCase(authenticatedAs);
    }

    // ---- the transaction ----

    private void mail(String arg) {
        if (heloName == null) {
            error(503, "5.5.1", "Error: send HELO/EHLO first");
            return;
        }
        if (transaction != null) {
            error(503, "5.5.1", "Error: nested MAIL command");
            return;
        }
        if (role.requiresAuth() && authenticatedAs == null) {
            error(530, "5.7.0", tlsActive() ? "Authentication required" : "Must issue a STARTTLS command first");
            return;
        }
        CommandArgs args;
        long size = -1;
        BodyType body = BodyType.SEVEN_BIT;
        boolean utf8 = false;
        String envId = null;
        Ret ret = null;
        try {
            args = CommandArgs.parse(arg, "FROM", "5.1.7");
            if (args.address().domain().isEmpty() && !args.address().isNullSender()) {
                throw new SmtpException(501, "5.1.7", "Sender address must have a domain");
            }
            for (Map.Entry<String, String> p : args.params().entrySet()) {
                String value = p.getValue();
                switch (p.getKey()) {
                    case "SIZE" -> {
                        size = parseSize(value);
                        if (size > config.max_message_size()) {
                            throw new SmtpException(552, "5.3.4", "Message size exceeds fixed limit");
                        }
                    }
                    case "BODY" -> body = switch (value == null ? "" : value.toUpperCase(Locale.ROOT)) {
                        case "7BIT" -> BodyType.SEVEN_BIT;
                        case "8BITMIME" -> BodyType.EIGHT_BIT_MIME;
                        case "BINARYMIME" -> BodyType.BINARY_MIME;
                        default -> throw new SmtpException(501, "5.5.4", "Unsupported BODY type");
                    };
                    case "SMTPUTF8" -> {
                        if (value != null) {
                            throw new SmtpException(501, "5.5.4", "SMTPUTF8 takes no value");
                        }
                        utf8 = true;
                    }
                    case "RET" -> ret = switch (value == null ? "" : value.toUpperCase(Locale.ROOT)) {
                        case "FULL" -> Ret.FULL;
                        case "HDRS" -> Ret.HDRS;
                        default -> throw new SmtpException(501, "5.5.4", "RET must be FULL or HDRS");
                    };
                    case "ENVID" -> {
                        envId = value == null ? null : CommandArgs.decodeXtext(value);
                        if (envId == null || value.length() > 100) {
                            throw new SmtpException(501, "5.5.4", "Bad ENVID");
                        }
                    }
                    case "AUTH" -> {
                        // RFC 4954 5: the identity a trusted relay vouches for; we record our own instead
                        if (value == null || CommandArgs.decodeXtext(value) == null) {
                            throw new SmtpException(501, "5.5.4", "Bad AUTH parameter");
                        }
                    }
                    default -> throw new SmtpException(555, "5.5.4", "Unsupported parameter " + p.getKey());
                }
            }
            if (!utf8 && args.address().needsSmtpUtf8()) {
                throw new SmtpException(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
            }
            if (authenticatedAs != null && !owns(args.address())) {
                throw new SmtpException(553, "5.7.1", "<" + args.address() + ">: Sender address not owned by user " + authenticatedAs);
            }
        } catch (SmtpException e) {
            error(e.code(), e.status(), e.getMessage());
            return;
        }
        // The chain is taken once here: a filter swapped in mid-transaction applies from the next one.
        Transaction t = new Transaction(this, services.filterChain(), args.address(), size, body, utf8, envId, ret);
        MailAddress sender = args.address();
        await(t.chain().run("mail", id, ctx.executor(), f -> f.mailFrom(t, sender)), v -> {
            if (refused(v)) {
                return;
            }
            transaction = t;
            reply(250, "2.1.0", "Ok");
        }, this::filterFailed);
    }

    private static long parseSize(String value) throws SmtpException {
        if (value == null || !value.matches("\\d{1,20}")) {
            throw new SmtpException(501, "5.5.4", "Bad SIZE value");
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    private void rcpt(String arg) {
        Transaction t = transaction;
        if (t == null) {
            error(503, "5.5.1", "Error: need MAIL command");
            return;
        }
        Recipient recipient;
        try {
            CommandArgs args = CommandArgs.parse(arg, "TO", "5.1.3");
            if (args.address().isNullSender()) {
                throw new SmtpException(501, "5.1.3", "Empty recipient address");
            }
            Set<Notify> notify = EnumSet.noneOf(Notify.class);
            String orcpt = null;
            for (Map.Entry<String, String> p : args.params().entrySet()) {
                String value = p.getValue();
                switch (p.getKey()) {
                    case "NOTIFY" -> {
                        if (value == null) {
                            throw new SmtpException(501, "5.5.4", "NOTIFY needs a value");
                        }
                        for (String n : value.toUpperCase(Locale.ROOT).split(",")) {
                            try {
                                notify.add(Notify.valueOf(n));
                            } catch (IllegalArgumentException e) {
                                throw new SmtpException(501, "5.5.4", "Bad NOTIFY value " + n);
                            }
                        }
                        if (notify.contains(Notify.NEVER) && notify.size() > 1) {
                            throw new SmtpException(501, "5.5.4", "NOTIFY=NEVER cannot be combined");
                        }
                    }
                    case "ORCPT" -> {
                        int semi = value == null ? -1 : value.indexOf(';');
                        if (semi <= 0 || CommandArgs.decodeXtext(value.substring(semi + 1)) == null || value.length() > 500) {
                            throw new SmtpException(501, "5.5.4", "Bad ORCPT");
                        }
                        orcpt = value;
                    }
                    default -> throw new SmtpException(555, "5.5.4", "Unsupported parameter " + p.getKey());
                }
            }
            if (!t.smtpUtf8() && args.address().needsSmtpUtf8()) {
                throw new SmtpException(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
            }
            if (t.recipients().size() >= config.max_recipients()) {
                throw new SmtpException(452, "4.5.3", "Error: too many recipients");
            }
            recipient = new Recipient(args.address(), notify, orcpt);
        } catch (SmtpException e) {
            error(e.code(), e.status(), e.getMessage());
            return;
        }
        RelayPolicy policy = services.relayPolicy();
        if (policy == null) {
            // Fail closed: without a relay policy nobody can tell local from foreign, so nothing is accepted.
            LOG.warn("{}: no RelayPolicy service; refusing <{}> for now", id, recipient.address());
            reply(451, "4.3.0", "<" + recipient.address() + ">: Recipient policy unavailable, try again later");
            return;
        }
        CompletionStage<RelayDecision> decision;
        try {
            decision = policy.check(this, recipient.address());
        } catch (RuntimeException e) {
            relayFailed(recipient, e);
            return;
        }
        await(decision, d -> {
            if (d.outcome() == RelayDecision.Outcome.DENY) {
                LOG.info("{}: reject RCPT from [{}]: {} {} <{}>: {}; from=<{}>", id, clientIp(), d.code(),
                        d.enhancedStatus(), recipient.address(), d.text(), t.sender());
                error(d.code(), d.enhancedStatus(), "<" + recipient.address() + ">: " + d.text());
                return;
            }
            await(t.chain().run("rcpt", id, ctx.executor(), f -> f.rcptTo(t, recipient)), v -> {
                if (refused(v)) {
                    return;
                }
                t.addRecipient(recipient);
                reply(250, "2.1.5", "Ok");
            }, this::filterFailed);
        }, e -> relayFailed(recipient, e));
    }

    private void relayFailed(Recipient recipient, Throwable e) {
        LOG.warn("{}: relay policy failed for <{}>: {}", id, recipient.address(), e.toString());
        reply(451, "4.3.0", "<" + recipient.address() + ">: Recipient policy unavailable, try again later");
    }

    /** Opens the queue entry for DATA or the first BDAT; replies and returns false when it cannot. */
    private boolean openMessage() {
        if (transaction == null) {
            error(503, "5.5.1", "Error: need MAIL command");
            return false;
        }
        if (transaction.recipients().isEmpty()) {
            error(554, "5.5.1", "Error: no valid recipients");
            return false;
        }
        QueueStore queue = services.queueStore();
        if (queue == null) {
            LOG.warn("{}: no QueueStore service; message refused for now", id);
            reply(451, "4.3.0", "Queue unavailable, try again later");
            return false;
        }
        try {
            transaction.pending(queue.begin());
        } catch (QueueStore.QueueException e) {
            LOG.error("{}: cannot open a queue entry: {}", id, e.toString());
            queueError(e);
            return false;
        }
        scan = new MessageScan(config.bare_line_ends().equalsIgnoreCase("normalize"));
        return true;
    }

    private void data(String arg) {
        if (!arg.isBlank()) {
            error(501, "5.5.4", "Syntax: DATA");
            return;
        }
        if (openMessage()) {
            state = State.DATA;
            reply(354, null, "End data with <CR><LF>.<CR><LF>");
            frames.content(true); // not before the 354: what came earlier stays command lines
        }
    }

    // ---- message data ----

    /**
     * Lines that need nothing but storing (see {@link SmtpFrameDecoder.Lines}; framed so only once we are in
     * DATA): what {@link #dataLine} would do with each of them, in one append.
     */
    private void plainLines(ByteBuf buf) {
        append(buf, buf.readerIndex(), buf.readableBytes());
        scan.lastLineEndedWithCrlf = true;
    }

    private void dataLine(ByteBuf buf) {
        int length = buf.readableBytes();
        int start = buf.readerIndex();
        int last = buf.writerIndex() - 1;
        boolean endsWithLf = length > 0 && buf.getByte(last) == '\n';
        boolean crlf = endsWithLf && length >= 2 && buf.getByte(last - 1) == '\r';
        // Only CRLF "." CRLF ends the data (RFC 5321 4.1.1.4): a "." line after a bare LF is content, so no
        // smuggling variant (CVE-2023-51764 class) can end the message early and start a second transaction.
        if (crlf && length == 3 && buf.getByte(start) == '.') {
            if (scan.lastLineEndedWithCrlf) {
                state = State.COMMAND;
                frames.content(false);
                endOfMessage();
                return;
            }
            frames.content(true); // the decoder stopped at this line, not knowing it was content
        }
        int body = length - (crlf ? 2 : endsWithLf ? 1 : 0);
        boolean bareCr = buf.indexOf(start, start + body, (byte) '\r') >= 0;
        boolean bareLf = endsWithLf && !crlf;
        scan.lastLineEndedWithCrlf = crlf;
        int offset = start;
        if (length > 0 && buf.getByte(offset) == '.') {
            offset++; // dot-stuffing (RFC 5321 4.5.2)
            length--;
        }
        if (bareCr || bareLf) {
            if (!scan.normalize) {
                scan.bareLineEnd = true;
                return;
            }
            // normalize: each bare CR or LF becomes CRLF
            byte[] raw = new byte[length];
            buf.getBytes(offset, raw);
            ByteBuf out = Unpooled.buffer(length + 8);
            for (int i = 0; i < raw.length; i++) {
                byte b = raw[i];
                if (b == '\r' && i + 1 < raw.length && raw[i + 1] == '\n') {
                    out.writeByte('\r').writeByte('\n');
                    i++;
                } else if (b == '\r' || b == '\n') {
                    out.writeByte('\r').writeByte('\n');
                } else {
                    out.writeByte(b);
                }
            }
            try {
                append(out, out.readerIndex(), out.readableBytes());
            } finally {
                out.release();
            }
            return;
        }
        append(buf, offset, length);
    }

    private void chunk(SmtpFrameDecoder.Chunk chunk) {
        if (bdatError == null && scan != null && transaction != null && transaction.pending() != null) {
            append(chunk.data(), chunk.data().readerIndex(), chunk.data().readableBytes());
        }
        bdatRemaining -= chunk.data().readableBytes();
        if (chunk.endOfChunk()) {
            bdatRemaining = 0;
            endOfChunk();
        }
    }

    /** Adds message octets to the spool, watching the size limit and counting Received: fields. */
    private void append(ByteBuf buf, int offset, int length) {
        if (scan.tooBig || scan.spoolError != null) {
            return;
        }
        QueueStore.PendingMessage pending = transaction.pending();
        if (pending.size() + length > config.max_message_size()) {
            scan.tooBig = true;
            return;
        }
        scan.scanHeaders(buf, offset, length);
        if (scan.copy.length < length && scan.copy.length < MessageScan.MAX_COPY) {
            scan.copy = new byte[Math.min(length, MessageScan.MAX_COPY)]; // a block of lines, a chunk, a long line
        }
        try {
            for (int done = 0; done < length; ) {
                int n = Math.min(length - done, scan.copy.length);
                buf.getBytes(offset + done, scan.copy, 0, n);
                pending.write(scan.copy, 0, n);
                done += n;
            }
        } catch (QueueStore.QueueException e) {
            scan.spoolError = e;
        }
    }

    // ---- BDAT (RFC 3030) ----

    private void bdat(String arg) {
        String[] parts = arg.trim().split(" +");
        long size = -1;
        boolean last = false;
        if (parts.length >= 1 && parts[0].matches("\\d{1,18}")) {
            size = Long.parseLong(parts[0]);
        }
        if (parts.length == 2) {
            last = parts[1].equalsIgnoreCase("LAST");
        }
        if (size < 0 || parts.length > 2 || (parts.length == 2 && !last)) {
            // the decoder could not frame the chunk either: we no longer know where commands start
            replyAndClose(501, "5.5.4", "Syntax: BDAT size [LAST]; closing connection");
            return;
        }
        bdatRemaining = size;
        bdatLast = last;
        if (!bdatStarted) {
            bdatError = null;
            if (transaction == null || transaction.recipients().isEmpty()) {
                bdatError = transaction == null ? "503 5.5.1 Error: need MAIL command" : "554 5.5.1 Error: no valid recipients";
            } else if (!openMessage()) {
                // openMessage replied already; the chunk that follows is read and dropped
                bdatError = "";
            }
            bdatStarted = true;
        }
        if (size == 0) {
            endOfChunk();
        }
    }

    private void endOfChunk() {
        if (bdatError != null) {
            String e = bdatError;
            bdatStarted = false;
            bdatError = null;
            resetTransaction();
            if (!e.isEmpty()) {
                error(Integer.parseInt(e.substring(0, 3)), e.substring(4, 9), e.substring(10));
            }
            return;
        }
        if (scan.tooBig) {
            bdatStarted = false;
            resetTransaction();
            error(552, "5.3.4", "Message size exceeds fixed limit");
            return;
        }
        if (!bdatLast) {
            reply(250, "2.0.0", "Ok: " + transaction.pending().size() + " octets received");
            return;
        }
        bdatStarted = false;
        endOfMessage();
    }

    private void endOfMessage() {
        Transaction t = transaction;
        transaction = null;
        MessageScan s = scan;
        scan = null;
        if (s.tooBig || s.bareLineEnd || s.lineTooLong || s.spoolError != null || s.received > config.max_received_headers()) {
            t.abort();
            if (s.tooBig) {
                error(552, "5.3.4", "Message size exceeds fixed limit");
            } else if (s.bareLineEnd) {
                error(550, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF");
            } else if (s.lineTooLong) {
                error(550, "5.6.0", "Message contains a line longer than " + config.max_text_line() + " octets");
            } else if (s.spoolError != null) {
                LOG.error("{}: spool write failed: {}", id, s.spoolError.getMessage());
                queueError(s.spoolError);
            } else {
                LOG.info("{}: mail loop from [{}]: {} Received: headers; from=<{}>", id, clientIp(), s.received, t.sender());
                error(554, "5.4.6", "Too many hops: " + s.received + " Received: headers, mail loop?");
            }
            return;
        }
        String queueId = t.pending().id();
        t.addHeader(receivedHeader(t, queueId));
        await(t.chain().run("message", id, ctx.executor(), f -> f.message(t)), v -> {
            switch (v.action()) {
                case REJECT, TEMPFAIL -> {
                    t.abort();
                    refused(v);
                }
                case DISCARD -> {
                    t.abort();
                    LOG.info("{}: {}: discarded by a filter; from=<{}>", id, queueId, t.sender());
                    reply(250, "2.0.0", "Ok: queued as " + queueId);
                }
                default -> commit(t, queueId, v.action() == Verdict.Action.QUARANTINE ? v.text() : null);
            }
        }, e -> {
            t.abort();
            filterFailed(e);
        });
    }

    private void commit(Transaction t, String queueId, String quarantineReason) {
        Envelope envelope = new Envelope(t.sender(), t.recipients(), t.envId(), t.ret(), t.body(), t.smtpUtf8(),
                new ClientInfo(clientIp(), null, heloName, protocol(), tlsProtocol, tlsCipher, authenticatedAs, config.name()),
                Instant.now());
        CompletionStage<String> stored;
        try {
            stored = t.pending().commit(envelope, t.addedHeaders(), quarantineReason);
        } catch (RuntimeException e) {
            stored = CompletableFuture.failedFuture(e);
        }
        // The 250 goes out only once the store says the message is on stable storage.
        await(stored, storedId -> {
            LOG.info("{}: {}: client=[{}], from=<{}>, nrcpt={}, size={}{}{}", id, storedId, clientIp(), t.sender(),
                    t.recipients().size(), t.pending().size(),
                    authenticatedAs != null ? ", sasl_username=" + authenticatedAs : "",
                    quarantineReason != null ? ", quarantined" : "");
            junk = 0;
            reply(250, "2.0.0", "Ok: queued as " + storedId);
        }, e -> {
            t.abort();
            LOG.error("{}: {}: commit failed: {}", id, queueId, e.toString());
            queueError(e);
        });
    }

    private void queueError(Throwable e) {
        boolean full = e instanceof QueueStore.QueueException q && q.isStorageFull();
        reply(full ? 452 : 451, full ? "4.3.1" : "4.3.0", full ? "Insufficient system storage" : "Queue error, try again later");
    }

    /** RFC 3848 protocol names. */
    private String protocol() {
        if (!extended) {
            return "SMTP";
        }
        return "ESMTP" + (tlsActive() ? "S" : "") + (authenticatedAs != null ? "A" : "");
    }

    private Header receivedHeader(Transaction t, String queueId) {
        StringBuilder sb = new StringBuilder();
        sb.append("from ").append(heloName).append(" ([").append(clientIp()).append("])");
        if (tlsActive()) {
            sb.append(" (using ").append(tlsProtocol).append(" with cipher ").append(tlsCipher).append(')');
        }
        sb.append(" by ").append(config.hostname()).append(" (Postern) with ").append(protocol());
        sb.append(" id ").append(queueId);
        if (t.recipients().size() == 1) {
            sb.append(" for <").append(t.recipients().get(0).address()).append('>');
        }
        sb.append("; ").append(RFC5322.format(ZonedDateTime.now()));
        return new Header("Received", sb.toString().replace('\r', ' ').replace('\n', ' '));
    }

    // ---- replies ----

    /** Sends a filter's refusal and returns true, or returns false when the verdict lets the stage pass. */
    private boolean refused(Verdict v) {
        if (v.action() != Verdict.Action.REJECT && v.action() != Verdict.Action.TEMPFAIL) {
            return false;
        }
        if (v.disconnect()) {
            replyAndClose(v.action() == Verdict.Action.TEMPFAIL ? 421 : v.code(), v.enhancedStatus(), v.text());
        } else {
            error(v.code(), v.enhancedStatus(), v.text());
        }
        return true;
    }

    private void filterFailed(Throwable e) {
        LOG.error("{}: filter chain failed", id, e);
        reply(451, "4.3.0", "Temporary failure of a message check, try again later");
    }

    private void error(int code, String status, String text) {
        errors++;
        if (errors >= config.max_errors()) {
            LOG.info("{}: too many errors from [{}]", id, clientIp());
            reply(code, status, text);
            replyAndClose(421, "4.7.0", config.hostname() + " Error: too many errors");
            return;
        }
        reply(code, status, text);
    }

    private void reply(int code, String status, String text) {
        reply(code, status, List.of(text));
    }

    private void reply(int code, String status, List<String> lines) {
        if (state == State.CLOSED) {
            return;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < lines.size(); i++) {
            sb.append(code).append(i == lines.size() - 1 ? ' ' : '-');
            if (status != null) {
                sb.append(status).append(' ');
            }
            sb.append(lines.get(i)).append("\r\n");
        }
        ctx.write(Unpooled.copiedBuffer(sb, StandardCharsets.UTF_8));
        replied = true;
        if (busy) {
            ctx.flush(); // otherwise drain() flushes once the inbox is empty, so pipelined replies go out together
        }
    }

    private void replyAndClose(int code, String status, String text) {
        reply(code, status, text);
        state = State.CLOSED;
        ctx.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }

    private void resetTransaction() {
        if (transaction != null) {
            transaction.abort();
            transaction = null;
        }
        scan = null;
        bdatStarted = false;
        bdatError = null;
        if (state == State.DATA) {
            state = State.COMMAND;
            frames.content(false);
        }
    }

    private String clientIp() {
        InetSocketAddress a = client;
        if (a == null && ctx != null && ctx.channel().remoteAddress() instanceof InetSocketAddress isa) {
            a = isa;
        }
        return a == null || a.getAddress() == null ? "unknown" : a.getAddress().getHostAddress();
    }

    // ---- SessionContext ----

    @Override
    public String id() {
        return id;
    }

    @Override
    public String listener() {
        return config.name();
    }

    @Override
    public InetSocketAddress clientAddress() {
        return client;
    }

    @Override
    public InetSocketAddress localAddress() {
        return (InetSocketAddress) ctx.channel().localAddress();
    }

    @Override
    public String heloName() {
        return heloName;
    }

    @Override
    public boolean extended() {
        return extended;
    }

    @Override
    public String tlsProtocol() {
        return tlsProtocol;
    }

    @Override
    public String tlsCipher() {
        return tlsCipher;
    }

    @Override
    public String authenticatedAs() {
        return authenticatedAs;
    }

    @Override
    public Map<String, Object> notes() {
        return notes;
    }
}
