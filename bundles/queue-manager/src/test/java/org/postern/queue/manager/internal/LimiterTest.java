package org.postern.queue.manager.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import java.util.List;

import org.junit.Test;

public class LimiterTest {

    @Test
    public void perDestinationLimitHoldsJobsBackInOrder() {
        Limiter<String> limiter = new Limiter<>(10, 2);
        assertEquals(List.of("a1"), limiter.offer("a", "a1"));
        assertEquals(List.of("a2"), limiter.offer("a", "a2"));
        assertEquals(List.of(), limiter.offer("a", "a3"));
        assertEquals(List.of(), limiter.offer("a", "a4"));
        assertEquals(List.of("b1"), limiter.offer("b", "b1"));
        assertEquals(3, limiter.running());
        assertEquals(2, limiter.running("a"));
        assertEquals(2, limiter.waiting());
        assertEquals(List.of("a3"), limiter.release("a"));
        assertEquals(List.of(), limiter.release("b"));
        assertEquals(0, limiter.running("b"));
    }

    @Test
    public void theGlobalLimitLetsDestinationsTakeTurns() {
        Limiter<String> limiter = new Limiter<>(2, 10);
        assertEquals(List.of("a1"), limiter.offer("a", "a1"));
        assertEquals(List.of("a2"), limiter.offer("a", "a2"));
        limiter.offer("a", "a3");
        limiter.offer("a", "a4");
        limiter.offer("b", "b1");
        limiter.offer("c", "c1");
        // a had its turns; b and c, which waited behind a's backlog, come before a's next jobs.
        assertEquals(List.of("a3"), limiter.release("a"));
        assertEquals(List.of("b1"), limiter.release("a"));
        assertEquals(List.of("c1"), limiter.release("a"));
        assertEquals(List.of("a4"), limiter.release("b"));
        assertEquals(2, limiter.running());
    }

    @Test
    public void resizingStartsWaitingJobsAndClosingAbandonsThem() {
        Limiter<String> limiter = new Limiter<>(1, 1);
        limiter.offer("a", "a1");
        limiter.offer("a", "a2");
        limiter.offer("b", "b1");
        limiter.offer("c", "c1");
        assertEquals(List.of("b1", "c1"), limiter.resize(3, 1));
        assertEquals(List.of("a2"), limiter.close());
        assertNull(limiter.offer("a", "late"));
        assertEquals(List.of(), limiter.release("a"));
        assertEquals(2, limiter.running());
    }
}
