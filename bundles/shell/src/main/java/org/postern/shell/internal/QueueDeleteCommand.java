package org.postern.shell.internal;

import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;


import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.QueueStore.QueueException;

/** postsuper -d: removes messages for good, without telling their senders. */
@Command(scope = "mta", name = "queue-delete",
        description = "Deletes queued messages for good, without a bounce: the ones given, or --all (of a --state)")
@Service
public class QueueDeleteCommand implements Action {

    private static final int PARALLEL_DELETES = 32;

    static final String USAGE = "Give queue ids, or --all (with --state to delete only entries in that state).";

    @Reference(optional = true)
    QueueStore queueStore;

    @Argument(index = 0, name = "ids", required = false, multiValued = true, description = "Queue ids")
    @Completion(QueueIdCompleter.class)
    List<String> ids;

    @Option(name = "--all", description = "Delete every message in the queue (or every one in --state)")
    boolean all;

    @Option(name = "--state", description = "With --all: only entries in this state")
    @Completion(QueueStateCompleter.class)
    String state;

    @Override
    public Object execute() {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(QueueListCommand.NO_STORE);
            return null;
        }
        boolean someIds = ids != null && !ids.isEmpty();
        if (all == someIds || (state != null && !all)) {
            System.out.println(USAGE);
            return null;
        }
        if (someIds) {
            QueueActions.each(store, ids, (s, entry) -> QueueActions.gone(s.delete(entry.id()), "deleted"), System.out);
            return null;
        }
        QueueEntry.State wanted = QueueListCommand.parseState(state);
        List<QueueEntry> entries = store.list(new QueueQuery(wanted, null, null, 0, 0));
        // Each deletion waits for the store's log to reach the disk. Many at once share those syncs (the
        // store's group commit): 100,000 entries go in seconds rather than a minute, as postsuper -d ALL does.
        AtomicInteger deletedCount = new AtomicInteger();
        Queue<String> failures = new ConcurrentLinkedQueue<>();
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(PARALLEL_DELETES, Math.max(1, entries.size())));
        try {
            CompletableFuture.allOf(entries.stream().map(entry -> CompletableFuture.runAsync(() -> {
                try {
                    if (store.delete(entry.id())) {
                        deletedCount.incrementAndGet();
                    }
                } catch (QueueException | RuntimeException e) { // e.g. the store went away: report, go on
                    failures.add(entry.id() + ": failed: " + e.getMessage());
                }
            }, pool)).toArray(CompletableFuture[]::new)).join();
        } finally {
            pool.shutdown();
        }
        failures.forEach(System.out::println);
        int deleted = deletedCount.get();
        System.out.println("Deleted " + deleted + (deleted == 1 ? " message" : " messages")
                + (wanted == null ? "." : " in state " + wanted + "."));
        return null;
    }
}
