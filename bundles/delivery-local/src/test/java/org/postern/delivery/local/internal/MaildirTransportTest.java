package org.postern.delivery.local.internal;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.mail.MessageContent;

public class MaildirTransportTest {

    private static final String CONTENT = "From: Carol <carol@example.com>\r\n"
            + "To: alice@example.org\r\n"
            + "Subject: Hello\r\n"
            + "\r\n"
            + "Hi there,\r\n"
            + ".a line that starts with a dot stays as it is\r\n"
            + "caf\u00e9 \u2014 8-bit text\r\n";

    /** The same message as a mail client finds it in the Maildir file: LF line ends. */
    private static final String CONTENT_ON_DISK = CONTENT.replace("\r\n", "\n");

    private static final String RECEIVED_ON_DISK = Fixtures.RECEIVED.toWireFormat().replace("\r\n", "\n");

    @Rule
    public TemporaryFolder temp = new TemporaryFolder();

    private Path root;
    private MaildirTransport transport;

    @Before
    public void setUp() throws IOException {
        root = temp.newFolder("mail").toPath();
        transport = transport(root.toString());
    }

    private static MaildirTransport transport(String root) {
        MaildirTransport transport = new MaildirTransport();
        transport.mailboxes = Fixtures.mailboxes(List.of("alice", "bob"), List.of("postmaster:alice"));
        transport.configure(Fixtures.config(LocalMailboxes.Config.class, Map.of("maildir_root", root)));
        return transport;
    }

    private List<DeliveryResult> deliver(String sender, String... recipients) throws Exception {
        return transport.deliver(Fixtures.request("maildir", sender, CONTENT, recipients)).toCompletableFuture().get();
    }

    /** The messages in a user's new/ folder, sorted by file name, as bytes. */
    private static List<byte[]> newMessages(Path maildir) throws IOException {
        List<byte[]> messages = new ArrayList<>();
        try (Stream<Path> files = Files.list(maildir.resolve("new"))) {
            for (Path file : files.sorted().toList()) {
                messages.add(Files.readAllBytes(file));
            }
        }
        return messages;
    }

