package org.postern.router.internal;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay policy from configuration: local domains are accepted for anyone, other domains only for
 * relay domains, trusted networks and authenticated sessions. Everything else is refused (554 5.7.1).
 *
 * <p>The decision looks at the parsed domain of the recipient only: nothing in the local part (the
 * {@code %} hack, {@code !} paths, a quoted {@code @}) and no address literal makes a recipient local or
 * relayable.
 */
@Component(configurationPid = ConfiguredRelayPolicy.PID, service = RelayPolicy.class)
@Designate(ocd = ConfiguredRelayPolicy.Config.class)
public class ConfiguredRelayPolicy implements RelayPolicy {

    static final String PID = "org.postern.router";

    /** Shared by this policy and {@link ConfiguredRouter}: one PID, one form, both read what they need. */
    @ObjectClassDefinition(name = "Postern routing and relay policy",
            description = "Which recipients this node accepts (local domains), for whom it relays elsewhere, "
                    + "and where it sends mail for other domains.")
    public @interface Config {

        @AttributeDefinition(name = "Local domains",
                description = "Domains delivered on this node; mail to them is accepted from anyone")
        String[] local_domains() default {"localhost"};

        @AttributeDefinition(name = "Relay domains",
                description = "Other domains this node accepts mail for from anyone and passes on (backup MX, gateway)")
        String[] relay_domains() default {};

        @AttributeDefinition(name = "Trusted networks",
                description = "Clients in these networks may relay anywhere: CIDR, IPv4 or IPv6; a bare address is one host")
        String[] trusted_networks() default {};

        @AttributeDefinition(name = "Relay host",
                description = "Where all mail for non-local domains goes: host, host:port, [address] or [address]:port "
                        + "(port 25 when none is given; an IPv6 address in brackets). Empty: no relay host.")
        String relayhost() default "";
    }

    /** What one configuration means, built once per change so that a check reads only final fields. */
    private record Rules(Set<String> localDomains, Set<String> relayDomains, List<Cidr> trustedNetworks) {
    }

    private static final Logger LOG = LoggerFactory.getLogger(ConfiguredRelayPolicy.class);

    private static final CompletableFuture<RelayDecision> LOCAL = CompletableFuture.completedFuture(RelayDecision.local());
    private static final CompletableFuture<RelayDecision> RELAY = CompletableFuture.completedFuture(RelayDecision.relay());

    // Nothing is local and nobody trusted until activate: a call before then fails closed.
    private volatile Rules rules = new Rules(Set.of(), Set.of(), List.of());

    @Activate
    @Modified
    void configure(Config config) {
        Rules next = new Rules(
                domains("local.domains", config.local_domains()),
                domains("relay.domains", config.relay_domains()),
                networks(config.trusted_networks()));
        rules = next;
        LOG.info("relay policy: local domains {}, relay domains {}, trusted networks {}",
                next.localDomains(), next.relayDomains(), next.trustedNetworks());
    }

    @Override
    public CompletionStage<RelayDecision> check(SessionContext session, MailAddress recipient) {
        Rules current = rules;
        String domain = recipient.asciiDomain();
        if (domain.isEmpty() || (!recipient.isAddressLiteral() && current.localDomains().contains(domain))) {
            return LOCAL; // the bare <postmaster> (RFC 5321 4.5.1) or a domain of ours
        }
        if (!recipient.isAddressLiteral() && current.relayDomains().contains(domain)) {
            return RELAY;
        }
        if (isTrusted(current, session) || isAuthenticated(session)) {
            return RELAY;
        }
        return CompletableFuture.completedFuture(RelayDecision.relayDenied());
    }

    private static boolean isTrusted(Rules rules, SessionContext session) {
        InetSocketAddress client = session.clientAddress();
        InetAddress address = client == null ? null : client.getAddress();
        if (address == null) {
            return false;
        }
        for (Cidr network : rules.trustedNetworks()) {
            if (network.contains(address)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isAuthenticated(SessionContext session) {
        String identity = session.authenticatedAs();
        return identity != null && !identity.isEmpty();
    }

    /**
     * Values of a list property, split on commas too: a plain .cfg file gives
     * {@code local.domains = a.example, b.example} as one string.
     */
    static List<String> items(String[] values) {
        List<String> items = new ArrayList<>();
        if (values != null) {
            for (String value : values) {
                if (value != null) {
                    for (String item : value.split(",")) {
                        if (!item.isBlank()) {
                            items.add(item.trim());
                        }
                    }
                }
            }
        }
        return items;
    }

    /** Domains in the form {@link MailAddress#asciiDomain()} gives, so that IDNs and case compare equal. */
    static Set<String> domains(String property, String[] values) {
        Set<String> domains = new LinkedHashSet<>();
        for (String item : items(values)) {
            String domain = item.endsWith(".") ? item.substring(0, item.length() - 1) : item;
            try {
                MailAddress probe = MailAddress.of("postmaster", domain);
                if (probe.isAddressLiteral()) {
                    throw new IllegalArgumentException("an address literal is not a domain");
                }
                domains.add(probe.asciiDomain());
            } catch (IllegalArgumentException e) {
                LOG.error("{}: ignoring bad domain '{}' in configuration {}: {}", property, item, PID, e.getMessage());
            }
        }
        return Collections.unmodifiableSet(domains);
    }

    private static List<Cidr> networks(String[] values) {
        List<Cidr> networks = new ArrayList<>();
        for (String item : items(values)) {
            try {
                Cidr network = Cidr.parse(item);
                if (network.hostBitsSet()) {
                    LOG.warn("trusted.networks: '{}' has host bits set; trusting the whole /{} network",
                            item, network.prefix());
                }
                networks.add(network);
            } catch (IllegalArgumentException e) {
                // Skipping the entry trusts fewer clients than intended: it fails closed.
                LOG.error("trusted.networks: ignoring bad network '{}' in configuration {}: {}", item, PID, e.getMessage());
            }
        }
        return List.copyOf(networks);
    }
}
