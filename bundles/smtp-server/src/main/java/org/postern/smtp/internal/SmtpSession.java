package org.postern.smtp.internal;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayDeque;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.LineBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;

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
 * The server side of one SMTP connection: a state machine fed one line at a time by a
 * {@link LineBasedFrameDecoder} that keeps line ends, so a bare LF can be told from CRLF.
 *
 * <p>Lines are processed strictly in order. While a step waits for something asynchronous (a filter's
 * verdict, the relay policy, the queue's commit), later lines wait in a small inbox and the channel stops
 * reading, so a pipelining client gets its replies in order and cannot make us buffer without bound.
 */
final class SmtpSession extends ChannelInboundHandlerAdapter implements SessionContext {

    private static final Logger LOG = LoggerFactory.getLogger(SmtpSession.class);
    private static final AtomicLong IDS = new AtomicLong(Long.parseLong(Long.toString(System.currentTimeMillis() % 100_000)));
    private static final DateTimeFormatter RFC5322 = DateTimeFormatter.ofPattern("EEE, d MMM yyyy HH:mm:ss Z", Locale.ROOT);

    /** What the listener lends its sessions; each call gives the current service (may be null). */
    interface Services {
        QueueStore queueStore();

        RelayPolicy relayPolicy();

        FilterChain filterChain();
    }

    private enum State { GREETING, COMMAND, DATA, CLOSED }

    private final Services services;
    private final ListenerConfig config;
    private final String id = Long.toString(IDS.incrementAndGet(), 36).toUpperCase(Locale.ROOT);
    private final Map<String, Object> notes = new ConcurrentHashMap<>();
    private final ArrayDeque<ByteBuf> inbox = new ArrayDeque<>();

    private ChannelHandlerContext ctx;
    private State state = State.GREETING;
    private boolean busy;
    private int errors;
    private String heloName;
    private boolean extended;
    private Transaction transaction;

    // DATA state
    private boolean lastLineEndedWithCrlf;
    private boolean bareLineEnd;
    private boolean tooBig;
    private boolean lineTooLong;
    private IllegalStateException spoolError;

    SmtpSession(Services services, ListenerConfig config) {
        this.services = services;
        this.config = config;
    }

    static void configure(ChannelPipeline pipeline, Services services, ListenerConfig config) {
        pipeline.addLast("idle", new IdleStateHandler(config.idle_timeout(), 0, 0, TimeUnit.SECONDS));
        pipeline.addLast("lines", new LineBasedFrameDecoder(config.max_line_length(), false, false));
        pipeline.addLast("smtp", new SmtpSession(services, config));
    }

    // ---- Netty events ----

    @Override
    public void channelActive(ChannelHandlerContext context) {
        this.ctx = context;
        LOG.info("{}: connect from [{}] to listener {}", id, clientIp(), config.name());
        busy = true;
        context.channel().config().setAutoRead(false);
        context.read(); // an early talker's first lines wait in the inbox until the greeting is out
        FilterChain chain = services.filterChain();
        chain.run("connect", id, context.executor(), f -> f.connect(this)).whenComplete((v, e) -> {
            busy = false;
            if (e != null || v.action() == Verdict.Action.REJECT || v.action() == Verdict.Action.TEMPFAIL) {
                // RFC 5321 3.1: a server that refuses service greets with 554 (or 421 for a temporary refusal)
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
        if (!(msg instanceof ByteBuf buf)) {
            context.fireChannelRead(msg);
            return;
        }
        if (state == State.CLOSED) {
            buf.release();
            return;
        }
        inbox.add(buf);
        drain();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext context, Throwable cause) {
        if (cause instanceof TooLongFrameException) {
            // The decoder dropped the over-long line; it cost at most one line of memory.
            if (state == State.DATA) {
                lineTooLong = true;
                lastLineEndedWithCrlf = true; // the decoder resumes at the next line end
            } else {
                error(500, "5.5.2", "Line too long");
            }
            return;
        }
        LOG.info("{}: connection error from [{}]: {}", id, clientIp(), cause.toString());
        context.close();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext context, Object evt) {
        if (evt instanceof IdleStateEvent && state != State.CLOSED) {
            LOG.info("{}: timeout after {} from [{}]", id, state == State.DATA ? "DATA" : "command", clientIp());
            replyAndClose(421, "4.4.2", config.hostname() + " Error: timeout exceeded");
        } else {
            context.fireUserEventTriggered(evt);
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        state = State.CLOSED;
        if (transaction != null) {
            transaction.abort();
            transaction = null;
        }
        ByteBuf b;
        while ((b = inbox.poll()) != null) {
            b.release();
        }
        LOG.info("{}: disconnect from [{}]", id, clientIp());
    }

    // ---- the inbox: one line at a time, in order ----

    private void drain() {
        ByteBuf line;
        while (!busy && state != State.CLOSED && (line = inbox.poll()) != null) {
            try {
                if (state == State.DATA) {
                    dataLine(line);
                } else {
                    command(line);
                }
            } finally {
                line.release();
            }
        }
        if (state == State.CLOSED || ctx == null) {
            return;
        }
        ctx.channel().config().setAutoRead(!busy);
        ctx.flush();
    }

    /** Runs an asynchronous step: reading stops until {@code then} has run on the event loop. */
    private <T> void await(CompletionStage<T> stage, Consumer<T> then, Consumer<Throwable> failed) {
        busy = true;
        ctx.channel().config().setAutoRead(false);
        stage.whenCompleteAsync((value, error) -> {
            busy = false;
            if (state == State.CLOSED) {
                return;
            }
            try {
                if (error != null) {
                    failed.accept(error);
                } else {
                    then.accept(value);
                }
            } catch (RuntimeException e) {
                LOG.error("{}: internal error", id, e);
                error(451, "4.3.0", "Internal error, try again later");
            }
            drain();
        }, ctx.executor());
    }

    // ---- commands ----

    private void command(ByteBuf buf) {
        int length = buf.readableBytes();
        boolean crlf = length >= 2 && buf.getByte(buf.writerIndex() - 2) == '\r';
        String line = buf.toString(buf.readerIndex(), length - (crlf ? 2 : 1), StandardCharsets.UTF_8);
        if (length == 0 || buf.getByte(buf.writerIndex() - 1) != '\n') {
            return; // the remains of a connection closed mid-line
        }
        int space = line.indexOf(' ');
        String verb = (space < 0 ? line : line.substring(0, space)).toUpperCase(Locale.ROOT);
        String arg = space < 0 ? "" : line.substring(space + 1);
        switch (verb) {
            case "EHLO" -> helo(arg, true);
            case "HELO" -> helo(arg, false);
            case "MAIL" -> mail(arg);
            case "RCPT" -> rcpt(arg);
            case "DATA" -> data(arg);
            case "RSET" -> {
                resetTransaction();
                reply(250, "2.0.0", "Ok");
            }
            case "NOOP" -> reply(250, "2.0.0", "Ok");
            case "QUIT" -> replyAndClose(221, "2.0.0", "Bye");
            case "VRFY" -> reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
            case "HELP" -> reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
            default -> error(500, "5.5.2", "Error: command not recognized");
        }
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
            reply(250, null, List.of(config.hostname(), "PIPELINING", "SIZE " + config.max_message_size(),
                    "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"));
        }, this::filterFailed);
    }

    private void mail(String arg) {
        if (heloName == null) {
            error(503, "5.5.1", "Error: send HELO/EHLO first");
            return;
        }
        if (transaction != null) {
            error(503, "5.5.1", "Error: nested MAIL command");
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
                    default -> throw new SmtpException(555, "5.5.4", "Unsupported parameter " + p.getKey());
                }
            }
            if (!utf8 && args.address().needsSmtpUtf8()) {
                throw new SmtpException(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
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

    private void data(String arg) {
        if (!arg.isBlank()) {
            error(501, "5.5.4", "Syntax: DATA");
            return;
        }
        if (transaction == null) {
            error(503, "5.5.1", "Error: need MAIL command");
            return;
        }
        if (transaction.recipients().isEmpty()) {
            error(554, "5.5.1", "Error: no valid recipients");
            return;
        }
        QueueStore queue = services.queueStore();
        if (queue == null) {
            LOG.warn("{}: no QueueStore service; DATA refused for now", id);
            reply(451, "4.3.0", "Queue unavailable, try again later");
            return;
        }
        try {
            transaction.pending(queue.begin());
        } catch (QueueStore.QueueException e) {
            LOG.error("{}: cannot open a queue entry: {}", id, e.toString());
            reply(e.isStorageFull() ? 452 : 451, e.isStorageFull() ? "4.3.1" : "4.3.0",
                    e.isStorageFull() ? "Insufficient system storage" : "Queue error, try again later");
            return;
        }
        state = State.DATA;
        lastLineEndedWithCrlf = true;
        bareLineEnd = false;
        tooBig = false;
        lineTooLong = false;
        spoolError = null;
        reply(354, null, "End data with <CR><LF>.<CR><LF>");
    }

    // ---- message data ----

    private void dataLine(ByteBuf buf) {
        int length = buf.readableBytes();
        int last = buf.writerIndex() - 1;
        boolean endsWithLf = length > 0 && buf.getByte(last) == '\n';
        boolean crlf = endsWithLf && length >= 2 && buf.getByte(last - 1) == '\r';
        // Only CRLF "." CRLF ends the data (RFC 5321 4.1.1.4): a "." line after a bare LF is content, so no
        // smuggling variant can end the message early and start a second transaction.
        if (crlf && length == 3 && buf.getByte(buf.readerIndex()) == '.' && lastLineEndedWithCrlf) {
            endOfData();
            return;
        }
        if (endsWithLf && !crlf) {
            bareLineEnd = true;
        }
        lastLineEndedWithCrlf = crlf;
        int offset = buf.readerIndex();
        if (length > 0 && buf.getByte(offset) == '.') {
            offset++; // dot-stuffing (RFC 5321 4.5.2)
            length--;
        }
        QueueStore.PendingMessage pending = transaction.pending();
        if (tooBig || spoolError != null) {
            return;
        }
        if (pending.size() + length > config.max_message_size()) {
            tooBig = true;
            return;
        }
        try {
            byte[] bytes = new byte[length];
            buf.getBytes(offset, bytes);
            pending.write(bytes, 0, length);
        } catch (QueueStore.QueueException e) {
            spoolError = new IllegalStateException(e.getMessage(), e);
        }
    }

    private void endOfData() {
        state = State.COMMAND;
        Transaction t = transaction;
        transaction = null;
        if (tooBig || bareLineEnd || lineTooLong || spoolError != null) {
            t.abort();
            if (tooBig) {
                error(552, "5.3.4", "Message size exceeds fixed limit");
            } else if (bareLineEnd) {
                error(550, "5.6.0", "Message contains bare LF; lines must end with CRLF");
            } else if (lineTooLong) {
                error(550, "5.6.0", "Message contains a line longer than " + config.max_line_length() + " octets");
            } else {
                LOG.error("{}: spool write failed: {}", id, spoolError.getMessage());
                reply(451, "4.3.0", "Queue error, try again later");
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
                new ClientInfo(clientIp(), null, heloName, extended ? "ESMTP" : "SMTP", null, null, null, config.name()),
                Instant.now());
        CompletionStage<String> stored;
        try {
            stored = t.pending().commit(envelope, t.addedHeaders(), quarantineReason);
        } catch (RuntimeException e) {
            stored = java.util.concurrent.CompletableFuture.failedFuture(e);
        }
        // The 250 goes out only once the store says the message is on stable storage.
        await(stored, storedId -> {
            LOG.info("{}: {}: client=[{}], from=<{}>, nrcpt={}, size={}{}", id, storedId, clientIp(), t.sender(),
                    t.recipients().size(), t.pending().size(), quarantineReason != null ? ", quarantined" : "");
            reply(250, "2.0.0", "Ok: queued as " + storedId);
        }, e -> {
            t.abort();
            Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
            LOG.error("{}: {}: commit failed: {}", id, queueId, cause.toString());
            boolean full = cause instanceof QueueStore.QueueException q && q.isStorageFull();
            reply(full ? 452 : 451, full ? "4.3.1" : "4.3.0",
                    full ? "Insufficient system storage" : "Queue error, try again later");
        });
    }

    private Header receivedHeader(Transaction t, String queueId) {
        StringBuilder sb = new StringBuilder();
        sb.append("from ").append(heloName).append(" ([").append(clientIp()).append("])");
        sb.append(" by ").append(config.hostname()).append(" (Postern) with ").append(extended ? "ESMTP" : "SMTP");
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
        if (!busy) {
            return; // drain() flushes once the inbox is empty, so pipelined replies go out together
        }
        ctx.flush();
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
    }

    private String clientIp() {
        SocketAddress a = ctx == null ? null : ctx.channel().remoteAddress();
        return a instanceof InetSocketAddress isa ? isa.getAddress().getHostAddress() : String.valueOf(a);
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
        return (InetSocketAddress) ctx.channel().remoteAddress();
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
        return null;
    }

    @Override
    public String tlsCipher() {
        return null;
    }

    @Override
    public String authenticatedAs() {
        return null;
    }

    @Override
    public Map<String, Object> notes() {
        return notes;
    }
}
