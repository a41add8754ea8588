/**
 * The syntax of the router's rules (networks, relay hosts, routes), shared with the console so that it refuses
 * exactly what the router would not take. Parsers only: nothing here looks anything up.
 */
@Version("1.0.0")
@Export
package org.postern.router.rules;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
