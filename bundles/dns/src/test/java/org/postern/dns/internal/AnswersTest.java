package org.postern.dns.internal;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.Test;
import org.xbill.DNS.ARecord;
import org.xbill.DNS.CNAMERecord;
import org.xbill.DNS.DClass;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Rcode;
import org.xbill.DNS.Record;
import org.xbill.DNS.SOARecord;
import org.xbill.DNS.Section;
import org.xbill.DNS.TXTRecord;
import org.xbill.DNS.Type;

/**
 * Reading responses that dnsmasq cannot be made to give (an SOA with chosen TTL and minimum, CNAME loops),
 * built with dnsjava's own Message classes; everything dnsmasq can serve is tested against it instead.
 */
public class AnswersTest {

    private static Name name(String text) throws Exception {
        return Name.fromString(text, Name.root);
    }

    private static Message response(String question, int type, int rcode, Record... answers) throws Exception {
        Message m = new Message();
        m.getHeader().setRcode(rcode);
        m.addRecord(Record.newRecord(name(question), type, DClass.IN), Section.QUESTION);
        for (Record r : answers) {
            m.addRecord(r, Section.ANSWER);
        }
        return m;
    }

    private static SOARecord soa(long ttl, long minimum) throws Exception {
        return new SOARecord(name("test"), DClass.IN, ttl, name("ns.test"), name("hostmaster.test"), 1, 3600, 600,
                86400, minimum);
    }

    private static ARecord a(String owner, long ttl, String address) throws Exception {
        return new ARecord(name(owner), DClass.IN, ttl, ServerAddresses.literal(address));
    }

    private static CNAMERecord cname(String owner, long ttl, String target) throws Exception {
        return new CNAMERecord(name(owner), DClass.IN, ttl, name(target));
    }

    @Test
    public void aNegativeAnswerLivesNoLongerThanItsSoaSays() throws Exception {
        for (long[] c : new long[][] {
                // SOA TTL, SOA minimum, negative_ttl, expected
                {3600, 60, 300, 60}, {20, 60, 300, 20}, {3600, 600, 300, 300}}) {
            Message nx = response("nope.test", Type.MX, Rcode.NXDOMAIN);
            nx.addRecord(soa(c[0], c[1]), Section.AUTHORITY);
            Answers.Reading reading = Answers.read(nx, name("nope.test"), Type.MX, c[2], 8);
            assertTrue(reading.nxdomain());
            assertEquals(c[3], reading.ttl());

            Message nodata = response("mx1.test", Type.MX, Rcode.NOERROR);
            nodata.addRecord(soa(c[0], c[1]), Section.AUTHORITY);
            reading = Answers.read(nodata, name("mx1.test"), Type.MX, c[2], 8);
            assertFalse(reading.nxdomain());
            assertEquals(List.of(), reading.records());
            assertEquals(c[3], reading.ttl());
        }
    }

    @Test
    public void withoutSoaANegativeAnswerLivesTheConfiguredTime() throws Exception {
        Answers.Reading reading = Answers.read(response("nope.test", Type.A, Rcode.NXDOMAIN), name("nope.test"),
                Type.A, 300, 8);
        assertTrue(reading.nxdomain());
        assertEquals(300, reading.ttl());
    }

    @Test
    public void aChainTakesTheLowestTtlAndIgnoresUnrelatedRecords() throws Exception {
        Message m = response("a.test", Type.A, Rcode.NOERROR, cname("a.test", 100, "b.test"),
                a("c.test", 5, "192.0.2.9"), a("b.test", 200, "192.0.2.1"), a("b.test", 150, "192.0.2.2"));
        Answers.Reading reading = Answers.read(m, name("A.TEST"), Type.A, 300, 8);
        assertEquals(2, reading.records().size());
        assertEquals(100, reading.ttl());
        assertEquals(1, reading.hops());
        assertNull(reading.followUp());
    }

    @Test
    public void aChainWithoutItsEndIsFollowedUpUnlessTheServerSaidItIsEmpty() throws Exception {
        Message m = response("a.test", Type.A, Rcode.NOERROR, cname("a.test", 100, "b.test"));
        Answers.Reading reading = Answers.read(m, name("a.test"), Type.A, 300, 8);
        assertEquals(name("b.test"), reading.followUp());
        assertEquals(100, reading.ttl());

        m.addRecord(soa(60, 60), Section.AUTHORITY);
        reading = Answers.read(m, name("a.test"), Type.A, 300, 8);
        assertNull(reading.followUp());
        assertEquals(List.of(), reading.records());
        assertEquals(60, reading.ttl());
    }

    @Test
    public void aCnameLoopStopsAfterTheHopLimit() throws Exception {
        Message m = response("a.test", Type.A, Rcode.NOERROR, cname("a.test", 100, "b.test"),
                cname("b.test", 100, "a.test"));
        Answers.Reading reading = Answers.read(m, name("a.test"), Type.A, 300, 8);
        assertTrue(reading.hops() > 8);
    }

    @Test
    public void txtStringsAreJoinedAsBytes() throws Exception {
        byte[] u = "ü".getBytes(StandardCharsets.UTF_8);
        TXTRecord txt = new TXTRecord(name("t.test"), DClass.IN, 60, List.of("v=spf1 ", "-all"));
        assertEquals("v=spf1 -all", DnsJavaResolver.joinedText(txt.rdataToWireCanonical()));
        // "ü" split across two character-strings still decodes as one character
        byte[] rdata = {1, u[0], 1, u[1], 0};
        assertEquals("ü", DnsJavaResolver.joinedText(rdata));
    }
}
