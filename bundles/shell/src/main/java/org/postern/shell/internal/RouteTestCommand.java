package org.postern.shell.internal;

import java.io.PrintStream;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.Router.RouteException;
import org.postern.router.rules.Cidr;

/**
 * What Postern would do with an address, like {@code exim -bt}: whether RCPT is accepted for it from a client
 * (local, relayed, or refused and how), and where the mail would go: transport, destination, TLS and the next hops
 * as resolved now. It asks the live RelayPolicy and Router, so DNS is queried as for real mail; nothing is sent.
 */
@Command(scope = "mta", name = "route-test",
        description = "Shows how an address is accepted and routed: relay decision, transport, TLS and next hops")
@Service
public class RouteTestCommand implements Action {

    /** TEST-NET-3 (RFC 5737): a client from the internet, in no trusted network unless someone trusts everything. */
    static final String DEFAULT_CLIENT = "203.0.113.1";
    static final long TIMEOUT_SECONDS = 30;

    @Reference(optional = true)
    Router router;

    @Reference(optional = true)
    RelayPolicy relayPolicy;

    @Argument(index = 0, name = "address", required = true, description = "A recipient address, e.g. bob@example.net")
    String address;

    @Option(name = "--client", description = "The client's IP address for the relay check (default " + DEFAULT_CLIENT
            + ", an untrusted internet client)")
    String client = DEFAULT_CLIENT;

    @Option(name = "--auth", description = "Check as if the client had authenticated as this user")
    String auth;

    @Override
    public Object execute() throws Exception {
        return Refusals.said(this::run);
    }

    private Object run() throws Exception {
        MailAddress recipient;
        try {
            recipient = MailAddress.parse(address.trim());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Bad address '" + address + "': " + e.getMessage());
        }
        if (recipient.isNullSender()) {
            throw new IllegalArgumentException("Give a recipient address");
        }
        InetAddress clientAddress = clientAddress(client);
        PrintStream out = System.out;
        out.println("Address:     " + recipient);
        out.println("Client:      " + clientAddress.getHostAddress()
                + (auth == null ? ", not authenticated" : ", authenticated as " + auth));
        out.println("RCPT:        " + relay(recipient, clientAddress));
        route(recipient, out);
        return null;
    }

    private static InetAddress clientAddress(String text) {
        try {
            Cidr single = Cidr.parse(text.trim()); // a literal only: never a lookup
            if (single.prefix() != single.network().length * 8) {
                throw new IllegalArgumentException("one address, not a network");
            }
            return InetAddress.getByAddress(single.network());
        } catch (IllegalArgumentException | java.net.UnknownHostException e) {
            throw new IllegalArgumentException("Bad client address '" + text + "': " + e.getMessage());
        }
    }

    private String relay(MailAddress recipient, InetAddress clientAddress) {
        RelayPolicy policy = relayPolicy;
        if (policy == null) {
            return "refused (451 4.3.0): no relay policy available (is postern-router installed?)";
        }
        try {
            RelayDecision d = policy.check(session(clientAddress), recipient).toCompletableFuture()
                    .get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            return switch (d.outcome()) {
                case LOCAL -> "accepted, local: delivered on this node";
                case RELAY -> "accepted, relayed to another host";
                case DENY -> "refused: " + d.code() + " " + d.enhancedStatus() + " " + d.text();
            };
        } catch (ExecutionException e) {
            return "refused (451 4.3.0): the relay policy failed: " + e.getCause();
        } catch (TimeoutException e) {
            return "refused (451 4.3.0): the relay policy gave no answer in " + TIMEOUT_SECONDS + " s";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "(interrupted)";
        }
    }

    private void route(MailAddress recipient, PrintStream out) throws InterruptedException {
        Router current = router;
        if (current == null) {
            out.println("Route:       none: no router available (is postern-router installed?)");
            return;
        }
        Route route;
        try {
            route = current.route(recipient).toCompletableFuture().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RouteException re) {
                out.println("Route:       " + (re.permanent() ? "fails permanently (the mail would bounce): "
                        : "fails for now (the mail would wait and be retried): ") + re.status() + " " + re.getMessage());
            } else {
                out.println("Route:       fails for now: " + cause);
            }
            return;
        } catch (TimeoutException e) {
            out.println("Route:       no answer in " + TIMEOUT_SECONDS + " s (the mail would wait and be retried)");
            return;
        }
        out.println("Transport:   " + route.transport());
        out.println("Destination: " + route.destination());
        out.println("TLS:         " + route.tls().name().toLowerCase(Locale.ROOT));
        if (route.credentialsId() != null) {
            out.println("AUTH:        credentials " + route.credentialsId());
        }
        if (route.nextHops().isEmpty()) {
            out.println("Next hops:   none (delivered on this node)");
            return;
        }
        out.println("Next hops:");
        ShellTable table = new ShellTable();
        table.column("Preference").alignRight();
        table.column("Host");
        table.column("Address");
        table.column("Port").alignRight();
        for (NextHop hop : route.nextHops()) {
            table.addRow().addContent(hop.preference(), hop.name() == null ? hop.host() : hop.name(), hop.host(),
                    hop.port());
        }
        table.print(out, true);
    }

    /**
     * The session the relay check sees: a client at this address, authenticated or not, nothing else known. A proxy,
     * not a class: the console only poses as the listener (which provides SessionContext), so a method added to
     * the interface later answers null here instead of tying this bundle to one minor version of the API.
     */
    private SessionContext session(InetAddress clientAddress) {
        InetSocketAddress remote = new InetSocketAddress(clientAddress, 0);
        InetSocketAddress local = new InetSocketAddress(InetAddress.getLoopbackAddress(), 25);
        Map<String, Object> notes = new ConcurrentHashMap<>();
        String identity = auth;
        return (SessionContext) Proxy.newProxyInstance(SessionContext.class.getClassLoader(),
                new Class<?>[] {SessionContext.class}, (proxy, method, args) -> switch (method.getName()) {
                    case "id" -> "route-test";
                    case "listener" -> "console";
                    case "clientAddress" -> remote;
                    case "localAddress" -> local;
                    case "extended" -> true;
                    case "authenticatedAs" -> identity;
                    case "notes" -> notes;
                    case "hashCode" -> System.identityHashCode(proxy);
                    case "equals" -> proxy == args[0];
                    case "toString" -> "route-test session from " + clientAddress.getHostAddress();
                    default -> method.isDefault() ? InvocationHandler.invokeDefault(proxy, method, args)
                            : method.getReturnType() == boolean.class ? false : null;
                });
    }
}
