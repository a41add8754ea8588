package org.postern.smtp.internal;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

@ObjectClassDefinition(
        name = "Postern SMTP listener",
        description = "One SMTP listener (one port). Create one factory configuration per port.")
public @interface ListenerConfig {

    @AttributeDefinition(name = "Name", description = "The listener's name in logs, Received: headers and the console")
    String name() default "mx";

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

    @AttributeDefinition(name = "Maximum line length", description = "Octets, line end included, for commands and message lines", min = "512")
    int max_line_length() default 8192;

    @AttributeDefinition(name = "Maximum errors per session", description = "Then 421 and the connection is closed", min = "1")
    int max_errors() default 10;

    @AttributeDefinition(name = "Idle timeout", description = "Seconds without a command (or data) before 421 and close", min = "1")
    int idle_timeout() default 300;
}
