package org.postern.router.internal;

import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.TlsPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes from configuration: local domains to the {@code local} transport, everything else to the relay host.
 * Without a relay host, non-local mail waits (4.4.3): MX routing comes later.
 *
 * <p>Reads the same PID and form as {@link ConfiguredRelayPolicy} (which declares it), so local domains are
 * configured once for accepting and for routing.
 */
@Component(configurationPid = ConfiguredRelayPolicy.PID, service = Router.class)
public class ConfiguredRouter implements Router {

    /** Local mail: no hops, the transport delivers into mailboxes. */
    static final Route LOCAL = new Route("local", "local", List.of(), TlsPolicy.NONE, null);

    private static final Logger LOG = LoggerFactory.getLogger(ConfiguredRouter.class);
    private static final CompletableFuture<Route> LOCAL_STAGE = CompletableFuture.completedFuture(LOCAL);

    /**
     * One configuration: the local domains, and for other domains either a route or the reason there is none.
     */
    private record Table(Set<String> localDomains, CompletableFuture<Route> elsewhere) {
    }

    // Until configured nothing is local and nothing routes: mail waits, it is never misrouted.
    private volatile Table table = new Table(Set.of(), noRoute("4.3.5", "router not configured"));

    @Activate
    @Modified
    void configure(ConfiguredRelayPolicy.Config config) {
        Set<String> local = ConfiguredRelayPolicy.domains("local.domains", config.local_domains());
        String relayhost = config.relayhost() == null ? "" : config.relayhost().trim();
        CompletableFuture<Route> elsewhere;
        if (relayhost.isEmpty()) {
            elsewhere = noRoute("4.4.3", "no route: MX routing not available yet");
            LOG.info("router: local domains {}; no relay host", local);
        } else {
            try {
                RelayHost host = RelayHost.parse(relayhost);
                elsewhere = CompletableFuture.completedFuture(
                        new Route("smtp", host.text(), List.of(host.hop()), TlsPolicy.MAY, null));
                LOG.info("router: local domains {}; relay host {}", local, host);
            } catch (IllegalArgumentException e) {
                // Mail waits for the fix rather than bouncing: a typo must not return a day's mail.
                LOG.error("relayhost: bad value '{}' in configuration {}: {}; non-local mail is deferred",
                        relayhost, ConfiguredRelayPolicy.PID, e.getMessage());
                elsewhere = noRoute("4.3.5", "relayhost '" + relayhost + "' is not valid: " + e.getMessage());
            }
        }
        table = new Table(local, elsewhere);
    }

    @Override
    public CompletionStage<Route> route(MailAddress recipient) {
        Table current = table;
        String domain = recipient.asciiDomain();
        // The bare <postmaster> is ours (RFC 5321 4.5.1); an address literal never is, as in the relay policy.
        if (domain.isEmpty() || (!recipient.isAddressLiteral() && current.localDomains().contains(domain))) {
            return LOCAL_STAGE.copy();
        }
        return current.elsewhere().copy(); // a copy: a caller's timeout or cancel must not touch the shared answer
    }

    private static CompletableFuture<Route> noRoute(String status, String text) {
        return CompletableFuture.failedFuture(new RouteException(status, text, false));
    }
}
