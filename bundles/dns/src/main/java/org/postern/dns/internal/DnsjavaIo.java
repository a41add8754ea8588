package org.postern.dns.internal;

import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.xbill.DNS.NioClient;

/**
 * dnsjava's network I/O is global: one selector thread and its sockets for every SimpleResolver in the JVM.
 * With its shutdown hook disabled (the hook makes Karaf's bin/stop hang), closing it is up to us.
 */
final class DnsjavaIo {

    private static final String SELECTOR_THREAD = "dnsjava NIO selector";

    private DnsjavaIo() {
    }

    /**
     * Closes the sockets and stops the selector thread; the next query starts them again.
     *
     * <p>dnsjava 3.6.5 ends its close by joining the selector thread from that same thread, which parks it
     * forever (a leaked thread holding the bundle's class loader). Interrupting it there lets it finish.
     */
    static void close() {
        NioClient.close();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        while (System.nanoTime() < deadline) {
            Thread closing = null;
            boolean anySelector = false;
            for (Map.Entry<Thread, StackTraceElement[]> thread : Thread.getAllStackTraces().entrySet()) {
                if (!thread.getKey().getName().equals(SELECTOR_THREAD)) {
                    continue;
                }
                anySelector = true;
                for (StackTraceElement frame : thread.getValue()) {
                    if (frame.getClassName().equals(NioClient.class.getName())
                            && frame.getMethodName().equals("runClose")) {
                        closing = thread.getKey();
                    }
                }
            }
            if (closing != null) {
                closing.interrupt();
                return;
            }
            if (!anySelector) {
                return;
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
