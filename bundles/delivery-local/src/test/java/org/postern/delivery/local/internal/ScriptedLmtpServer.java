package org.postern.delivery.local.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An LMTP server that says what the test tells it, for replies a real server cannot be made to give
 * (a 452 for one recipient, hanging up halfway). Takes one connection on 127.0.0.1 and records what it got.
 */
final class ScriptedLmtpServer implements AutoCloseable {

    interface Script {
        void run(ScriptedLmtpServer server) throws IOException;
    }

    final List<String> commands = new CopyOnWriteArrayList<>();
    volatile String data;

    private final ServerSocket listener;
    private final Thread thread;
    private InputStream in;
    private OutputStream out;

    ScriptedLmtpServer(Script script) throws IOException {
        listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        thread = new Thread(() -> {
            try (Socket socket = listener.accept()) {
                in = socket.getInputStream();
                out = socket.getOutputStream();
                script.run(this);
            } catch (IOException e) {
                // the test sees what the client made of it
            }
        }, "scripted-lmtp");
        thread.setDaemon(true);
        thread.start();
    }

    int port() {
        return listener.getLocalPort();
    }

    /** Sends reply lines, each ended with CRLF. */
    void send(String... lines) throws IOException {
        for (String line : lines) {
            out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
        }
        out.flush();
    }

    /** Reads one command line and records it. */
    String read() throws IOException {
        String line = new String(readUntil("\r\n"), StandardCharsets.UTF_8);
        commands.add(line);
        return line;
    }

    /** Reads a command and answers it. */
    void expect(String prefix, String reply) throws IOException {
        String line = read();
        if (!line.startsWith(prefix)) {
            send("500 5.5.1 expected " + prefix);
            throw new IOException("expected " + prefix + ", got " + line);
        }
        send(reply);
    }

    /** Reads the message up to and without the final dot line, as the bytes arrived (still dot-stuffed). */
    void readData() throws IOException {
        byte[] bytes = readUntil("\r\n.\r\n");
        data = new String(bytes, StandardCharsets.UTF_8) + "\r\n";
    }

    private byte[] readUntil(String end) throws IOException {
        byte[] marker = end.getBytes(StandardCharsets.US_ASCII);
        byte[] tail = new byte[marker.length]; // the last bytes read, oldest first
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new IOException("client hung up");
            }
            bytes.write(b);
            System.arraycopy(tail, 1, tail, 0, tail.length - 1);
            tail[tail.length - 1] = (byte) b;
            if (bytes.size() >= marker.length && Arrays.equals(tail, marker)) {
                return Arrays.copyOf(bytes.toByteArray(), bytes.size() - marker.length);
            }
        }
    }

    @Override
    public void close() throws Exception {
        listener.close();
        thread.join(5000);
    }
}
