#!/usr/bin/env bash
# Benchmark of the SMTP listener: Postern and a private Postfix instance, measured in the same run.
# Usage: bench/run.sh [DIST_TARBALL]      (as root: Postfix's master needs it; see bench/README.md)
# Both servers accept mail for b@example.com from 127.0.0.1 and relay it to one smtp-sink, so both do the
# same work. Everything listens on 127.0.0.1 only, every step is bounded in time, and everything started
# here is stopped on exit.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARBALL=${1:-}
if [ -z "$TARBALL" ]; then
    TARBALL=$(ls "$BENCH_DIR"/../distribution/target/postern-distribution-*.tar.gz 2>/dev/null | head -1)
fi

# Knobs (environment): seconds per throughput case, idle connections, Postfix's process limit.
SECONDS_PER_CASE=${BENCH_SECONDS:-15}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
IDLE_PARALLEL=${BENCH_IDLE_PARALLEL:-1000}
IDLE_DEADLINE=${BENCH_IDLE_DEADLINE:-20}
POSTFIX_PROCS=${BENCH_POSTFIX_PROCS:-1000}
SIZES=${BENCH_SIZES:-"1024 102400"}
SESSIONS=${BENCH_SESSIONS:-"1 10 50"}
QUEUE_ENTRIES=${BENCH_QUEUE_ENTRIES:-100000}
KEEP=${BENCH_KEEP:-0}
MAX_COUNT=500000
SENDER=a@localhost
RCPT=b@example.com # not local to either server: relayed to the sink

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: Postfix's master process and apt-get need it"
[ -n "$TARBALL" ] && [ -f "$TARBALL" ] || die "no distribution tarball (give its path, or build distribution/ first)"
TARBALL=$(cd "$(dirname "$TARBALL")" && pwd)/$(basename "$TARBALL")

# ---------------------------------------------------------------- prerequisites
apt_install() {
    log "installing from Debian: $*"
    # "No configuration": the package must not set up and start a system MTA.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 || {
        apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
    } || die "apt-get install $* failed"
}

