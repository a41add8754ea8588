package org.postern.shell.internal;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

import org.apache.karaf.shell.api.action.Action;
import org.apache.karaf.shell.api.action.Argument;
import org.apache.karaf.shell.api.action.Command;
import org.apache.karaf.shell.api.action.Completion;
import org.apache.karaf.shell.api.action.Option;
import org.apache.karaf.shell.api.action.lifecycle.Reference;
import org.apache.karaf.shell.api.action.lifecycle.Service;
import org.apache.karaf.shell.support.table.ShellTable;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.QueueStore;
import org.postern.api.queue.RecipientStatus;

/** postcat -e -h: one entry's envelope, each recipient's progress, and the message headers. */
@Command(scope = "mta", name = "queue-show",
        description = "Shows one queued message: envelope, recipients with their state, headers")
@Service
public class QueueShowCommand implements Action {

    /** A header section longer than this is cut: enough for any sane message, bounded for a broken one. */
    static final int MAX_HEADER_BYTES = 64 * 1024;

    @Reference(optional = true)
    QueueStore queueStore;

    @Argument(index = 0, name = "id", required = true, description = "The queue id")
    @Completion(QueueIdCompleter.class)
    String id;

    @Option(name = "--no-format", description = "The recipient table as tab-separated rows without header")
    boolean noFormat;

    @Override
    public Object execute() {
        QueueStore store = queueStore;
        if (store == null) {
            System.out.println(QueueListCommand.NO_STORE);
            return null;
        }
        Optional<QueueEntry> found = store.get(id);
        if (found.isEmpty()) {
            System.out.println("No queue entry " + id + ".");
            return null;
        }
        String headers;
        try {
            headers = headerSection(store.content(id));
        } catch (IOException e) {
            headers = null; // shown as unreadable; the rest of the entry is still worth seeing
        }
        print(found.get(), headers, ZoneId.systemDefault(), !noFormat, System.out);
        return null;
    }

    static void print(QueueEntry e, String messageHeaders, ZoneId zone, boolean format, PrintStream out) {
        Envelope env = e.envelope();
        out.println("Queue id:      " + e.id());
        out.println("State:         " + e.state() + (e.reason() != null ? " (" + e.reason() + ")" : ""));
        out.println("Arrival:       " + QueueListCommand.time(env.receivedAt(), zone));
        out.println("Size:          " + e.size());
        out.println("Attempts:      " + e.attempts());
        out.println("Next attempt:  " + QueueListCommand.time(e.nextAttempt(), zone));
        if (e.lastError() != null) {
            out.println("Last error:    " + QueueListCommand.oneLine(e.lastError()));
        }
        out.println("Sender:        <" + env.sender() + ">");
        out.println("Client:        " + client(env.client()));
        String parameters = parameters(env);
        if (!parameters.isEmpty()) {
            out.println("Parameters:    " + parameters);
        }
        out.println();
        recipientTable(e.recipients()).print(out, format);
        out.println();
        if (!e.addedHeaders().isEmpty()) {
            out.println("Added headers:");
            for (Header h : e.addedHeaders()) {
                out.println("  " + h.name() + ": " + h.value());
            }
            out.println();
        }
        out.println("Message headers:");
        if (messageHeaders == null) {
            out.println("  (message content unreadable)");
        } else {
            for (String line : messageHeaders.split("\r?\n")) {
                out.println("  " + line);
            }
        }
    }

    static ShellTable recipientTable(List<RecipientStatus> recipients) {
        ShellTable table = new ShellTable();
        table.column("Recipient");
        table.column("State");
        table.column("Status");
        table.column("Remote MTA");
        table.column("Diagnostic");
        table.column("DSN");
        for (RecipientStatus r : recipients) {
            table.addRow().addContent(r.recipient().address().toString(), r.state().name(), dash(r.status()),
                    dash(r.remoteMta()), r.diagnostic() == null ? "-" : QueueListCommand.oneLine(r.diagnostic()),
                    dsn(r.recipient()));
        }
        return table;
    }

    private static String dsn(Recipient r) {
        List<String> parts = new ArrayList<>();
        if (!r.notifyOn().isEmpty()) {
            parts.add("NOTIFY=" + r.notifyOn().stream().map(Enum::name).sorted().collect(Collectors.joining(",")));
        }
        if (r.orcpt() != null) {
            parts.add("ORCPT=" + r.orcpt());
        }
        return parts.isEmpty() ? "-" : String.join(" ", parts);
    }

    private static String client(ClientInfo c) {
        StringBuilder text = new StringBuilder();
        text.append(c.hostName() != null ? c.hostName() : "unknown").append(" [").append(c.address()).append(']');
        if (c.heloName() != null) {
            text.append(" helo=").append(c.heloName());
        }
        if (c.protocol() != null) {
            text.append(" with ").append(c.protocol());
        }
        if (c.tlsProtocol() != null) {
            text.append(" (").append(c.tlsProtocol()).append(c.tlsCipher() != null ? " " + c.tlsCipher() : "").append(')');
        }
        if (c.authenticatedAs() != null) {
            text.append(" auth=").append(c.authenticatedAs());
        }
        if (c.listener() != null) {
            text.append(" listener=").append(c.listener());
        }
        return text.toString();
    }

    private static String parameters(Envelope env) {
        List<String> parts = new ArrayList<>();
        if (env.body() != BodyType.SEVEN_BIT) {
            parts.add("BODY=" + switch (env.body()) {
                case EIGHT_BIT_MIME -> "8BITMIME";
                case BINARY_MIME -> "BINARYMIME";
                default -> "7BIT";
            });
        }
        if (env.smtpUtf8()) {
            parts.add("SMTPUTF8");
        }
        if (env.ret() != null) {
            parts.add("RET=" + env.ret());
        }
        if (env.envId() != null) {
            parts.add("ENVID=" + QueueListCommand.oneLine(env.envId()));
        }
        return String.join(" ", parts);
    }

    private static String dash(String text) {
        return text == null ? "-" : text;
    }

    /** The message's header section: everything before the first empty line, at most {@link #MAX_HEADER_BYTES}. */
    static String headerSection(MessageContent content) throws IOException {
        ByteArrayOutputStream header = new ByteArrayOutputStream();
        boolean cut = true;
        try (InputStream in = new BufferedInputStream(content.openStream())) {
            int previous = -1;
            int beforePrevious = -1;
            for (int b; (b = in.read()) >= 0; ) {
                // An empty line ends the header: LF LF or CR LF CR LF.
                if (b == '\n' && (previous == '\n' || (previous == '\r' && beforePrevious == '\n'))) {
                    cut = false;
                    break;
                }
                if (header.size() >= MAX_HEADER_BYTES) {
                    break;
                }
                header.write(b);
                beforePrevious = previous;
                previous = b;
            }
            if (header.size() < MAX_HEADER_BYTES && in.read() < 0) {
                cut = false; // the message ended within its header: nothing was cut
            }
        }
        String text = header.toString(StandardCharsets.UTF_8).stripTrailing();
        return cut ? text + "\n(header section cut at " + MAX_HEADER_BYTES + " octets)" : text;
    }
}
