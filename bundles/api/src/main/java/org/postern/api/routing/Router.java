package org.postern.api.routing;

import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ProviderType;
import org.postern.api.mail.MailAddress;

/**
 * Where mail for a recipient goes next. Called by the queue manager off the event loop; may resolve DNS
 * (MX, A/AAAA), so it answers asynchronously. A stage that fails with {@link RouteException} tells the
 * caller whether the failure is permanent (null MX, no such domain) or temporary (DNS timeout).
 */
@ProviderType
public interface Router {

    CompletionStage<Route> route(MailAddress recipient);

    /** Routing failed; {@link #permanent()} decides bounce (5.x.x) or retry (4.x.x). */
    class RouteException extends Exception {
        private static final long serialVersionUID = 1L;
        private final boolean permanent;
        private final String status;

        public RouteException(String status, String message, boolean permanent) {
            super(message);
            this.status = status;
            this.permanent = permanent;
        }

        public boolean permanent() {
            return permanent;
        }

        /** The RFC 3463 status for the DSN or the log, e.g. {@code 5.1.10} or {@code 4.4.3}. */
        public String status() {
            return status;
        }
    }
}
