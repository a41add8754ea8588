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

/** Removes trusted networks or relay domains; a value that is neither changes nothing. */
@Command(scope = "mta", name = "relay-remove", description = "Removes trusted client networks or relay domains")
@Service
public class RelayRemoveCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "values", required = true, multiValued = true,
            description = "Networks or relay domains, as mta:relay-list shows them")
    @Completion(RelayValueCompleter.class)
    List<String> values;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> networks = new ArrayList<>(config.list(RouterConfig.TRUSTED_NETWORKS));
        List<String> relayDomains = new ArrayList<>(config.list(RouterConfig.RELAY_DOMAINS));
        List<String> done = new ArrayList<>();
        boolean networksChanged = false;
        boolean domainsChanged = false;
        for (String value : values) {
            Optional<String> asNetwork = Rules.findNetwork(networks, value);
            Optional<String> asDomain = asNetwork.isPresent() ? Optional.empty() : Rules.findDomain(relayDomains, value);
            if (asNetwork.isPresent()) {
                networks.remove(asNetwork.get());
                networksChanged = true;
                done.add("Removed trusted network " + asNetwork.get());
            } else if (asDomain.isPresent()) {
                relayDomains.remove(asDomain.get());
                domainsChanged = true;
                done.add("Removed relay domain " + asDomain.get());
            } else {
                throw new IllegalArgumentException(value + " is neither a trusted network nor a relay domain "
                        + "(see mta:relay-list)");
            }
        }
        if (networksChanged) {
            config.set(RouterConfig.TRUSTED_NETWORKS, networks);
        }
        if (domainsChanged) {
            config.set(RouterConfig.RELAY_DOMAINS, relayDomains);
        }
        config.save();
        done.forEach(System.out::println);
        return null;
    }
}
