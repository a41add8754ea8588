package org.postern.shell.internal;

import java.util.List;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.osgi.service.cm.ConfigurationAdmin;

/** The local domains: mail for them is accepted from anyone and delivered here. */
@Command(scope = "mta", name = "domain-list", description = "Lists the local domains (delivered on this node)")
@Service
public class DomainListCommand implements Action {

    static final String NONE = "No local domains: mail is delivered here only for the bare <postmaster>.";

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Option(name = "--no-format", description = "One domain per line without header, for scripts")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        List<String> domains = RouterConfig.read(configAdmin).list(RouterConfig.LOCAL_DOMAINS);
        if (domains.isEmpty()) {
            if (!noFormat) {
                System.out.println(NONE);
            }
            return null;
        }
        ShellTable table = new ShellTable();
        table.column("Local domain");
        for (String domain : domains) {
            table.addRow().addContent(domain);
        }
        table.print(System.out, !noFormat);
        return null;
    }
}
