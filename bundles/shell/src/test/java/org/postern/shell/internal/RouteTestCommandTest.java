package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import org.apache.karaf.shell.support.CommandException;
import org.junit.Test;
import org.postern.api.filter.SessionContext;
import org.postern.api.routing.NextHop;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;
import org.postern.api.routing.Route;
import org.postern.api.routing.Router;
import org.postern.api.routing.Router.RouteException;
import org.postern.api.routing.TlsPolicy;

/** route-test: the relay decision and the route, as the live services give them. */
public class RouteTestCommandTest {

    private final List<SessionContext> sessions = new ArrayList<>();

    /** Local for example.org, relay for trusted 192.0.2.0/24 or authenticated clients, else denied. */
    private final RelayPolicy policy = (session, recipient) -> {
        sessions.add(session);
        if (recipient.asciiDomain().equals("example.org")) {
            return CompletableFuture.completedFuture(recipient.localPart().equals("nobody")
                    ? RelayDecision.deny(550, "5.1.1", "User unknown in local recipient table") : RelayDecision.local());
        }
        boolean trusted = session.clientAddress().getAddress().getHostAddress().startsWith("192.0.2.");
        return CompletableFuture.completedFuture(trusted || session.authenticatedAs() != null
                ? RelayDecision.relay() : RelayDecision.relayDenied());
    };

    private final Router router = recipient -> switch (recipient.asciiDomain()) {
        case "example.org" -> CompletableFuture.completedFuture(new Route("maildir", "local", List.of(), TlsPolicy.NONE, null));
        case "example.net" -> CompletableFuture.completedFuture(new Route("smtp", "example.net", List.of(
                new NextHop("192.0.2.1", 25, 10, "mx1.example.net"), new NextHop("2001:db8::1", 25, 10, "mx1.example.net"),
                new NextHop("192.0.2.2", 25, 20, "mx2.example.net")), TlsPolicy.MAY, null));
        case "example.com" -> CompletableFuture.completedFuture(new Route("smtp", "[192.0.2.5]:2525 auth=smarthost",
                List.of(new NextHop("192.0.2.5", 2525, 0)), TlsPolicy.VERIFY, "smarthost"));
        case "nullmx.example" -> CompletableFuture.failedFuture(
                new RouteException("5.1.10", "domain nullmx.example does not accept mail (null MX)", true));
        default -> CompletableFuture.failedFuture(new RouteException("4.4.3", "cannot look up MX of "
                + recipient.asciiDomain() + ": timed out", false));
    };

    private RouteTestCommand command(String address) {
        RouteTestCommand command = new RouteTestCommand();
        command.router = router;
        command.relayPolicy = policy;
        command.address = address;
        return command;
    }

    @Test
    public void anMxRouteWithItsNextHops() throws Exception {
        String[] out = Fakes.stdout(command("bob@Example.NET")::execute).split("\n");
        assertEquals("Address:     bob@Example.NET", out[0]);
        assertEquals("Client:      203.0.113.1, not authenticated", out[1]);
        assertEquals("RCPT:        refused: 554 5.7.1 Relay access denied", out[2]);
        assertEquals("Transport:   smtp", out[3]);
        assertEquals("Destination: example.net", out[4]);
        assertEquals("TLS:         may", out[5]);
        assertEquals("Next hops:", out[6]);
        assertTrue(out[7], out[7].contains("Preference") && out[7].contains("Host") && out[7].contains("Address")
                && out[7].contains("Port"));
        assertEquals(List.of("10", "mx1.example.net", "192.0.2.1", "25"), cells(out[9]));
        assertEquals(List.of("10", "mx1.example.net", "2001:db8::1", "25"), cells(out[10]));
        assertEquals(List.of("20", "mx2.example.net", "192.0.2.2", "25"), cells(out[11]));
        assertEquals(12, out.length);
        assertEquals("the relay check saw an untrusted client", "203.0.113.1",
                sessions.get(0).clientAddress().getAddress().getHostAddress());
    }

    private static List<String> cells(String row) {
        return List.of(row.trim().split("\\s*\\|\\s*|\\s{2,}")).stream().filter(s -> !s.isEmpty()).toList();
    }

    @Test
    public void aTrustedOrAuthenticatedClientRelays() throws Exception {
        RouteTestCommand trusted = command("bob@example.com");
        trusted.client = "192.0.2.77";
        String out = Fakes.stdout(trusted::execute);
        assertTrue(out, out.contains("Client:      192.0.2.77, not authenticated\n"));
        assertTrue(out, out.contains("RCPT:        accepted, relayed to another host\n"));
        assertTrue(out, out.contains("Destination: [192.0.2.5]:2525 auth=smarthost\n"));
        assertTrue(out, out.contains("TLS:         verify\n"));
        assertTrue(out, out.contains("AUTH:        credentials smarthost\n"));
        RouteTestCommand authenticated = command("bob@example.com");
        authenticated.auth = "alice";
        out = Fakes.stdout(authenticated::execute);
        assertTrue(out, out.contains("Client:      203.0.113.1, authenticated as alice\n"));
        assertTrue(out, out.contains("RCPT:        accepted, relayed"));
    }

    @Test
    public void localAddressesAndUnknownUsers() throws Exception {
        String out = Fakes.stdout(command("alice@example.org")::execute);
        assertTrue(out, out.contains("RCPT:        accepted, local: delivered on this node\n"));
        assertTrue(out, out.contains("Transport:   maildir\nDestination: local\nTLS:         none\n"
                + "Next hops:   none (delivered on this node)\n"));
        out = Fakes.stdout(command("nobody@example.org")::execute);
        assertTrue(out, out.contains("RCPT:        refused: 550 5.1.1 User unknown in local recipient table\n"));
    }

    @Test
    public void routingFailuresSayWhetherTheMailWouldBounceOrWait() throws Exception {
        String out = Fakes.stdout(command("bob@nullmx.example")::execute);
        assertTrue(out, out.endsWith("Route:       fails permanently (the mail would bounce): 5.1.10 domain "
                + "nullmx.example does not accept mail (null MX)\n"));
        out = Fakes.stdout(command("bob@slow.example")::execute);
        assertTrue(out, out.endsWith("Route:       fails for now (the mail would wait and be retried): 4.4.3 "
                + "cannot look up MX of slow.example: timed out\n"));
    }

    @Test
    public void missingServicesAreSaid() throws Exception {
        RouteTestCommand command = command("bob@example.net");
        command.router = null;
        command.relayPolicy = null;
        String out = Fakes.stdout(command::execute);
        assertTrue(out, out.contains("RCPT:        refused (451 4.3.0): no relay policy available"));
        assertTrue(out, out.contains("Route:       none: no router available"));
    }

    @Test
    public void badInput() throws Exception {
        for (String[] bad : new String[][] {{"not an address", null}, {"", null}, {"bob@example.net", "localhost"},
                {"bob@example.net", "192.0.2.0/24"}}) {
            RouteTestCommand command = command(bad[0]);
            if (bad[1] != null) {
                command.client = bad[1];
            }
            try {
                Fakes.stdout(command::execute);
                fail("accepted " + String.join(" ", bad[0], String.valueOf(bad[1])));
            } catch (CommandException e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("Bad ") || e.getMessage().startsWith("Give "));
            }
        }
        assertTrue("nothing was asked", sessions.isEmpty());
    }
}
