package org.postern.itests;

import static org.junit.Assert.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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
 * A real dnsmasq (Debian package dnsmasq-base) on 127.0.0.1 and a given port, serving only the records given on
 * its command line: no upstream servers, no /etc/hosts, no configuration file. Adapted from the router's test
 * helper; it runs inside Karaf, so its readiness probe builds the DNS query by hand instead of with dnsjava.
 */
final class Dnsmasq implements AutoCloseable {

    static final Path BINARY = Paths.get("/usr/sbin/dnsmasq");
    private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    private final Process process;
    private final Path log;

    private Dnsmasq(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /**
     * Starts dnsmasq on 127.0.0.1:port with these options added (records, --local) and waits until it answers.
     * The port is fixed because the distribution was configured with it before it booted.
     */
    static Dnsmasq start(int port, Path logDir, String... options) throws Exception {
        if (!Files.isExecutable(BINARY)) {
            fail("this test needs a real DNS server: " + BINARY + " is missing; install it with "
                    + "'apt-get install -y dnsmasq-base'");
        }
        Files.createDirectories(logDir);
        List<String> command = new ArrayList<>(List.of(BINARY.toString(), "--no-daemon", "--port=" + port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=", "--user=", "--log-facility=-", "--log-queries"));
        command.addAll(List.of(options));
        Path log = logDir.resolve("dnsmasq-" + port + "-" + System.nanoTime() + ".log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!waitUntilAnswering(process, port)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            fail("dnsmasq did not answer on 127.0.0.1:" + port + ": " + command + "\n" + Files.readString(log));
        }
        return new Dnsmasq(process, log);
    }

    /** What dnsmasq logged, for failure messages. */
    String log() {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return e.toString();
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
    }

    /** A port free for UDP and TCP on 127.0.0.1 (dnsmasq listens on both). */
    static int freePort() throws IOException {
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
                } catch (SocketTimeoutException | java.net.PortUnreachableException notYet) {
                    Thread.sleep(50);
                }
            }
        }
        return false;
    }

    /** A DNS query for the A record of a name (RFC 1035 4.1): header, then one question. */
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
