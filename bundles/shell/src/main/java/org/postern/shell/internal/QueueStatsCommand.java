package org.postern.shell.internal;

import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueQuery;
import org.postern.api.queue.QueueStats;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

/** qshape in brief: how much is queued, in which state, since when, and where it is waiting to go. */
@Command(scope = "mta", name = "queue-stats",
        description = "Counts of the mail queue: entries per state, size, oldest entry, busiest destinations")
@Service
public class QueueStatsCommand implements Action {

    @Reference(optional = true)
    QueueStore queueStore;

    @Option(name = "--top", description = "How many destinations to show")
    int top = 10;

    @Option(name = "--no-format", description = "Tab-separated key and value rows, for scripts")
    boolean noFormat;

    /** A recipient domain with the pending recipients and the entries waiting for it. */
    record Destination(String domain, long recipients, long entries) {
    }

    @Override
    public Object execute() {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(QueueListCommand.NO_STORE);
            return null;
        }
        QueueStats stats = store.stats();
        List<Destination> busiest = busiest(store.list(QueueQuery.ALL), Math.max(0, top));
        print(stats, busiest, Instant.now(), ZoneId.systemDefault(), !noFormat, System.out);
        return null;
    }

    /** Recipient domains by pending recipients, most first; the bare postmaster counts as "(local)". */
    static List<Destination> busiest(List<QueueEntry> entries, int top) {
        Map<String, long[]> counts = new HashMap<>();
        for (QueueEntry entry : entries) {
            Set<String> seen = new HashSet<>();
            for (RecipientStatus r : entry.pending()) {
                String domain = r.recipient().address().asciiDomain();
                String key = domain.isEmpty() ? "(local)" : domain;
                long[] c = counts.computeIfAbsent(key, k -> new long[2]);
                c[0]++;
                if (seen.add(key)) {
                    c[1]++;
                }
            }
        }
        List<Destination> all = new ArrayList<>();
        counts.forEach((domain, c) -> all.add(new Destination(domain, c[0], c[1])));
        all.sort(Comparator.comparingLong(Destination::recipients).reversed().thenComparing(Destination::domain));
        return all.size() > top ? all.subList(0, top) : all;
    }

    static void print(QueueStats stats, List<Destination> busiest, Instant now, ZoneId zone, boolean format,
                      PrintStream out) {
        if (!format) {
            for (QueueEntry.State state : QueueEntry.State.values()) {
                out.println(state + "\t" + stats.byState().getOrDefault(state, 0L));
            }
            out.println("total\t" + stats.total());
            out.println("size\t" + stats.totalSize());
            out.println("oldest\t" + (stats.oldest() == null ? "-" : stats.oldest().toString()));
            for (Destination d : busiest) {
                out.println("destination\t" + d.domain() + "\t" + d.recipients() + "\t" + d.entries());
            }
            return;
        }
        ShellTable states = new ShellTable();
        states.column("State");
        states.column("Entries").alignRight();
        for (QueueEntry.State state : QueueEntry.State.values()) {
            states.addRow().addContent(state.name(), stats.byState().getOrDefault(state, 0L));
        }
        states.addRow().addContent("Total", stats.total());
        states.print(out, true);
        out.println();
        out.println("Size:    " + (stats.totalSize() + 1023) / 1024 + " Kbytes (" + stats.totalSize() + " octets)");
        out.println("Oldest:  " + (stats.oldest() == null ? "-"
                : QueueListCommand.time(stats.oldest(), zone) + " (" + age(Duration.between(stats.oldest(), now)) + " ago)"));
        if (!busiest.isEmpty()) {
            out.println();
            ShellTable destinations = new ShellTable();
            destinations.column("Destination");
            destinations.column("Pending recipients").alignRight();
            destinations.column("Entries").alignRight();
            for (Destination d : busiest) {
                destinations.addRow().addContent(d.domain(), d.recipients(), d.entries());
            }
            destinations.print(out, true);
        }
    }

    /** An age in its two largest units: 2d 3h, 5h 7m, 4m 2s, 9s. */
    static String age(Duration d) {
        long s = Math.max(0, d.toSeconds());
        long days = s / 86400;
        long hours = s % 86400 / 3600;
        long minutes = s % 3600 / 60;
        long seconds = s % 60;
        if (days > 0) {
            return days + "d " + hours + "h";
        }
        if (hours > 0) {
            return hours + "h " + minutes + "m";
        }
        return minutes > 0 ? minutes + "m " + seconds + "s" : seconds + "s";
    }
}
