package org.postern.api.auth;

import java.util.concurrent.CompletionStage;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Checks a user's credentials for SMTP AUTH. Registered as a service (whiteboard); the listener owns the SASL
 * mechanisms (PLAIN, LOGIN, ...) and hands each authenticator the decoded name and password, in
 * {@code service.ranking} order, until one answers other than {@link AuthResult.Status#UNKNOWN_USER}.
 *
 * <p><b>Threads:</b> called on an event loop thread; a backend that blocks (JAAS, LDAP, JDBC) must do its
 * work on its own executor and complete the stage later. A stage that fails or does not complete within the
 * listener's timeout answers 454 4.7.0 to the client, never a success.
 */
@ConsumerType
public interface Authenticator {

    /**
     * @param username the authentication identity as the client sent it
     * @param password the password; the callee may clear the array when done
     * @param authorizationId the SASL authorization identity, or null when the client gave none
     */
    CompletionStage<AuthResult> authenticate(String username, char[] password, String authorizationId);
}
