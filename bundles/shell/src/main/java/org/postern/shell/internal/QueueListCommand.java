package org.postern.shell.internal;

import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

/** The mail queue, like Postfix's mailq: one row per entry, oldest first. */
@Command(scope = "mta", name = "queue-list", description = "Lists the messages in the mail queue, oldest first")
@Service
public class QueueListCommand implements Action {

    static final String NO_STORE = "No queue store available (is postern-queue-file installed?)";
    static final String EMPTY = "Mail queue is empty";
    static final String NO_MATCH = "No queue entries match.";

    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);

    // Optional: a mandatory reference to an absent service would hold up every command of this bundle.
    @Reference(optional = true)
    QueueStore queueStore;

    @Option(name = "--state", description = "Only entries in this state (QUEUED, ACTIVE, DEFERRED, HELD, QUARANTINED)")
    @Completion(QueueStateCompleter.class)
    String state;

    @Option(name = "--sender", description = "Only entries whose sender contains this text (case-insensitive)")
    String sender;

    @Option(name = "--recipient", description = "Only entries with a recipient containing this text (case-insensitive)")
    String recipient;

    @Option(name = "--offset", description = "Skip this many matching entries")
    int offset = 0;

    @Option(name = "--limit", description = "Show at most this many entries; 0 for all")
    int limit = 100;

    @Option(name = "--no-format", description = "Tab-separated rows without header or footer, for scripts")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(NO_STORE);
            return null;
        }
        if (offset < 0 || limit < 0) {
            throw new IllegalArgumentException("--offset and --limit must not be negative");
        }
        QueueEntry.State wanted = parseState(state);
        // One entry more than the page tells whether there is a next page.
        List<QueueEntry> entries = store.list(new QueueQuery(wanted, sender, recipient, offset,
                limit == 0 ? 0 : limit + 1));
        boolean more = limit > 0 && entries.size() > limit;
        if (more) {
            entries = entries.subList(0, limit);
        }
        if (entries.isEmpty()) {
            boolean filtered = wanted != null || sender != null || recipient != null || offset > 0;
            if (!noFormat) {
                System.out.println(filtered ? NO_MATCH : EMPTY);
            }
            return null;
        }
        table(entries, ZoneId.systemDefault(), !noFormat).print(System.out, !noFormat);
        if (!noFormat) {
            System.out.println(footer(entries));
            if (more) {
                System.out.println("More entries match: see them with --offset " + (offset + limit) + ".");
            }
        }
        return null;
    }

    /** The state named in any case, or null for none; an unknown name is an error that lists the known ones. */
    static QueueEntry.State parseState(String text) {
        if (text == null || text.isBlank()) {
            return null;
        }
        try {
            return QueueEntry.State.valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Unknown state '" + text + "'; one of "
                    + Arrays.toString(QueueEntry.State.values()));
        }
    }

    /**
     * The table of entries, times in {@code zone}. Formatted output cuts long recipient lists and errors to keep
     * a row on one line; unformatted output (for scripts) keeps them whole.
     */
    static ShellTable table(List<QueueEntry> entries, ZoneId zone, boolean format) {
        ShellTable table = new ShellTable();
        table.column("ID");
        table.column("Arrival");
        table.column("Size").alignRight();
        table.column("Sender");
        var recipients = table.column("Recipients");
        table.column("State");
        table.column("Next attempt");
        var lastError = table.column("Last error");
        if (format) {
            recipients.maxSize(60);
            lastError.maxSize(60);
        }
        for (QueueEntry e : entries) {
            table.addRow().addContent(e.id(), time(e.envelope().receivedAt(), zone), e.size(),
                    sender(e.envelope().sender()), recipients(e), e.state().name(),
                    time(e.nextAttempt(), zone), lastError(e));
        }
        return table;
    }

    /** mailq's last line: the total size in kilobytes (rounded up) and the number of entries. */
    static String footer(List<QueueEntry> entries) {
        long octets = entries.stream().mapToLong(QueueEntry::size).sum();
        int count = entries.size();
        return "-- " + (octets + 1023) / 1024 + " Kbytes in " + count + (count == 1 ? " Request." : " Requests.");
    }

    static String sender(MailAddress sender) {
        return sender.isNullSender() ? "<>" : sender.toString();
    }

    /** The recipients still to deliver, as mailq shows them; all of them if the store kept no progress. */
    static String recipients(QueueEntry entry) {
        List<Recipient> shown = entry.pending().stream().map(RecipientStatus::recipient).toList();
        if (shown.isEmpty()) {
            shown = entry.envelope().recipients();
        }
        return shown.stream().map(r -> r.address().toString()).collect(Collectors.joining(", "));
    }

    /** The last delivery error; for a held or quarantined entry without one, the reason in parentheses. */
    static String lastError(QueueEntry entry) {
        if (entry.lastError() != null) {
            return oneLine(entry.lastError());
        }
        return entry.reason() != null ? "(" + oneLine(entry.reason()) + ")" : "";
    }

    /** A remote reply may span lines; a table cell may not (and a tab would split a --no-format row). */
    static String oneLine(String text) {
        return text.replaceAll("\\s*[\\r\\n\\t]+\\s*", " ").trim();
    }

    static String time(Instant instant, ZoneId zone) {
        return instant == null ? "-" : TIME.format(instant.atZone(zone));
    }
}
