package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

import org.apache.karaf.shell.api.console.CommandLine;
import org.apache.karaf.shell.support.CommandException;
import org.junit.Test;

/** relay-list, relay-add, relay-remove against a ConfigAdmin in memory. */
public class RelayCommandsTest {

    private final FakeConfigAdmin cm = FakeConfigAdmin.router(
            "local.domains", "example.org",
            "trusted.networks", "192.0.2.0/24, 2001:db8::/32",
            "relay.domains", new String[] {"backup.example"},
            "relayhost", "");

    private RelayAddCommand add(String... values) {
        RelayAddCommand command = new RelayAddCommand();
        command.configAdmin = cm.service();
        command.values = List.of(values);
        return command;
    }

    private RelayRemoveCommand remove(String... values) {
        RelayRemoveCommand command = new RelayRemoveCommand();
        command.configAdmin = cm.service();
        command.values = List.of(values);
        return command;
    }

    /** Runs a command that must refuse: returns its message, and proves nothing was written. */
    static String refused(FakeConfigAdmin cm, Callable<?> command) throws Exception {
        int before = cm.updates.size();
        try {
            String out = Fakes.stdout(command);
            fail("accepted; printed: " + out);
            return null;
        } catch (CommandException e) {
            // Said in red, and logged by Karaf at debug only (a CommandException, not an error).
            assertEquals("nothing changed", before, cm.updates.size());
            return e.getMessage();
        }
    }

    @Test
    public void listShowsNetworksThenDomains() throws Exception {
        RelayListCommand list = new RelayListCommand();
        list.configAdmin = cm.service();
        list.noFormat = true;
        assertEquals(List.of(List.of("network", "192.0.2.0/24", "clients here may relay to any domain"),
                List.of("network", "2001:db8::/32", "clients here may relay to any domain"),
                List.of("domain", "backup.example", "accepted from anyone and relayed")),
                Fakes.rows(Fakes.stdout(list::execute)));
        list.noFormat = false;
        String table = Fakes.stdout(list::execute);
        assertTrue(table, table.startsWith("Type") && table.contains("Value") && table.contains("192.0.2.0/24"));
        assertEquals("the location is '?', as fileinstall's", "?", cm.locations.get(0));
    }

    @Test
    public void listWhenEmpty() throws Exception {
        RelayListCommand list = new RelayListCommand();
        list.configAdmin = new FakeConfigAdmin(RouterConfig.PID, null).service();
        assertEquals(RelayListCommand.NONE + "\n", Fakes.stdout(list::execute));
    }

    @Test
    public void addTellsNetworksFromDomainsAndWritesOnce() throws Exception {
        String out = Fakes.stdout(add("10.0.0.0/8", "::1", "Relay.Example.", "bücher.example")::execute);
        assertEquals("Added trusted network 10.0.0.0/8\nAdded trusted network ::1\nAdded relay domain relay.example\n"
                + "Added relay domain bücher.example\n", out);
        assertEquals("one update for the whole command", 1, cm.updates.size());
        assertEquals("192.0.2.0/24, 2001:db8::/32, 10.0.0.0/8, ::1", cm.get("trusted.networks"));
        assertEquals("backup.example, relay.example, bücher.example", cm.get("relay.domains"));
        // What else was there is kept, the fileinstall file name too (or the .cfg would no longer be written).
        assertEquals("example.org", cm.get("local.domains"));
        assertEquals("file:/opt/postern/etc/org.postern.router.cfg", cm.get("felix.fileinstall.filename"));
    }

    @Test
    public void addForcedKinds() throws Exception {
        RelayAddCommand command = add("203.0.113.5");
        command.network = true;
        Fakes.stdout(command::execute);
        assertEquals("192.0.2.0/24, 2001:db8::/32, 203.0.113.5", cm.get("trusted.networks"));
        RelayAddCommand asDomain = add("10.0.0.0/8");
        asDomain.domain = true;
        assertEquals("Bad domain '10.0.0.0/8'", refused(cm, asDomain::execute));
        RelayAddCommand both = add("x.example");
        both.network = true;
        both.domain = true;
        assertEquals("Give --network or --domain, not both", refused(cm, both::execute));
    }

    @Test
    public void optionsAfterTheValuesCountToo() throws Exception {
        // Karaf stops reading options at the first argument: "relay-add 203.0.113.0/24 --network" must still work.
        Fakes.stdout(add("203.0.113.7", "--network")::execute);
        assertEquals("192.0.2.0/24, 2001:db8::/32, 203.0.113.7", cm.get("trusted.networks"));
        assertEquals("Bad domain '10.0.0.0/8'", refused(cm, add("10.0.0.0/8", "--domain")::execute));
        assertEquals("Unknown option --force: --network and --domain only", refused(cm, add("x.example", "--force")::execute));
        assertEquals("Give networks or domains", refused(cm, add("--domain")::execute));
    }

