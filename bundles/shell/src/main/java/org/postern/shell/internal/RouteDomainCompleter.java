package org.postern.shell.internal;

import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.api.console.Completer;
import org.apache.karaf.shell.api.console.Session;
import org.osgi.service.cm.ConfigurationAdmin;

/** Completes the domains that have a route now. */
@Service
public class RouteDomainCompleter implements Completer {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Override
    public int complete(Session session, CommandLine commandLine, List<String> candidates) {
        return ConfigCompleter.complete(configAdmin, session, commandLine, candidates,
                config -> config.list(RouterConfig.ROUTES).stream().map(Rules::routeDomain)
                        .flatMap(Optional::stream).toList());
    }
}
