package org.postern.delivery.local.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * This machine's name, for Maildir file names and LHLO, read without asking any resolver:
 * InetAddress.getLocalHost() would query DNS, which must never happen here (FACTS trap 1).
 */
final class HostName {

    private static final String NAME = read();

    private HostName() {
    }

    static String get() {
        return NAME;
    }

    private static String read() {
        for (String file : new String[] {"/proc/sys/kernel/hostname", "/etc/hostname"}) {
            try {
                String name = Files.readString(Path.of(file), StandardCharsets.US_ASCII).trim();
                if (valid(name)) {
                    return name;
                }
            } catch (IOException | RuntimeException e) {
                // try the next source
            }
        }
        for (String variable : new String[] {"HOSTNAME", "COMPUTERNAME"}) {
            String name = System.getenv(variable);
            if (name != null && valid(name.trim())) {
                return name.trim();
            }
        }
        return "localhost";
    }

    /** Letters, digits, dots and hyphens only: the name goes into LHLO and file names. */
    private static boolean valid(String name) {
        return !name.isEmpty() && name.length() <= 255 && name.matches("[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?");
    }
}