    @Test
    public void badAndDuplicateValuesChangeNothing() throws Exception {
        assertEquals("Bad network '10.0.0.0/33': prefix length 33 is longer than 32 (expected CIDR such as "
                + "192.0.2.0/24 or 2001:db8::/32, or one address)", refused(cm, add("example.net", "10.0.0.0/33")::execute));
        assertTrue(refused(cm, add("300.1.2.3")::execute).startsWith("Bad network '300.1.2.3': not an IP address"));
        assertTrue(refused(cm, add("fe80::1%eth0")::execute).startsWith("Bad network 'fe80::1%eth0'"));
        assertEquals("Bad network '10.1.2.3/8': host bits are set; did you mean 10.0.0.0/8?",
                refused(cm, add("10.1.2.3/8")::execute));
        assertEquals("Bad domain 'bad domain!'", refused(cm, add("bad domain!")::execute));
        assertEquals("Bad domain '*': name one domain", refused(cm, add("*")::execute));
        assertEquals("192.0.2.0/24 is already a trusted network", refused(cm, add("192.0.2.0/24")::execute));
        assertEquals("2001:DB8::0/32 is already a trusted network (as 2001:db8::/32)",
                refused(cm, add("2001:DB8::0/32")::execute));
        assertEquals("backup.example is already a relay domain", refused(cm, add("Backup.Example")::execute));
        assertEquals("example.org is a local domain: its mail is delivered here, not relayed (see mta:domain-remove)",
                refused(cm, add("example.org")::execute));
        assertEquals("a duplicate within the command", "10.9.0.0/16 is already a trusted network",
                refused(cm, add("10.9.0.0/16", "10.9.0.0/16")::execute));
        assertEquals(0, cm.updates.size());
    }

    @Test
    public void removeByAnyWritingOfTheSameValue() throws Exception {
        String out = Fakes.stdout(remove("2001:DB8:0::/32", "BACKUP.example")::execute);
        assertEquals("Removed trusted network 2001:db8::/32\nRemoved relay domain backup.example\n", out);
        assertEquals("192.0.2.0/24", cm.get("trusted.networks"));
        assertEquals("an empty list is written, not removed", "", cm.get("relay.domains"));
        assertEquals(1, cm.updates.size());
    }

    @Test
    public void removeOfAnUnknownValueChangesNothing() throws Exception {
        assertEquals("198.51.100.0/24 is neither a trusted network nor a relay domain (see mta:relay-list)",
                refused(cm, remove("192.0.2.0/24", "198.51.100.0/24")::execute));
        assertEquals("192.0.2.0/24, 2001:db8::/32", cm.get("trusted.networks"));
    }

    @Test
    public void aBadEntryWrittenByHandCanBeRemoved() throws Exception {
        FakeConfigAdmin broken = FakeConfigAdmin.router("trusted.networks", "10.0.0.0/33, 192.0.2.0/24");
        RelayRemoveCommand command = new RelayRemoveCommand();
        command.configAdmin = broken.service();
        command.values = List.of("10.0.0.0/33");
        assertEquals("Removed trusted network 10.0.0.0/33\n", Fakes.stdout(command::execute));
        assertEquals("192.0.2.0/24", broken.get("trusted.networks"));
    }

    @Test
    public void withoutConfigAdminNothingHappens() {
        RelayListCommand list = new RelayListCommand();
        try {
            list.execute();
            fail();
        } catch (Exception e) {
            assertEquals(RouterConfig.NO_CONFIG_ADMIN, e.getMessage());
        }
    }

    @Test
    public void completerOffersNetworksAndDomains() {
        RelayValueCompleter completer = new RelayValueCompleter();
        completer.configAdmin = cm.service();
        assertEquals(List.of("192.0.2.0/24"), complete(completer::complete, "19"));
        assertEquals(List.of("backup.example"), complete(completer::complete, "b"));
        assertEquals(3, complete(completer::complete, "").size());
        assertEquals("no ConfigAdmin, no candidates", List.of(), complete(new RelayValueCompleter()::complete, ""));
    }

    interface Completion {
        int complete(org.apache.karaf.shell.api.console.Session session, CommandLine line, List<String> candidates);
    }

    static List<String> complete(Completion completer, String argument) {
        CommandLine line = Fakes.proxy(CommandLine.class, (method, args) -> switch (method) {
            case "getCursorArgument" -> argument;
            case "getArgumentPosition" -> argument.length();
            case "getBufferPosition" -> argument.length();
            case "getCursorArgumentIndex" -> 1;
            default -> throw new UnsupportedOperationException(method);
        });
        List<String> candidates = new ArrayList<>();
        completer.complete(null, line, candidates);
        return candidates.stream().map(String::trim).sorted().toList();
    }
}
