package org.postern.dns.internal;

import java.util.ArrayList;
import java.util.List;

import org.xbill.DNS.CNAMERecord;
import org.xbill.DNS.DClass;
import org.xbill.DNS.Message;
import org.xbill.DNS.Name;
import org.xbill.DNS.Rcode;
import org.xbill.DNS.Record;
import org.xbill.DNS.SOARecord;
import org.xbill.DNS.Section;
import org.xbill.DNS.Type;

/** Reads one NOERROR or NXDOMAIN response: follows CNAMEs in its answer section and works out its TTL. */
final class Answers {

    private Answers() {
    }

    /**
     * What a response says about a question.
     *
     * @param records the records of the type asked, owned by the end of the CNAME chain; empty when none
     * @param nxdomain the end of the chain does not exist
     * @param ttl seconds the reading may be cached: the lowest TTL of the CNAMEs followed and of the records,
     *            or the negative TTL when there are no records
     * @param followUp when not null, the chain ends at this name and the server did not say what it holds:
     *                 ask again for it (records, nxdomain and ttl other than the CNAMEs' are then meaningless)
     * @param hops the CNAMEs followed
     */
    record Reading(List<Record> records, boolean nxdomain, long ttl, Name followUp, int hops) {
    }

    /**
     * @param negativeTtl the most a negative answer may be cached; an SOA in the authority section lowers it
     *                    to the SOA's own TTL or minimum field (RFC 2308)
     */
    static Reading read(Message response, Name question, int type, long negativeTtl, int maxHops) {
        List<Record> answers = response.getSection(Section.ANSWER);
        Name current = question;
        long ttl = Long.MAX_VALUE;
        int hops = 0;
        while (true) {
            List<Record> data = new ArrayList<>();
            long dataTtl = Long.MAX_VALUE;
            CNAMERecord alias = null;
            for (Record r : answers) {
                if (r.getDClass() != DClass.IN || !r.getName().equals(current)) {
                    continue;
                }
                if (r.getType() == type) {
                    data.add(r);
                    dataTtl = Math.min(dataTtl, r.getTTL());
                } else if (r.getType() == Type.CNAME && alias == null) {
                    alias = (CNAMERecord) r;
                }
            }
            if (!data.isEmpty()) {
                return new Reading(List.copyOf(data), false, Math.min(ttl, dataTtl), null, hops);
            }
            // A chain longer than allowed stops here; the caller turns the hop count into an error.
            if (alias == null || type == Type.CNAME || hops > maxHops) {
                break;
            }
            hops++;
            ttl = Math.min(ttl, alias.getTTL());
            current = alias.getTarget();
        }
        boolean nxdomain = response.getRcode() == Rcode.NXDOMAIN;
        SOARecord soa = soa(response);
        if (!nxdomain && soa == null && !current.equals(question)) {
            // A CNAME without what it points to and without a negative answer for it: the server did not
            // follow the chain (it is not authoritative for the target). Ask for the target itself.
            return new Reading(List.of(), false, ttl, current, hops);
        }
        long negative = negativeTtl;
        if (soa != null) {
            negative = Math.min(negative, Math.min(soa.getTTL(), soa.getMinimum()));
        }
        return new Reading(List.of(), nxdomain, Math.min(ttl, negative), null, hops);
    }

    private static SOARecord soa(Message response) {
        for (Record r : response.getSection(Section.AUTHORITY)) {
            if (r instanceof SOARecord soa) {
                return soa;
            }
        }
        return null;
    }
}
