package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.apache.karaf.shell.api.console.CommandLine;
import org.junit.Test;
import org.postern.api.queue.QueueEntry.State;

/** hold, release, flush, delete: one line per id, unknown ids said plainly, the store changed as asked. */
public class QueueActionCommandsTest {

    private final MemoryStore store = new MemoryStore()
            .add("Q1", State.QUEUED, "a@example.net")
            .add("D1", State.DEFERRED, "b@example.net")
            .add("D2", State.DEFERRED, "c@example.net")
            .add("H1", State.HELD, "d@example.net")
            .add("X1", State.QUARANTINED, "e@example.net")
            .add("A1", State.ACTIVE, "f@example.net");

    private static String[] lines(String out) {
        return out.split("\n");
    }

    @Test
    public void holdSaysWhatHappenedToEachId() throws Exception {
        QueueHoldCommand command = new QueueHoldCommand();
        command.queueStore = store;
        command.ids = List.of("Q1", "NOPE", "H1", "X1", "A1");
        String[] out = lines(Fakes.stdout(command::execute));
        assertEquals("Q1: held", out[0]);
        assertEquals("NOPE: no such entry", out[1]);
        assertEquals("H1: already held", out[2]);
        assertEquals("X1: quarantined: already kept from delivery", out[3]);
        assertEquals("A1: held (the delivery under way ends first)", out[4]);
        assertEquals(State.HELD, store.get("Q1").orElseThrow().state());
        assertEquals(State.QUARANTINED, store.get("X1").orElseThrow().state());
        assertEquals(List.of("hold Q1", "hold A1"), store.calls);
    }

    @Test
    public void releaseTakesHeldAndQuarantinedEntriesOnly() throws Exception {
        QueueReleaseCommand command = new QueueReleaseCommand();
        command.queueStore = store;
        command.ids = List.of("H1", "X1", "D1", "NOPE");
        String[] out = lines(Fakes.stdout(command::execute));
        assertEquals("H1: released", out[0]);
        assertEquals("X1: released", out[1]);
        assertEquals("D1: not held (DEFERRED)", out[2]);
        assertEquals("NOPE: no such entry", out[3]);
        assertEquals(State.QUEUED, store.get("H1").orElseThrow().state());
        assertEquals(State.QUEUED, store.get("X1").orElseThrow().state());
    }

    @Test
    public void flushWithoutIdsMakesEveryDeferredEntryDue() throws Exception {
        QueueFlushCommand command = new QueueFlushCommand();
        command.queueStore = store;
        String out = Fakes.stdout(command::execute);
        assertEquals("Flushed 2 deferred messages. " + QueueFlushCommand.PICKED_UP + "\n", out);
        assertEquals(List.of("requeue D1", "requeue D2"), store.calls);
        assertEquals(MemoryStore.NOW, store.get("D1").orElseThrow().nextAttempt());

        store.calls.clear();
        store.entries.remove("D1");
        store.entries.remove("D2");
        assertEquals("Flushed 0 deferred messages.\n", Fakes.stdout(command::execute));
    }

    @Test
    public void flushOfGivenIds() throws Exception {
        QueueFlushCommand command = new QueueFlushCommand();
        command.queueStore = store;
        command.ids = List.of("D1", "Q1", "H1", "A1", "NOPE");
        String[] out = lines(Fakes.stdout(command::execute));
        assertEquals("D1: due now", out[0]);
        assertEquals("Q1: due now", out[1]);
        assertEquals("H1: held: release it with mta:queue-release", out[2]);
        assertEquals("A1: being delivered now", out[3]);
        assertEquals("NOPE: no such entry", out[4]);
        assertEquals(List.of("requeue D1", "requeue Q1"), store.calls);
    }

    @Test
    public void deleteGivenIds() throws Exception {
        QueueDeleteCommand command = new QueueDeleteCommand();
        command.queueStore = store;
        command.ids = List.of("Q1", "NOPE", "Q1");
        String[] out = lines(Fakes.stdout(command::execute));
        assertEquals("Q1: deleted", out[0]);
        assertEquals("NOPE: no such entry", out[1]);
        assertEquals("Q1: no such entry", out[2]);
        assertFalse(store.get("Q1").isPresent());
        assertEquals(5, store.entries.size());
    }

