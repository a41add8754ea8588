package org.postern.examples.filter.sample;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.regex.Pattern;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.filter.MessageContext;
import org.postern.api.filter.SmtpFilter;
import org.postern.api.filter.TransactionContext;
import org.postern.api.filter.Verdict;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A minimal Postern filter, to copy when writing your own.
 *
 * <ul>
 * <li>At MAIL FROM it rejects senders matching a regular expression (550 5.7.1).</li>
 * <li>At end of data it adds one header field to every message it lets through.</li>
 * </ul>
 *
 * It is a Declarative Services component registered as an {@link SmtpFilter} service: the SMTP listener
 * picks it up as soon as the bundle starts and drops it when the bundle stops, without a restart.
 * Service properties tell the listener its name and its place in the chain (higher ranking runs first).
 */
@Component(configurationPid = SampleFilter.PID,
        property = {"postern.filter.name=sample", "service.ranking:Integer=100"})
@Designate(ocd = SampleFilter.Config.class)
public class SampleFilter implements SmtpFilter {

    static final String PID = "org.postern.filter.sample";

    /**
     * The configuration: {@code config:edit org.postern.filter.sample} in the Karaf console, or
     * etc/org.postern.filter.sample.cfg. A method name maps to a property name, '_' becoming '.':
     * {@code reject_senders()} is the property {@code reject.senders}.
     */
    @ObjectClassDefinition(name = "Postern sample filter",
            description = "Rejects some senders and marks the messages it lets through with a header")
    public @interface Config {

        @AttributeDefinition(name = "Rejected senders",
                description = "Regular expression matched (case-insensitively) against the whole sender address; empty rejects nobody")
        String reject_senders() default ".*@blocked\\.example";

        @AttributeDefinition(name = "Header name")
        String header_name() default "X-Postern-Sample";

        @AttributeDefinition(name = "Header value")
        String header_value() default "passed";
    }

    /** What the configuration means, built once per change; calls read it through one volatile field. */
    private record Settings(Pattern rejectSenders, Header header) {
    }

    private static final Logger LOG = LoggerFactory.getLogger(SampleFilter.class);

    private volatile Settings settings;

    /**
     * Called when the component starts and, thanks to {@link Modified}, again on every configuration change,
     * so a change applies to the next message without restarting anything. A bad value throws: at start the
     * component then stays down (the error is in the log), on a change the previous settings stay in force.
     */
    @Activate
    @Modified
    void configure(Config config) {
        String regex = config.reject_senders();
        Pattern pattern = regex == null || regex.isBlank() ? null
                : Pattern.compile(regex.trim(), Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE);
        settings = new Settings(pattern, new Header(config.header_name(), config.header_value()));
        LOG.info("sample filter: rejecting senders matching {}, adding header {}: {}",
                pattern == null ? "(nothing)" : pattern.pattern(), config.header_name(), config.header_value());
    }

    /**
     * MAIL FROM. The check is quick and in memory, so it answers at once with a completed stage. Anything slow
     * (DNS, a database) must run on an executor and complete the stage later: this method is called on a
     * network thread that serves many connections.
     */
    @Override
    public CompletionStage<Verdict> mailFrom(TransactionContext transaction, MailAddress sender) {
        Pattern pattern = settings.rejectSenders();
        if (pattern != null && pattern.matcher(sender.toString()).matches()) {
            LOG.info("{}: rejecting sender <{}>", transaction.session().id(), sender);
            return CompletableFuture.completedFuture(
                    Verdict.reject("5.7.1", "Sender <" + sender + "> is blocked by the sample filter"));
        }
        return SmtpFilter.proceed();
    }

    /** End of data: the message is spooled and not yet committed; a header added here is stored with it. */
    @Override
    public CompletionStage<Verdict> message(MessageContext message) {
        message.addHeader(settings.header());
        return SmtpFilter.proceed();
    }
}
