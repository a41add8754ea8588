package org.postern.queue.file.internal;

import java.io.IOException;
import java.lang.annotation.Annotation;
import java.nio.file.Path;
import java.time.Clock;

import org.osgi.service.event.EventAdmin;

/**
 * Starts the real file queue for the queue manager's tests. It lives in the store's package because the
 * store's test constructor and activate are package-private: the store is no API, only its interface is.
 */
public final class FileQueueStores {

    private FileQueueStores() {
    }

    public static FileQueueStore start(Path spool, Clock clock, EventAdmin events) throws IOException {
        FileQueueStore store = new FileQueueStore(clock, null);
        store.eventAdmin = events;
        store.activate(new FileQueueStore.Config() {
            @Override
            public String spool_dir() {
                return spool.toString();
            }

            @Override
            public int memory_mb() {
                return 512;
            }

            @Override
            public Class<? extends Annotation> annotationType() {
                return FileQueueStore.Config.class;
            }
        });
        return store;
    }

    public static void stop(FileQueueStore store) {
        store.deactivate();
    }
}
