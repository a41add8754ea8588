package org.postern.queue.file.internal;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.zip.CRC32;

import org.postern.api.mail.BodyType;
import org.postern.api.mail.ClientInfo;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Notify;
import org.postern.api.mail.Recipient;
import org.postern.api.mail.Ret;
import org.postern.api.queue.QueueEntry;
import org.postern.api.queue.RecipientStatus;

/**
 * The .env file: a queue entry's envelope and state as UTF-8 {@code key=value} lines, readable with
 * {@code cat}. The first line names the format and its version; the last is {@code crc32=} over every byte
 * before it, so a torn write or a flipped bit is caught instead of loading a wrong envelope. A null field
 * is an absent key; values escape backslash, CR and LF. Recipients and headers are numbered keys
 * ({@code rcpt.0.address}), kept in order.
 */
final class EntryCodec {

    static final String MAGIC = "postern-queue-entry 1";
    private static final String CRC_KEY = "crc32=";

    private EntryCodec() {
    }

    /** The file was not written by this codec, was cut short, or was changed afterwards. */
    static final class CorruptEntryException extends Exception {
        private static final long serialVersionUID = 1L;

        CorruptEntryException(String message, Throwable cause) {
            super(message, cause);
        }

        CorruptEntryException(String message) {
            super(message);
        }
    }

    static byte[] encode(QueueEntry entry) {
        StringBuilder out = new StringBuilder(1024);
        out.append(MAGIC).append('\n');
        put(out, "id", entry.id());
        put(out, "size", Long.toString(entry.size()));
        put(out, "state", entry.state().name());
        put(out, "attempts", Integer.toString(entry.attempts()));
        put(out, "next.attempt", text(entry.nextAttempt()));
        put(out, "last.error", entry.lastError());
        put(out, "reason", entry.reason());

        Envelope envelope = entry.envelope();
        put(out, "sender", envelope.sender().toString());
        put(out, "env.id", envelope.envId());
        put(out, "ret", envelope.ret() == null ? null : envelope.ret().name());
        put(out, "body", envelope.body().name());
        put(out, "smtputf8", Boolean.toString(envelope.smtpUtf8()));
        put(out, "received.at", envelope.receivedAt().toString());

        ClientInfo client = envelope.client();
        put(out, "client.address", client.address());
        put(out, "client.host", client.hostName());
        put(out, "client.helo", client.heloName());
        put(out, "client.protocol", client.protocol());
        put(out, "client.tls.protocol", client.tlsProtocol());
        put(out, "client.tls.cipher", client.tlsCipher());
        put(out, "client.auth", client.authenticatedAs());
        put(out, "client.listener", client.listener());

        List<RecipientStatus> recipients = entry.recipients();
        put(out, "rcpt.count", Integer.toString(recipients.size()));
        for (int i = 0; i < recipients.size(); i++) {
            RecipientStatus status = recipients.get(i);
            String prefix = "rcpt." + i + ".";
            put(out, prefix + "address", status.recipient().address().toString());
            put(out, prefix + "notify", status.recipient().notifyOn().stream().sorted()
                    .map(Notify::name).collect(Collectors.joining(",")));
            put(out, prefix + "orcpt", status.recipient().orcpt());
            put(out, prefix + "state", status.state().name());
            put(out, prefix + "status", status.status());
            put(out, prefix + "diagnostic", status.diagnostic());
            put(out, prefix + "remote.mta", status.remoteMta());
        }

        List<Header> headers = entry.addedHeaders();
        put(out, "header.count", Integer.toString(headers.size()));
        for (int i = 0; i < headers.size(); i++) {
            put(out, "header." + i + ".name", headers.get(i).name());
            put(out, "header." + i + ".value", headers.get(i).value());
        }

        byte[] body = out.toString().getBytes(StandardCharsets.UTF_8);
        byte[] trailer = (CRC_KEY + crcHex(body, body.length) + "\n").getBytes(StandardCharsets.US_ASCII);
        byte[] file = new byte[body.length + trailer.length];
        System.arraycopy(body, 0, file, 0, body.length);
        System.arraycopy(trailer, 0, file, body.length, trailer.length);
        return file;
    }

