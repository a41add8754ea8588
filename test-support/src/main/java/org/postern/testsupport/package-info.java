/**
 * Real peers for the tests, started on loopback and stopped by {@code close()}: dnsmasq for DNS, Dovecot for LMTP
 * and authenticated submission, Postfix's smtp-sink as a receiving server. A missing binary fails the test with
 * the package to install; it never skips. Only the JDK is used, so that the same classes also run inside Karaf
 * (the integration tests install this jar as a bundle).
 */
package org.postern.testsupport;
