package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.osgi.service.cm.ConfigurationAdmin;

/** Completes the trusted networks and relay domains configured now. */
@Service
public class RelayValueCompleter implements Completer {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        return ConfigCompleter.complete(configAdmin, session, commandLine, candidates,
                config -> concat(config.list(RouterConfig.TRUSTED_NETWORKS), config.list(RouterConfig.RELAY_DOMAINS)));
    }

    private static List<String> concat(List<String> a, List<String> b) {
        return java.util.stream.Stream.concat(a.stream(), b.stream()).toList();
    }
}
