#!/usr/bin/env bash
# Figures for the file queue store alone (no SMTP, no Karaf): see README.md next to this script.
# Usage: bench/queue/run.sh [--sessions 50] [--count 20000] [--queue 100000] [--dir SPOOL]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODULE=$ROOT/bundles/queue-file
CLASSPATH_FILE=$MODULE/target/bench.classpath

# Compile the module and its tests, and write the test classpath; through the shared Maven lock when there is one.
build=(mvn -B -q -f "$ROOT/pom.xml" -pl bundles/queue-file test-compile dependency:build-classpath
       -Dmdep.outputFile="$CLASSPATH_FILE" -Dmdep.includeScope=test)
if command -v flock >/dev/null && [ -n "${MVN_LOCK:-/tmp/mvn.lock}" ]; then
    flock "${MVN_LOCK:-/tmp/mvn.lock}" "${build[@]}"
else
    "${build[@]}"
fi

# The spool goes under target/ (a disk file system, as in production; /tmp may be a tmpfs) unless --dir says otherwise.
args=("$@")
case " ${args[*]:-} " in
    *" --dir "*) ;;
    *) args+=(--dir "$MODULE/target/bench-spool") ;;
esac
exec java -cp "$MODULE/target/classes:$MODULE/target/test-classes:$(cat "$CLASSPATH_FILE")" \
    org.postern.queue.file.internal.QueueBench "${args[@]}"
