package org.postern.smtp.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import org.postern.api.filter.MessageContext;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.MessageContent;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.QueueStore;

/**
 * One mail transaction, from MAIL to the end of data or RSET. Mutated only on the session's event loop;
 * filters read it through {@link MessageContext}.
 */
final class Transaction implements MessageContext {

    private final SessionContext session;
    private final FilterChain chain;
    private final MailAddress sender;
    private final long declaredSize;
    private final BodyType body;
    private final boolean smtpUtf8;
    private final String envId;
    private final Ret ret;
    private final List<Recipient> recipients = new ArrayList<>();
    private final Map<String, Object> notes = new ConcurrentHashMap<>();
    private final List<Header> addedHeaders = new CopyOnWriteArrayList<>();

    private QueueStore.PendingMessage pending;
    private volatile List<Header> headers;

    Transaction(SessionContext session, FilterChain chain, MailAddress sender, long declaredSize, BodyType body,
                boolean smtpUtf8, String envId, Ret ret) {
        this.session = session;
        this.chain = chain;
        this.sender = sender;
        this.declaredSize = declaredSize;
        this.body = body;
        this.smtpUtf8 = smtpUtf8;
        this.envId = envId;
        this.ret = ret;
    }

    FilterChain chain() {
        return chain;
    }

    void addRecipient(Recipient recipient) {
        recipients.add(recipient);
    }

    void pending(QueueStore.PendingMessage message) {
        this.pending = message;
    }

    QueueStore.PendingMessage pending() {
        return pending;
    }

    /** Throws away what was spooled, if anything; safe to call more than once. */
    void abort() {
        if (pending != null) {
            pending.abort();
            pending = null;
        }
    }

    @Override
    public SessionContext session() {
        return session;
    }

    @Override
    public MailAddress sender() {
        return sender;
    }

    @Override
    public List<Recipient> recipients() {
        return Collections.unmodifiableList(recipients);
    }

    @Override
    public long declaredSize() {
        return declaredSize;
    }

    @Override
    public BodyType body() {
        return body;
    }

    @Override
    public boolean smtpUtf8() {
        return smtpUtf8;
    }

    @Override
    public String envId() {
        return envId;
    }

    @Override
    public Ret ret() {
        return ret;
    }

    @Override
    public Map<String, Object> notes() {
        return notes;
    }

    @Override
    public MessageContent content() {
        if (pending == null) {
            throw new IllegalStateException("no message data in this transaction yet");
        }
        return pending.content();
    }

    @Override
    public List<Header> headers() {
        List<Header> h = headers;
        if (h == null) {
            try (InputStream in = content().openStream()) {
                h = parseHeaders(in);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            headers = h;
        }
        return h;
    }

    @Override
    public void addHeader(Header header) {
        addedHeaders.add(header);
    }

    @Override
    public List<Header> addedHeaders() {
        return List.copyOf(addedHeaders);
    }

    /** Reads header fields up to the first empty line, unfolding continuation lines (RFC 5322 2.2.3). */
    static List<Header> parseHeaders(InputStream in) throws IOException {
        List<Header> result = new ArrayList<>();
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        String current = null;
        int c;
        while (true) {
            c = in.read();
            if (c != '\n' && c != -1) {
                line.write(c);
                continue;
            }
            String text = line.toString(StandardCharsets.UTF_8);
            line.reset();
            if (text.endsWith("\r")) {
                text = text.substring(0, text.length() - 1);
            }
            boolean continuation = !text.isEmpty() && (text.charAt(0) == ' ' || text.charAt(0) == '\t');
            if (continuation && current != null) {
                current = current + " " + text.strip();
            } else {
                addField(result, current);
                current = text.isEmpty() || continuation ? null : text;
                if (text.isEmpty()) {
                    break;
                }
            }
            if (c == -1) {
                addField(result, current);
                break;
            }
        }
        return List.copyOf(result);
    }

    private static void addField(List<Header> result, String field) {
        if (field == null) {
            return;
        }
        int colon = field.indexOf(':');
        if (colon <= 0) {
            return; // not a header field: the body began without an empty line
        }
        try {
            result.add(new Header(field.substring(0, colon).strip(), field.substring(colon + 1).strip()));
        } catch (IllegalArgumentException e) {
            // a malformed field name: not ours to judge here, filters see the fields that parse
        }
    }
}
