package org.postern.itests;

import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Postfix's smtp-sink on one loopback address and port, writing every message it receives to its own folder: one
 * instance stands for one MX host. Run as RelayIT runs it (IPv4 only, as nobody when we are root).
 */
final class SmtpSink implements AutoCloseable {

    static final String BINARY = "/usr/sbin/smtp-sink";

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

    /** Starts smtp-sink on address:port, dumping into a new folder under parent; returns once it takes connections. */
    static SmtpSink start(String address, int port, Path parent) throws Exception {
        if (!new File(BINARY).canExecute()) {
            fail("smtp-sink is missing: apt-get install postfix (see .ci/run)");
        }
        Files.createDirectories(parent);
        Path dumps = Files.createTempDirectory(parent, "sink-" + address + "-");
        // smtp-sink drops root for nobody, who must be able to write its dumps here
        Files.setPosixFilePermissions(dumps, PosixFilePermissions.fromString("rwxrwxrwx"));
        List<String> cmd = new ArrayList<>(List.of(BINARY, "-4", "-d", dumps + "/%M."));
        if ("root".equals(System.getProperty("user.name"))) {
            cmd.addAll(List.of("-u", "nobody"));
        }
        cmd.addAll(List.of(address + ":" + port, "64"));
        Process process = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dumps.resolveSibling(dumps.getFileName() + ".log").toFile()).start();
        SmtpSink sink = new SmtpSink(address, port, dumps, process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!sink.listening()) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                sink.close();
                fail("smtp-sink did not listen on " + address + ":" + port + ": " + cmd + "\n"
                        + Files.readString(dumps.resolveSibling(dumps.getFileName() + ".log")));
            }
            Thread.sleep(50);
        }
        return sink;
    }

    private boolean listening() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(address, port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    String address() {
        return address;
    }

    int port() {
        return port;
    }

    /** How many messages with this Subject it received. */
    long arrived(String subject) throws IOException {
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
