package org.postern.delivery.smtp.internal;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A small SMTP server for the tests, for the replies a real server cannot be told to give. It answers
 * every command with a sensible default unless the script says otherwise, and records what arrived:
 * each command line, whether it came under TLS, the raw DATA bytes (dot-stuffed, as on the wire).
 */
final class ScriptedServer implements Closeable {

    /** Answers a line; null for the default answer. The greeting is asked for with the line {@code CONNECT}. */
    interface Script {
        String answer(Session session, String line);
    }

    /** Answer: say nothing, keep reading. */
    static final String HANG = "<hang>";
    /** Answer: close the connection without a word. */
    static final String CLOSE = "<close>";

    volatile String greeting = "220 scripted.test ESMTP";
    final List<String> extensions = new CopyOnWriteArrayList<>(
            List.of("PIPELINING", "SIZE 10485760", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8"));
    volatile SSLContext tls;
    volatile Script script = (s, line) -> null;

    final List<Session> sessions = new CopyOnWriteArrayList<>();
    private final ServerSocket server;
    private final AtomicInteger queued = new AtomicInteger();

    ScriptedServer(String address) throws IOException {
        server = new ServerSocket(0, 50, InetAddress.getByName(address));
        Thread acceptor = new Thread(this::acceptLoop, "scripted-smtp-" + server.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    String host() {
        return server.getInetAddress().getHostAddress();
    }

    int port() {
        return server.getLocalPort();
    }

    Session session(int i) {
        return sessions.get(i);
    }

    /** Everything received as DATA, over all sessions. */
    List<byte[]> messages() {
        List<byte[]> all = new ArrayList<>();
        sessions.forEach(s -> all.addAll(s.messages));
        return all;
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Session s : sessions) {
            s.socket.close();
        }
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket socket = server.accept();
                Session session = new Session(socket);
                sessions.add(session);
                Thread t = new Thread(session::run, "scripted-session");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    final class Session {
        final List<String> commands = Collections.synchronizedList(new ArrayList<>());
        /** The commands that came under TLS. */
        final List<String> tlsCommands = Collections.synchronizedList(new ArrayList<>());
        final List<byte[]> messages = Collections.synchronizedList(new ArrayList<>());
        /** MAIL arrived together with more commands (pipelining). */
        volatile boolean burstAfterMail;
        /** A command arrived before the reply to the previous one, though PIPELINING was not offered. */
        volatile boolean pipelinedUninvited;
        volatile String handshakeError;
        volatile boolean ended;
        /** Set by a script: after this answer the server reads nothing more and says nothing (a stalled peer). */
        volatile boolean stopReading;
        /** Set by a script: after this answer the server hangs up. */
        volatile boolean closeAfterAnswer;
        private volatile Socket socket;
        private boolean underTls;
        private boolean mailAccepted;
        private int rcptAccepted;

        Session(Socket socket) {
            this.socket = socket;
        }

        boolean isTls() {
            return underTls;
        }

        List<String> verbs() {
            synchronized (commands) {
                return commands.stream().map(c -> c.split(" ", 2)[0].toUpperCase(Locale.ROOT)).toList();
            }
        }

        void run() {
            try (Socket s = socket) {
                InputStream in = new BufferedInputStream(s.getInputStream());
                OutputStream out = s.getOutputStream();
                if (!say(out, answerOr("CONNECT", greeting))) {
                    return;
                }
                String line;
                while ((line = readLine(in)) != null) {
                    commands.add(line);
                    if (underTls) {
                        tlsCommands.add(line);
                    }
                    String verb = line.split(" ", 2)[0].toUpperCase(Locale.ROOT);
                    boolean pipelining = extensions.contains("PIPELINING");
                    if (verb.equals("MAIL") && pipelining) {
                        Thread.sleep(50);
                        burstAfterMail = in.available() > 0;
                    } else if (!pipelining && !verb.equals("QUIT")) {
                        Thread.sleep(20);
                        if (in.available() > 0) {
                            pipelinedUninvited = true;
                        }
                    }
                    String answer = answerOr(line, defaultAnswer(verb));
                    if (!say(out, answer)) {
                        return;
                    }
                    track(verb, answer);
                    if (verb.equals("QUIT") || closeAfterAnswer) {
                        return;
                    }
                    if (stopReading) {
                        while (!server.isClosed()) {
                            Thread.sleep(50);
                        }
                        return;
                    }
                    if (verb.equals("STARTTLS") && answer.startsWith("220") && tls != null) {
                        SSLSocket ssl = (SSLSocket) tls.getSocketFactory().createSocket(s, host(), s.getPort(), true);
                        ssl.setUseClientMode(false);
                        try {
                            ssl.startHandshake();
                        } catch (IOException e) {
                            handshakeError = e.toString();
                            return;
                        }
                        socket = ssl;
                        underTls = true;
                        in = new BufferedInputStream(ssl.getInputStream());
                        out = ssl.getOutputStream();
                    }
                    if (verb.equals("DATA") && answer.startsWith("354")) {
                        byte[] data = readData(in);
                        if (data == null) {
                            return;
                        }
                        messages.add(data);
                        if (!say(out, answerOr(".", "250 2.0.0 Ok: queued as Q" + queued.incrementAndGet()))
                                || closeAfterAnswer) {
                            return;
                        }
                        track("RSET", "");
                    }
                }
            } catch (IOException | InterruptedException e) {
                // the client went away
            } finally {
                ended = true;
            }
        }

        /** The transaction state, as a real server keeps it: for the defaults of RCPT and DATA. */
        private void track(String verb, String answer) {
            switch (verb) {
                case "MAIL" -> mailAccepted = answer.startsWith("2");
                case "RCPT" -> rcptAccepted += answer.startsWith("2") ? 1 : 0;
                case "RSET", "EHLO", "HELO", "STARTTLS" -> {
                    mailAccepted = false;
                    rcptAccepted = 0;
                }
                default -> { }
            }
        }

        private String answerOr(String line, String fallback) {
            String a = script.answer(this, line);
            return a != null ? a : fallback;
        }

        private String defaultAnswer(String verb) {
            return switch (verb) {
                case "EHLO" -> {
                    List<String> lines = new ArrayList<>();
                    lines.add("scripted.test");
                    lines.addAll(extensions);
                    if (tls != null && !underTls && !extensions.contains("STARTTLS")) {
                        lines.add("STARTTLS");
                    }
                    StringBuilder sb = new StringBuilder();
                    for (int i = 0; i < lines.size(); i++) {
                        sb.append(i > 0 ? "\n" : "").append("250").append(i < lines.size() - 1 ? "-" : " ").append(lines.get(i));
                    }
                    yield sb.toString();
                }
                case "HELO" -> "250 scripted.test";
                case "MAIL" -> "250 2.1.0 Ok";
                case "RCPT" -> mailAccepted ? "250 2.1.5 Ok" : "503 5.5.1 Error: need MAIL command";
                case "DATA" -> rcptAccepted > 0 ? "354 End data with <CR><LF>.<CR><LF>" : "503 5.5.1 Error: no valid recipients";
                case "RSET", "NOOP" -> "250 2.0.0 Ok";
                case "QUIT" -> "221 2.0.0 Bye";
                case "STARTTLS" -> tls != null ? "220 2.0.0 Ready to start TLS" : "502 5.5.1 Not implemented";
                default -> "502 5.5.2 Error: command not recognized";
            };
        }

        /** Writes an answer (lines separated by \n); false when the session must end. */
        private boolean say(OutputStream out, String answer) throws IOException, InterruptedException {
            if (answer == HANG) {
                return true;
            }
            if (answer == CLOSE) {
                return false;
            }
            out.write((answer.replace("\n", "\r\n") + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            return true;
        }
    }

    /** A line without its CRLF, UTF-8; null at the end of the stream. */
    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        int prev = -1;
        int b;
        while ((b = in.read()) != -1) {
            if (b == '\n' && prev == '\r') {
                byte[] bytes = line.toByteArray();
                return new String(bytes, 0, bytes.length - 1, StandardCharsets.UTF_8);
            }
            line.write(b);
            prev = b;
        }
        return null;
    }

    /** The DATA bytes up to and without the terminating {@code .CRLF}; null when the stream ends first. */
    private static byte[] readData(InputStream in) throws IOException {
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        // the last five bytes, with a virtual CRLF before the first, so that ".CRLF" alone ends it too
        long tail = ('\r' << 8) | '\n';
        int b;
        while ((b = in.read()) != -1) {
            data.write(b);
            tail = ((tail << 8) | b) & 0xFF_FFFF_FFFFL;
            if (tail == END) {
                byte[] d = data.toByteArray();
                byte[] message = new byte[d.length - 3];
                System.arraycopy(d, 0, message, 0, message.length);
                return message;
            }
        }
        return null;
    }

    private static final long END = ((long) '\r' << 32) | ((long) '\n' << 24) | ('.' << 16) | ('\r' << 8) | '\n';
}
