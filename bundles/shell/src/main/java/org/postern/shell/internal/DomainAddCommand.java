package org.postern.shell.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.osgi.service.cm.ConfigurationAdmin;

/** Adds local domains. Every value is checked first: one bad or duplicate value changes nothing. */
@Command(scope = "mta", name = "domain-add",
        description = "Adds local domains: mail for them is accepted from anyone and delivered on this node")
@Service
public class DomainAddCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "domains", required = true, multiValued = true, description = "Domains")
    List<String> domains;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> local = new ArrayList<>(config.list(RouterConfig.LOCAL_DOMAINS));
        List<String> relay = config.list(RouterConfig.RELAY_DOMAINS);
        List<String> routes = config.list(RouterConfig.ROUTES);
        List<String> done = new ArrayList<>();
        for (String value : domains) {
            String name = Rules.domain(value);
            if (Rules.findDomain(local, name).isPresent()) {
                throw new IllegalArgumentException(name + " is already a local domain");
            }
            if (Rules.findDomain(relay, name).isPresent()) {
                throw new IllegalArgumentException(name + " is a relay domain: remove it there first "
                        + "(mta:relay-remove " + name + ")");
            }
            Optional<String> route = Rules.findRoute(routes, name);
            if (route.isPresent()) {
                throw new IllegalArgumentException(name + " has a route (" + route.get() + "): a local domain's mail "
                        + "is delivered here, so remove the route first (mta:route-remove " + name + ")");
            }
            local.add(name);
            done.add("Added local domain " + name);
        }
        config.set(RouterConfig.LOCAL_DOMAINS, local);
        config.save();
        done.forEach(System.out::println);
        return null;
    }
}
