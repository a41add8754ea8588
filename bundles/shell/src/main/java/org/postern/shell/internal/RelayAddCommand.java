package org.postern.shell.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.router.rules.Cidr;

/**
 * Adds trusted networks or relay domains. Every value is checked first: one bad or duplicate value changes nothing.
 */
@Command(scope = "mta", name = "relay-add",
        description = "Adds trusted client networks (CIDR: relay anywhere) or relay domains (accepted and relayed, "
                + "e.g. as backup MX); a network or a domain is told apart by its form unless --network or --domain says")
@Service
public class RelayAddCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "values", required = true, multiValued = true,
            description = "Networks (192.0.2.0/24, 2001:db8::/32, one address) or domains")
    List<String> values;

    @Option(name = "--network", description = "The values are networks")
    boolean network;

    @Option(name = "--domain", description = "The values are domains")
    boolean domain;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        // Karaf reads options only before the first argument: take them after the values too.
        List<String> given = new ArrayList<>();
        boolean network = this.network;
        boolean domain = this.domain;
        for (String value : values) {
            switch (value) {
                case "--network" -> network = true;
                case "--domain" -> domain = true;
                default -> {
                    if (value.startsWith("--")) {
                        throw new IllegalArgumentException("Unknown option " + value + ": --network and --domain only");
                    }
                    given.add(value);
                }
            }
        }
        if (network && domain) {
            throw new IllegalArgumentException("Give --network or --domain, not both");
        }
        if (given.isEmpty()) {
            throw new IllegalArgumentException("Give networks or domains");
        }
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> networks = new ArrayList<>(config.list(RouterConfig.TRUSTED_NETWORKS));
        List<String> relayDomains = new ArrayList<>(config.list(RouterConfig.RELAY_DOMAINS));
        List<String> localDomains = config.list(RouterConfig.LOCAL_DOMAINS);
        List<String> done = new ArrayList<>();
        boolean networksChanged = false;
        boolean domainsChanged = false;
        for (String value : given) {
            if (network || (!domain && Rules.looksLikeNetwork(value))) {
                Cidr parsed = Rules.network(value);
                Optional<String> existing = Rules.findNetwork(networks, parsed.text());
                if (existing.isPresent()) {
                    throw new IllegalArgumentException(value + " is already a trusted network"
                            + (existing.get().equals(parsed.text()) ? "" : " (as " + existing.get() + ")"));
                }
                networks.add(parsed.text());
                networksChanged = true;
                done.add("Added trusted network " + parsed.text());
            } else {
                String name = Rules.domain(value);
                if (Rules.findDomain(relayDomains, name).isPresent()) {
                    throw new IllegalArgumentException(name + " is already a relay domain");
                }
                if (Rules.findDomain(localDomains, name).isPresent()) {
                    throw new IllegalArgumentException(name + " is a local domain: its mail is delivered here, "
                            + "not relayed (see mta:domain-remove)");
                }
                relayDomains.add(name);
                domainsChanged = true;
                done.add("Added relay domain " + name);
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
