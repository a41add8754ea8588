package org.postern.smtp.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.AttributeType;
import org.osgi.service.metatype.annotations.Option;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(
        name = "Postern SMTP listener",
        description = "One SMTP listener (one port). Create one factory configuration per port.")
public @interface ListenerConfig {

    @AttributeDefinition(name = "Name", description = "The listener's name in logs, Received: headers and the console")
    String name() default "mx";

    @AttributeDefinition(name = "Role", description = "mx: mail from the world for local and relay domains, "
            + "STARTTLS offered, no AUTH; submission: STARTTLS then AUTH required before MAIL; "
            + "submissions: as submission with implicit TLS",
            options = {
                @Option(label = "mx", value = "mx"),
                @Option(label = "submission", value = "submission"),
                @Option(label = "submissions", value = "submissions")})
    String role() default "mx";

    @AttributeDefinition(name = "Bind address", description = "IP address to listen on")
    String bind_address() default "127.0.0.1";

    @AttributeDefinition(name = "Port", min = "1", max = "65535")
    int port() default 2525;

    @AttributeDefinition(name = "Host name", description = "The name this server gives in its greeting, EHLO reply and Received: headers")
    String hostname() default "localhost";

    @AttributeDefinition(name = "Maximum message size", description = "Octets; advertised with SIZE", min = "1")
    long max_message_size() default 52_428_800L;

    @AttributeDefinition(name = "Maximum recipients per message", min = "1")
    int max_recipients() default 100;

    @AttributeDefinition(name = "Maximum command line", description = "Octets, CRLF included (RFC 5321 4.5.3.1.4)", min = "512")
    int max_command_line() default 512;

    @AttributeDefinition(name = "Maximum text line", description = "Octets, CRLF included, of a message line (RFC 5321 4.5.3.1.6)", min = "1000")
    int max_text_line() default 1000;

    @AttributeDefinition(name = "Bare line ends", description = "A bare LF or bare CR in DATA: reject the message, or normalize it to CRLF")
    String bare_line_ends() default "reject";

    @AttributeDefinition(name = "Maximum Received: headers", description = "More than this means a mail loop: 554 5.4.6")
    int max_received_headers() default 50;

    @AttributeDefinition(name = "Maximum connections", description = "Open sessions in total on this listener; then 421 4.7.0")
    int max_connections() default 20000;

    @AttributeDefinition(name = "Maximum connections per client", description = "Open sessions from one IP address; then 421 4.7.0")
    int max_connections_per_client() default 50;

    @AttributeDefinition(name = "VRFY", description = "Answer VRFY with 252 (true), or refuse it with 502 (false)")
    boolean vrfy() default true;

    @AttributeDefinition(name = "Maximum errors per session", description = "Then 421 and the connection is closed", min = "1")
    int max_errors() default 10;

    @AttributeDefinition(name = "Idle timeout", description = "Seconds; the command and data timeouts when they are 0 "
            + "(the one timeout of earlier versions)", min = "1")
    int idle_timeout() default 300;

    @AttributeDefinition(name = "Command timeout", description = "Seconds a client has to send one complete command line, "
            + "counted from the server's previous reply; octets of an unfinished line do not extend it "
            + "(RFC 5321 4.5.3.2.7). 0: the idle timeout", min = "0")
    int command_timeout() default 0;

    @AttributeDefinition(name = "Data timeout", description = "Seconds of the longest pause without any octet while a "
            + "client sends message content (DATA, or BDAT from the first chunk to the last). 0: the idle timeout", min = "0")
    int data_timeout() default 0;

    @AttributeDefinition(name = "Minimum data rate", description = "Octets per second that earn a client one more second "
            + "of message transfer, up to the data timeout: a client sending slower is cut off about one data timeout "
            + "after the transfer began (as Postfix's smtpd_min_data_rate). 0: only the pause rule", min = "0")
    int data_min_rate() default 500;

    @AttributeDefinition(name = "Maximum junk commands", description = "NOOP, RSET, VRFY and HELP a client may send "
            + "before each further one counts as an error (as Postfix's smtpd_junk_command_limit); "
            + "the count starts over after each accepted message", min = "1")
    int max_junk_commands() default 100;

    @AttributeDefinition(name = "TLS certificate", description = "PEM file with the certificate chain (leaf first)")
    String tls_certificate() default "";

    @AttributeDefinition(name = "TLS key", description = "PEM file with the PKCS#8 private key")
    String tls_key() default "";

    @AttributeDefinition(name = "TLS keystore", description = "PKCS#12 file with key and chain; used instead of the PEM files when set")
    String tls_keystore() default "";

    @AttributeDefinition(name = "TLS keystore password", type = AttributeType.PASSWORD)
    String tls_keystore_password() default "";

    @AttributeDefinition(name = "Generate a self-signed certificate", description = "When the PEM files do not exist, create them (for development)")
    boolean tls_self_signed() default false;

    @AttributeDefinition(name = "PROXY protocol", description = "Expect a PROXY protocol v1/v2 header from a load balancer before SMTP")
    boolean proxy_protocol() default false;

    @AttributeDefinition(name = "Authentication timeout", description = "Seconds to wait for the authenticators")
    int auth_timeout() default 30;
}
