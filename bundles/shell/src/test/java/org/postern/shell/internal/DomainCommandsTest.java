package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.postern.shell.internal.RelayCommandsTest.complete;
import static org.postern.shell.internal.RelayCommandsTest.refused;

import java.util.List;

import org.junit.Test;

/** domain-list, domain-add, domain-remove against a ConfigAdmin in memory. */
public class DomainCommandsTest {

    private final FakeConfigAdmin cm = FakeConfigAdmin.router(
            "local.domains", new String[] {"example.org", "mail.example.org"},
            "relay.domains", "backup.example",
            "routes", "example.com = [192.0.2.5]:2525");

    private DomainAddCommand add(String... domains) {
        DomainAddCommand command = new DomainAddCommand();
        command.configAdmin = cm.service();
        command.domains = List.of(domains);
        return command;
    }

    private DomainRemoveCommand remove(String... domains) {
        DomainRemoveCommand command = new DomainRemoveCommand();
        command.configAdmin = cm.service();
        command.domains = List.of(domains);
        return command;
    }

    @Test
    public void listShowsTheLocalDomains() throws Exception {
        DomainListCommand list = new DomainListCommand();
        list.configAdmin = cm.service();
        list.noFormat = true;
        assertEquals("example.org\nmail.example.org\n", Fakes.stdout(list::execute).replace(" ", ""));
    }

    @Test
    public void withoutTheProperty() throws Exception {
        DomainListCommand list = new DomainListCommand();
        list.configAdmin = new FakeConfigAdmin(RouterConfig.PID, null).service();
        list.noFormat = true;
        assertEquals("the router's default", "localhost\n", Fakes.stdout(list::execute).replace(" ", ""));
        // An empty value is no domain at all (not the default).
        list.configAdmin = FakeConfigAdmin.router("local.domains", "").service();
        list.noFormat = false;
        assertEquals(DomainListCommand.NONE + "\n", Fakes.stdout(list::execute));
    }

    @Test
    public void addAndRemove() throws Exception {
        assertEquals("Added local domain example.net\nAdded local domain bücher.example\n",
                Fakes.stdout(add("Example.NET.", "Bücher.example")::execute));
        assertEquals("example.org, mail.example.org, example.net, bücher.example", cm.get("local.domains"));
        assertEquals("Removed local domain bücher.example\n", Fakes.stdout(remove("xn--bcher-kva.example")::execute));
        assertEquals("example.org, mail.example.org, example.net", cm.get("local.domains"));
        assertEquals("backup.example", cm.get("relay.domains"));
        assertEquals(2, cm.updates.size());
    }

    @Test
    public void addingToTheDefaultKeepsLocalhost() throws Exception {
        FakeConfigAdmin fresh = new FakeConfigAdmin(RouterConfig.PID, null);
        DomainAddCommand command = new DomainAddCommand();
        command.configAdmin = fresh.service();
        command.domains = List.of("example.net");
        Fakes.stdout(command::execute);
        assertEquals("localhost, example.net", fresh.get("local.domains"));
    }

    @Test
    public void removingTheLastOneSaysWhatItMeans() throws Exception {
        assertEquals("Removed local domain example.org\nRemoved local domain mail.example.org\n"
                + DomainListCommand.NONE + "\n", Fakes.stdout(remove("example.org", "mail.example.org")::execute));
        assertEquals("", cm.get("local.domains"));
    }

    @Test
    public void refusals() throws Exception {
        assertEquals("Bad domain 'no_such domain'", refused(cm, add("example.net", "no_such domain")::execute));
        assertEquals("Bad domain '[192.0.2.1]'", refused(cm, add("[192.0.2.1]")::execute));
        assertEquals("example.org is already a local domain", refused(cm, add("EXAMPLE.org")::execute));
        assertEquals("backup.example is a relay domain: remove it there first (mta:relay-remove backup.example)",
                refused(cm, add("backup.example")::execute));
        assertEquals("example.com has a route (example.com = [192.0.2.5]:2525): a local domain's mail is delivered "
                + "here, so remove the route first (mta:route-remove example.com)", refused(cm, add("example.com")::execute));
        assertEquals("example.net is not a local domain (see mta:domain-list)",
                refused(cm, remove("example.org", "example.net")::execute));
        assertEquals("example.org, mail.example.org", String.join(", ", (String[]) cm.get("local.domains")));
    }

    @Test
    public void completerOffersTheLocalDomains() {
        LocalDomainCompleter completer = new LocalDomainCompleter();
        completer.configAdmin = cm.service();
        assertEquals(List.of("mail.example.org"), complete(completer::complete, "m"));
        assertEquals(2, complete(completer::complete, "").size());
    }
}
