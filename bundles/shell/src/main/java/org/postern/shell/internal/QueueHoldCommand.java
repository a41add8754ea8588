package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore;

/** postsuper -h: keeps messages from delivery until they are released. */
@Command(scope = "mta", name = "queue-hold", description = "Keeps queued messages from delivery until mta:queue-release")
@Service
public class QueueHoldCommand implements Action {

    @Reference(optional = true)
    QueueStore queueStore;

    @Argument(index = 0, name = "ids", required = true, multiValued = true, description = "Queue ids")
    @Completion(QueueIdCompleter.class)
    List<String> ids;

    @Override
    public Object execute() {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(QueueListCommand.NO_STORE);
            return null;
        }
        QueueActions.each(store, ids, (s, entry) -> {
            if (entry.state() == QueueEntry.State.HELD) {
                return "already held";
            }
            if (entry.state() == QueueEntry.State.QUARANTINED) {
                return "quarantined: already kept from delivery";
            }
            boolean active = entry.state() == QueueEntry.State.ACTIVE;
            return QueueActions.gone(s.hold(entry.id()),
                    active ? "held (the delivery under way ends first)" : "held");
        }, System.out);
        return null;
    }
}
