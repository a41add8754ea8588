package org.postern.dns.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.junit.Test;

/**
 * The bundle's compiled classes never call anything that asks the JVM's resolver or reads the system's
 * DNS configuration: read from their constant pools, so a call added later cannot slip through.
 */
public class NoSystemResolverTest {

    /** Methods that resolve a host name (or an address back to a name) through the system. */
    private static final Set<String> FORBIDDEN_METHODS = Set.of(
            "java/net/InetAddress.getByName",
            "java/net/InetAddress.getAllByName",
            "java/net/InetAddress.getLocalHost",
            "java/net/InetAddress.getHostName",
            "java/net/InetAddress.getCanonicalHostName",
            "java/net/InetSocketAddress.<init>(Ljava/lang/String;I)V",
            "java/net/InetSocketAddress.getHostName",
            "org/xbill/DNS/SimpleResolver.<init>()V",
            "org/xbill/DNS/SimpleResolver.<init>(Ljava/lang/String;)V",
            "org/xbill/DNS/SimpleResolver.setDefaultResolver",
            "org/xbill/DNS/Address.getByName",
            "org/xbill/DNS/Address.getAllByName",
            "org/xbill/DNS/Address.getHostName");

    /** Classes that fall back to resolv.conf or the JVM's resolver. */
    private static final Set<String> FORBIDDEN_CLASSES = Set.of(
            "org/xbill/DNS/ResolverConfig",
            "org/xbill/DNS/Lookup",
            "org/xbill/DNS/lookup/LookupSession",
            "org/xbill/DNS/ExtendedResolver");

    @Test
    public void noClassOfTheBundleAsksTheSystemResolver() throws IOException {
        Path classes = Paths.get("target", "classes", "org", "postern", "dns");
        List<Path> files;
        try (Stream<Path> walk = Files.walk(classes)) {
            files = walk.filter(p -> p.toString().endsWith(".class")).toList();
        }
        assertTrue("compiled classes found in " + classes, files.size() >= 5);
        Set<String> all = new TreeSet<>();
        List<String> offences = new ArrayList<>();
        for (Path file : files) {
            References refs;
            try (InputStream in = Files.newInputStream(file)) {
                refs = References.read(in);
            }
            all.addAll(refs.methods);
            for (String method : refs.methods) {
                for (String forbidden : FORBIDDEN_METHODS) {
                    if (method.equals(forbidden) || method.startsWith(forbidden + "(")) {
                        offences.add(file.getFileName() + " calls " + method);
                    }
                }
            }
            for (String type : refs.classes) {
                if (FORBIDDEN_CLASSES.contains(type)) {
                    offences.add(file.getFileName() + " uses " + type);
                }
            }
        }
        assertEquals(List.of(), offences);
        // The scan sees calls: the ones the resolver does make are there.
        assertTrue(all.toString(), all.contains("org/xbill/DNS/SimpleResolver.<init>(Ljava/net/InetSocketAddress;)V"));
        assertTrue(all.toString(), all.contains("java/net/InetAddress.getByAddress(Ljava/lang/String;[B)Ljava/net/InetAddress;"));
    }

    /** The methods (owner.name descriptor) and classes a class file refers to. */
    private static final class References {
        final List<String> methods = new ArrayList<>();
        final List<String> classes = new ArrayList<>();

        static References read(InputStream stream) throws IOException {
            DataInputStream in = new DataInputStream(stream);
            if (in.readInt() != 0xCAFEBABE) {
                throw new IOException("not a class file");
            }
            in.readUnsignedShort();
            in.readUnsignedShort();
            int count = in.readUnsignedShort();
            String[] utf8 = new String[count];
            int[] classIndex = new int[count];
            int[][] refs = new int[count][];
            int[][] nameAndType = new int[count][];
            for (int i = 1; i < count; i++) {
                int tag = in.readUnsignedByte();
                switch (tag) {
                    case 1 -> utf8[i] = in.readUTF();
                    case 3, 4 -> in.readInt();
                    case 5, 6 -> {
                        in.readLong();
                        i++; // takes two slots
                    }
                    case 7 -> classIndex[i] = in.readUnsignedShort();
                    case 8, 16, 19, 20 -> in.readUnsignedShort();
                    case 9 -> {
                        in.readUnsignedShort();
                        in.readUnsignedShort();
                    }
                    case 10, 11 -> refs[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                    case 12 -> nameAndType[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                    case 15 -> {
                        in.readUnsignedByte();
                        in.readUnsignedShort();
                    }
                    case 17, 18 -> {
                        in.readUnsignedShort();
                        in.readUnsignedShort();
                    }
                    default -> throw new IOException("unknown constant pool tag " + tag);
                }
            }
            References result = new References();
            for (int i = 1; i < count; i++) {
                if (classIndex[i] != 0) {
                    result.classes.add(utf8[classIndex[i]]);
                }
                if (refs[i] != null) {
                    String owner = utf8[classIndex[refs[i][0]]];
                    int[] nat = nameAndType[refs[i][1]];
                    result.methods.add(owner + "." + utf8[nat[0]] + utf8[nat[1]]);
                }
            }
            return result;
        }
    }
}
