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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;
import org.osgi.service.metatype.annotations.Option;
import org.postern.api.filter.SessionContext;
import org.postern.api.mail.MailAddress;
import org.postern.api.routing.Mailboxes;
import org.postern.api.routing.RelayDecision;
import org.postern.api.routing.RelayPolicy;
import org.postern.router.rules.Cidr;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay policy from configuration: local domains are accepted for anyone, other domains only for
 * relay domains, trusted networks and authenticated sessions. Everything else is refused (554 5.7.1).
 *
 * <p>A local recipient is also checked against the {@link Mailboxes} service when there is one, so that an
 * unknown user is refused at RCPT (550 5.1.1) rather than accepted and bounced. Without that service every
 * local recipient is accepted. {@code postmaster} is always accepted (RFC 5321 4.5.1).
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
                description = "Where all mail for non-local domains goes when no route applies: host, host:port, "
                        + "[address] or [address]:port (port 25 when none is given; an IPv6 address in brackets; a "
                        + "host name is looked up for A/AAAA, never MX). A '*' route takes precedence. Empty: MX routing.")
        String relayhost() default "";

        @AttributeDefinition(name = "Routes",
                description = "Per-domain routes, one entry per domain: 'DOMAIN = TARGET [tls=LEVEL] [auth=ID]'. "
                        + "DOMAIN is a domain (exact, no subdomains) or '*' for every other non-local domain. "
                        + "TARGET is 'mx' (look up the domain's MX records) or one or more next hops separated by "
                        + "spaces, tried in order: host, host:port, [address] or [address]:port (port 25 by default; "
                        + "host names are looked up for A/AAAA). tls= none, may, encrypt or verify (default: the SMTP "
                        + "TLS policy below). auth= the name of client credentials configured in the smtp transport "
                        + "(fixed next hops only). Example: 'example.com = [192.0.2.5]:2525 tls=verify auth=smarthost'. "
                        + "Order: local domains, the domain's route, the '*' route, the relay host, MX.")
        String[] routes() default {};

        @AttributeDefinition(name = "Local transport",
                description = "The transport that delivers mail for local domains: maildir or lmtp")
        String local_transport() default "maildir";

        @AttributeDefinition(name = "SMTP port",
                description = "The TCP port of MX hosts and of address-literal recipients (next hops written "
                        + "without a port use 25)",
                min = "1", max = "65535")
        int smtp_port() default 25;

        @AttributeDefinition(name = "SMTP TLS policy",
                description = "TLS towards MX hosts and routes without tls=: none, may (STARTTLS when offered), "
                        + "encrypt (required, certificate unchecked) or verify (required, chain and name checked)",
                options = {@Option(label = "none", value = "none"), @Option(label = "may", value = "may"),
                        @Option(label = "encrypt", value = "encrypt"), @Option(label = "verify", value = "verify")})
        String smtp_tls_policy() default "may";

        @AttributeDefinition(name = "My host name",
                description = "This node's host name: an MX host of this name is this node (RFC 5321 5.1 loop check)")
        String myhostname() default "localhost";

        @AttributeDefinition(name = "My addresses",
                description = "Addresses (or CIDR networks) this node receives mail on: an MX host resolving to one of "
                        + "them is this node. Empty: only the host name tells.")
        String[] my_addresses() default {};

        @AttributeDefinition(name = "Mailbox lookup timeout",
                description = "Milliseconds to wait at RCPT for the mailbox service to say whether a local user exists; "
                        + "then 451 4.3.0", min = "1")
        long mailbox_timeout() default 10000;
    }

    /** What one configuration means, built once per change so that a check reads only final fields. */
    private record Rules(Set<String> localDomains, Set<String> relayDomains, List<Cidr> trustedNetworks,
                         long mailboxTimeoutMs) {
    }

    private static final Logger LOG = LoggerFactory.getLogger(ConfiguredRelayPolicy.class);

    private static final CompletableFuture<RelayDecision> LOCAL = CompletableFuture.completedFuture(RelayDecision.local());
    private static final CompletableFuture<RelayDecision> RELAY = CompletableFuture.completedFuture(RelayDecision.relay());

    static final RelayDecision UNKNOWN_USER = RelayDecision.deny(550, "5.1.1", "User unknown in local recipient table");
    static final RelayDecision LOOKUP_FAILED = RelayDecision.deny(451, "4.3.0", "Recipient lookup failed, try again later");

    private static final long DEFAULT_MAILBOX_TIMEOUT_MS = 10_000;

    // Nothing is local and nobody trusted until activate: a call before then fails closed.
    private volatile Rules rules = new Rules(Set.of(), Set.of(), List.of(), DEFAULT_MAILBOX_TIMEOUT_MS);

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    volatile Mailboxes mailboxes;

    @Activate
    @Modified
    void configure(Config config) {
        Rules next = new Rules(
                domains("local.domains", config.local_domains()),
                domains("relay.domains", config.relay_domains()),
                networks(config.trusted_networks()),
                config.mailbox_timeout() > 0 ? config.mailbox_timeout() : DEFAULT_MAILBOX_TIMEOUT_MS);
        rules = next;
        LOG.info("relay policy: local domains {}, relay domains {}, trusted networks {}",
                next.localDomains(), next.relayDomains(), next.trustedNetworks());
    }

    @Override
    public CompletionStage<RelayDecision> check(SessionContext session, MailAddress recipient) {
        Rules current = rules;
        String domain = recipient.asciiDomain();
        if (domain.isEmpty() || (!recipient.isAddressLiteral() && current.localDomains().contains(domain))) {
            return local(current, recipient); // the bare <postmaster> (RFC 5321 4.5.1) or a domain of ours
        }
        if (!recipient.isAddressLiteral() && current.relayDomains().contains(domain)) {
            return RELAY;
        }
        if (isTrusted(current, session) || isAuthenticated(session)) {
            return RELAY;
        }
        return CompletableFuture.completedFuture(RelayDecision.relayDenied());
    }

    /** A recipient in a local domain: accepted unless the mailbox service says there is no such user. */
    private CompletionStage<RelayDecision> local(Rules current, MailAddress recipient) {
        Mailboxes lookup = mailboxes;
        // postmaster must be accepted for every domain of ours (RFC 5321 4.5.1), whatever the mailbox table says.
        if (lookup == null || recipient.localPart().equalsIgnoreCase("postmaster")) {
            return LOCAL;
        }
        CompletableFuture<Boolean> exists;
        try {
            CompletionStage<Boolean> stage = lookup.exists(recipient);
            if (stage == null) {
                throw new IllegalStateException("the mailbox service gave no answer");
            }
            // A copy: our timeout must not complete the service's own future.
            exists = stage.toCompletableFuture().copy();
        } catch (RuntimeException e) {
            LOG.warn("mailbox lookup for <{}> failed: {}", recipient, e.toString());
            return CompletableFuture.completedFuture(LOOKUP_FAILED);
        }
        return exists.orTimeout(current.mailboxTimeoutMs(), TimeUnit.MILLISECONDS).handle((found, error) -> {
            if (error != null || found == null) {
                LOG.warn("mailbox lookup for <{}> failed: {}", recipient,
                        error == null ? "no answer" : error instanceof TimeoutException
                                || error.getCause() instanceof TimeoutException
                                ? "timed out after " + current.mailboxTimeoutMs() + " ms" : error.toString());
                return LOOKUP_FAILED;
            }
            return found ? RelayDecision.local() : UNKNOWN_USER;
        });
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
