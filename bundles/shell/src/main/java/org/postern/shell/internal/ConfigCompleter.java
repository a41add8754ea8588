package org.postern.shell.internal;

import java.io.IOException;
import java.util.List;
import java.util.function.Function;

import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Session;
import org.apache.karaf.shell.support.completers.StringsCompleter;
import org.osgi.service.cm.ConfigurationAdmin;

/** What the completers of the router's lists share: the values from the configuration as it is now. */
final class ConfigCompleter {

    private ConfigCompleter() {
    }

    static int complete(ConfigurationAdmin admin, Session session, CommandLine commandLine, List<String> candidates,
                        Function<RouterConfig, List<String>> values) {
        StringsCompleter delegate = new StringsCompleter();
        if (admin != null) {
            try {
                delegate.getStrings().addAll(values.apply(RouterConfig.read(admin)));
            } catch (IOException | RuntimeException e) {
                // nothing to offer: a tab must not print a stack trace
            }
        }
        return delegate.complete(session, commandLine, candidates);
    }
}
