package org.postern.api.mail;

import java.util.Objects;

/**
 * One header field, name and unfolded value, as a filter adds it or reads it.
 * The value must not contain CR or LF: folding is the writer's business.
 */
public record Header(String name, String value) {

    public Header {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(value, "value");
        if (name.isEmpty() || !name.chars().allMatch(c -> c > 32 && c < 127 && c != ':')) {
            throw new IllegalArgumentException("bad header name: " + name);
        }
        if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) {
            throw new IllegalArgumentException("header value must not contain CR or LF");
        }
    }

    /** The field as it is written into a message: {@code Name: value} followed by CRLF. */
    public String toWireFormat() {
        return name + ": " + value + "\r\n";
    }
}
