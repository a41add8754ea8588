package org.postern.shell.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.Test;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceReference;
import org.postern.api.filter.SmtpFilter;
import org.postern.shell.internal.FilterListCommand.FilterInfo;

public class FilterListCommandTest {

    private static Map<String, Object> props(Object... pairs) {
        Map<String, Object> map = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            map.put((String) pairs[i], pairs[i + 1]);
        }
        return map;
    }

    private static FilterInfo info(Object... pairs) {
        return FilterInfo.of(props(pairs), "org.example.SomeFilter", "org.example.bundle", 42, Bundle.ACTIVE);
    }

    @Test
    public void nameFallsBackToComponentNameThenClass() {
        assertEquals("spf", info("postern.filter.name", "spf", "component.name", "org.x.Spf").name());
        assertEquals("org.x.Spf", info("component.name", "org.x.Spf").name());
        assertEquals("org.example.SomeFilter", info().name());
    }

    @Test
    public void propertiesAreReadAsTheListenerReadsThem() {
        FilterInfo defaults = info("service.id", 7L);
        assertEquals(0, defaults.ranking());
        assertEquals(SmtpFilter.DEFAULT_TIMEOUT_MS, defaults.timeoutMs());
        assertEquals("tempfail", defaults.onFailure());
        assertEquals("org.example.bundle (42)", defaults.bundle());
        assertEquals("Active", defaults.state());

        FilterInfo set = info("service.ranking", 100, "postern.filter.timeout", 5000L,
                "postern.filter.on.failure", "CONTINUE");
        assertEquals(100, set.ranking());
        assertEquals(5000, set.timeoutMs());
        assertEquals("continue", set.onFailure());

        // A timeout from a .cfg file arrives as text; a ranking that is not an Integer is ignored by the framework.
        FilterInfo text = info("service.ranking", "500", "postern.filter.timeout", " 7000 ",
                "postern.filter.on.failure", "fail-open-please");
        assertEquals(0, text.ranking());
        assertEquals(7000, text.timeoutMs());
        assertEquals("tempfail", text.onFailure());
        assertEquals(SmtpFilter.DEFAULT_TIMEOUT_MS, info("postern.filter.timeout", "soon").timeoutMs());
    }

    @Test
    public void bundleStatesHaveNames() {
        assertEquals("Resolved", FilterListCommand.stateName(Bundle.RESOLVED));
        assertEquals("Starting", FilterListCommand.stateName(Bundle.STARTING));
        assertEquals("Stopping", FilterListCommand.stateName(Bundle.STOPPING));
        assertEquals("Installed", FilterListCommand.stateName(Bundle.INSTALLED));
    }

    @Test
    public void tableIsInChainOrderHighestRankingFirstThenOldestService() throws Exception {
        List<FilterInfo> filters = List.of(
                info("postern.filter.name", "low", "service.ranking", -5, "service.id", 1L),
                info("postern.filter.name", "default", "service.id", 2L),
                info("postern.filter.name", "high-newer", "service.ranking", 100, "service.id", 9L),
                info("postern.filter.name", "top", "service.ranking", 1000, "service.id", 12L),
                info("postern.filter.name", "high-older", "service.ranking", 100, "service.id", 3L));
        String out = Fakes.stdout(() -> {
            FilterListCommand.table(filters).print(System.out, false);
            return null;
        });
        String[] lines = out.split("\n");
        assertEquals(5, lines.length);
        String[] order = {"top", "high-older", "high-newer", "default", "low"};
        for (int i = 0; i < order.length; i++) {
            assertEquals(order[i], lines[i].split("\t")[0].trim());
        }
        String[] top = lines[0].split("\t");
        assertEquals("1000", top[1].trim());
        assertEquals("org.example.bundle (42)", top[2].trim());
        assertEquals("Active", top[3].trim());
        assertEquals("30000", top[4].trim());
        assertEquals("tempfail", top[5].trim());
    }

    @Test
    public void formattedTableHasAHeader() throws Exception {
        String out = Fakes.stdout(() -> {
            FilterListCommand.table(List.of(info("postern.filter.name", "sample", "service.ranking", 100)))
                    .print(System.out, true);
            return null;
        });
        String header = out.split("\n")[0];
        for (String column : new String[] {"Name", "Ranking", "Bundle", "State", "Timeout (ms)", "On failure"}) {
            assertTrue(header, header.contains(column));
        }
        assertTrue(out, out.split("\n")[2].startsWith("sample"));
    }

    private static ServiceReference<?> reference(Map<String, Object> props, Bundle bundle) {
        return Fakes.proxy(ServiceReference.class, (method, args) -> switch (method) {
            case "getBundle" -> bundle;
            case "getPropertyKeys" -> props.keySet().toArray(new String[0]);
            case "getProperty" -> props.get((String) args[0]);
            default -> throw new UnsupportedOperationException(method);
        });
    }

    private static Bundle bundle(String name, long id, int state) {
        return Fakes.answering(Bundle.class, Map.of("getSymbolicName", name, "getBundleId", id, "getState", state));
    }

    private static String run(Collection<ServiceReference<?>> refs, Object service, boolean noFormat) throws Exception {
        List<String> calls = new ArrayList<>();
        FilterListCommand command = new FilterListCommand();
        command.bundleContext = Fakes.proxy(BundleContext.class, (method, args) -> {
            calls.add(method);
            return switch (method) {
                case "getServiceReferences" -> {
                    assertEquals(SmtpFilter.class, args[0]);
                    yield refs;
                }
                case "getService" -> service;
                case "ungetService" -> true;
                default -> throw new UnsupportedOperationException(method);
            };
        });
        command.noFormat = noFormat;
        String out = Fakes.stdout(command::execute);
        // The service object is fetched only to name a filter that has no name property, and then released.
        assertEquals(calls.stream().filter("getService"::equals).count(),
                calls.stream().filter("ungetService"::equals).count());
        return out;
    }

    @Test
    public void executeListsTheRegisteredFilters() throws Exception {
        Bundle sample = bundle("org.postern.filter-sample", 57, Bundle.ACTIVE);
        Bundle spf = bundle("org.postern.filter-spf", 60, Bundle.STOPPING);
        SmtpFilter anonymous = new SmtpFilter() { };
        List<ServiceReference<?>> refs = List.of(
                reference(props("postern.filter.name", "sample", "service.ranking", 100, "service.id", 80L), sample),
                reference(props("component.name", "org.postern.filter.spf", "service.ranking", 200,
                        "service.id", 81L, "postern.filter.timeout", 2000L, "postern.filter.on.failure", "continue"), spf),
                reference(props("service.id", 82L), sample));
        String out = run(refs, anonymous, true);
        String[] lines = out.split("\n");
        assertEquals(3, lines.length);
        assertEquals("org.postern.filter.spf\t200\torg.postern.filter-spf (60)\tStopping\t2000\tcontinue",
                lines[0].replaceAll(" *\t *", "\t").trim());
        assertEquals("sample\t100\torg.postern.filter-sample (57)\tActive\t30000\ttempfail",
                lines[1].replaceAll(" *\t *", "\t").trim());
        assertEquals(anonymous.getClass().getName(), lines[2].split("\t")[0].trim());
    }

    @Test
    public void executeSaysSoWhenThereAreNoFilters() throws Exception {
        assertEquals(FilterListCommand.NONE + "\n", run(List.of(), null, false));
    }
}
