package org.postern.shell.internal;

import java.io.PrintStream;
import java.util.List;
import java.util.Optional;

import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.QueueStore.QueueException;

/**
 * What the queue commands that act on entries by id share: one line per id, {@code ID: what happened}, so
 * that an unknown id or a refused change is a line of output, never a stack trace, and the other ids still
 * get their turn.
 */
final class QueueActions {

    static final String NO_SUCH_ENTRY = "no such entry";

    private QueueActions() {
    }

    /** One change to one entry: the text to show for it. */
    interface Change {
        String apply(QueueStore store, QueueEntry entry) throws QueueException;
    }

    /** Applies a change to each id in turn; returns how many ids named an entry that was there. */
    static int each(QueueStore store, List<String> ids, Change change, PrintStream out) {
        int found = 0;
        for (String id : ids) {
            Optional<QueueEntry> entry = store.get(id);
            if (entry.isEmpty()) {
                out.println(id + ": " + NO_SUCH_ENTRY);
                continue;
            }
            found++;
            try {
                out.println(id + ": " + change.apply(store, entry.get()));
            } catch (QueueException | RuntimeException e) {
                out.println(id + ": failed: " + e.getMessage());
            }
        }
        return found;
    }

    static boolean isHeld(QueueEntry entry) {
        return entry.state() == QueueEntry.State.HELD || entry.state() == QueueEntry.State.QUARANTINED;
    }

    /** An operator-facing "gone meanwhile" for a store call that found no entry after get() did. */
    static String gone(boolean done, String doneText) {
        return done ? doneText : NO_SUCH_ENTRY;
    }
}
