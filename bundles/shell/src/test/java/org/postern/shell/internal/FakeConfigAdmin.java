package org.postern.shell.internal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Dictionary;
import java.util.Enumeration;
import java.util.Hashtable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;

/**
 * One configuration held in memory as ConfigAdmin holds it: getProperties() gives a copy (or null before the first
 * update), update() replaces the properties and counts. Only what the commands call is answered.
 */
final class FakeConfigAdmin {

    final String pid;
    Map<String, Object> properties; // null: the configuration does not exist yet
    final List<Map<String, Object>> updates = new ArrayList<>();
    final List<String> locations = new ArrayList<>();
    /** Other configurations, by PID, that the commands only read (listConfigurations). */
    final Map<String, Map<String, Object>> others = new LinkedHashMap<>();

    FakeConfigAdmin(String pid, Map<String, Object> properties) {
        this.pid = pid;
        this.properties = properties == null ? null : new LinkedHashMap<>(properties);
    }

    /** A configuration as fileinstall makes it from etc/org.postern.router.cfg. */
    static FakeConfigAdmin router(Object... pairs) {
        Map<String, Object> values = new LinkedHashMap<>();
        values.put("service.pid", RouterConfig.PID);
        values.put("felix.fileinstall.filename", "file:/opt/postern/etc/org.postern.router.cfg");
        for (int i = 0; i < pairs.length; i += 2) {
            values.put((String) pairs[i], pairs[i + 1]);
        }
        return new FakeConfigAdmin(RouterConfig.PID, values);
    }

    Object get(String key) {
        return properties == null ? null : properties.get(key);
    }

    ConfigurationAdmin service() {
        Configuration configuration = Fakes.proxy(Configuration.class, (method, args) -> switch (method) {
            case "getPid" -> pid;
            case "getProperties" -> properties == null ? null : new Hashtable<>(properties);
            case "update" -> {
                @SuppressWarnings("unchecked")
                Dictionary<String, Object> given = (Dictionary<String, Object>) args[0];
                Map<String, Object> copy = new LinkedHashMap<>();
                for (Enumeration<String> keys = given.keys(); keys.hasMoreElements(); ) {
                    String key = keys.nextElement();
                    copy.put(key, given.get(key));
                }
                properties = copy;
                updates.add(Collections.unmodifiableMap(copy));
                yield null;
            }
            default -> throw new UnsupportedOperationException("Configuration." + method);
        });
        return Fakes.proxy(ConfigurationAdmin.class, (method, args) -> {
            if (method.equals("getConfiguration") && args.length == 2 && pid.equals(args[0])) {
                locations.add((String) args[1]);
                return configuration;
            }
            if (method.equals("listConfigurations")) {
                String filter = (String) args[0];
                String wanted = filter.substring(filter.indexOf('=') + 1, filter.length() - 1); // (service.pid=X)
                Map<String, Object> other = others.get(wanted);
                return other == null ? null : new Configuration[] {Fakes.proxy(Configuration.class, (m, a) -> switch (m) {
                    case "getPid" -> wanted;
                    case "getProperties" -> new Hashtable<>(other);
                    default -> throw new UnsupportedOperationException("Configuration." + m);
                })};
            }
            throw new UnsupportedOperationException("ConfigurationAdmin." + method + " " + java.util.Arrays.toString(args));
        });
    }
}