    @Test
    public void deleteAllOfAState() throws Exception {
        QueueDeleteCommand command = new QueueDeleteCommand();
        command.queueStore = store;
        command.all = true;
        command.state = "deferred";
        assertEquals("Deleted 2 messages in state DEFERRED.\n", Fakes.stdout(command::execute));
        assertEquals(List.of("A1", "H1", "Q1", "X1"), store.entries.keySet().stream().sorted().toList());

        command.state = null;
        assertEquals("Deleted 4 messages.\n", Fakes.stdout(command::execute));
        assertTrue(store.entries.isEmpty());
    }

    @Test
    public void deleteNeedsIdsOrAllButNotBoth() throws Exception {
        QueueDeleteCommand command = new QueueDeleteCommand();
        command.queueStore = store;
        assertEquals(QueueDeleteCommand.USAGE + "\n", Fakes.stdout(command::execute));
        command.ids = List.of("Q1");
        command.all = true;
        assertEquals(QueueDeleteCommand.USAGE + "\n", Fakes.stdout(command::execute));
        command.all = false;
        command.state = "HELD";
        assertEquals("--state goes with --all only", QueueDeleteCommand.USAGE + "\n", Fakes.stdout(command::execute));
        assertEquals(List.of(), store.calls);
        assertEquals(6, store.entries.size());
    }

    @Test
    public void withoutAStoreEveryCommandSaysSo() throws Exception {
        String expected = QueueListCommand.NO_STORE + "\n";
        QueueHoldCommand hold = new QueueHoldCommand();
        hold.ids = List.of("Q1");
        assertEquals(expected, Fakes.stdout(hold::execute));
        QueueReleaseCommand release = new QueueReleaseCommand();
        release.ids = List.of("Q1");
        assertEquals(expected, Fakes.stdout(release::execute));
        assertEquals(expected, Fakes.stdout(new QueueFlushCommand()::execute));
        assertEquals(expected, Fakes.stdout(new QueueDeleteCommand()::execute));
        QueueShowCommand show = new QueueShowCommand();
        show.id = "Q1";
        assertEquals(expected, Fakes.stdout(show::execute));
        assertEquals(expected, Fakes.stdout(new QueueStatsCommand()::execute));
    }

    @Test
    public void aFailingStoreIsALineNotAStackTrace() throws Exception {
        QueueDeleteCommand command = new QueueDeleteCommand();
        command.queueStore = new MemoryStore() {
            @Override
            public boolean delete(String id) {
                throw new IllegalStateException("disk on fire");
            }
        }.add("Q1", State.QUEUED, "a@example.net");
        command.ids = List.of("Q1");
        assertEquals("Q1: failed: disk on fire\n", Fakes.stdout(command::execute));
    }

    @Test
    public void idCompleterOffersQueueIds() {
        MemoryStore big = new MemoryStore();
        for (int i = 0; i < 150; i++) {
            big.add(String.format("ID%03d", i), State.QUEUED, "a@example.net");
        }
        QueueIdCompleter completer = new QueueIdCompleter();
        completer.queueStore = big;
        List<String> candidates = new ArrayList<>();
        completer.complete(null, line("ID01"), candidates);
        assertEquals(List.of("ID010", "ID011", "ID012", "ID013", "ID014", "ID015", "ID016", "ID017", "ID018", "ID019"),
                candidates.stream().map(String::trim).sorted().toList());

        candidates.clear();
        completer.complete(null, line("ID1"), candidates);
        assertEquals("only the first " + QueueIdCompleter.LIMIT + " are offered", 0, candidates.size());

        candidates.clear();
        new QueueIdCompleter().complete(null, line(""), candidates);
        assertEquals("no store, nothing to offer", 0, candidates.size());
    }

    private static CommandLine line(String argument) {
        return Fakes.proxy(CommandLine.class, (method, args) -> switch (method) {
            case "getCursorArgument" -> argument;
            case "getArgumentPosition" -> argument.length();
            case "getBufferPosition" -> argument.length();
            case "getCursorArgumentIndex" -> 1;
            default -> throw new UnsupportedOperationException(method);
        });
    }
}
