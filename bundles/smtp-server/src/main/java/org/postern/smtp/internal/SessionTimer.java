package org.postern.smtp.internal;

import java.util.concurrent.TimeUnit;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.concurrent.ScheduledFuture;

/**
 * The RFC 5321 4.5.3.2 server timeouts, made deadlines so that a client trickling octets cannot hold a
 * session forever (slowloris). Sits between TLS and the frame decoder, so it counts plaintext octets.
 *
 * <ul>
 * <li>Command phase: a complete command line must arrive within the command timeout counted from our
 *     previous reply; octets of an unfinished line do not extend it.</li>
 * <li>Data phase (DATA content, or a BDAT transfer from the first BDAT to the last chunk): the phase
 *     starts with a budget of the data timeout; time spends it, and every {@code minRate} octets received
 *     earn one second back, never more than the data timeout ahead (Postfix's smtpd_min_data_rate). So a
 *     pause without any octet may last at most the data timeout, and a client sending a byte every few
 *     seconds is cut off about one data timeout after it started. A minimum rate of 0 leaves only the pause
 *     rule.</li>
 * <li>Paused: while the session waits for a filter, the relay policy, an authenticator or the queue, the
 *     client is not being waited for, so no client timeout runs (those steps have timeouts of their own).</li>
 * </ul>
 *
 * <p>On expiry it fires {@link Expired} once down the pipeline; the session answers 421 and closes.
 * All methods run on the channel's event loop. Time is the event loop's ticker (tests move it).
 */
final class SessionTimer extends ChannelInboundHandlerAdapter {

    enum Phase { PAUSED, COMMAND, DATA }

    /** The event fired when a deadline passed; {@code phase} says which one. */
    record Expired(Phase phase) {
    }

    private final long commandNanos;
    private final long dataNanos;
    private final long minRate;

    private ChannelHandlerContext ctx;
    private Phase phase = Phase.PAUSED;
    private long deadline; // command phase: the line must be complete by then; data phase: the budget's end
    private ScheduledFuture<?> check;
    private long checkAt;

    SessionTimer(long commandSeconds, long dataSeconds, long minRate) {
        this.commandNanos = TimeUnit.SECONDS.toNanos(commandSeconds);
        this.dataNanos = TimeUnit.SECONDS.toNanos(dataSeconds);
        this.minRate = Math.max(0, minRate);
    }

    Phase phase() {
        return phase;
    }

    /** Starts the wait for one command line, from now. */
    void command() {
        phase = Phase.COMMAND;
        deadline = now() + commandNanos;
        schedule(deadline);
    }

    /** Starts the data phase, unless it runs already (it spans all lines and chunks of one message). */
    void data() {
        if (phase == Phase.DATA) {
            return;
        }
        phase = Phase.DATA;
        deadline = now() + dataNanos;
        schedule(deadline);
    }

    /**
     * Stops waiting for the client: the session itself is waiting for something. A pending check stays: it
     * finds the pause and does nothing, and the next phase reuses it when it is due first (no cancel and new
     * task around every store, filter or policy step).
     */
    void pause() {
        phase = Phase.PAUSED;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext context) {
        this.ctx = context;
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext context) {
        phase = Phase.PAUSED;
        cancel();
    }

    @Override
    public void channelInactive(ChannelHandlerContext context) {
        phase = Phase.PAUSED;
        cancel();
        context.fireChannelInactive();
    }

    @Override
    public void channelRead(ChannelHandlerContext context, Object msg) {
        if (phase == Phase.DATA) {
            int octets = msg instanceof ByteBuf b ? b.readableBytes()
                    : msg instanceof ByteBufHolder h ? h.content().readableBytes() : 0;
            if (octets > 0) {
                long full = now() + dataNanos;
                // the scheduled check finds the moved deadline and waits on
                deadline = minRate == 0 ? full : Math.min(full, deadline + octets * 1_000_000_000L / minRate);
            }
        }
        context.fireChannelRead(msg);
    }

    private void schedule(long at) {
        if (check != null && checkAt <= at) {
            return; // the pending check comes first and will look again then: no new task per reply
        }
        cancel();
        if (ctx == null) {
            return;
        }
        checkAt = at;
        check = ctx.executor().schedule(this::expire, Math.max(0, at - now()), TimeUnit.NANOSECONDS);
    }

    private void expire() {
        check = null;
        if (phase == Phase.PAUSED || !ctx.channel().isActive()) {
            return;
        }
        if (now() < deadline) {
            schedule(deadline); // octets came meanwhile and moved the deadline
            return;
        }
        Phase expired = phase;
        phase = Phase.PAUSED;
        ctx.fireUserEventTriggered(new Expired(expired));
    }

    private void cancel() {
        if (check != null) {
            check.cancel(false);
            check = null;
        }
    }

    private long now() {
        return ctx == null ? System.nanoTime() : ctx.executor().ticker().nanoTime();
    }
}
