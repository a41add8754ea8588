package org.postern.testsupport;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Postfix's smtp-sink (Debian package postfix) on one IPv4 loopback address and port, writing every message it
 * receives to a file of its own folder, headed by the envelope it saw: one instance stands for one receiving server.
 * As root it runs as nobody, who must be able to reach the parent folder given to {@link #start}.
 */
public final class SmtpSink implements AutoCloseable {

    public static final String BINARY = "/usr/sbin/smtp-sink";

    /**
     * The listen backlog must hold a whole burst of connections. With a smaller one, Linux answers the excess with
     * SYN cookies and then drops their final ACK while the accept queue is full: the client is connected,
     * smtp-sink never hears of it, and since the server speaks first nothing breaks the silence but a timeout.
     */
    private static final int BACKLOG = 256;

    private final String address;
    private final int port;
    private final Path dumps;
    private final Process process;

    private SmtpSink(String address, int port, Path dumps, Process process) {
        this.address = address;
        this.port = port;
        this.dumps = dumps;
        this.process = process;
    }

    /**
     * Starts smtp-sink on address:port with these options added (e.g. {@code -r RCPT} for a 4xx reply to RCPT),
     * dumping into a new folder under parent; returns once it takes connections.
     */
    public static SmtpSink start(String address, int port, Path parent, String... options) throws Exception {
        SmtpSink sink = tryStart(address, port, parent, options);
        if (sink == null) {
            throw new AssertionError("smtp-sink could not listen on " + address + ":" + port + "\n"
                    + Files.readString(logOf(parent, address, port)));
        }
        return sink;
    }

    /** Starts smtp-sink on 127.0.0.1 and a free port (see {@link #port()}) with these options added. */
    public static SmtpSink start(Path parent, String... options) throws Exception {
        for (int attempt = 0; attempt < 5; attempt++) {
            // Below the ephemeral range, so that no client socket of a concurrent build holds the port.
            int port = ThreadLocalRandom.current().nextInt(20000, 32000);
            if (!free(port)) {
                continue; // another server there would look like ours listening
            }
            SmtpSink sink = tryStart("127.0.0.1", port, parent, options);
            if (sink != null) {
                return sink;
            }
        }
        throw new AssertionError("smtp-sink found no free port on 127.0.0.1");
    }

    /** The sink once it listens, or null when it exited (the port taken) or did not listen within 10 s. */
    private static SmtpSink tryStart(String address, int port, Path parent, String... options) throws Exception {
        if (!Files.isExecutable(Path.of(BINARY))) {
            throw new AssertionError("smtp-sink is missing: install it with 'apt-get install -y postfix' ("
                    + BINARY + ")");
        }
        Files.createDirectories(parent);
        Path dumps = Files.createTempDirectory(parent, "sink-" + address + "-" + port + "-");
        // smtp-sink drops root for nobody, who must be able to write its dumps here
        Files.setPosixFilePermissions(dumps, PosixFilePermissions.fromString("rwxrwxrwx"));
        List<String> command = new ArrayList<>(List.of(BINARY, "-4", "-d", dumps + "/%H%M%S."));
        if ("root".equals(System.getProperty("user.name"))) {
            command.addAll(List.of("-u", "nobody"));
        }
        command.addAll(List.of(options));
        command.addAll(List.of(address + ":" + port, String.valueOf(BACKLOG)));
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logOf(parent, address, port).toFile())).start();
        SmtpSink sink = new SmtpSink(address, port, dumps, process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!sink.listening()) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                sink.close();
                return null;
            }
            Thread.sleep(50);
        }
        return sink;
    }

    private static boolean free(int port) {
        try (ServerSocket probe = new ServerSocket()) {
            probe.bind(new InetSocketAddress("127.0.0.1", port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static Path logOf(Path parent, String address, int port) {
        return parent.resolve("smtp-sink-" + address + "-" + port + ".log");
    }

    private boolean listening() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public String address() {
        return address;
    }

    public int port() {
        return port;
    }

    /** The folder of the dump files, one a message. */
    public Path dumps() {
        return dumps;
    }

    /** How many messages with this Subject it received. */
    public long arrived(String subject) throws IOException {
        try (Stream<Path> files = Files.list(dumps)) {
            return files.filter(f -> {
                try {
                    // smtp-sink writes its dumps with LF line ends
                    return Files.readString(f, StandardCharsets.ISO_8859_1).replace("\r\n", "\n")
                            .contains("\nSubject: " + subject + "\n");
                } catch (IOException e) {
                    return false;
                }
            }).count();
        }
    }

    /** Stops it: its port then refuses connections, and connections it had are cut. */
    @Override
    public void close() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
    }
}
