package org.postern.delivery.smtp.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.AttributeType;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(
        name = "Postern SMTP delivery",
        description = "The outbound SMTP client (the smtp transport): timeouts, TLS trust, connection cache.")
public @interface SmtpClientConfig {

    @AttributeDefinition(name = "HELO name", description = "The name given in EHLO/HELO")
    String helo_name() default "localhost";

    @AttributeDefinition(name = "Connect timeout", description = "Seconds to establish the TCP connection", min = "1")
    int connect_timeout() default 30;

    @AttributeDefinition(name = "Greeting timeout", description = "Seconds to wait for the 220 greeting (RFC 5321 4.5.3.2.1)", min = "1")
    int greeting_timeout() default 300;

    @AttributeDefinition(name = "HELO timeout", description = "Seconds to wait for the EHLO/HELO reply", min = "1")
    int helo_timeout() default 300;

    @AttributeDefinition(name = "STARTTLS timeout", description = "Seconds for the STARTTLS reply and for the TLS handshake", min = "1")
    int starttls_timeout() default 300;

    @AttributeDefinition(name = "MAIL timeout", description = "Seconds to wait for the MAIL reply (RFC 5321 4.5.3.2.2)", min = "1")
    int mail_timeout() default 300;

    @AttributeDefinition(name = "RCPT timeout", description = "Seconds to wait for each RCPT reply (RFC 5321 4.5.3.2.3)", min = "1")
    int rcpt_timeout() default 300;

    @AttributeDefinition(name = "DATA timeout", description = "Seconds to wait for the 354 reply to DATA (RFC 5321 4.5.3.2.4)", min = "1")
    int data_timeout() default 120;

    @AttributeDefinition(name = "Data block timeout", description = "Seconds a block of message data may take to be sent (RFC 5321 4.5.3.2.5)", min = "1")
    int data_block_timeout() default 180;

    @AttributeDefinition(name = "Final dot timeout", description = "Seconds to wait for the reply to the final dot (RFC 5321 4.5.3.2.6)", min = "1")
    int final_dot_timeout() default 600;

    @AttributeDefinition(name = "RSET timeout", description = "Seconds to wait for the reply to RSET after a transaction cut short (refused MAIL, RCPT or DATA), before the connection is cached", min = "1")
    int rset_timeout() default 20;

    @AttributeDefinition(name = "Cached connections per destination", description = "Idle connections kept for reuse per destination; 0 disables the cache", min = "0")
    int max_cached_connections_per_destination() default 2;

    @AttributeDefinition(name = "Connection idle time", description = "Seconds a cached connection is kept unused before QUIT", min = "1")
    int connection_idle_time() default 30;

    @AttributeDefinition(name = "Messages per connection", description = "Transactions on one connection before it is closed", min = "1")
    int max_messages_per_connection() default 100;

    @AttributeDefinition(name = "Trust store", description = "PKCS#12 file with the certificates trusted under the verify policy; empty for the JDK's trust store")
    String trust_store() default "";

    @AttributeDefinition(name = "Trust store password", type = AttributeType.PASSWORD)
    String trust_store_password() default "";

    @AttributeDefinition(name = "I/O threads", description = "Netty event loop threads; 0 for the number of processors", min = "0")
    int io_threads() default 0;
}
