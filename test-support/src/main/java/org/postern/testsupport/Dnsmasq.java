package org.postern.testsupport;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.PortUnreachableException;
import java.net.ServerSocket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real dnsmasq (Debian package dnsmasq-base) on 127.0.0.1, serving only the records given on its command line:
 * no upstream servers, no /etc/hosts, no configuration file.
 */
public final class Dnsmasq implements AutoCloseable {

    public static final Path BINARY = Paths.get("/usr/sbin/dnsmasq");
    public static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    private final Process process;
    private final int port;
    private final Path log;

    private Dnsmasq(Process process, int port, Path log) {
        this.process = process;
        this.port = port;
        this.log = log;
    }

    /**
     * Starts dnsmasq on a free port with these options added (records, --local, TTLs), logging to target/dnsmasq,
     * and waits until it answers.
     */
    public static Dnsmasq start(String... options) throws Exception {
        Path logDir = Paths.get("target", "dnsmasq");
        for (int attempt = 0; attempt < 5; attempt++) {
            Dnsmasq started = tryStart(freePort(), logDir, options);
            if (started != null) {
                return started;
            }
        }
        throw new AssertionError("dnsmasq found no free port");
    }

    /**
     * Starts dnsmasq on 127.0.0.1:port with these options added and waits until it answers: for a server whose
     * port was configured elsewhere before it could start (a distribution booted with it).
     */
    public static Dnsmasq start(int port, Path logDir, String... options) throws Exception {
        Dnsmasq started = tryStart(port, logDir, options);
        if (started == null) {
            throw new AssertionError("dnsmasq could not listen on 127.0.0.1:" + port + ": address already in use");
        }
        return started;
    }

    /** The server, or null when the port was taken; fails on any other trouble. */
    private static Dnsmasq tryStart(int port, Path logDir, String... options) throws Exception {
        if (!Files.isExecutable(BINARY)) {
            throw new AssertionError("this test needs a real DNS server: " + BINARY + " is missing; install it with "
                    + "'apt-get install -y dnsmasq-base'");
        }
        Files.createDirectories(logDir);
        List<String> command = new ArrayList<>(List.of(BINARY.toString(), "--no-daemon", "--port=" + port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=", "--user=", "--log-facility=-", "--log-queries"));
        command.addAll(List.of(options));
        Path log = logDir.resolve("dnsmasq-" + port + "-" + System.nanoTime() + ".log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (waitUntilAnswering(process, port)) {
            return new Dnsmasq(process, port, log);
        }
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        String output = Files.readString(log);
        if (output.contains("Address already in use")) {
            return null;
        }
        throw new AssertionError("dnsmasq did not answer on 127.0.0.1:" + port + ": " + command + "\n" + output);
    }

    public int port() {
        return port;
    }

    /** The server entry for the resolver's configuration. */
    public String server() {
        return "127.0.0.1:" + port;
    }

    /** The queries dnsmasq logged so far for this name and type, e.g. ("mx.test", "MX"). */
    public long queries(String name, String type) throws IOException {
        String needle = "query[" + type + "] " + name + " ";
        return Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.contains(needle)).count();
    }

    /** What dnsmasq logged, for failure messages. */
    public String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** Stops the server; its port then refuses (ICMP port unreachable). */
    public void stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }

    /** A port free for UDP and TCP on 127.0.0.1 (dnsmasq listens on both). */
    public static int freePort() throws IOException {
        for (int i = 0; i < 20; i++) {
            try (DatagramSocket udp = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0))) {
                int port = udp.getLocalPort();
                try (ServerSocket tcp = new ServerSocket()) {
                    tcp.bind(new InetSocketAddress(LOOPBACK, port));
                    return port;
                } catch (IOException taken) {
                    // try another
                }
            }
        }
        throw new IOException("no port free for both UDP and TCP on 127.0.0.1");
    }

    private static boolean waitUntilAnswering(Process process, int port) throws Exception {
        byte[] query = query("ready.invalid");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        try (DatagramSocket socket = new DatagramSocket(new InetSocketAddress(LOOPBACK, 0))) {
            socket.setSoTimeout(100);
            while (System.nanoTime() < deadline && process.isAlive()) {
                socket.send(new DatagramPacket(query, query.length, LOOPBACK, port));
                try {
                    socket.receive(new DatagramPacket(new byte[512], 512));
                    return true;
                } catch (SocketTimeoutException | PortUnreachableException notYet) {
                    Thread.sleep(50);
                }
            }
        }
        return false;
    }

    /**
     * A DNS query for the A record of a name (RFC 1035 4.1): header, then one question. Built by hand so that this
     * class needs no DNS library, inside Karaf too.
     */
    private static byte[] query(String name) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}); // id, RD, one question
        for (String label : name.split("\\.")) {
            out.write(label.length());
            out.writeBytes(label.getBytes(StandardCharsets.US_ASCII));
        }
        out.writeBytes(new byte[] {0, 0, 1, 0, 1}); // root, type A, class IN
        return out.toByteArray();
    }
}
