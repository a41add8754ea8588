package org.postern.shell.internal;

import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.router.rules.RelayHost;
import org.postern.router.rules.RouteEntry;

/** The per-domain routes, in the order they are configured, and the relay host if there is one. */
@Command(scope = "mta", name = "route-list",
        description = "Lists the routes: per domain (and * for the rest) either MX or fixed next hops, with TLS and AUTH")
@Service
public class RouteListCommand implements Action {

    static final String NONE = "No routes and no relay host: mail for other domains goes to their MX hosts.";
    static final String RELAYHOST_ROW = "(relayhost)";

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
        List<String> routes = config.list(RouterConfig.ROUTES);
        String relayhost = config.string(RouterConfig.RELAYHOST);
        if (routes.isEmpty() && relayhost.isEmpty()) {
            if (!noFormat) {
                System.out.println(NONE);
            }
            return null;
        }
        ShellTable table = new ShellTable();
        table.column("Domain");
        table.column("Target");
        table.column("TLS");
        table.column("Auth");
        for (String text : routes) {
            try {
                RouteEntry entry = RouteEntry.parse(text);
                table.addRow().addContent(entry.domain(), target(entry),
                        entry.tls() == null ? "(default)" : entry.tls().name().toLowerCase(Locale.ROOT),
                        entry.auth() == null ? "" : entry.auth());
            } catch (IllegalArgumentException e) {
                // Shown, not hidden: the router defers this domain's mail until it is fixed.
                table.addRow().addContent(Rules.routeDomain(text).orElse("?"), text, "INVALID: " + e.getMessage(), "");
            }
        }
        if (!relayhost.isEmpty()) {
            table.addRow().addContent(RELAYHOST_ROW, relayhost, "(default)", "");
        }
        table.print(System.out, !noFormat);
        return null;
    }

    static String target(RouteEntry entry) {
        return entry.viaMx() ? "mx" : entry.hops().stream().map(RelayHost::text).collect(Collectors.joining(" "));
    }
}
