package org.postern.delivery.local.internal;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.mail.BodyType;
import org.postern.api.mail.Envelope;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;

/**
 * One LMTP conversation (RFC 2033) for one request, blocking: LHLO, MAIL, a RCPT per recipient, DATA, then
 * one reply per accepted recipient after the final dot. Every recipient ends with a result; trouble with
 * the connection defers the ones still open.
 */
final class LmtpSession {

    private final LmtpTransport.Server server;
    private final LocalMailboxes mailboxes;
    private final DeliveryRequest request;
    private final List<Recipient> recipients;
    private final DeliveryResult[] results;
    private String phase = "connecting";
    private InputStream in;
    private OutputStream out;

    LmtpSession(LmtpTransport.Server server, LocalMailboxes mailboxes, DeliveryRequest request) {
        this.server = server;
        this.mailboxes = mailboxes;
        this.request = request;
        this.recipients = request.recipients();
        this.results = new DeliveryResult[recipients.size()];
    }

    /** The forward path for a recipient, {@code user} replacing an alias's local part; domain in A-labels. */
    static String forwardPath(MailAddress address, String user) {
        String local = user != null ? user : address.localPart();
        return address.domain().isEmpty() ? local : local + "@" + address.asciiDomain();
    }

    List<DeliveryResult> run() {
        try (Socket socket = new Socket()) {
            try {
                socket.connect(new InetSocketAddress(server.address(), server.port()), server.timeoutMillis());
            } catch (IOException e) {
                return finish(Outcome.DEFERRED, "4.4.1", "connect to " + server.relay() + ": " + reason(e));
            }
            socket.setSoTimeout(server.timeoutMillis());
            in = new BufferedInputStream(socket.getInputStream());
            out = new BufferedOutputStream(socket.getOutputStream(), 65536);
            converse();
            return finish(Outcome.DEFERRED, "4.4.2", "conversation with " + server.relay() + " ended early");
        } catch (IOException e) {
            String what = e instanceof SocketTimeoutException ? "timeout" : "lost connection";
            return finish(Outcome.DEFERRED, "4.4.2", what + " with " + server.relay() + " while " + phase + ": "
                    + reason(e));
        }
    }

    private void converse() throws IOException {
        phase = "receiving the initial greeting";
        LmtpReply greeting = LmtpReply.read(in);
        if (greeting.code() != 220) {
            refuseAll(greeting, true);
            return;
        }
        LmtpReply lhlo = command("LHLO " + HostName.get(), "LHLO");
        if (!lhlo.positive()) {
            refuseAll(lhlo, true);
            return;
        }
        List<String> extensions = lhlo.extensions();

        Envelope envelope = request.entry().envelope();
        StringBuilder mail = new StringBuilder("MAIL FROM:<").append(envelope.sender()).append('>');
        // A binary body goes as 8BITMIME, the best DATA can say (as delivery-smtp does).
        if (envelope.body() != BodyType.SEVEN_BIT && extensions.contains("8BITMIME")) {
            mail.append(" BODY=8BITMIME");
        }
        if (envelope.smtpUtf8() && extensions.contains("SMTPUTF8")) {
            mail.append(" SMTPUTF8");
        }
        LmtpReply mailReply = command(mail.toString(), "MAIL FROM");
        if (!mailReply.positive()) {
            refuseAll(mailReply, false);
            return;
        }

        List<Integer> accepted = new ArrayList<>();
        for (int i = 0; i < recipients.size(); i++) {
            MailAddress address = recipients.get(i).address();
            LmtpReply reply = command("RCPT TO:<" + forwardPath(address, mailboxes.userFor(address)) + ">",
                    "RCPT TO");
            if (reply.positive()) {
                accepted.add(i);
            } else {
                results[i] = result(i, reply);
            }
        }
        if (accepted.isEmpty()) {
            quit();
            return;
        }

        LmtpReply data = command("DATA", "DATA");
        if (data.code() != 354) {
            for (int i : accepted) {
                results[i] = data.positive()
                        ? new DeliveryResult(recipients.get(i), Outcome.DEFERRED, "4.5.0",
                                "unexpected reply to DATA: " + data, server.host())
                        : result(i, data);
            }
            quit();
            return;
        }
        phase = "sending the message";
        writeMessage();
        // What LMTP is for: one reply per accepted recipient, in RCPT order.
        phase = "receiving the replies after the message";
        for (int i : accepted) {
            results[i] = result(i, LmtpReply.read(in));
        }
        quit();
    }

    private void writeMessage() throws IOException {
        DotStuffingOutputStream data = new DotStuffingOutputStream(out);
        StringBuilder headers = new StringBuilder();
        for (Header header : request.entry().addedHeaders()) {
            headers.append(header.toWireFormat());
        }
        data.write(headers.toString().getBytes(StandardCharsets.UTF_8));
        try (InputStream content = request.content().openStream()) {
            content.transferTo(data);
        }
        data.finish();
        out.write(".\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
    }

    private LmtpReply command(String line, String name) throws IOException {
        phase = "sending " + name;
        out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        phase = "receiving the reply to " + name;
        return LmtpReply.read(in);
    }

    /** Says goodbye when the conversation went well; a server that hangs up first is no matter. */
    private void quit() {
        try {
            command("QUIT", "QUIT");
        } catch (IOException e) {
            // every recipient has its answer already
        }
    }

    /**
     * Every recipient gets the reply that refused the whole transaction. Before MAIL the server is not
     * ready rather than refusing this message, so even a 5xx defers (as Postfix does with a 5xx greeting).
     */
    private void refuseAll(LmtpReply reply, boolean beforeMail) {
        for (int i = 0; i < results.length; i++) {
            results[i] = beforeMail
                    ? new DeliveryResult(recipients.get(i), Outcome.DEFERRED, "4" + reply.status().substring(1),
                            reply.toString(), server.host())
                    : result(i, reply);
        }
        quit();
    }

    private DeliveryResult result(int index, LmtpReply reply) {
        return new DeliveryResult(recipients.get(index), reply.outcome(), reply.status(), reply.toString(),
                server.host());
    }

    /** Fills the recipients without a result yet; the request's order is kept. */
    private List<DeliveryResult> finish(Outcome outcome, String status, String text) {
        List<DeliveryResult> list = new ArrayList<>(results.length);
        for (int i = 0; i < results.length; i++) {
            list.add(results[i] != null ? results[i]
                    : new DeliveryResult(recipients.get(i), outcome, status, text, null));
        }
        return list;
    }

    private static String reason(IOException e) {
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }
}
