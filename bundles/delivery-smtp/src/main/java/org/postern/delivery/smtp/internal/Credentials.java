package org.postern.delivery.smtp.internal;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Client AUTH credentials for a smarthost, named by an id that routes refer to ({@code auth=ID}). They live in
 * the transport's configuration as {@code auth.ID.username} and {@code auth.ID.password}, the way Postfix keeps
 * them in smtp_sasl_password_maps.
 */
record Credentials(String username, String password) {

    private static final String PREFIX = "auth.";

    /** Never prints the password. */
    @Override
    public String toString() {
        return username;
    }

    /**
     * Reads every {@code auth.ID.username} / {@code auth.ID.password} pair of a configuration.
     *
     * @param incomplete receives the ids that lack one of the two (left out of the result), so that a typo is
     *                   reported at once rather than at the first delivery
     */
    static Map<String, Credentials> parse(Map<String, ?> properties, Set<String> incomplete) {
        Map<String, String> users = new HashMap<>();
        Map<String, String> passwords = new HashMap<>();
        for (Map.Entry<String, ?> e : properties.entrySet()) {
            String key = e.getKey();
            if (!key.startsWith(PREFIX) || e.getValue() == null) {
                continue;
            }
            String rest = key.substring(PREFIX.length());
            int dot = rest.lastIndexOf('.');
            if (dot <= 0) {
                continue;
            }
            String id = rest.substring(0, dot).toLowerCase(Locale.ROOT); // ConfigAdmin keys ignore case too
            String value = e.getValue().toString();
            switch (rest.substring(dot + 1)) {
                case "username" -> users.put(id, value.trim());
                case "password" -> passwords.put(id, value);
                default -> { }
            }
        }
        Map<String, Credentials> result = new HashMap<>();
        for (String id : union(users, passwords)) {
            String user = users.get(id);
            String password = passwords.get(id);
            if (user == null || user.isEmpty() || password == null || password.isEmpty()) {
                incomplete.add(id);
            } else {
                result.put(id, new Credentials(user, password));
            }
        }
        return Map.copyOf(result);
    }

    private static TreeSet<String> union(Map<String, String> a, Map<String, String> b) {
        TreeSet<String> ids = new TreeSet<>(a.keySet());
        ids.addAll(b.keySet());
        return ids;
    }
}
