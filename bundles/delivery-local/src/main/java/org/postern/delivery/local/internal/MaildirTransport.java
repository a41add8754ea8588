package org.postern.delivery.local.internal;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.postern.api.delivery.DeliveryRequest;
import org.postern.api.delivery.DeliveryResult;
import org.postern.api.delivery.DeliveryResult.Outcome;
import org.postern.api.delivery.Transport;
import org.postern.api.mail.Header;
import org.postern.api.mail.MailAddress;
import org.postern.api.mail.Recipient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code maildir} transport: one file per recipient in {@code <root>/<user>/Maildir/new}, written the
 * Maildir way (tmp/, fsync, rename into new/, fsync new/) so a reader never sees half a message and a
 * crash never loses one that was reported delivered.
 *
 * <p>Works on the caller's thread: the queue manager calls transports on its own workers, never on an
 * event loop, and the work is local disk I/O.
 */
@Component(service = Transport.class, configurationPid = LocalMailboxes.PID,
        property = Transport.NAME_PROPERTY + "=maildir")
public class MaildirTransport implements Transport {

    static final String DELIVERED_TEXT = "delivered to maildir";

    private static final Logger LOG = LoggerFactory.getLogger(MaildirTransport.class);
    private static final long PID = ProcessHandle.current().pid();
    private static final AtomicLong COUNTER = new AtomicLong();

    @Reference
    LocalMailboxes mailboxes;

    private volatile Path root;

    @Activate
    @Modified
    void configure(LocalMailboxes.Config config) {
        root = root(config.maildir_root());
        LOG.info("maildir transport: mailboxes under {}", root);
    }

    static Path root(String configured) {
        if (configured == null || configured.isBlank()) {
            return Path.of(System.getProperty("karaf.data", "data"), "mail").toAbsolutePath();
        }
        return Path.of(configured.trim()).toAbsolutePath();
    }

    @Override
    public CompletionStage<List<DeliveryResult>> deliver(DeliveryRequest request) {
        Path base = root;
        List<DeliveryResult> results = new ArrayList<>(request.recipients().size());
        for (Recipient recipient : request.recipients()) {
            results.add(deliver(request, recipient, base));
        }
        return CompletableFuture.completedFuture(results);
    }

    private DeliveryResult deliver(DeliveryRequest request, Recipient recipient, Path base) {
        MailAddress address = recipient.address();
        String user = mailboxes.userFor(address);
        DeliveryResult result;
        String finalAddress = null;
        if (user == null) {
            result = new DeliveryResult(recipient, Outcome.FAILED, "5.1.1",
                    "unknown user: \"" + address.localPart() + "\"", null);
        } else {
            if (!user.equals(address.localPart().toLowerCase(Locale.ROOT))) {
                finalAddress = address.domain().isEmpty() ? user : user + "@" + address.domain();
            }
            Path maildir = base.resolve(user).resolve("Maildir");
            try {
                store(maildir, request, address);
                result = new DeliveryResult(recipient, Outcome.DELIVERED, "2.0.0", DELIVERED_TEXT, null);
            } catch (IOException | RuntimeException e) {
                result = new DeliveryResult(recipient, Outcome.DEFERRED, status(e),
                        "cannot write to maildir " + maildir + ": " + e, null);
            }
        }
        DeliveryLog.log(LOG, request.entry().id(), result, finalAddress, "maildir",
                request.entry().envelope().receivedAt());
        return result;
    }

    /** Writes the message into tmp/, then moves it into new/; nothing is left in tmp/ on failure. */
    private static void store(Path maildir, DeliveryRequest request, MailAddress recipient) throws IOException {
        Path tmp = maildir.resolve("tmp");
        Path fresh = maildir.resolve("new");
        createFolders(maildir, tmp, fresh, maildir.resolve("cur"));
        String name = uniqueName();
        Path file = tmp.resolve(name);
        boolean moved = false;
        try {
            try (FileChannel channel = create(file)) {
                LfOutputStream out = new LfOutputStream(new BufferedOutputStream(Channels.newOutputStream(channel),
                        65536));
                out.write(prefix(request, recipient));
                try (InputStream in = request.content().openStream()) {
                    in.transferTo(out);
                }
                out.finish();
                channel.force(true);
            }
            Files.move(file, fresh.resolve(name), StandardCopyOption.ATOMIC_MOVE);
            moved = true;
        } finally {
            if (!moved) {
                Files.deleteIfExists(file);
            }
        }
        syncFolder(fresh);
    }

    /** Return-Path and Delivered-To (what local delivery adds), then the headers the queue entry carries. */
    static byte[] prefix(DeliveryRequest request, MailAddress recipient) {
        StringBuilder text = new StringBuilder();
        text.append(new Header("Return-Path", "<" + request.entry().envelope().sender() + ">").toWireFormat());
        text.append(new Header("Delivered-To", recipient.toString()).toWireFormat());
        for (Header header : request.entry().addedHeaders()) {
            text.append(header.toWireFormat());
        }
        return text.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** Maildir's unique name: seconds, then microseconds, process id, a counter and randomness, then the host. */
    static String uniqueName() {
        Instant now = Instant.now();
        return now.getEpochSecond() + ".M" + now.getNano() / 1000 + "P" + PID + "Q" + COUNTER.incrementAndGet()
                + "R" + Long.toHexString(ThreadLocalRandom.current().nextLong()) + "." + HostName.get();
    }

    /** The RFC 3463 status for a failed write: a full disk or quota is told apart from other trouble. */
    static String status(Exception e) {
        String text = String.valueOf(e.getMessage());
        if (text.contains("No space left on device")) {
            return "4.3.1";
        }
        if (text.contains("Disk quota exceeded")) {
            return "4.2.2";
        }
        return "4.3.0";
    }

    private static void createFolders(Path... folders) throws IOException {
        for (Path folder : folders) {
            if (!Files.isDirectory(folder)) {
                if (posix(folder)) {
                    Files.createDirectories(folder, PosixFilePermissions.asFileAttribute(
                            PosixFilePermissions.fromString("rwx------")));
                } else {
                    Files.createDirectories(folder);
                }
            }
        }
    }

    /** Folders and files readable by their owner only: they hold other people's mail. */
    private static FileChannel create(Path file) throws IOException {
        Set<StandardOpenOption> options = EnumSet.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        if (posix(file)) {
            return FileChannel.open(file, options,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        return FileChannel.open(file, options);
    }

    private static boolean posix(Path path) {
        return path.getFileSystem().supportedFileAttributeViews().contains("posix");
    }

    /** Makes the rename durable. The message is already in new/ and fsynced: a failure here is only logged. */
    private static void syncFolder(Path folder) {
        try (FileChannel channel = FileChannel.open(folder, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException e) {
            LOG.warn("cannot fsync folder {}: {}", folder, e.toString());
        }
    }
}
