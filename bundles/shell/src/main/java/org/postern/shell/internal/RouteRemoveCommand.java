package org.postern.shell.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.osgi.service.cm.ConfigurationAdmin;

/** Removes the routes of domains; a domain without a route changes nothing. */
@Command(scope = "mta", name = "route-remove",
        description = "Removes the route of domains (or * ): their mail then goes by the * route, relay host or MX")
@Service
public class RouteRemoveCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "domains", required = true, multiValued = true,
            description = "Domains (or *) as mta:route-list shows them")
    @Completion(RouteDomainCompleter.class)
    List<String> domains;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> routes = new ArrayList<>(config.list(RouterConfig.ROUTES));
        List<String> done = new ArrayList<>();
        for (String domain : domains) {
            Optional<String> found = Rules.findRoute(routes, domain);
            if (found.isEmpty()) {
                throw new IllegalArgumentException("No route for " + domain.trim() + " (see mta:route-list)");
            }
            routes.remove(found.get());
            done.add("Removed route " + found.get());
        }
        config.set(RouterConfig.ROUTES, routes);
        config.save();
        done.forEach(System.out::println);
        return null;
    }
}
