package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.osgi.service.cm.ConfigurationAdmin;

/** Who may relay: trusted client networks (relay anywhere) and relay domains (accepted from anyone, passed on). */
@Command(scope = "mta", name = "relay-list",
        description = "Lists the trusted client networks and the relay domains")
@Service
public class RelayListCommand implements Action {

    static final String NONE = "No trusted networks and no relay domains: mail is accepted for local domains only, "
            + "and only authenticated clients relay.";

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Option(name = "--no-format", description = "Tab-separated rows without header, for scripts")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> networks = config.list(RouterConfig.TRUSTED_NETWORKS);
        List<String> domains = config.list(RouterConfig.RELAY_DOMAINS);
        if (networks.isEmpty() && domains.isEmpty()) {
            if (!noFormat) {
                System.out.println(NONE);
            }
            return null;
        }
        ShellTable table = new ShellTable();
        table.column("Type");
        table.column("Value");
        table.column("Meaning");
        for (String network : networks) {
            table.addRow().addContent("network", network, "clients here may relay to any domain");
        }
        for (String domain : domains) {
            table.addRow().addContent("domain", domain, "accepted from anyone and relayed");
        }
        table.print(System.out, !noFormat);
        return null;
    }
}
