package org.postern.examples.filter.sample;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.InputStream;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.PatternSyntaxException;

import org.junit.Test;
import org.postern.api.filter.MessageContext;
import org.postern.api.filter.SessionContext;
import org.postern.api.filter.TransactionContext;
import org.postern.api.filter.Verdict;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;

/** The filter without OSGi: construct it, hand it a configuration, call its stages. */
public class SampleFilterTest {

    /** A configuration as ConfigAdmin would give it: the values given here, the defaults for the rest. */
    private static SampleFilter.Config config(String... pairs) {
        Map<String, Object> values = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            values.put(pairs[i], pairs[i + 1]);
        }
        return (SampleFilter.Config) Proxy.newProxyInstance(SampleFilter.Config.class.getClassLoader(),
                new Class<?>[] {SampleFilter.Config.class},
                (proxy, method, args) -> values.getOrDefault(method.getName(), method.getDefaultValue()));
    }

    private static SampleFilter filter(SampleFilter.Config config) {
        SampleFilter filter = new SampleFilter();
        filter.configure(config);
        return filter;
    }

    /** Only the methods the filter calls answer; anything else would fail the test. */
    private static <T> T fake(Class<T> type, Map<String, Object> answers) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
            if (!answers.containsKey(method.getName())) {
                throw new UnsupportedOperationException(method.getName());
            }
            return answers.get(method.getName());
        }));
    }

    private static final SessionContext SESSION = fake(SessionContext.class, Map.of("id", "s1"));
    private static final TransactionContext TRANSACTION = fake(TransactionContext.class, Map.of("session", SESSION));

    private static Verdict mailFrom(SampleFilter filter, String sender) {
        return filter.mailFrom(TRANSACTION, MailAddress.parse(sender)).toCompletableFuture().getNow(null);
    }

    private static void assertRejected(Verdict verdict, String sender) {
        assertNotNull("answered at once", verdict);
        assertEquals(Verdict.Action.REJECT, verdict.action());
        assertEquals(550, verdict.code());
        assertEquals("5.7.1", verdict.enhancedStatus());
        assertEquals("Sender <" + sender + "> is blocked by the sample filter", verdict.text());
    }

    @Test
    public void defaultRejectsSendersAtBlockedExampleInAnyCase() {
        SampleFilter filter = filter(config());
        assertRejected(mailFrom(filter, "spammer@blocked.example"), "spammer@blocked.example");
        assertRejected(mailFrom(filter, "Spammer@BLOCKED.Example"), "Spammer@BLOCKED.Example");
    }

    @Test
    public void otherSendersProceed() {
        SampleFilter filter = filter(config());
        // The expression must match the whole address.
        assertSame(Verdict.proceed(), mailFrom(filter, "user@blocked.example.org"));
        assertSame(Verdict.proceed(), mailFrom(filter, "user@notblocked.example"));
        assertSame(Verdict.proceed(), mailFrom(filter, "user@example.org"));
        assertSame(Verdict.proceed(), mailFrom(filter, "")); // the null sender of bounces
    }

    @Test
    public void messageGetsTheHeaderAndProceeds() {
        List<Header> added = new ArrayList<>();
        Verdict verdict = filter(config()).message(recording(added)).toCompletableFuture().getNow(null);
        assertSame(Verdict.proceed(), verdict);
        assertEquals(List.of(new Header("X-Postern-Sample", "passed")), added);
    }

    @Test
    public void modifiedConfigurationAppliesToTheNextCall() {
        SampleFilter filter = filter(config());
        filter.configure(config("reject_senders", "boss@.*", "header_name", "X-Checked", "header_value", "yes"));
        assertRejected(mailFrom(filter, "BOSS@example.org"), "BOSS@example.org");
        assertSame(Verdict.proceed(), mailFrom(filter, "spammer@blocked.example"));

        List<Header> added = new ArrayList<>();
        filter.message(recording(added));
        assertEquals(List.of(new Header("X-Checked", "yes")), added);

        // An empty expression rejects nobody.
        filter.configure(config("reject_senders", ""));
        assertSame(Verdict.proceed(), mailFrom(filter, "boss@example.org"));
        assertSame(Verdict.proceed(), mailFrom(filter, "spammer@blocked.example"));
    }

    /** A message that records the headers added to it; reading its body would fail the test. */
    private static MessageContext recording(List<Header> added) {
        return (MessageContext) Proxy.newProxyInstance(MessageContext.class.getClassLoader(),
                new Class<?>[] {MessageContext.class}, (proxy, method, args) -> {
                    if (method.getName().equals("addHeader")) {
                        added.add((Header) args[0]);
                        return null;
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
    }

    @Test
    public void aBadChangeKeepsThePreviousSettings() {
        SampleFilter filter = filter(config());
        try {
            filter.configure(config("reject_senders", "(unclosed"));
            fail("a bad expression must be refused");
        } catch (PatternSyntaxException expected) {
            // DS logs it; the filter keeps working with what it had
        }
        try {
            filter.configure(config("header_name", "Not A Header"));
            fail("a bad header name must be refused");
        } catch (IllegalArgumentException expected) {
            // as above
        }
        assertRejected(mailFrom(filter, "x@blocked.example"), "x@blocked.example");
    }

    @Test
    public void componentDescriptionNamesTheFilterRanksItAndUsesThePid() throws Exception {
        // bnd writes this from the annotations before the tests run; it is what the framework will read.
        String xml = resource("OSGI-INF/org.postern.examples.filter.sample.SampleFilter.xml");
        assertTrue(xml, xml.contains("configuration-pid=\"org.postern.filter.sample\""));
        assertTrue(xml, xml.contains("<property name=\"postern.filter.name\" type=\"String\" value=\"sample\"/>"));
        assertTrue(xml, xml.contains("<property name=\"service.ranking\" type=\"Integer\" value=\"100\"/>"));
        assertTrue(xml, xml.contains("<provide interface=\"org.postern.api.filter.SmtpFilter\"/>"));
        assertTrue(xml, xml.contains("modified=\"configure\""));
        String metatype = resource("OSGI-INF/metatype/org.postern.examples.filter.sample.SampleFilter$Config.xml");
        assertTrue(metatype, metatype.contains("id=\"reject.senders\""));
        assertTrue(metatype, metatype.contains("<Designate pid=\"org.postern.filter.sample\">"));
    }

    private static String resource(String name) throws Exception {
        try (InputStream in = SampleFilter.class.getClassLoader().getResourceAsStream(name)) {
            assertNotNull(name, in);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
