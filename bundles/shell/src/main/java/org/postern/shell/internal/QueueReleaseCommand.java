package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.postern.api.queue.QueueStore;

/** postsuper -H: held or quarantined messages become due now. */
@Command(scope = "mta", name = "queue-release",
        description = "Releases held or quarantined messages: they are delivered at the queue manager's next look")
@Service
public class QueueReleaseCommand implements Action {

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
        QueueActions.each(store, ids, (s, entry) -> !QueueActions.isHeld(entry)
                ? "not held (" + entry.state() + ")"
                : QueueActions.gone(s.release(entry.id()), "released"), System.out);
        return null;
    }
}
