#!/usr/bin/env python3
"""Small helpers for bench/run.sh (standard library only).

  freeports N                 print N distinct free TCP ports on 127.0.0.1
  greeting PORT SECONDS       wait until 127.0.0.1:PORT answers with a 220 greeting
  mem PID [--tree]            print "rss_kib pss_kib nproc" of PID (with --tree: PID and all descendants)
  cpu PID [--tree]            print the CPU seconds (user + system, reaped children included) of PID (or tree)
  idle PORT COUNT ...         open COUNT idle SMTP connections, report, hold them until stdin closes
"""
import argparse
import errno
import json
import os
import select
import socket
import sys
import time


def freeports(n):
    # Keep every socket bound until all are chosen, so no port is handed out twice.
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    print(" ".join(map(str, ports)))


def greeting(port, seconds):
    deadline = time.monotonic() + seconds
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                line = s.makefile("rb").readline()
                if line.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return 0
                last = repr(line)
        except OSError as e:
            last = str(e)
        time.sleep(0.3)
    print(f"no SMTP greeting on 127.0.0.1:{port} within {seconds}s: {last}", file=sys.stderr)
    return 1


def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                # The command name may hold spaces and parentheses: parse after the last ')'.
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _proc_kib(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid, tree):
    pids = [pid]
    if tree:
        kids = _children()
        i = 0
        while i < len(pids):
            pids.extend(kids.get(pids[i], []))
            i += 1
    return pids


def cpu(pid, tree):
    ticks = 0
    for p in _tree(pid, tree):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: processes that ended and were reaped count in their parent.
        ticks += sum(int(x) for x in fields[11:15])
    print("%.2f" % (ticks / os.sysconf("SC_CLK_TCK")))


def mem(pid, tree):
    pids = _tree(pid, tree)
    rss = sum(_proc_kib(p, "status", "VmRSS") for p in pids)
    # PSS shares each shared page among the processes that map it: the fair sum for many processes.
    pss = sum(_proc_kib(p, "smaps_rollup", "Pss") for p in pids)
    print(rss, pss, len(pids))


def idle(args):
    """Open args.count connections, args.parallel at a time, and wait for each 220 greeting.

    A plain epoll loop rather than asyncio streams: the client must be much cheaper than the
    server it measures, on the same two cores."""
    ep = select.epoll()
    conns = {}  # fd -> [socket, bytes received so far]
    held = []
    greeted_at = []
    errors = {}
    started = 0
    t0 = time.monotonic()
    deadline = t0 + args.deadline

    def fail(fd, why):
        sock = conns.pop(fd)[0]
        ep.unregister(fd)
        sock.close()
        errors[why] = errors.get(why, 0) + 1

    while (started < args.count or conns) and time.monotonic() < deadline:
        while len(conns) < args.parallel and started < args.count:
            started += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(("127.0.0.1", args.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                why = "connect: " + os.strerror(err)
                errors[why] = errors.get(why, 0) + 1
                continue
            conns[sock.fileno()] = [sock, b""]
            # Readable means the greeting (or an error) arrived; no need to watch the connect itself.
            ep.register(sock.fileno(), select.EPOLLIN)
        for fd, _ in ep.poll(0.05):
            entry = conns[fd]
            try:
                data = entry[0].recv(4096)
            except OSError as e:
                fail(fd, type(e).__name__)
                continue
            if not data:
                fail(fd, "closed before greeting")
                continue
            entry[1] += data
            lines = entry[1].split(b"\r\n")
            for line in lines[:-1]:
                if not line.startswith(b"220"):
                    fail(fd, "greeting " + line[:3].decode("ascii", "replace"))
                    break
                if line[3:4] != b"-":
                    greeted_at.append(time.monotonic() - t0)
                    ep.unregister(fd)
                    held.append(conns.pop(fd)[0])
                    break
    # What is still waiting at the deadline is closed, so the server can forget it.
    for fd in list(conns):
        fail(fd, "no greeting within deadline")
    unstarted = args.count - started
    if unstarted:
        errors["not attempted before deadline"] = unstarted
    greeted_at.sort()
    result = {
        "requested": args.count,
        "greeted": len(greeted_at),
        "greeted_within_3s": sum(1 for t in greeted_at if t <= 3.0),
        "seconds_to_last_greeting": round(greeted_at[-1], 3) if greeted_at else None,
        "seconds_to_median_greeting": round(greeted_at[len(greeted_at) // 2], 3) if greeted_at else None,
        "errors": errors,
    }
    print(json.dumps(result), flush=True)
    # Hold the greeted connections until run.sh closes our stdin (or kills us), at most args.hold s.
    select.select([sys.stdin], [], [], args.hold)
    for sock in held:
        sock.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("freeports")
    a.add_argument("n", type=int)
    a = sub.add_parser("greeting")
    a.add_argument("port", type=int)
    a.add_argument("seconds", type=float)
    a = sub.add_parser("mem")
    a.add_argument("pid", type=int)
    a.add_argument("--tree", action="store_true")
    a = sub.add_parser("cpu")
    a.add_argument("pid", type=int)
    a.add_argument("--tree", action="store_true")
    a = sub.add_parser("idle")
    a.add_argument("port", type=int)
    a.add_argument("count", type=int)
    a.add_argument("--parallel", type=int, default=1000, help="connections being opened at once")
    a.add_argument("--deadline", type=float, default=20.0, help="seconds for all greetings")
    a.add_argument("--hold", type=float, default=300.0, help="longest time to hold the connections")
    args = p.parse_args()
    if args.cmd == "freeports":
        freeports(args.n)
    elif args.cmd == "greeting":
        sys.exit(greeting(args.port, args.seconds))
    elif args.cmd == "mem":
        mem(args.pid, args.tree)
    elif args.cmd == "cpu":
        cpu(args.pid, args.tree)
    else:
        idle(args)


if __name__ == "__main__":
    main()
