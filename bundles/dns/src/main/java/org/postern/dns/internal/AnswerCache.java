package org.postern.dns.internal;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import org.xbill.DNS.Name;
import org.xbill.DNS.Record;

/**
 * Answers by name and type until their TTL runs out, at most {@code maxEntries} of them, the least recently
 * used leaving first. A generation number keeps answers from servers no longer configured out: an answer
 * is stored only if the cache was not reset since its question was sent.
 */
final class AnswerCache {

    /** A question: the name in lower case (DNS names compare without case) and the record type. */
    record Key(String name, int type) {
        static Key of(Name name, int type) {
            return new Key(name.toString().toLowerCase(Locale.ROOT), type);
        }
    }

    /**
     * An answer as cached.
     *
     * @param records the records of the type asked (empty: the name has none)
     * @param nxdomain the name does not exist
     * @param expiresAt System.nanoTime()-based instant after which the answer is no longer used
     */
    record Answer(List<Record> records, boolean nxdomain, long expiresAt) {

        /** Whole seconds left, for callers who cache what they derive from it. */
        long remainingSeconds(long now) {
            return Math.max(0, TimeUnit.NANOSECONDS.toSeconds(expiresAt - now));
        }
    }

    private final LinkedHashMap<Key, Answer> entries = new LinkedHashMap<>(64, 0.75f, true);
    private int maxEntries;
    private long generation;

    synchronized Answer get(Key key, long now) {
        Answer answer = entries.get(key);
        if (answer != null && answer.expiresAt() - now <= 0) {
            entries.remove(key);
            return null;
        }
        return answer;
    }

    synchronized void put(Key key, Answer answer, long generation, long now) {
        if (generation != this.generation || maxEntries <= 0 || answer.expiresAt() - now <= 0) {
            return;
        }
        entries.put(key, answer);
        Iterator<Key> eldest = entries.keySet().iterator();
        while (entries.size() > maxEntries) {
            eldest.next();
            eldest.remove();
        }
    }

    /** Empties the cache and returns the new generation; answers to questions sent before are not stored. */
    synchronized long reset(int maxEntries) {
        entries.clear();
        this.maxEntries = maxEntries;
        return ++generation;
    }

    synchronized int size() {
        return entries.size();
    }
}