java_major() { "$1" -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'; }

find_jdk17() {
    local j
    for j in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" \
             /usr/lib/jvm/java-17-openjdk-*; do
        [ -n "$j" ] && [ -x "$j/bin/java" ] && [ -x "$j/bin/jcmd" ] || continue
        [ "$(java_major "$j/bin/java")" = 17 ] && { echo "$j"; return 0; }
    done
    return 1
}

missing=()
command -v smtp-source >/dev/null && command -v postfix >/dev/null || missing+=(postfix)
PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || missing+=(python3)
find_jdk17 >/dev/null || missing+=(openjdk-17-jdk-headless)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
PYTHON=${PYTHON:-$(command -v python3)}
JDK=$(find_jdk17) || die "no Java 17 JDK with jcmd found (Karaf 4.4 needs 17)"
TOOL="$PYTHON $BENCH_DIR/benchtool.py"

# Both the test client and the servers hold IDLE_CONNS sockets; children inherit the limit.
need_fds=$((IDLE_CONNS + 2000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_fds" ]; then
    ulimit -Hn "$need_fds" 2>/dev/null || die "cannot raise the open files limit to $need_fds (hard limit $(ulimit -Hn))"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || ulimit -Sn "$need_fds" || die "cannot raise ulimit -n to $need_fds"

# ---------------------------------------------------------------- work area and cleanup
WORK=$(mktemp -d /tmp/postern-bench.XXXXXX)
PF=$WORK/postfix
PN=$WORK/postern
LOGS=$WORK/logs
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PN" "$LOGS"
# Postfix's daemons run as the postfix user: they must reach the queue, and own the data directory.
chmod 755 "$WORK"
chown postfix "$PF/data"
POSTERN_PID=
IDLE_PID=
SINK_PID=
STATUS=failed

stop_pid() { # pid seconds: wait for the process to end, then TERM, then KILL
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
}

cleanup() {
    set +e
    trap - EXIT INT TERM
    if [ -n "$IDLE_PID" ]; then kill -TERM "$IDLE_PID" 2>/dev/null; stop_pid "$IDLE_PID" 5; fi
    if [ -n "$POSTERN_PID" ] && kill -0 "$POSTERN_PID" 2>/dev/null; then
        log "stopping Postern (pid $POSTERN_PID)"
        JAVA_HOME=$JDK "$PN/bin/stop" >/dev/null 2>&1
        stop_pid "$POSTERN_PID" 30
    fi
    if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null; stop_pid "$SINK_PID" 5; fi
    if [ -f "$PF/queue/pid/master.pid" ]; then
        local mpid
        mpid=$(tr -d ' \n' < "$PF/queue/pid/master.pid")
        if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then
            log "stopping Postfix (master pid $mpid)"
            postfix -c "$PF/etc" stop >/dev/null 2>&1
            stop_pid "$mpid" 30
        fi
    fi
    cp -p "$PN"/data/log/karaf.log* "$LOGS"/ 2>/dev/null
    cp -p "$PF/maillog" "$LOGS"/postfix-maillog 2>/dev/null
    if [ "$KEEP" = 1 ]; then
        log "kept everything in $WORK"
    else
        # The spools can hold gigabytes if the relay stalled; keep only the logs.
        rm -rf "$PN" "$PF"
        log "logs kept in $LOGS (rm -rf $WORK when done)"
    fi
    [ "$STATUS" = ok ] || log "the run did not complete"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r PF_PORT PN_PORT PN_SUB_PORT PN_SSH PN_RMI_REG PN_RMI_SRV PN_JMXMP SINK_PORT CLOSED_PORT <<< "$($TOOL freeports 9)"

# ---------------------------------------------------------------- the next hop of both servers
start_sink() {
    log "smtp-sink on 127.0.0.1:$SINK_PORT: the next hop of both servers, accepts and forgets"
    # -c: running counters ("sess=N quit=N mesg=N", CR-separated) on stdout, so the run can see
    # when the last message arrived whatever the servers keep in their queues.
    smtp-sink -c -u postfix "127.0.0.1:$SINK_PORT" 1024 >"$WORK/sink.count" 2>"$LOGS/smtp-sink.err" &
    SINK_PID=$!
    $TOOL greeting "$SINK_PORT" 10 || die "smtp-sink does not answer: $(cat "$LOGS/smtp-sink.err")"
}

sink_count() { # messages the sink has received so far
    tail -c 200 "$WORK/sink.count" | tr '\r' '\n' |
        awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^mesg=/) n = substr($i, 6) } END { print n + 0 }'
}

# sink_wait N NAME: wait (at most 300 s) until the sink has received N messages in total
sink_wait() {
    local i n
    for ((i = 0; i < 3000; i++)); do
        n=$(sink_count)
        [ "$n" -ge "$1" ] && return 0
        sleep 0.1
    done
    log "$2: the sink got $n of $1 messages after 300 s"
    return 1
}

# ---------------------------------------------------------------- Postfix
start_postfix() {
    log "Postfix $(postconf -d -h mail_version): private instance in $PF on 127.0.0.1:$PF_PORT"
    cat > "$PF/etc/main.cf" <<EOF
# Private benchmark instance written by bench/run.sh: accepts, queues, relays to the sink.
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = /tmp
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydomain = localdomain
myorigin = localhost
mydestination = localhost
mynetworks = 127.0.0.0/8
# The clients on 127.0.0.0/8 may relay (mynetworks); all non-local mail goes to the sink.
relayhost = [127.0.0.1]:$SINK_PORT
# Local mail (none is sent) would be accepted for any local part and discarded.
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:
# Never ask the system resolver.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
# One client address opens every connection in the idle test.
smtpd_client_connection_count_limit = 0
default_process_limit = $POSTFIX_PROCS
biff = no
EOF
    cat > "$PF/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n       -       n       -       $POSTFIX_PROCS smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Postfix reports its errors in maillog_file, not on the terminal.
    postfix -c "$PF/etc" start >"$LOGS/postfix-start.txt" 2>&1 || {
        cat "$LOGS/postfix-start.txt" "$PF/maillog" >&2; die "postfix start failed"; }
    $TOOL greeting "$PF_PORT" 30 || die "Postfix does not answer"
    PF_MASTER=$(tr -d ' \n' < "$PF/queue/pid/master.pid")
}

# ---------------------------------------------------------------- Postern
set_cfg() { # file key value: replace the key's line or append it
    if grep -q "^[[:space:]]*$2[[:space:]]*=" "$1"; then
        sed -i "s|^[[:space:]]*$2[[:space:]]*=.*|$2 = $3|" "$1"
    else
        echo "$2 = $3" >> "$1"
    fi
}

start_postern() {
    log "Postern: unpacking $(basename "$TARBALL") into $PN"
    tar xzf "$TARBALL" -C "$PN" --strip-components=1 || die "cannot unpack $TARBALL"
    local e=$PN/etc maxconn=$((IDLE_CONNS + 1000))
    [ "$maxconn" -lt 20000 ] && maxconn=20000
    [ -f "$e/org.postern.smtp.listener-mx.cfg" ] || die "no etc/org.postern.smtp.listener-mx.cfg in the distribution"
    set_cfg "$e/org.postern.smtp.listener-mx.cfg" port "$PN_PORT"
    set_cfg "$e/org.postern.smtp.listener-mx.cfg" max.connections "$maxconn"
    set_cfg "$e/org.postern.smtp.listener-mx.cfg" max.connections.per.client "$maxconn"
    # Mail from loopback may relay, and all of it goes to the sink.
    set_cfg "$e/org.postern.router.cfg" trusted.networks 127.0.0.0/8
    set_cfg "$e/org.postern.router.cfg" relayhost "[127.0.0.1]:$SINK_PORT"
    # Every other port moves too, so a developer's running Postern is not disturbed.
    [ -f "$e/org.postern.smtp.listener-submission.cfg" ] && set_cfg "$e/org.postern.smtp.listener-submission.cfg" port "$PN_SUB_PORT"
    set_cfg "$e/org.apache.karaf.shell.cfg" sshPort "$PN_SSH"
    set_cfg "$e/org.apache.karaf.management.cfg" rmiRegistryPort "$PN_RMI_REG"
    set_cfg "$e/org.apache.karaf.management.cfg" rmiServerPort "$PN_RMI_SRV"
    set_cfg "$e/org.apache.karaf.management.cfg" jmxmpPort "$PN_JMXMP"
    log "Postern: starting on 127.0.0.1:$PN_PORT (JDK $JDK)"
    JAVA_HOME=$JDK KARAF_REDIRECT=$LOGS/postern-console.log "$PN/bin/start" || die "bin/start failed"
    local i
    for ((i = 0; i < 300; i++)); do [ -s "$PN/karaf.pid" ] && break; sleep 0.1; done
    POSTERN_PID=$(tr -d ' \n' < "$PN/karaf.pid" 2>/dev/null)
    [ -n "$POSTERN_PID" ] || die "Postern wrote no karaf.pid"
    $TOOL greeting "$PN_PORT" 120 || { tail -20 "$PN/data/log/karaf.log" >&2; die "Postern does not answer"; }
}

heap_used_kib() { # used heap after a full GC, in KiB
    "$JDK/bin/jcmd" "$1" GC.run >/dev/null 2>&1
    sleep 1
    "$JDK/bin/jcmd" "$1" GC.heap_info 2>/dev/null | awk '/used/ { for (i = 1; i <= NF; i++) if ($i == "used") { v = $(i + 1); sub(/K.*/, "", v); print v; exit } }'
}

# ---------------------------------------------------------------- measurements
declare -A R # results, printed at the end
declare -A NO_RELAY # servers whose relaying stalled once

# idle_test LABEL PORT MEMCMD...: hold IDLE_CONNS idle connections; MEMCMD prints "rss_kib pss_kib nproc".
# A LABEL starting with "postern" also gets the JVM's used heap after a full GC, before and after.
IDLE_LABELS=()
idle_test() {
    local name=$1 port=$2 before after out=$WORK/idle-$1.json i
    shift 2
    IDLE_LABELS+=("$name")
    log "$name: opening $IDLE_CONNS idle connections"
    [[ $name == postern* ]] && R[${name}_heap_before]=$(heap_used_kib "$POSTERN_PID")
    before=$("$@")
    exec {hold}> >(exec $TOOL idle "$port" "$IDLE_CONNS" --parallel "$IDLE_PARALLEL" \
        --deadline "$IDLE_DEADLINE" --hold 600 > "$out" 2>"$LOGS/idle-$name.err")
    IDLE_PID=$!
    for ((i = 0; i < (IDLE_DEADLINE + 60) * 10; i++)); do [ -s "$out" ] && break; sleep 0.1; done
    [ -s "$out" ] || { exec {hold}>&-; die "$name: the idle client gave no result"; }
    sleep 2 # let the server settle
    after=$("$@")
    [[ $name == postern* ]] && R[${name}_heap_after]=$(heap_used_kib "$POSTERN_PID")
    R[${name}_idle_mem_before]=$before
    R[${name}_idle_mem_after]=$after
    R[${name}_idle_json]=$(cat "$out")
    exec {hold}>&- # closing the client's stdin releases the connections
    stop_pid "$IDLE_PID" 30
    IDLE_PID=
    log "$name: $(cat "$out")"
    sleep 3 # let the server close them all before the next test
}

# CPU seconds the server has used so far: less sensitive than msg/s to other work on the machine.
# For Postfix the whole instance (master and every daemon, exited ones included through their parent).
server_cpu() {
    if [ "$1" = postern ]; then $TOOL cpu "$POSTERN_PID"; else $TOOL cpu "$PF_MASTER" --tree; fi
}

# throughput NAME PORT SIZE SESSIONS: accepted messages per second, about SECONDS_PER_CASE long, and
# relayed messages per second (until the queue is empty again)
throughput() {
    local name=$1 port=$2 size=$3 sess=$4 count calib t0 t1 rc err=$WORK/smtp-source.err secs rsecs sunk
    run_source() {
        sunk=$(sink_count)
        t0=$EPOCHREALTIME
        timeout $((SECONDS_PER_CASE * 6 + 60)) smtp-source -l "$size" -m "$1" -s "$sess" \
            -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >/dev/null 2>"$err"
        rc=$?
        t1=$EPOCHREALTIME
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        # Every case starts once the last one has been relayed; the relay time counts from the same start.
        rsecs=
        if [ $rc = 0 ] && [ -z "${NO_RELAY[$name]:-}" ]; then
            if sink_wait $((sunk + $1)) "$name"; then
                rsecs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
            else
                NO_RELAY[$name]=1 # do not wait 300 s in every later case
                log "$name: relay figures are left out from here on"
            fi
        fi
        return $rc
    }
    # A calibration run of at least 2 s picks the count for the measured run.
    calib=$((sess == 1 ? 100 : 1000))
    [ "$size" -gt 10000 ] && calib=$((calib / 4))
    while :; do
        if ! run_source "$calib"; then
            R[$name,$size,$sess]="FAILED"
            R[$name,$size,$sess,err]="calibration rc=$rc: $(head -c 300 "$err")"
            log "$name size=$size sessions=$sess: ${R[$name,$size,$sess,err]}"
            return
        fi
        awk -v s="$secs" 'BEGIN { exit !(s < 2) }' && [ "$calib" -lt "$MAX_COUNT" ] || break
        # Aim the next calibration at about 3 s.
        calib=$(awk -v c="$calib" -v s="$secs" -v m="$MAX_COUNT" \
            'BEGIN { x = int(c / (s > 0.05 ? s : 0.05) * 3); if (x < 2 * c) x = 2 * c; if (x > m) x = m; print x }')
    done
    count=$(awk -v c="$calib" -v s="$secs" -v t="$SECONDS_PER_CASE" -v m="$MAX_COUNT" -v n="$sess" \
        'BEGIN { x = int(c / s * t); if (x < 10 * n) x = 10 * n; if (x > m) x = m; print x }')
    log "$name size=$size sessions=$sess: $count messages (calibration: $calib in ${secs}s)"
    local cpu0 cpu1
    cpu0=$(server_cpu "$name")
    if run_source "$count"; then
        cpu1=$(server_cpu "$name")
        R[$name,$size,$sess]=$(awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')
        R[$name,$size,$sess,relay]=$(awk -v c="$count" -v s="$rsecs" 'BEGIN { if (s > 0) printf "%.0f", c / s; else print "n/a" }')
        R[$name,$size,$sess,cpu]=$(awk -v c="$count" -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", (b - a) * 1000 / c }')
        log "$name size=$size sessions=$sess: accepted ${R[$name,$size,$sess]} msg/s ($count in ${secs}s)," \
            "relayed ${R[$name,$size,$sess,relay]} msg/s (sink complete after ${rsecs:-?}s)," \
            "${R[$name,$size,$sess,cpu]} ms CPU per message"
    else
        R[$name,$size,$sess]="FAILED"
        R[$name,$size,$sess,err]="rc=$rc after ${secs}s: $(head -c 300 "$err")"
        log "$name size=$size sessions=$sess: ${R[$name,$size,$sess,err]}"
    fi
}

# ceiling SIZE SESSIONS: the same load straight into smtp-sink, a C server that stores and relays nothing:
# what the load generator and the kernel allow on this machine, the most any server here could show.
ceiling() {
    local size=$1 sess=$2 count t0 secs
    count=$((sess == 1 ? 2000 : 20000))
    [ "$size" -gt 10000 ] && count=$((count / 4))
    t0=$EPOCHREALTIME
    if timeout 300 smtp-source -l "$size" -m "$count" -s "$sess" -f "$SENDER" -t "$RCPT" "127.0.0.1:$SINK_PORT" \
        >/dev/null 2>"$LOGS/ceiling.err"; then
        secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
        R[sink,$size,$sess]=$(awk -v c="$count" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')
        log "smtp-sink alone size=$size sessions=$sess: ${R[sink,$size,$sess]} msg/s ($count in ${secs}s)"
    else
        log "smtp-sink alone size=$size sessions=$sess failed: $(head -c 300 "$LOGS/ceiling.err")"
    fi
}

# ---------------------------------------------------------------- a large queue (issue 4)
pn_console() { # one console command over ssh, as an operator runs it
    JAVA_HOME=$JDK timeout 300 "$PN/bin/client" -h 127.0.0.1 -a "$PN_SSH" -u admin -p admin -r 10 -b <<< "$1" 2>&1
}

seconds_of() { # COMMAND...: run it, print its wall time in seconds (its output goes to $WORK/last.out)
    local t0=$EPOCHREALTIME
    "$@" > "$WORK/last.out" 2>&1
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

first_250() { # PORT: seconds until one message is accepted (smtp-source exits 0), at most 120 s
    local i
    for ((i = 0; i < 1200; i++)); do
        timeout 10 smtp-source -m 1 -f "$SENDER" -t "$RCPT" "127.0.0.1:$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# QUEUE_ENTRIES messages to a next hop that is down (a closed port): every one is tried once, deferred and
# kept. Then the listing an operator asks for (mta:queue-list, and mailq for Postfix) and a restart: how
# long until the server takes mail again with the whole queue loaded.
queue_test() {
    local t0 n
    log "postern: filling the queue with $QUEUE_ENTRIES deferred messages (next hop down)"
    pn_console "config:property-set -p org.postern.router relayhost \"[127.0.0.1]:$CLOSED_PORT\"" >/dev/null
    sleep 2
    timeout 1200 smtp-source -l 1024 -m "$QUEUE_ENTRIES" -s 50 -f "$SENDER" -t "$RCPT" "127.0.0.1:$PN_PORT" \
        >/dev/null 2>"$LOGS/queue-fill-postern.err" || log "postern: filling failed: $(head -c 300 "$LOGS/queue-fill-postern.err")"
    R[q_postern_echo]=$(seconds_of pn_console "echo ready")
    R[q_postern_stats]=$(seconds_of pn_console "mta:queue-stats --no-format")
    R[q_postern_count]=$(awk '$1 == "total" { print $2 }' "$WORK/last.out")
    R[q_postern_page]=$(seconds_of pn_console "mta:queue-list")
    R[q_postern_all]=$(seconds_of pn_console "mta:queue-list --limit 0 --no-format")
    R[q_postern_all_lines]=$(grep -c . "$WORK/last.out")
    log "postern: ${R[q_postern_count]} entries; console: echo ${R[q_postern_echo]}s, mta:queue-list ${R[q_postern_page]}s," \
        "all ${R[q_postern_all_lines]} rows ${R[q_postern_all]}s"
    log "postern: restarting with the full queue"
    JAVA_HOME=$JDK "$PN/bin/stop" >/dev/null 2>&1
    stop_pid "$POSTERN_PID" 60
    t0=$EPOCHREALTIME
    JAVA_HOME=$JDK KARAF_REDIRECT=$LOGS/postern-console-2.log "$PN/bin/start" || die "bin/start failed"
    if first_250 "$PN_PORT"; then
        R[q_postern_ready]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    else
        R[q_postern_ready]="not within 120 s"
    fi
    POSTERN_PID=$(tr -d ' \n' < "$PN/karaf.pid" 2>/dev/null)
    R[q_postern_loaded]=$(grep -h "entries loaded in" "$PN"/data/log/karaf.log | tail -1 | sed 's/.*| //')
    log "postern: ready (first 250) ${R[q_postern_ready]}s after bin/start; ${R[q_postern_loaded]}"

    log "postfix: filling the queue with $QUEUE_ENTRIES deferred messages (next hop down)"
    postconf -c "$PF/etc" -e "relayhost = [127.0.0.1]:$CLOSED_PORT" && postfix -c "$PF/etc" reload >/dev/null 2>&1
    sleep 2
    timeout 1200 smtp-source -l 1024 -m "$QUEUE_ENTRIES" -s 50 -f "$SENDER" -t "$RCPT" "127.0.0.1:$PF_PORT" \
        >/dev/null 2>"$LOGS/queue-fill-postfix.err" || log "postfix: filling failed: $(head -c 300 "$LOGS/queue-fill-postfix.err")"
    sleep 5 # pickup and qmgr take the last ones in
    R[q_postfix_all]=$(seconds_of postqueue -c "$PF/etc" -p)
    R[q_postfix_count]=$(tail -1 "$WORK/last.out" | awk '{ for (i = 1; i <= NF; i++) if ($i == "Requests.") print $(i - 1) }')
    log "postfix: ${R[q_postfix_count]} entries; mailq ${R[q_postfix_all]}s"
    log "postfix: restarting with the full queue"
    postfix -c "$PF/etc" stop >/dev/null 2>&1
    stop_pid "$PF_MASTER" 60
    t0=$EPOCHREALTIME
    postfix -c "$PF/etc" start >/dev/null 2>&1
    if first_250 "$PF_PORT"; then
        R[q_postfix_ready]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    else
        R[q_postfix_ready]="not within 120 s"
    fi
    PF_MASTER=$(tr -d ' \n' < "$PF/queue/pid/master.pid")
    log "postfix: ready (first 250) ${R[q_postfix_ready]}s after postfix start"
}

queue_report() {
    [ "$QUEUE_ENTRIES" -gt 0 ] || return 0
    echo
    echo "A queue of $QUEUE_ENTRIES deferred entries (1 KiB each, next hop down)"
    echo "  target (issue 4): ready within 10 s of a restart"
    printf '  %-44s %12s %12s\n' "" Postfix Postern
    printf '  %-44s %12s %12s\n' "entries queued" "${R[q_postfix_count]:-?}" "${R[q_postern_count]:-?}"
    printf '  %-44s %12s %12s\n' "restart to first 250, s (whole queue loaded)" "${R[q_postfix_ready]:-?}" "${R[q_postern_ready]:-?}"
    printf '  %-44s %12s %12s\n' "list every entry, s (mailq; queue-list --limit 0)" "${R[q_postfix_all]:-?}" "${R[q_postern_all]:-?}"
    printf '  %-44s %12s %12s\n' "mta:queue-list (first 100 entries), s" "-" "${R[q_postern_page]:-?}"
    printf '  %-44s %12s %12s\n' "a console command that does nothing, s" "-" "${R[q_postern_echo]:-?}"
    echo "  Postern's console times include the ssh login of bin/client (see the command that does nothing)."
    echo "  Postern's log: ${R[q_postern_loaded]:-?}"
}

# ---------------------------------------------------------------- the run
START_DATE=$(date -u +'%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${LOAD_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }' &&
    log "WARNING: load average $LOAD_START on $(nproc) cores: other work will skew the figures"
start_sink
start_postfix
start_postern
R[postern_rss_start]=$(awk '/VmRSS/ {print $2}' /proc/"$POSTERN_PID"/status)
R[postfix_pss_start]=$($TOOL mem "$PF_MASTER" --tree)

# Idle connections first, on fresh servers, so the heap is not already inflated by the load tests.
idle_test postern "$PN_PORT" $TOOL mem "$POSTERN_PID"
idle_test postfix "$PF_PORT" $TOOL mem "$PF_MASTER" --tree

# Warm-up, not measured: the JVM compiles its hot paths, Postfix fills its caches.
for target in "postfix $PF_PORT" "postern $PN_PORT"; do
    set -- $target
    log "$1: warm-up (3000 messages of 1 KiB, 10 sessions, not measured)"
    sunk=$(sink_count)
    timeout 120 smtp-source -l 1024 -m 3000 -s 10 -f "$SENDER" -t "$RCPT" "127.0.0.1:$2" >/dev/null 2>"$LOGS/warmup-$1.err" ||
        log "$1: warm-up failed: $(head -c 300 "$LOGS/warmup-$1.err")"
    sink_wait $((sunk + 3000)) "$1"
done
# Once more on the warm JVM: a server that has run a while greets faster than a fresh one.
idle_test postern-warm "$PN_PORT" $TOOL mem "$POSTERN_PID"

for size in $SIZES; do
    for sess in $SESSIONS; do
        throughput postfix "$PF_PORT" "$size" "$sess"
        throughput postern "$PN_PORT" "$size" "$sess"
        ceiling "$size" "$sess"
    done
done
R[postern_rss_end]=$(awk '/VmRSS/ {print $2}' /proc/"$POSTERN_PID"/status)
kill -0 "$POSTERN_PID" 2>/dev/null || log "Postern is no longer running"
[ "$QUEUE_ENTRIES" -gt 0 ] && queue_test
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
# Distinct WARN/ERROR messages of the run (session ids and numbers folded), for the report.
POSTERN_ERRORS=$(cat "$PN"/data/log/karaf.log* 2>/dev/null | grep -E '\| (ERROR|WARN) ' |
    awk -F' [|] ' '{ m = $NF; gsub(/[0-9]+/, "N", m); print $2 " " substr(m, 1, 160) }' | sort | uniq -c | sort -rn | head -8)

# ---------------------------------------------------------------- report
# table SUFFIX TARGETS [lower]: one row per case, R[server,size,sessions SUFFIX]; TARGETS lists
# FACTOR:SIZE for the 50-session rows; "lower" means smaller is better (the ratio is Postfix / Postern)
table() {
    local suffix=$1 targets=$2 lower=${3:-} size sess a b ratio target t c
    # The accepted table has a last column: smtp-sink alone, and how many times Postfix's figure that is.
    if [ -z "$suffix" ]; then
        printf '  %-8s %8s %9s %9s %7s  %-16s %s\n' size sessions Postfix Postern ratio "target (issue 4)" "smtp-sink alone (ceiling)"
    else
        printf '  %-8s %8s %9s %9s %7s  %s\n' size sessions Postfix Postern ratio "${targets:+target (issue 4)}"
    fi
    for size in $SIZES; do
        for sess in $SESSIONS; do
            a=${R[postfix,$size,$sess$suffix]:-n/a}; b=${R[postern,$size,$sess$suffix]:-n/a}
            ratio=$(awk -v a="$a" -v b="$b" -v l="$lower" \
                'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", (l ? a / b : b / a); else print "-" }')
            target=
            for t in $targets; do
                [ "$sess" = 50 ] && [ "$size" = "${t#*:}" ] && target=">= ${t%%:*} Postfix"
            done
            if [ -z "$suffix" ]; then
                c=${R[sink,$size,$sess]:-n/a}
                c="$c$(awk -v a="$a" -v c="$c" 'BEGIN { if (a + 0 > 0 && c + 0 > 0) printf " (%.1fx Postfix)", c / a }')"
                printf '  %-8s %8s %9s %9s %7s  %-16s %s\n' "$(human_size "$size")" "$sess" "$a" "$b" "$ratio" "$target" "$c"
            else
                printf '  %-8s %8s %9s %9s %7s  %s\n' "$(human_size "$size")" "$sess" "$a" "$b" "$ratio" "$target"
            fi
        done
    done
}

human_size() { [ "$1" -ge 1024 ] && echo "$(($1 / 1024)) KiB" || echo "$1 B"; }

report() {
    echo
    echo "== Postern vs Postfix, $START_DATE, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "   Postern: $(basename "$TARBALL") on $("$JDK/bin/java" -version 2>&1 | head -1)"
    echo "   Postfix: $(postconf -d -h mail_version), default settings except loopback, relayhost and process limit $POSTFIX_PROCS"
    echo "   Both relay every message to one smtp-sink on 127.0.0.1"
    echo "   load average at start $LOAD_START, at the end $LOAD_END (other work on the machine skews the figures)"
    echo
    echo "Accepted messages per second (smtp-source, one message per connection, about ${SECONDS_PER_CASE}s per case)"
    table "" "5x:1024 3x:102400"
    echo "Relayed messages per second (from the first connection until the sink has every message)"
    table ",relay" "3x:1024 3x:102400"
    echo "CPU time per message in ms (user + system: accept, queue, relay; Postfix: all its processes)"
    table ",cpu" "" lower
    for key in "${!R[@]}"; do
        case $key in *,err) echo "  $key: ${R[$key]}" ;; esac
    done | sort
    echo
    echo "Idle connections: $IDLE_CONNS requested, $IDLE_PARALLEL being opened at a time, ${IDLE_DEADLINE}s deadline"
    echo "  target (issue 3): $IDLE_CONNS held, all greeted within 3 s, under 10 kB each"
    local name j mb ma
    for name in "${IDLE_LABELS[@]}"; do
        j=${R[${name}_idle_json]:-}
        [ -n "$j" ] || { echo "  $name: no result"; continue; }
        read -r -a mb <<< "${R[${name}_idle_mem_before]}"
        read -r -a ma <<< "${R[${name}_idle_mem_after]}"
        "$PYTHON" - "$name" "$j" "${mb[*]}" "${ma[*]}" "${R[${name}_heap_before]:-}" "${R[${name}_heap_after]:-}" <<'EOF'
import json, sys
name, j, mb, ma, hb, ha = sys.argv[1:7]
r = json.loads(j)
g = r["greeted"]
rb, pb, nb = map(int, mb.split()); ra, pa, na = map(int, ma.split())
def per(kib_before, kib_after):
    return "%.1f kB" % ((kib_after - kib_before) * 1024 / g / 1000) if g else "-"
title = {"postern": "Postern, fresh JVM (first test after start)", "postern-warm": "Postern, after the warm-up",
         "postfix": "Postfix"}.get(name, name)
print(f"  {title}:")
print(f"    greeted {g} of {r['requested']}, {r['greeted_within_3s']} within 3 s; "
      f"last greeting after {r['seconds_to_last_greeting']} s (median {r['seconds_to_median_greeting']} s)")
if r["errors"]:
    print(f"    not greeted: {r['errors']}")
if name.startswith("postern"):
    print(f"    JVM RSS {rb // 1024} MiB -> {ra // 1024} MiB: {per(rb, ra)} per greeted connection")
    if hb and ha:
        print(f"    heap used after full GC {int(hb) // 1024} MiB -> {int(ha) // 1024} MiB: "
              f"{per(int(hb), int(ha))} per greeted connection")
else:
    print(f"    processes {nb} -> {na}; PSS {pb // 1024} MiB -> {pa // 1024} MiB: {per(pb, pa)} per greeted connection "
          f"(RSS sum {rb // 1024} -> {ra // 1024} MiB: {per(rb, ra)}, counts shared pages in every process)")
EOF
    done
    queue_report
    echo
    echo "Postern JVM RSS: $((${R[postern_rss_start]} / 1024)) MiB after start, $((${R[postern_rss_end]:-0} / 1024)) MiB at the end"
    echo "Postern WARN/ERROR lines in karaf.log (count, level, message with digits folded):"
    echo "${POSTERN_ERRORS:-  none}" | sed 's/^/  /'
    echo "Postfix instance at start: $(echo "${R[postfix_pss_start]}" | awk '{printf "%d processes, PSS %d MiB", $3, $2 / 1024}')"
}
report
STATUS=ok
