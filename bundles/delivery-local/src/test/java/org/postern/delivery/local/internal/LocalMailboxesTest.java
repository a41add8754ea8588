package org.postern.delivery.local.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.Test;
import org.postern.api.mail.MailAddress;

public class LocalMailboxesTest {

    private static boolean exists(LocalMailboxes mailboxes, String address) throws Exception {
        return mailboxes.exists(MailAddress.parse(address)).toCompletableFuture().get();
    }

    @Test
    public void usersExistCaseInsensitivelyInEveryLocalDomain() throws Exception {
        LocalMailboxes mailboxes = Fixtures.mailboxes(List.of("alice", " Bob "), List.of());
        assertTrue(exists(mailboxes, "alice@example.org"));
        assertTrue(exists(mailboxes, "ALICE@example.net"));
        assertTrue(exists(mailboxes, "bob@example.org"));
        assertFalse(exists(mailboxes, "carol@example.org"));
        assertFalse(exists(mailboxes, "alice.smith@example.org"));
        assertEquals("bob", mailboxes.userFor(MailAddress.parse("BoB@example.org")));
    }

    @Test
    public void aliasesMapToTheirUser() throws Exception {
        LocalMailboxes mailboxes = Fixtures.mailboxes(List.of("alice", "bob"),
                List.of("postmaster:alice", "Abuse : BOB", "webmaster:carol", "bob:alice", "broken"));
        assertTrue(exists(mailboxes, "postmaster@example.org"));
        assertEquals("alice", mailboxes.userFor(MailAddress.parse("Postmaster@example.org")));
        assertEquals("bob", mailboxes.userFor(MailAddress.parse("abuse@example.org")));
        // an alias to a user that has no mailbox is refused, and a mailbox cannot be hidden by an alias
        assertFalse(exists(mailboxes, "webmaster@example.org"));
        assertEquals("bob", mailboxes.userFor(MailAddress.parse("bob@example.org")));
    }

    @Test
    public void barePostmasterExistsWhenAnAliasMapsIt() throws Exception {
        MailAddress bare = MailAddress.parse("postmaster");
        LocalMailboxes mapped = Fixtures.mailboxes(List.of("alice"), List.of("postmaster:alice"));
        assertTrue(mapped.exists(bare).toCompletableFuture().get());
        assertEquals("alice", mapped.userFor(bare));

        LocalMailboxes unmapped = Fixtures.mailboxes(List.of("alice"), List.of());
        assertFalse(unmapped.exists(bare).toCompletableFuture().get());
    }

    @Test
    public void namesThatCannotBeFoldersAreIgnored() throws Exception {
        // a user name becomes a folder under the maildir root: no slash, no leading dot
        LocalMailboxes mailboxes = Fixtures.mailboxes(List.of("a/b", ".hidden", "..", "ok"),
                List.of("x:..", "y/z:ok"));
        assertFalse(exists(mailboxes, "a/b@example.org"));
        assertFalse(exists(mailboxes, "x@example.org"));
        assertFalse(exists(mailboxes, "y/z@example.org"));
        assertTrue(exists(mailboxes, "ok@example.org"));
    }

    @Test
    public void aChangedConfigurationAppliesAtOnce() throws Exception {
        LocalMailboxes mailboxes = Fixtures.mailboxes(List.of("alice"), List.of());
        assertFalse(exists(mailboxes, "bob@example.org"));
        mailboxes.configure(Fixtures.config(LocalMailboxes.Config.class,
                Map.of("mailboxes", new String[] {"bob"})));
        assertTrue(exists(mailboxes, "bob@example.org"));
        assertFalse(exists(mailboxes, "alice@example.org"));
    }

    @Test
    public void aCfgFileGivesCommaSeparatedValues() throws Exception {
        LocalMailboxes mailboxes = new LocalMailboxes();
        mailboxes.configure(Fixtures.config(LocalMailboxes.Config.class, Map.of(
                "mailboxes", new String[] {"alice, bob,,carol "},
                "aliases", new String[] {"postmaster:alice, abuse: bob"})));
        for (String user : List.of("alice", "bob", "carol")) {
            assertTrue(user, exists(mailboxes, user + "@example.org"));
        }
        assertEquals("alice", mailboxes.userFor(MailAddress.parse("postmaster@example.org")));
        assertEquals("bob", mailboxes.userFor(MailAddress.parse("abuse@example.org")));
    }

    @Test
    public void noConfigurationMeansNoMailboxes() throws Exception {
        LocalMailboxes mailboxes = new LocalMailboxes();
        mailboxes.configure(Fixtures.config(LocalMailboxes.Config.class, Map.of()));
        assertFalse(exists(mailboxes, "postmaster"));
        assertFalse(exists(mailboxes, "alice@example.org"));
    }
}
