package org.postern.smtp.internal;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.ScheduledFuture;

import org.osgi.framework.Constants;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.filter.Verdict;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An immutable, ranked list of filters: the chain as it was when a transaction (or stage) started.
 * {@link #run} calls them one after another on the session's event loop, each with its own timeout.
 */
final class FilterChain {

    private static final Logger LOG = LoggerFactory.getLogger(FilterChain.class);

    static final FilterChain EMPTY = new FilterChain(List.of());

    /** One registered filter with what the chain needs to know of its service properties. */
    record Entry(SmtpFilter filter, String name, int ranking, long serviceId, long timeoutMs, boolean failOpen) {

        static Entry of(SmtpFilter filter, Map<String, Object> props) {
            Object name = props.get(SmtpFilter.NAME_PROPERTY);
            if (name == null) {
                name = props.getOrDefault("component.name", filter.getClass().getName());
            }
            return new Entry(filter, String.valueOf(name),
                    intValue(props.get(Constants.SERVICE_RANKING), 0),
                    longValue(props.get(Constants.SERVICE_ID), 0),
                    longValue(props.get(SmtpFilter.TIMEOUT_PROPERTY), SmtpFilter.DEFAULT_TIMEOUT_MS),
                    "continue".equalsIgnoreCase(String.valueOf(props.get(SmtpFilter.ON_FAILURE_PROPERTY))));
        }

        private static int intValue(Object o, int dflt) {
            return o instanceof Integer i ? i : dflt; // service.ranking must be an Integer, per the OSGi spec
        }

        private static long longValue(Object o, long dflt) {
            if (o instanceof Number n) {
                return n.longValue();
            }
            if (o instanceof String s) {
                try {
                    return Long.parseLong(s.trim());
                } catch (NumberFormatException e) {
                    return dflt;
                }
            }
            return dflt;
        }
    }

    private static final Comparator<Entry> ORDER = Comparator.comparingInt(Entry::ranking).reversed()
            .thenComparingLong(Entry::serviceId);

    private final List<Entry> entries;

    private FilterChain(List<Entry> entries) {
        this.entries = entries;
    }

    FilterChain with(Entry entry) {
        List<Entry> list = new ArrayList<>(entries);
        list.removeIf(e -> e.filter() == entry.filter());
        list.add(entry);
        list.sort(ORDER);
        return new FilterChain(List.copyOf(list));
    }

    FilterChain without(SmtpFilter filter) {
        List<Entry> list = new ArrayList<>(entries);
        list.removeIf(e -> e.filter() == filter);
        return new FilterChain(List.copyOf(list));
    }

    List<Entry> entries() {
        return entries;
    }

    /**
     * Runs one stage through the chain. The result completes on {@code loop}: with the first verdict other
     * than CONTINUE, or CONTINUE when every filter passed. A filter that throws, fails or times out yields
     * its failure policy: CONTINUE (fail open) or TEMPFAIL 451 4.7.0 (fail closed).
     */
    CompletionStage<Verdict> run(String stage, String sessionId, EventExecutor loop,
                                 Function<SmtpFilter, CompletionStage<Verdict>> call) {
        CompletableFuture<Verdict> result = new CompletableFuture<>();
        step(0, stage, sessionId, loop, call, result);
        return result;
    }

    private void step(int index, String stage, String sessionId, EventExecutor loop,
                      Function<SmtpFilter, CompletionStage<Verdict>> call, CompletableFuture<Verdict> result) {
        if (index >= entries.size()) {
            result.complete(Verdict.proceed());
            return;
        }
        Entry entry = entries.get(index);
        CompletableFuture<Verdict> one = new CompletableFuture<>();
        ScheduledFuture<?> timer = loop.schedule(
                () -> one.completeExceptionally(new TimeoutException("no verdict within " + entry.timeoutMs() + " ms")),
                entry.timeoutMs(), TimeUnit.MILLISECONDS);
        try {
            CompletionStage<Verdict> stageResult = call.apply(entry.filter());
            if (stageResult == null) {
                one.completeExceptionally(new NullPointerException("filter returned no stage"));
            } else {
                stageResult.whenComplete((v, e) -> {
                    if (e != null) {
                        one.completeExceptionally(e);
                    } else if (v == null) {
                        one.completeExceptionally(new NullPointerException("filter returned a null verdict"));
                    } else {
                        one.complete(v);
                    }
                });
            }
        } catch (RuntimeException | LinkageError e) {
            one.completeExceptionally(e);
        }
        one.whenCompleteAsync((verdict, error) -> {
            timer.cancel(false);
            Verdict v = verdict;
            if (error != null) {
                LOG.warn("{}: filter {} failed at {}: {}; {}", sessionId, entry.name(), stage, error.toString(),
                        entry.failOpen() ? "continuing (fail open)" : "refusing for now (fail closed)");
                v = entry.failOpen() ? Verdict.proceed()
                        : Verdict.tempfail("4.7.0", "Temporary failure of a message check, try again later");
            }
            if (v.action() == Verdict.Action.CONTINUE) {
                step(index + 1, stage, sessionId, loop, call, result);
            } else {
                if (v.action() == Verdict.Action.REJECT || v.action() == Verdict.Action.TEMPFAIL) {
                    LOG.info("{}: {} by filter {} at {}: {} {} {}", sessionId,
                            v.action() == Verdict.Action.REJECT ? "reject" : "tempfail", entry.name(), stage,
                            v.code(), v.enhancedStatus(), v.text());
                }
                result.complete(v);
            }
        }, loop);
    }
}
