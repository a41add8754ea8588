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

/** Removes local domains; a value that is not one changes nothing. */
@Command(scope = "mta", name = "domain-remove",
        description = "Removes local domains: their mail is then refused (or relayed, for trusted clients)")
@Service
public class DomainRemoveCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "domains", required = true, multiValued = true, description = "Local domains")
    @Completion(LocalDomainCompleter.class)
    List<String> domains;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> local = new ArrayList<>(config.list(RouterConfig.LOCAL_DOMAINS));
        List<String> done = new ArrayList<>();
        for (String value : domains) {
            Optional<String> found = Rules.findDomain(local, value);
            if (found.isEmpty()) {
                throw new IllegalArgumentException(value + " is not a local domain (see mta:domain-list)");
            }
            local.remove(found.get());
            done.add("Removed local domain " + found.get());
        }
        config.set(RouterConfig.LOCAL_DOMAINS, local);
        config.save();
        done.forEach(System.out::println);
        if (local.isEmpty()) {
            System.out.println(DomainListCommand.NONE);
        }
        return null;
    }
}
