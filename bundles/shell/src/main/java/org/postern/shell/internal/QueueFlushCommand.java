package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.QueueStore.QueueException;

/** postqueue -f / -i: deferred messages are due now instead of at the end of their backoff. */
@Command(scope = "mta", name = "queue-flush",
        description = "Makes deferred messages due now: every deferred message, or the ones given")
@Service
public class QueueFlushCommand implements Action {

    static final String PICKED_UP = "The queue manager delivers them at its next look at the queue.";

    @Reference(optional = true)
    QueueStore queueStore;

    @Argument(index = 0, name = "ids", required = false, multiValued = true,
            description = "Queue ids; none for every deferred message")
    @Completion(QueueIdCompleter.class)
    List<String> ids;

    @Override
    public Object execute() {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(QueueListCommand.NO_STORE);
            return null;
        }
        if (ids == null || ids.isEmpty()) {
            int flushed = 0;
            int failed = 0;
            for (QueueEntry entry : store.list(new QueueQuery(QueueEntry.State.DEFERRED, null, null, 0, 0))) {
                try {
                    if (store.requeue(entry.id())) {
                        flushed++;
                    }
                } catch (QueueException e) {
                    failed++;
                    System.out.println(entry.id() + ": failed: " + e.getMessage());
                }
            }
            System.out.println("Flushed " + flushed + (flushed == 1 ? " deferred message." : " deferred messages.")
                    + (flushed > 0 ? " " + PICKED_UP : "") + (failed > 0 ? " " + failed + " failed." : ""));
            return null;
        }
        QueueActions.each(store, ids, (s, entry) -> switch (entry.state()) {
            case HELD, QUARANTINED -> "held: release it with mta:queue-release";
            case ACTIVE -> "being delivered now";
            default -> QueueActions.gone(s.requeue(entry.id()), "due now");
        }, System.out);
        return null;
    }
}
