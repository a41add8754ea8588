package org.postern.shell.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.Constants;
import org.osgi.framework.ServiceReference;
import org.postern.api.filter.SmtpFilter;

/**
 * The live filter chain: every registered {@link SmtpFilter}, in the order the listener calls them.
 */
@Command(scope = "mta", name = "filter-list", description = "Lists the SMTP filters, in the order they run")
@Service
public class FilterListCommand implements Action {

    static final String NONE = "No filters registered.";

    /**
     * What the console shows of one filter service; read from its properties the way the listener reads
     * them, so the table shows what the listener applies.
     */
    record FilterInfo(String name, int ranking, long serviceId, String bundle, String state, long timeoutMs,
                      String onFailure) {

        /** The listener's order: highest {@code service.ranking} first, then the oldest service. */
        static final Comparator<FilterInfo> CHAIN_ORDER =
                Comparator.comparingInt(FilterInfo::ranking).reversed().thenComparingLong(FilterInfo::serviceId);

        static FilterInfo of(Map<String, Object> props, String className, String bundleName, long bundleId,
                             int bundleState) {
            Object name = props.get(SmtpFilter.NAME_PROPERTY);
            if (name == null) {
                name = props.get("component.name");
            }
            if (name == null) {
                name = className;
            }
            Object ranking = props.get(Constants.SERVICE_RANKING);
            // Anything but "continue" means tempfail to the listener, so show that.
            String onFailure = "continue".equalsIgnoreCase(String.valueOf(props.get(SmtpFilter.ON_FAILURE_PROPERTY)))
                    ? "continue" : "tempfail";
            return new FilterInfo(String.valueOf(name),
                    ranking instanceof Integer i ? i : 0, // the OSGi spec ignores a non-Integer ranking
                    longValue(props.get(Constants.SERVICE_ID), 0),
                    bundleName + " (" + bundleId + ")",
                    stateName(bundleState),
                    longValue(props.get(SmtpFilter.TIMEOUT_PROPERTY), SmtpFilter.DEFAULT_TIMEOUT_MS),
                    onFailure);
        }
    }

    @Reference
    BundleContext bundleContext;

    @Option(name = "--no-format", description = "Tab-separated rows without header, for scripts")
    boolean noFormat;

    @Override
    public Object execute() throws Exception {
        Collection<ServiceReference<SmtpFilter>> refs = bundleContext.getServiceReferences(SmtpFilter.class, null);
        List<FilterInfo> filters = new ArrayList<>();
        for (ServiceReference<SmtpFilter> ref : refs) {
            Bundle bundle = ref.getBundle();
            if (bundle == null) {
                continue; // unregistered while we looked
            }
            Map<String, Object> props = new HashMap<>();
            for (String key : ref.getPropertyKeys()) {
                props.put(key, ref.getProperty(key));
            }
            filters.add(FilterInfo.of(props, className(ref, props), bundle.getSymbolicName(), bundle.getBundleId(),
                    bundle.getState()));
        }
        if (filters.isEmpty()) {
            System.out.println(NONE);
            return null;
        }
        table(filters).print(System.out, !noFormat);
        return null;
    }

    /** The implementation class, needed only for a filter that has neither a filter name nor a component name. */
    private String className(ServiceReference<SmtpFilter> ref, Map<String, Object> props) {
        if (props.get(SmtpFilter.NAME_PROPERTY) != null || props.get("component.name") != null) {
            return null;
        }
        SmtpFilter filter = bundleContext.getService(ref);
        try {
            return filter == null ? "?" : filter.getClass().getName();
        } finally {
            if (filter != null) {
                bundleContext.ungetService(ref);
            }
        }
    }

    /** Sorts the filters in chain order and builds the table. */
    static ShellTable table(Collection<FilterInfo> filters) {
        List<FilterInfo> sorted = new ArrayList<>(filters);
        sorted.sort(FilterInfo.CHAIN_ORDER);
        ShellTable table = new ShellTable();
        table.column("Name");
        table.column("Ranking").alignRight();
        table.column("Bundle");
        table.column("State");
        table.column("Timeout (ms)").alignRight();
        table.column("On failure");
        for (FilterInfo f : sorted) {
            table.addRow().addContent(f.name(), f.ranking(), f.bundle(), f.state(), f.timeoutMs(), f.onFailure());
        }
        return table;
    }

    static String stateName(int state) {
        return switch (state) {
            case Bundle.INSTALLED -> "Installed";
            case Bundle.RESOLVED -> "Resolved";
            case Bundle.STARTING -> "Starting";
            case Bundle.STOPPING -> "Stopping";
            case Bundle.ACTIVE -> "Active";
            case Bundle.UNINSTALLED -> "Uninstalled";
            default -> "Unknown (" + state + ")";
        };
    }

    private static long longValue(Object o, long dflt) {
        if (o instanceof Number n) {
            return n.longValue();
        }
        if (o instanceof String s) {
            try {
                return Long.parseLong(s.trim());
            } catch (NumberFormatException e) {
                return dflt; // as the listener does
            }
        }
        return dflt;
    }
}