    static QueueEntry decode(byte[] file) throws CorruptEntryException {
        if (file.length == 0) {
            throw new CorruptEntryException("empty file");
        }
        int crcStart = lastLineStart(file);
        String trailer = new String(file, crcStart, file.length - crcStart, StandardCharsets.US_ASCII);
        if (!trailer.startsWith(CRC_KEY) || !trailer.endsWith("\n")) {
            throw new CorruptEntryException("no checksum line (truncated?)");
        }
        String expected = trailer.substring(CRC_KEY.length(), trailer.length() - 1);
        String actual = crcHex(file, crcStart);
        if (!expected.equals(actual)) {
            throw new CorruptEntryException("checksum mismatch: file says " + expected + ", content is " + actual);
        }
        String[] lines = new String(file, 0, crcStart, StandardCharsets.UTF_8).split("\n");
        if (lines.length == 0 || !lines[0].equals(MAGIC)) {
            throw new CorruptEntryException("unknown format: " + (lines.length == 0 ? "" : lines[0]));
        }
        try {
            Map<String, String> values = new HashMap<>();
            for (int i = 1; i < lines.length; i++) {
                int eq = lines[i].indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("bad line " + (i + 1));
                }
                values.put(lines[i].substring(0, eq), unescape(lines[i].substring(eq + 1)));
            }
            return toEntry(new Fields(values));
        } catch (RuntimeException e) {
            // A checksummed file that does not parse is a bug or a foreign file; either way, not loadable.
            throw new CorruptEntryException("bad content: " + e.getMessage(), e);
        }
    }

    private static QueueEntry toEntry(Fields f) {
        ClientInfo client = new ClientInfo(f.required("client.address"), f.get("client.host"),
                f.get("client.helo"), f.get("client.protocol"), f.get("client.tls.protocol"),
                f.get("client.tls.cipher"), f.get("client.auth"), f.get("client.listener"));

        int count = Integer.parseInt(f.required("rcpt.count"));
        List<RecipientStatus> recipients = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String prefix = "rcpt." + i + ".";
            Set<Notify> notify = EnumSet.noneOf(Notify.class);
            for (String name : f.required(prefix + "notify").split(",")) {
                if (!name.isEmpty()) {
                    notify.add(Notify.valueOf(name));
                }
            }
            Recipient recipient = new Recipient(MailAddress.parse(f.required(prefix + "address")), notify,
                    f.get(prefix + "orcpt"));
            recipients.add(new RecipientStatus(recipient, RecipientStatus.State.valueOf(f.required(prefix + "state")),
                    f.get(prefix + "status"), f.get(prefix + "diagnostic"), f.get(prefix + "remote.mta")));
        }

        int headerCount = Integer.parseInt(f.required("header.count"));
        List<Header> headers = new ArrayList<>(headerCount);
        for (int i = 0; i < headerCount; i++) {
            headers.add(new Header(f.required("header." + i + ".name"), f.required("header." + i + ".value")));
        }

        String ret = f.get("ret");
        Envelope envelope = new Envelope(MailAddress.parse(f.required("sender")),
                recipients.stream().map(RecipientStatus::recipient).toList(), f.get("env.id"),
                ret == null ? null : Ret.valueOf(ret), BodyType.valueOf(f.required("body")),
                Boolean.parseBoolean(f.required("smtputf8")), client, Instant.parse(f.required("received.at")));

        String next = f.get("next.attempt");
        return new QueueEntry(f.required("id"), envelope, Long.parseLong(f.required("size")), headers,
                QueueEntry.State.valueOf(f.required("state")), recipients, Integer.parseInt(f.required("attempts")),
                next == null ? null : Instant.parse(next), f.get("last.error"), f.get("reason"));
    }

    private record Fields(Map<String, String> values) {
        String get(String key) {
            return values.get(key);
        }

        String required(String key) {
            String value = values.get(key);
            if (value == null) {
                throw new IllegalArgumentException("missing " + key);
            }
            return value;
        }
    }

    private static void put(StringBuilder out, String key, String value) {
        if (value != null) {
            out.append(key).append('=').append(escape(value)).append('\n');
        }
    }

    private static String text(Instant instant) {
        return instant == null ? null : instant.toString();
    }

    private static String escape(String value) {
        if (value.indexOf('\\') < 0 && value.indexOf('\n') < 0 && value.indexOf('\r') < 0) {
            return value;
        }
        StringBuilder out = new StringBuilder(value.length() + 8);
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            switch (c) {
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                default -> out.append(c);
            }
        }
        return out.toString();
    }

    private static String unescape(String value) {
        if (value.indexOf('\\') < 0) {
            return value;
        }
        StringBuilder out = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c != '\\') {
                out.append(c);
                continue;
            }
            if (++i >= value.length()) {
                throw new IllegalArgumentException("dangling escape");
            }
            switch (value.charAt(i)) {
                case '\\' -> out.append('\\');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                default -> throw new IllegalArgumentException("bad escape \\" + value.charAt(i));
            }
        }
        return out.toString();
    }

    /** Where the last line starts, ignoring the file's final newline. */
    private static int lastLineStart(byte[] file) {
        int i = file.length - 2;
        while (i >= 0 && file[i] != '\n') {
            i--;
        }
        return i + 1;
    }

    private static String crcHex(byte[] bytes, int length) {
        CRC32 crc = new CRC32();
        crc.update(bytes, 0, length);
        return String.format(Locale.ROOT, "%08x", crc.getValue());
    }
}
