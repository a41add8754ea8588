package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;

/** Completes the TLS policies of a route. */
@Service
public class TlsPolicyCompleter implements Completer {

    private final StringsCompleter delegate = new StringsCompleter(List.of("none", "may", "encrypt", "verify"), false);

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        return delegate.complete(session, commandLine, candidates);
    }
}
