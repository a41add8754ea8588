package org.postern.shell.internal;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Dictionary;
import java.util.Enumeration;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;

import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * The router's configuration ({@value #PID}) as the console reads and changes it, through ConfigurationAdmin: the
 * router applies a change at once ({@code @Modified}), ConfigAdmin keeps it across restarts, and Karaf's fileinstall
 * writes it back to etc/org.postern.router.cfg.
 *
 * <p>Lists are read as the router reads them (arrays or comma-separated strings, blanks dropped) and written as one
 * comma-separated string, the form a hand-written .cfg file has, so that the file stays plain to read.
 */
final class RouterConfig {

    static final String PID = "org.postern.router";
    static final String LOCAL_DOMAINS = "local.domains";
    static final String RELAY_DOMAINS = "relay.domains";
    static final String TRUSTED_NETWORKS = "trusted.networks";
    static final String ROUTES = "routes";
    static final String RELAYHOST = "relayhost";

    static final String NO_CONFIG_ADMIN = "ConfigurationAdmin is not available: nothing can be read or changed";

    /** What the router takes when a property is absent (its metatype defaults). */
    private static final Map<String, List<String>> DEFAULTS = Map.of(LOCAL_DOMAINS, List.of("localhost"));

    private final Configuration configuration;
    private final Hashtable<String, Object> properties = new Hashtable<>();

    private RouterConfig(Configuration configuration) {
        this.configuration = configuration;
        Dictionary<String, Object> current = configuration.getProperties();
        if (current != null) {
            for (Enumeration<String> keys = current.keys(); keys.hasMoreElements(); ) {
                String key = keys.nextElement();
                properties.put(key, current.get(key));
            }
        }
    }

    /**
     * The configuration as it is now. Location "?" lets any bundle (the router) receive it, as the configurations
     * fileinstall creates from etc/ do.
     *
     * @throws IllegalStateException when there is no ConfigurationAdmin
     */
    static RouterConfig read(ConfigurationAdmin admin) throws IOException {
        if (admin == null) {
            throw new IllegalStateException(NO_CONFIG_ADMIN);
        }
        return new RouterConfig(admin.getConfiguration(PID, "?"));
    }

    /** The items of a list property; the router's default when it is absent. */
    List<String> list(String key) {
        Object value = properties.get(key);
        if (value == null) {
            return DEFAULTS.getOrDefault(key, List.of());
        }
        List<String> items = new ArrayList<>();
        if (value instanceof String[] array) {
            for (String s : array) {
                split(s, items);
            }
        } else if (value instanceof Collection<?> collection) {
            for (Object o : collection) {
                split(o == null ? null : o.toString(), items);
            }
        } else {
            split(value.toString(), items);
        }
        return items;
    }

    private static void split(String value, List<String> into) {
        if (value == null) {
            return;
        }
        for (String item : value.split(",")) {
            if (!item.isBlank()) {
                into.add(item.trim());
            }
        }
    }

    /** A single-valued property, trimmed; empty when absent. */
    String string(String key) {
        Object value = properties.get(key);
        if (value instanceof String[] array) {
            return array.length == 0 || array[0] == null ? "" : array[0].trim();
        }
        return value == null ? "" : value.toString().trim();
    }

    /**
     * Sets a list property for {@link #save()}. An empty list is written as an empty string, not removed: an absent
     * property would bring the default back.
     */
    void set(String key, List<String> items) {
        properties.put(key, String.join(", ", items));
    }

    /** Hands the configuration to ConfigAdmin: one update, so the router sees one consistent change. */
    void save() throws IOException {
        configuration.update(properties);
    }
}
