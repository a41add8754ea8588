package org.postern.router.internal;

import static org.junit.Assert.fail;

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

import org.xbill.DNS.DClass;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Record;
import org.xbill.DNS.Type;

/**
 * A real dnsmasq (Debian package dnsmasq-base) on 127.0.0.1 and a free port, serving only the records given
 * on its command line: no upstream servers, no /etc/hosts, no configuration file. A copy of the DNS bundle's test
 * helper (test code is not shared between modules).
 */
final class Dnsmasq implements AutoCloseable {

    static final Path BINARY = Paths.get("/usr/sbin/dnsmasq");
    static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    private final Process process;
    private final int port;
    private final Path log;

    private Dnsmasq(Process process, int port, Path log) {
        this.process = process;
        this.port = port;
        this.log = log;
    }

    /** Starts dnsmasq with these options added (records, --local, TTLs) and waits until it answers. */
    static Dnsmasq start(String... options) throws Exception {
        if (!Files.isExecutable(BINARY)) {
            fail("this test needs a real DNS server: " + BINARY + " is missing; install it with "
                    + "'apt-get install -y dnsmasq-base'");
        }
        Path logDir = Paths.get("target", "dnsmasq");
        Files.createDirectories(logDir);
        for (int attempt = 0; attempt < 5; attempt++) {
            int port = freePort();
            List<String> command = new ArrayList<>(List.of(BINARY.toString(), "--no-daemon", "--port=" + port,
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                    "--conf-file=/dev/null", "--pid-file=", "--user=", "--log-facility=-", "--log-queries"));
            command.addAll(List.of(options));
            Path log = logDir.resolve("dnsmasq-" + port + ".log");
            Process process = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            if (waitUntilAnswering(process, port)) {
                return new Dnsmasq(process, port, log);
            }
            process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
            if (!Files.readString(log).contains("Address already in use")) {
                fail("dnsmasq did not start: " + command + "\n" + Files.readString(log));
            }
        }
        fail("dnsmasq found no free port");
        return null;
    }

    int port() {
        return port;
    }

    /** The server entry for the resolver's configuration. */
    String server() {
        return "127.0.0.1:" + port;
    }

    /** The queries dnsmasq logged so far for this name and type, e.g. ("mx.test", "MX"). */
    long queries(String name, String type) throws IOException {
        String needle = "query[" + type + "] " + name + " ";
        return Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.contains(needle)).count();
    }

    /** Stops the server; its port then refuses (ICMP port unreachable). */
    void stop() throws InterruptedException {
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
        throw new IOException("no free port");
    }

    private static boolean waitUntilAnswering(Process process, int port) throws Exception {
        byte[] query = Message.newQuery(Record.newRecord(Name.fromString("ready.invalid."), Type.A, DClass.IN))
                .toWire();
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
}