    private static List<Path> list(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.toList();
        }
    }

    private static byte[] expected(String returnPath, String deliveredTo) {
        return ("Return-Path: " + returnPath + "\n" + "Delivered-To: " + deliveredTo + "\n" + RECEIVED_ON_DISK
                + CONTENT_ON_DISK).getBytes(StandardCharsets.UTF_8);
    }

    @Test
    public void deliversToUsersAndAliasesAsAMailClientReadsThem() throws Exception {
        List<DeliveryResult> results = deliver("carol@example.com",
                "alice@example.org", "BOB@example.org", "postmaster@example.org");

        assertEquals(3, results.size());
        for (DeliveryResult result : results) {
            assertEquals(result.toString(), Outcome.DELIVERED, result.outcome());
            assertEquals("2.0.0", result.status());
            assertEquals("delivered to maildir", result.diagnostic());
        }

        Path alice = root.resolve("alice/Maildir");
        Path bob = root.resolve("bob/Maildir");
        List<byte[]> aliceMail = newMessages(alice);
        assertEquals("alice gets her own copy and the postmaster's", 2, aliceMail.size());
        List<String> texts = aliceMail.stream().map(b -> new String(b, StandardCharsets.UTF_8)).sorted().toList();
        assertEquals(new String(expected("<carol@example.com>", "alice@example.org"), StandardCharsets.UTF_8),
                texts.get(0));
        assertEquals(new String(expected("<carol@example.com>", "postmaster@example.org"), StandardCharsets.UTF_8),
                texts.get(1));
        assertArrayEquals(expected("<carol@example.com>", "BOB@example.org"), newMessages(bob).get(0));

        for (Path maildir : List.of(alice, bob)) {
            assertEquals("nothing left in tmp/", List.of(), list(maildir.resolve("tmp")));
            assertTrue(Files.isDirectory(maildir.resolve("cur")));
            for (Path file : list(maildir.resolve("new"))) {
                assertTrue(file.getFileName().toString(), file.getFileName().toString()
                        .matches("\\d+\\.M\\d+P\\d+Q\\d+R[0-9a-f]+\\.[A-Za-z0-9.-]+"));
                assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
            }
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(maildir)));
        }
    }

    @Test
    public void bouncesHaveAnEmptyReturnPath() throws Exception {
        List<DeliveryResult> results = deliver("", "bob@example.org");
        assertEquals(Outcome.DELIVERED, results.get(0).outcome());
        assertArrayEquals(expected("<>", "bob@example.org"), newMessages(root.resolve("bob/Maildir")).get(0));
    }

    @Test
    public void unknownUserFailsWith511AndTheOthersAreDelivered() throws Exception {
        List<DeliveryResult> results = deliver("carol@example.com", "nobody@example.org", "alice@example.org");
        DeliveryResult nobody = Fixtures.resultFor(results, "nobody@example.org");
        assertEquals(Outcome.FAILED, nobody.outcome());
        assertEquals("5.1.1", nobody.status());
        assertEquals("unknown user: \"nobody\"", nobody.diagnostic());
        assertEquals(Outcome.DELIVERED, Fixtures.resultFor(results, "alice@example.org").outcome());
        assertFalse("no folder for an unknown user", Files.exists(root.resolve("nobody")));
        assertEquals(1, newMessages(root.resolve("alice/Maildir")).size());
    }

    @Test
    public void unwritableRootDefers() throws Exception {
        // a file where the root folder should be: refused to root as well, unlike a mere chmod
        Path file = temp.newFile("not-a-folder").toPath();
        transport = transport(file.toString());
        List<DeliveryResult> results = deliver("carol@example.com", "alice@example.org");
        DeliveryResult alice = results.get(0);
        assertEquals(Outcome.DEFERRED, alice.outcome());
        assertEquals("4.3.0", alice.status());
        assertTrue(alice.diagnostic(),
                alice.diagnostic().startsWith("cannot write to maildir " + file + "/alice/Maildir"));
    }

    @Test
    public void aFailedWriteLeavesNothingInTmp() throws Exception {
        // the queue file cannot be read to the end: half a message must not stay behind
        MessageContent broken = new MessageContent() {
            @Override
            public long size() {
                return 100_000;
            }

            @Override
            public InputStream openStream() {
                return new InputStream() {
                    private int sent;

                    @Override
                    public int read() throws IOException {
                        if (sent++ < 70_000) {
                            return 'x';
                        }
                        throw new IOException("queue file truncated");
                    }
                };
            }
        };
        List<DeliveryResult> results = transport.deliver(
                Fixtures.request("maildir", "carol@example.com", broken, "alice@example.org"))
                .toCompletableFuture().get();
        assertEquals(Outcome.DEFERRED, results.get(0).outcome());
        assertTrue(results.get(0).diagnostic(), results.get(0).diagnostic().endsWith("queue file truncated"));
        Path maildir = root.resolve("alice/Maildir");
        assertEquals(List.of(), list(maildir.resolve("tmp")));
        assertEquals(List.of(), list(maildir.resolve("new")));
    }

    @Test
    public void aFullDiskIsToldApart() {
        assertEquals("4.3.1", MaildirTransport.status(new IOException("No space left on device")));
        assertEquals("4.2.2", MaildirTransport.status(new IOException("Disk quota exceeded")));
        assertEquals("4.3.0", MaildirTransport.status(new IOException("Permission denied")));
    }

    @Test
    public void rootDefaultsToKarafData() {
        String before = System.getProperty("karaf.data");
        System.setProperty("karaf.data", "/srv/karaf/data");
        try {
            assertEquals(Path.of("/srv/karaf/data/mail"), MaildirTransport.root(""));
            assertEquals(Path.of("/var/mail/postern"), MaildirTransport.root(" /var/mail/postern "));
        } finally {
            if (before == null) {
                System.clearProperty("karaf.data");
            } else {
                System.setProperty("karaf.data", before);
            }
        }
    }

    @Test
    public void crlfBecomesLfAcrossWrites() throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        LfOutputStream out = new LfOutputStream(bytes);
        out.write("a\r".getBytes(StandardCharsets.US_ASCII));
        out.write('\n');
        out.write("b\rc\r\r\nd\r".getBytes(StandardCharsets.US_ASCII));
        out.finish();
        assertEquals("a\nb\rc\r\nd\r", bytes.toString(StandardCharsets.US_ASCII));
    }
}
