@Version("1.2.0") // 1.2: PendingMessage.write callers may reuse their array
@Export
package org.postern.api.queue;

import org.osgi.annotation.bundle.Export;
import org.osgi.annotation.versioning.Version;
