package org.postern.testsupport;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Dovecot for the tests, its own configuration, state, logs and Maildirs in a temporary folder, listening
 * on 127.0.0.1 and a free port: either an LMTP server (Debian package dovecot-lmtpd), or a submission server
 * (dovecot-submissiond) that wants STARTTLS and AUTH and relays what it takes to a next hop, as a provider's
 * smarthost does. Started by the test, stopped by {@link #close()}.
 */
public final class Dovecot implements AutoCloseable {

    private static final List<String> BINARIES = List.of("/usr/sbin/dovecot", "/usr/local/sbin/dovecot");

    private final Process process;
    private final Path dir;
    private final int port;

    private Dovecot(Process process, Path dir, int port) {
        this.process = process;
        this.dir = dir;
        this.port = port;
    }

    /** Starts Dovecot with LMTP only, knowing the given users; fails the test when it cannot. */
    public static Dovecot start(Path dir, List<String> users) throws Exception {
        String binary = BINARIES.stream().filter(b -> Files.isExecutable(Path.of(b))).findFirst().orElse(null);
        if (binary == null) {
            throw new AssertionError("dovecot not found in " + BINARIES
                    + ": the LMTP tests need a real Dovecot LMTP server; "
                    + "install it with: apt-get install dovecot-lmtpd");
        }
        Path mail = Files.createDirectories(dir.resolve("mail"));
        int uid = (Integer) Files.getAttribute(dir, "unix:uid");
        int gid = (Integer) Files.getAttribute(dir, "unix:gid");
        // Dovecot's own processes run as whoever starts it; as non-root it can use no other user or group
        String internalUser = Files.getOwner(dir).getName();
        String internalGroup = ((GroupPrincipal) Files.getAttribute(dir, "posix:group")).getName();
        if (uid == 0) {
            // Dovecot never delivers mail as root ("userdb returned 0 as uid"): as root, deliver as nobody.
            int[] nobody = passwdEntry("nobody");
            uid = nobody[0];
            gid = nobody[1];
            Files.setAttribute(mail, "unix:uid", uid);
            Files.setAttribute(mail, "unix:gid", gid);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x")); // nobody passes through
        }
        StringBuilder passwd = new StringBuilder();
        for (String user : users) {
            passwd.append(user).append(":{PLAIN}secret\n");
        }
        Files.writeString(dir.resolve("users"), passwd);
        int port = freePort();
        String conf = """
                ssl = no
                default_internal_user = %2$s
                default_internal_group = %6$s
                default_login_user = %2$s
                first_valid_uid = 0
                mail_location = maildir:%1$s/mail/%%n/Maildir
                # LMTP asks the userdb whether a user exists; static says yes to anyone the passdb knows
                passdb {
                  driver = passwd-file
                  args = username_format=%%n %1$s/users
                }
                userdb {
                  driver = static
                  args = uid=%3$d gid=%4$d home=%1$s/home/%%n
                }
                service lmtp {
                  inet_listener lmtp {
                    address = 127.0.0.1
                    port = %5$d
                  }
                }
                """.formatted(dir, internalUser, uid, gid, port, internalGroup);
        return launch(binary, dir, "lmtp", conf, port);
    }

    /**
     * Starts Dovecot's submission service: STARTTLS with a new self-signed certificate for 127.0.0.1 (see
     * {@link #certificate()}), AUTH PLAIN and LOGIN for the one user (never in clear), and every accepted
     * message relayed to 127.0.0.1:relayPort.
     */
    public static Dovecot startSubmission(Path dir, String user, String password, int relayPort) throws Exception {
        String binary = BINARIES.stream().filter(b -> Files.isExecutable(Path.of(b))).findFirst().orElse(null);
        if (binary == null || !Files.exists(Path.of("/usr/lib/dovecot/submission"))) {
            throw new AssertionError("dovecot's submission service not found: the smarthost tests need a real one; "
                    + "install it with: apt-get install dovecot-submissiond");
        }
        // Dovecot refuses to run its login and submission processes as root: nobody it is, then
        int[] nobody = passwdEntry("nobody");
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path cert = dir.resolve("cert.pem");
        Path key = dir.resolve("key.pem");
        run(dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key.toString(), "-out", cert.toString());
        Files.writeString(dir.resolve("users"), user + ":{PLAIN}" + password + "\n");
        int port = freePort();
        String conf = """
                hostname = smarthost.test
                ssl = required
                ssl_cert = <%1$s/cert.pem
                ssl_key = <%1$s/key.pem
                ssl_min_protocol = TLSv1.2
                default_internal_user = nobody
                default_internal_group = %4$s
                default_login_user = nobody
                auth_mechanisms = plain login
                disable_plaintext_auth = yes
                submission_relay_host = 127.0.0.1
                submission_relay_port = %2$d
                submission_relay_trusted = yes
                mail_location = maildir:%1$s/mail/%%u
                passdb {
                  driver = passwd-file
                  args = username_format=%%u %1$s/users
                }
                userdb {
                  driver = static
                  args = uid=%5$d gid=%6$d
                }
                service submission-login {
                  inet_listener submission {
                    address = 127.0.0.1
                    port = %3$d
                  }
                }
                """.formatted(dir, relayPort, port, groupName(nobody[1]), nobody[0], nobody[1]);
        return launch(binary, dir, "submission", conf, port);
    }

    /**
     * Runs Dovecot in the foreground with this configuration, its state and logs kept in dir; returns once the
     * service greets on the port.
     */
    private static Dovecot launch(String binary, Path dir, String protocol, String conf, int port) throws Exception {
        String common = """
                base_dir = %1$s/run
                state_dir = %1$s/state
                log_path = %1$s/dovecot.log
                protocols = %2$s
                listen = 127.0.0.1
                """.formatted(dir, protocol);
        Path confFile = dir.resolve("dovecot.conf");
        Files.writeString(confFile, common + conf);
        Process process = new ProcessBuilder(binary, "-F", "-c", confFile.toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("dovecot.out").toFile()).start();
        Dovecot dovecot = new Dovecot(process, dir, port);
        dovecot.awaitGreeting();
        return dovecot;
    }

    /** The submission server's certificate (PEM), for a trust store. */
    public Path certificate() {
        return dir.resolve("cert.pem");
    }

    private static void run(Path dir, String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve(command[0] + ".out").toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " failed:\n"
                    + Files.readString(dir.resolve(command[0] + ".out")));
        }
    }

    private static String groupName(int gid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/etc/group"))) {
            String[] fields = line.split(":");
            if (fields.length > 2 && fields[2].equals(Integer.toString(gid))) {
                return fields[0];
            }
        }
        throw new AssertionError("no group " + gid + " in /etc/group");
    }

    public int port() {
        return port;
    }

    public Path maildir(String user) {
        return dir.resolve("mail").resolve(user).resolve("Maildir");
    }

    /** Dovecot's log and output, for failure messages. */
    public String log() {
        StringBuilder text = new StringBuilder();
        for (String name : List.of("dovecot.out", "dovecot.log")) {
            try {
                text.append("--- ").append(name).append('\n').append(Files.readString(dir.resolve(name)));
            } catch (IOException e) {
                text.append("--- ").append(name).append(": ").append(e).append('\n');
            }
        }
        return text.toString();
    }

    /** Ready when the lmtp process greets: the master alone listening is not enough. */
    private void awaitGreeting() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        String last = "";
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new AssertionError("dovecot exited with " + process.exitValue() + "\n" + log());
            }
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1000);
                socket.setSoTimeout(5000);
                String line = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                        StandardCharsets.US_ASCII)).readLine();
                if (line != null && line.startsWith("220 ")) {
                    socket.getOutputStream().write("QUIT\r\n".getBytes(StandardCharsets.US_ASCII));
                    return;
                }
                last = String.valueOf(line);
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        close();
        throw new AssertionError("dovecot did not greet on 127.0.0.1:" + port + " (last: " + last + ")\n" + log());
    }

    @Override
    public void close() throws InterruptedException {
        List<ProcessHandle> children = process.descendants().toList();
        process.destroy(); // SIGTERM: the master stops its children
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(5, TimeUnit.SECONDS);
        }
        for (ProcessHandle child : children) {
            if (child.isAlive()) {
                child.destroyForcibly();
            }
        }
    }

    private static int[] passwdEntry(String user) throws IOException {
        for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
            String[] fields = line.split(":");
            if (fields.length > 3 && fields[0].equals(user)) {
                return new int[] {Integer.parseInt(fields[2]), Integer.parseInt(fields[3])};
            }
        }
        throw new AssertionError("no user '" + user
                + "' in /etc/passwd to deliver test mail as (Dovecot refuses root)");
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
