package org.postern.shell.internal;

import java.util.Arrays;
import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.postern.api.queue.QueueEntry;

/** Completes the states of a queue entry (QUEUED, DEFERRED, ...), in any case. */
@Service
public class QueueStateCompleter implements Completer {

    private final StringsCompleter delegate = new StringsCompleter(
            Arrays.stream(QueueEntry.State.values()).map(Enum::name).toList(), false);

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        return delegate.complete(session, commandLine, candidates);
    }
}
