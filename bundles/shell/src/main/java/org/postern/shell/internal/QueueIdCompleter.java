package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore;

/** Completes queue ids from the oldest entries (at most {@value #LIMIT}: a big queue is not listed for a tab). */
@Service
public class QueueIdCompleter implements Completer {

    static final int LIMIT = 100;

    @Reference(optional = true)
    QueueStore queueStore;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        StringsCompleter delegate = new StringsCompleter();
        QueueStore store = queueStore;
        if (store != null) {
            for (QueueEntry entry : store.list(new QueueQuery(null, null, null, 0, LIMIT))) {
                delegate.getStrings().add(entry.id());
            }
        }
        return delegate.complete(session, commandLine, candidates);
    }
}
