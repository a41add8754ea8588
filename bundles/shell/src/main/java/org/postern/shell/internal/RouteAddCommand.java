package org.postern.shell.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Dictionary;
import java.util.List;
import java.util.Optional;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.osgi.framework.Constants;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.postern.api.routing.TlsPolicy;
import org.postern.router.rules.RouteEntry;

/**
 * Adds the route of one domain: {@code mta:route-add example.com "[192.0.2.5]:2525" --tls verify --auth smarthost},
 * {@code mta:route-add example.org mx}, {@code mta:route-add "*" smarthost.example:587}.
 */
@Command(scope = "mta", name = "route-add",
        description = "Adds the route of a domain (or * for every other domain): mx, or next hops tried in order")
@Service
public class RouteAddCommand implements Action {

    @Reference(optional = true)
    ConfigurationAdmin configAdmin;

    @Argument(index = 0, name = "domain", required = true, description = "The domain, or * for every other domain")
    String domain;

    @Argument(index = 1, name = "target", required = true, multiValued = true,
            description = "mx, or next hops: host, host:port, [address], [address]:port (port 25 by default)")
    List<String> target;

    @Option(name = "--tls", description = "TLS policy: none, may, encrypt or verify (default: smtp.tls.policy)")
    @Completion(TlsPolicyCompleter.class)
    String tls;

    @Option(name = "--auth", description = "Name of the client credentials in the smtp transport's configuration")
    String auth;

    private static final String SMTP_PID = "org.postern.delivery.smtp";

    /** Whether the smtp transport's configuration has both halves of these credentials. */
    private boolean credentialsConfigured(String id) throws IOException, InvalidSyntaxException {
        if (configAdmin == null) {
            return true; // nothing to check against: say nothing
        }
        Configuration[] found = configAdmin.listConfigurations("(" + Constants.SERVICE_PID + "=" + SMTP_PID + ")");
        if (found == null || found.length == 0 || found[0].getProperties() == null) {
            return false;
        }
        Dictionary<String, Object> props = found[0].getProperties();
        return present(props.get("auth." + id + ".username")) && present(props.get("auth." + id + ".password"));
    }

    private static boolean present(Object value) {
        return value != null && !value.toString().isBlank();
    }

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        // Karaf reads options only before the first argument; "route-add DOMAIN HOPS --tls verify" is natural too.
        List<String> hops = new ArrayList<>();
        String tlsGiven = tls;
        String authGiven = auth;
        for (int i = 0; i < target.size(); i++) {
            String t = target.get(i);
            String option = t.startsWith("--") ? t.split("=", 2)[0] : null;
            if ("--tls".equals(option) || "--auth".equals(option)) {
                String value = t.contains("=") ? t.substring(t.indexOf('=') + 1)
                        : i + 1 < target.size() ? target.get(++i) : null;
                if (value == null || value.isEmpty()) {
                    throw new IllegalArgumentException(option + " needs a value");
                }
                if (option.equals("--tls")) {
                    if (tlsGiven != null) {
                        throw new IllegalArgumentException("--tls given twice");
                    }
                    tlsGiven = value;
                } else {
                    if (authGiven != null) {
                        throw new IllegalArgumentException("--auth given twice");
                    }
                    authGiven = value;
                }
            } else if (option != null) {
                throw new IllegalArgumentException("Unknown option " + t + ": --tls and --auth only");
            } else if (t.indexOf(',') >= 0) {
                throw new IllegalArgumentException("Bad target '" + t + "': separate next hops with spaces");
            } else {
                hops.add(t);
            }
        }
        StringBuilder text = new StringBuilder(domain).append(" =");
        for (String hop : hops) {
            text.append(' ').append(hop);
        }
        if (tlsGiven != null) {
            text.append(" tls=").append(tlsGiven);
        }
        if (authGiven != null) {
            text.append(" auth=").append(authGiven);
        }
        RouteEntry entry;
        try {
            entry = RouteEntry.parse(text.toString());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Bad route: " + e.getMessage());
        }
        RouterConfig config = RouterConfig.read(configAdmin);
        List<String> routes = new ArrayList<>(config.list(RouterConfig.ROUTES));
        Optional<String> existing = Rules.findRoute(routes, entry.domain());
        if (existing.isPresent()) {
            throw new IllegalArgumentException("There is a route for " + entry.domain() + " already: " + existing.get()
                    + " (mta:route-remove " + entry.domain() + " first)");
        }
        if (!entry.domain().equals(RouteEntry.DEFAULT_DOMAIN)
                && Rules.findDomain(config.list(RouterConfig.LOCAL_DOMAINS), entry.domain()).isPresent()) {
            throw new IllegalArgumentException(entry.domain() + " is a local domain: its mail is delivered here and "
                    + "a route would never apply (see mta:domain-remove)");
        }
        routes.add(entry.toString());
        config.set(RouterConfig.ROUTES, routes);
        config.save();
        System.out.println("Added route " + entry);
        if (authGiven != null && entry.tls() != TlsPolicy.VERIFY) {
            System.out.println("The password goes only over TLS, but without --tls verify any certificate is taken: "
                    + "whoever can intercept the connection can have it.");
        }
        if (authGiven != null && !credentialsConfigured(authGiven)) {
            System.out.println("No credentials '" + authGiven + "' in " + SMTP_PID + " yet: mail on this route waits"
                    + " (4.3.5) until auth." + authGiven + ".username and auth." + authGiven + ".password are set"
                    + " (config:property-set -p " + SMTP_PID + " auth." + authGiven + ".username ...).");
        }
        if (entry.domain().equals(RouteEntry.DEFAULT_DOMAIN) && !config.string(RouterConfig.RELAYHOST).isEmpty()) {
            System.out.println("The relay host " + config.string(RouterConfig.RELAYHOST)
                    + " is no longer used: the * route takes precedence.");
        }
        return null;
    }
}
