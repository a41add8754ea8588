package org.postern.delivery.local.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.regex.Pattern;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.Mailboxes;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The local users and aliases, from configuration. Answers the relay policy at RCPT, and tells the local
 * transports which user a recipient's mail belongs to (they reference this class inside the bundle).
 *
 * <p>Local parts compare case-insensitively and every local domain shares one set of users, as with
 * Postfix's local(8). An alias names one user; aliases do not chain.
 */
@Component(service = {Mailboxes.class, LocalMailboxes.class}, configurationPid = LocalMailboxes.PID)
@Designate(ocd = LocalMailboxes.Config.class)
public class LocalMailboxes implements Mailboxes {

    static final String PID = "org.postern.delivery.local";

    @ObjectClassDefinition(name = "Postern local mailboxes",
            description = "The users that have a mailbox in the local domains, their aliases, and where the "
                    + "maildir transport stores their mail.")
    public @interface Config {
        @AttributeDefinition(name = "Mailboxes",
                description = "Local parts of the users that have a mailbox, comma separated, e.g. alice, bob "
                        + "(case-insensitive). "
                        + "Mail to any other local address is refused at RCPT with 550 5.1.1.", required = false)
        String[] mailboxes() default {};

        @AttributeDefinition(name = "Aliases",
                description = "alias:user pairs, comma separated, e.g. postmaster:alice, abuse:alice. The user "
                        + "must be one of the mailboxes.", required = false)
        String[] aliases() default {};

        @AttributeDefinition(name = "Maildir root",
                description = "Folder holding <user>/Maildir; empty for ${karaf.data}/mail.", required = false)
        String maildir_root() default "";
    }

    /** What a mailbox or alias name may be: it becomes a folder name, so no slash, no leading dot. */
    private static final Pattern NAME = Pattern.compile("[a-z0-9_][a-z0-9._+=-]{0,63}");

    private static final Logger LOG = LoggerFactory.getLogger(LocalMailboxes.class);

    /** Lower-case local part (user or alias) to the user whose mailbox receives it. */
    private volatile Map<String, String> users = Map.of();

    @Activate
    @Modified
    void configure(Config config) {
        Map<String, String> table = new HashMap<>();
        for (String entry : items(config.mailboxes())) {
            String user = entry.toLowerCase(Locale.ROOT);
            if (!NAME.matcher(user).matches()) {
                LOG.error("mailboxes: '{}' is not a valid user name (letters, digits, . _ + = -); ignored", entry);
                continue;
            }
            table.put(user, user);
        }
        Map<String, String> aliases = new HashMap<>();
        for (String entry : items(config.aliases())) {
            int colon = entry.indexOf(':');
            String alias = colon < 0 ? "" : entry.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String user = colon < 0 ? "" : entry.substring(colon + 1).trim().toLowerCase(Locale.ROOT);
            if (!NAME.matcher(alias).matches() || user.isEmpty()) {
                LOG.error("aliases: '{}' is not alias:user; ignored", entry);
            } else if (!table.containsKey(user)) {
                LOG.error("aliases: '{}' names '{}', which is not one of the mailboxes; ignored", entry, user);
            } else if (table.containsKey(alias)) {
                LOG.error("aliases: '{}': '{}' is a mailbox itself; ignored", entry, alias);
            } else {
                aliases.put(alias, user);
            }
        }
        table.putAll(aliases);
        users = Map.copyOf(table);
        LOG.info("local mailboxes: {}; aliases: {}", new TreeSet<>(Set.copyOf(table.values())), new TreeSet<>(
                aliases.entrySet().stream().map(e -> e.getKey() + ":" + e.getValue()).toList()));
    }

    @Override
    public CompletionStage<Boolean> exists(MailAddress address) {
        return CompletableFuture.completedFuture(userFor(address) != null);
    }

    /**
     * The user whose mailbox receives mail for this address (the domain is not looked at: the caller knows
     * it is local), or null when there is none.
     */
    public String userFor(MailAddress address) {
        return users.get(address.localPart().toLowerCase(Locale.ROOT));
    }

    /** The values, each also split at commas: a .cfg file gives "alice, bob" as one string. */
    static List<String> items(String[] values) {
        List<String> items = new ArrayList<>();
        for (String value : values == null ? new String[0] : values) {
            for (String item : value == null ? new String[0] : value.split(",")) {
                if (!item.isBlank()) {
                    items.add(item.trim());
                }
            }
        }
        return items;
    }
}
