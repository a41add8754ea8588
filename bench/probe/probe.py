#!/usr/bin/env python3
"""Black-box probe of a Postern SMTP listener pair (mx and submission), the way an outside suite would.

Prints one PASS/FAIL/SKIP line per case and exits with the number of failures (at most 100).
Stdlib only (socket, ssl); uses swaks for one case when it is installed.

  python3 bench/probe/probe.py --host 127.0.0.1 --mx 2525 --submission 2587

Assumptions (the dev distribution): LOCAL is a deliverable local address (postmaster@localhost), the
client address is NOT in trusted.networks, and the submission port has no working credentials.
--slow adds the timeout cases (a few minutes each, with the listener's default 300 s timeouts).
"""

import argparse
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import time

ARGS = None
RESULTS = []


class Conn:
    """A raw SMTP connection: send exact bytes, read whole (multi-line) replies."""

    def __init__(self, port, timeout=5.0, greet=True):
        self.sock = socket.create_connection((ARGS.host, port), timeout=timeout)
        self.port = port
        self.buf = b""
        self.timeout = timeout
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, ssl.SSLError, OSError):
            return b""
        return chunk

    def line(self, timeout=None):
        """One reply line without CRLF; None on timeout, '' (EOF) when the server closed."""
        timeout = self.timeout if timeout is None else timeout
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0:
                return None
            chunk = self._fill(left)
            if chunk is None:
                return None
            if chunk == b"":
                return ""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, timeout=None):
        """(code, [lines]) of one reply; (None, []) on timeout, (0, []) on EOF."""
        lines = []
        while True:
            l = self.line(timeout)
            if l is None:
                return (None, lines)
            if l == "":
                return (0, lines)
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                try:
                    return (int(l[:3]), lines)
                except ValueError:
                    return (-1, lines)

    def cmd(self, text, timeout=None):
        self.send(text + "\r\n")
        return self.reply(timeout)

    def replies(self, window=1.5):
        """Every reply that arrives within the window (for pipelined or unexpected replies)."""
        out = []
        while True:
            code, lines = self.reply(window)
            if code is None:
                return out
            out.append((code, lines))
            if code == 0:
                return out

    def closed(self, timeout=3.0):
        """True when the server closes the connection within the timeout (after any pending replies)."""
        end = time.time() + timeout
        while time.time() < end:
            chunk = self._fill(end - time.time())
            if chunk is None:
                return False
            if chunk == b"":
                return True
            self.buf += chunk
        return False

    def ehlo(self, name="probe.example"):
        return self.cmd("EHLO " + name)

    def starttls(self):
        code, lines = self.cmd("STARTTLS")
        if code != 220:
            raise AssertionError("STARTTLS: %s" % lines)
        self.tls()

    def tls(self, **kw):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for k, v in kw.items():
            setattr(ctx, k, v)
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def case(name, group):
    def wrap(fn):
        fn.case_name = name
        fn.group = group
        CASES.append(fn)
        return fn
    return wrap


CASES = []


def check(cond, detail):
    if not cond:
        raise AssertionError(detail)


def code_of(r):
    return r[0]


def show(r):
    return " | ".join(r[1]) if r[1] else ("EOF" if r[0] == 0 else "no reply")


def mx(**kw):
    return Conn(ARGS.mx, **kw)


def sub(**kw):
    return Conn(ARGS.submission, **kw)


def expect(c, command, codes, what=None):
    r = c.cmd(command)
    check(r[0] in codes, "%s -> %s (expected %s)" % (what or command, show(r), "/".join(map(str, codes))))
    return r


def mail_ready(c, sender="<probe@example.org>"):
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:" + sender, [250])


# ---------------------------------------------------------------- conformance

@case("greeting is 220", "conformance")
def _():
    c = mx()
    check(c.greeting[0] == 220, show(c.greeting))


@case("EHLO advertises the extensions, no AUTH on mx", "conformance")
def _():
    c = mx()
    r = expect(c, "EHLO probe.example", [250])
    text = " ".join(r[1]).upper()
    for ext in ["PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS", "CHUNKING", "SMTPUTF8", "DSN"]:
        check(ext in text, "missing " + ext + ": " + show(r))
    check("AUTH" not in text, "AUTH offered on mx: " + show(r))


@case("verbs are case-insensitive", "conformance")
def _():
    c = mx()
    expect(c, "ehlo probe.example", [250])
    expect(c, "mail from:<probe@example.org>", [250])
    expect(c, "rCpT tO:<" + ARGS.local + ">", [250])
    expect(c, "rset", [250])
    expect(c, "nOoP", [250])


@case("EHLO with an address literal accepted", "conformance")
def _():
    c = mx()
    expect(c, "EHLO [127.0.0.1]", [250])
    expect(c, "EHLO [IPv6:::1]", [250])


@case("HELO gives a one-line 250", "conformance")
def _():
    c = mx()
    r = expect(c, "HELO probe.example", [250])
    check(len(r[1]) == 1, show(r))


@case("MAIL FROM:<> (null sender) accepted", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<>", [250])
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])


@case("RCPT TO:<postmaster> without domain accepted, any case", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<postmaster>", [250])
    expect(c, "RCPT TO:<PostMaster>", [250])


@case("quoted local part is valid syntax", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, 'MAIL FROM:<"john doe"@example.org>', [250])
    r = c.cmd('RCPT TO:<"no such user"@localhost>')
    check(r[0] != 501 and r[0] >= 500 and "5.1.1" in show(r) or r[0] == 250, "quoted rcpt -> " + show(r))


@case("IP-literal sender accepted", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@[192.0.2.1]>", [250])
    expect(c, "RSET", [250])
    expect(c, "MAIL FROM:<probe@[IPv6:2001:db8::1]>", [250])


@case("trailing spaces are tolerated", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example  ", [250])
    expect(c, "MAIL FROM:<probe@example.org>  ", [250])
    expect(c, "RCPT TO:<" + ARGS.local + ">  ", [250])
    expect(c, "NOOP  ", [250])
    expect(c, "RSET  ", [250])


@case("space after the colon tolerated", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM: <probe@example.org>", [250])
    expect(c, "RCPT TO: <" + ARGS.local + ">", [250])


@case("missing colon -> 501", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM <probe@example.org>", [501])
    expect(c, "MAIL FROM:<probe@example.org>", [250])
    expect(c, "RCPT TO <" + ARGS.local + ">", [501])


@case("address syntax errors -> 501/553", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    for bad in ["MAIL FROM:probe@example.org", "MAIL FROM:<probe@example.org", "MAIL FROM:<a@b@example.org>",
                "MAIL FROM:<@>", "MAIL FROM:<a b@example.org>", "MAIL FROM:<probe@exa mple.org>", "MAIL FROM:<>>",
                "MAIL FROM:<probe@example.org> <x@y>", "MAIL FROM:<probe@-example.org>", "MAIL FROM:<probe@example..org>"]:
        r = c.cmd(bad)
        check(r[0] in (501, 553), bad + " -> " + show(r))


@case("unknown ESMTP parameter -> 555", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org> FOO=BAR", [555])
    expect(c, "MAIL FROM:<probe@example.org>", [250])
    expect(c, "RCPT TO:<" + ARGS.local + "> FOO=BAR", [555])


@case("ESMTP parameters: SIZE, BODY, DSN, SMTPUTF8 accepted", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc SMTPUTF8", [250])
    expect(c, "RCPT TO:<" + ARGS.local + "> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;" + ARGS.local, [250])


@case("MAIL SIZE over the limit -> 552", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org> SIZE=99999999999", [552])


@case("out of sequence -> 503", "conformance")
def _():
    c = mx()
    expect(c, "MAIL FROM:<probe@example.org>", [503], "MAIL before EHLO")
    expect(c, "EHLO probe.example", [250])
    expect(c, "RCPT TO:<" + ARGS.local + ">", [503], "RCPT before MAIL")
    expect(c, "DATA", [503], "DATA before MAIL")
    expect(c, "MAIL FROM:<probe@example.org>", [250])
    expect(c, "MAIL FROM:<probe@example.org>", [503], "nested MAIL")


@case("DATA without RCPT -> 503/554", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "DATA", [503, 554])


@case("unknown command -> 500", "conformance")
def _():
    c = mx()
    expect(c, "FOOBAR", [500])
    expect(c, "EHLO probe.example", [250])
    expect(c, "XYZZY plugh", [500])


@case("empty line -> 500", "conformance")
def _():
    c = mx()
    expect(c, "", [500, 501])


@case("command line of 512 octets passes, 513 -> 500 5.5.2", "conformance")
def _():
    c = mx()
    r = c.cmd("NOOP " + "x" * (512 - 7))
    check(r[0] == 250, "512 octets -> " + show(r))
    r = c.cmd("NOOP " + "x" * (513 - 7))
    check(r[0] == 500 and "5.5.2" in show(r), "513 octets -> " + show(r))


@case("too long command line -> 500 5.5.2", "conformance")
def _():
    c = mx()
    r = c.cmd("EHLO " + "a" * 2000)
    check(r[0] == 500 and "5.5.2" in show(r), show(r))


@case("HELO/EHLO without argument -> 501", "conformance")
def _():
    c = mx()
    expect(c, "HELO", [501])
    expect(c, "EHLO", [501])
    expect(c, "HELO ", [501])


@case("RSET mid-transaction clears it", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "RSET", [250])
    expect(c, "RCPT TO:<" + ARGS.local + ">", [503], "RCPT after RSET")
    expect(c, "DATA", [503], "DATA after RSET")


@case("NOOP 250, HELP 214/211, VRFY 252/502", "conformance")
def _():
    c = mx()
    expect(c, "NOOP", [250])
    expect(c, "NOOP with an argument", [250])
    expect(c, "HELP", [214, 211])
    expect(c, "VRFY postmaster", [252, 502, 550, 250])
    expect(c, "EXPN staff", [502, 550, 252, 500])


@case("QUIT -> 221 and close; nothing answered after it", "conformance")
def _():
    c = mx()
    c.send("QUIT\r\nNOOP\r\n")
    r = c.reply()
    check(r[0] == 221, show(r))
    check(c.closed(), "not closed after QUIT")
    check(b"250" not in c.buf, "answered after QUIT: %r" % c.buf)


@case("a message is accepted (DATA), dot-stuffing", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "DATA", [354])
    c.send("Subject: probe\r\n\r\n..dotted\r\nbody\r\n.\r\n")
    r = c.reply()
    check(r[0] == 250, show(r))


@case("pipelined transaction: replies in order", "conformance")
def _():
    c = mx()
    c.send("EHLO probe.example\r\nMAIL FROM:<probe@example.org>\r\nRCPT TO:<" + ARGS.local + ">\r\n"
           "RCPT TO:<relaytest@foreign.example>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    check(codes[:3] == [250, 250, 250] and codes[3] >= 500 and codes[4] == 354, "codes %s" % codes)
    c.send("Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n")
    check([c.reply()[0], c.reply()[0]] == [250, 221], "end")


@case("BDAT (CHUNKING) transaction", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    body = b"Subject: bdat\r\n\r\nline\r\n.\r\n"
    c.send(b"BDAT %d\r\n" % len(body) + body)
    check(c.reply()[0] == 250, "first chunk")
    c.send(b"BDAT 0 LAST\r\n")
    r = c.reply()
    check(r[0] == 250 and "queued" in show(r).lower(), show(r))


@case("DATA after BDAT in the same transaction refused", "conformance")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    c.send(b"BDAT 3\r\nabc")
    check(c.reply()[0] == 250, "chunk")
    expect(c, "DATA", [503])


@case("recipient limit -> 452", "conformance")
def _():
    c = mx()
    mail_ready(c)
    c.send(("RCPT TO:<" + ARGS.local + ">\r\n") * 101)
    codes = [c.reply()[0] for _ in range(101)]
    check(codes[:100] == [250] * 100 and codes[100] == 452, "codes: %s" % codes[95:])


@case("SMTPUTF8 address needs the SMTPUTF8 parameter", "conformance")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<jörg@example.org>", [553, 501, 555])
    expect(c, "MAIL FROM:<jörg@example.org> SMTPUTF8", [250])


@case("swaks: a full STARTTLS transaction", "conformance")
def _():
    if not shutil.which("swaks"):
        raise SkipCase("swaks not installed")
    p = subprocess.run(["swaks", "--server", ARGS.host, "--port", str(ARGS.mx), "--to", ARGS.local,
                        "--from", "probe@example.org", "--tls", "--timeout", "10", "--header", "Subject: swaks probe"],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "queued" in p.stdout.lower(), (p.stdout + p.stderr)[-400:])


# ---------------------------------------------------------------- open relay

RELAY_TRICKS = [
    "<relaytest@foreign.example>",
    "<RELAYTEST@FOREIGN.EXAMPLE>",
    "<relaytest%foreign.example@localhost>",
    "<relaytest%foreign.example@[127.0.0.1]>",
    "<\"relaytest@foreign.example\">",
    "<\"relaytest@foreign.example\"@localhost>",
    "<\"relaytest%foreign.example\"@localhost>",
    "<relaytest@foreign.example@localhost>",
    "<relaytest@foreign.example@[127.0.0.1]>",
    "<@localhost:relaytest@foreign.example>",
    "<@localhost,@foreign.example:relaytest@foreign.example>",
    "<@[127.0.0.1]:relaytest@foreign.example>",
    "<foreign.example!relaytest>",
    "<foreign.example!relaytest@localhost>",
    "<relaytest@[192.0.2.1]>",
    "<relaytest@foreign.example.>",
    "<relaytest@localhost.foreign.example>",
    "<relaytest@foreign.example%localhost>",
    "<relaytest\\@foreign.example@localhost>",
    "<relaytest@[IPv6:2001:db8::1]>",
]


@case("open relay probes (untrusted client, no AUTH): no foreign RCPT accepted", "relay")
def _():
    accepted = []
    for sender in ["<probe@example.org>", "<>", "<postmaster@localhost>", "<spoof@localhost>"]:
        for rcpt in RELAY_TRICKS:
            c = mx()  # one session per probe, so the error limit cannot hide a reply
            expect(c, "EHLO probe.example", [250])
            expect(c, "MAIL FROM:" + sender, [250])
            r = c.cmd("RCPT TO:" + rcpt)
            if r[0] is None or 200 <= r[0] < 300:
                accepted.append("%s from %s: %s" % (rcpt, sender, show(r)))
            c.close()
    check(not accepted, "accepted: " + "; ".join(accepted))


@case("relay probes do not count against one connection forever (errors -> 421)", "relay")
def _():
    c = mx()
    mail_ready(c)
    codes = []
    for i in range(30):
        r = c.cmd("RCPT TO:<relaytest%d@foreign.example>" % i)
        codes.append(r[0])
        if r[0] in (0, 421):
            break
    check(421 in codes or 0 in codes, "never cut off after %d refused recipients" % len(codes))


@case("submission: no relay without AUTH", "relay")
def _():
    c = sub()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org>", [530])
    c.starttls()
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org>", [530])
    expect(c, "RCPT TO:<relaytest@foreign.example>", [503, 530])


# ---------------------------------------------------------------- SMTP smuggling

SMUGGLE = [
    ("LF.LF", b"\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("CRLF.LF", b"\r\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CR.CRLF", b"\r.\r\n"),
    ("CR.LF", b"\r.\n"),
    ("LF.CR", b"\n.\r"),
    ("CRLF.NUL.CRLF", b"\r\n.\x00\r\n"),
    ("CRLF.NUL CRLF", b"\r\n\x00.\r\n"),
    ("CRLF.CR CRLF", b"\r\n.\r\r\n"),
    ("CRLF SP.CRLF", b"\r\n .\r\n"),
    ("CRLF.SP CRLF", b"\r\n. \r\n"),
    ("LF LF.LF LF", b"\n\n.\n\n"),
    ("long line then LF.CRLF", b"\r\n" + b"y" * 1200 + b"\n.\r\n"),
]


def smuggle(name, variant, port):
    c = Conn(port)
    expect(c, "EHLO probe.example", [250])
    expect(c, "MAIL FROM:<probe@example.org>", [250])
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "DATA", [354])
    c.send(b"Subject: smuggling " + name.encode() + b"\r\n\r\nfirst" + variant
           + b"MAIL FROM:<smuggler@example.org>\r\nRCPT TO:<" + ARGS.local.encode()
           + b">\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
    # If the variant did not end the data, this ends it; if it did, a real end gets a 500 or is part of nothing.
    rs = c.replies(2.0)
    c.send(b"\r\n.\r\nNOOP\r\n")
    rs += c.replies(2.0)
    codes = [r[0] for r in rs]
    # Exactly one end-of-data outcome, then the NOOP's 250 (or 500 for a stray line): never a 354, never a
    # second MAIL/RCPT accepted.
    bad = [r for r in rs if r[0] == 354 or any(" 2.1.0" in l or " 2.1.5" in l for l in r[1])]
    queued = [r for r in rs if r[0] == 250 and "queued" in show(r).lower()]
    check(not bad and len(queued) <= 1, "second transaction started: %s" % [show(r) for r in rs])
    return codes


for _name, _variant in SMUGGLE:
    def _make(name=_name, variant=_variant):
        def fn():
            smuggle(name, variant, ARGS.mx)
        fn.case_name = "smuggling " + name + ": no second transaction"
        fn.group = "smuggling"
        return fn
    CASES.append(_make())


@case("smuggling through BDAT: chunk content never read as commands", "smuggling")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    body = b"x\r\n.\r\nMAIL FROM:<smuggler@example.org>\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body + b"NOOP\r\n")
    rs = c.replies(2.0)
    check([r[0] for r in rs] == [250, 250] and "queued" in show(rs[0]).lower(), [show(r) for r in rs])


# ---------------------------------------------------------------- STARTTLS

def starttls_injection(port, injected):
    c = Conn(port)
    expect(c, "EHLO probe.example", [250])
    c.send("STARTTLS\r\n" + injected)
    r = c.reply()
    check(r[0] == 220, "STARTTLS -> " + show(r))
    check(c.buf == b"", "plaintext after the 220: %r" % c.buf)
    c.tls()
    late = c.replies(1.5)
    check(not late, "injected command answered inside TLS: %s" % [show(x) for x in late])
    r = c.cmd("MAIL FROM:<probe@example.org>")
    check(r[0] == 503, "session not reset after STARTTLS (MAIL without EHLO) -> " + show(r))
    r = expect(c, "EHLO probe.example", [250])
    check("STARTTLS" not in " ".join(r[1]).upper(), "STARTTLS offered again: " + show(r))
    expect(c, "STARTTLS", [503, 554, 454])
    return c


@case("STARTTLS injection on mx (STARTTLS\\r\\nRSET in one packet)", "starttls")
def _():
    starttls_injection(ARGS.mx, "RSET\r\n")


@case("STARTTLS injection on mx (MAIL FROM pipelined)", "starttls")
def _():
    starttls_injection(ARGS.mx, "EHLO injected\r\nMAIL FROM:<injected@example.org>\r\n")


@case("STARTTLS injection behind a pipelined EHLO (EHLO, STARTTLS, RSET in one packet)", "starttls")
def _():
    c = mx()
    c.send("EHLO probe.example\r\nSTARTTLS\r\nRSET\r\nEHLO injected\r\n")
    check(c.reply()[0] == 250, "EHLO")
    r = c.reply()
    check(r[0] == 220, "STARTTLS -> " + show(r))
    check(c.buf == b"", "plaintext after the 220: %r" % c.buf)
    c.tls()
    late = c.replies(1.5)
    check(not late, "injected commands answered inside TLS: %s" % [show(x) for x in late])
    expect(c, "EHLO probe.example", [250])


@case("STARTTLS injection on submission (AUTH pipelined)", "starttls")
def _():
    starttls_injection(ARGS.submission, "AUTH PLAIN AHByb2JlAHByb2Jl\r\n")


@case("STARTTLS with an argument -> 501", "starttls")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "STARTTLS now", [501])


@case("TLS 1.0/1.1 refused after STARTTLS", "starttls")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "STARTTLS", [220])
    try:
        c.tls(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    except ssl.SSLError as e:
        if "no protocols available" in str(e).lower() or "unsupported" in str(e).lower():
            raise SkipCase("the local OpenSSL cannot offer TLS 1.1: " + str(e))
        return  # the handshake failed: as it should
    except OSError:
        return
    raise AssertionError("handshake with TLS <= 1.1 succeeded")


@case("garbage instead of a TLS handshake: server closes", "starttls")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "STARTTLS", [220])
    c.send(b"EHLO plaintext\r\n" + os.urandom(200))
    check(c.closed(5), "still open")
    expect(mx(), "NOOP", [250])


# ---------------------------------------------------------------- AUTH

@case("submission: AUTH without TLS -> 530/538, not advertised", "auth")
def _():
    c = sub()
    r = expect(c, "EHLO probe.example", [250])
    check("AUTH" not in " ".join(r[1]).upper(), "AUTH advertised in clear: " + show(r))
    expect(c, "AUTH PLAIN AHByb2JlAHByb2Jl", [530, 538])
    expect(c, "AUTH LOGIN", [530, 538])


@case("submission: MAIL without AUTH -> 530", "auth")
def _():
    c = sub()
    c.ehlo()
    c.starttls()
    r = expect(c, "EHLO probe.example", [250])
    check("AUTH" in " ".join(r[1]).upper(), "AUTH not advertised after TLS: " + show(r))
    expect(c, "MAIL FROM:<probe@example.org>", [530])


def tls_sub():
    c = sub()
    c.ehlo()
    c.starttls()
    expect(c, "EHLO probe.example", [250])
    return c


@case("AUTH garbage base64 -> 501", "auth")
def _():
    c = tls_sub()
    expect(c, "AUTH PLAIN !!!not-base64!!!", [501])
    expect(c, "AUTH PLAIN", [334])
    expect(c, "%%%%", [501])
    expect(c, "AUTH LOGIN", [334])
    expect(c, "????", [501])


@case("AUTH cancel '*' -> 501", "auth")
def _():
    c = tls_sub()
    expect(c, "AUTH PLAIN", [334])
    expect(c, "*", [501])
    expect(c, "AUTH LOGIN", [334])
    expect(c, "cHJvYmU=", [334])
    expect(c, "*", [501])
    expect(c, "NOOP", [250])


@case("AUTH syntax: no mechanism -> 501, unknown -> 504, before EHLO -> 503", "auth")
def _():
    c = tls_sub()
    expect(c, "AUTH", [501])
    expect(c, "AUTH CRAM-MD5X", [504])
    expect(c, "AUTH PLAIN a b c", [501])
    c2 = sub()
    c2.ehlo()
    c2.starttls()
    expect(c2, "AUTH PLAIN AHByb2JlAHByb2Jl", [503])


@case("AUTH wrong credentials -> 535 (or 454 with no authenticator)", "auth")
def _():
    c = tls_sub()
    expect(c, "AUTH PLAIN AHByb2JlQGV4YW1wbGUub3JnAHdyb25n", [535, 454])
    expect(c, "MAIL FROM:<probe@example.org>", [530])


@case("AUTH PLAIN malformed (no NULs, empty) -> 501", "auth")
def _():
    c = tls_sub()
    expect(c, "AUTH PLAIN cHJvYmU=", [501])
    expect(c, "AUTH PLAIN =", [501])


@case("mx: AUTH -> 503", "auth")
def _():
    c = mx()
    expect(c, "EHLO probe.example", [250])
    expect(c, "AUTH PLAIN AHByb2JlAHByb2Jl", [503, 502])


# ---------------------------------------------------------------- robustness

@case("binary garbage: errors or close, server stays up", "robustness")
def _():
    rnd = random.Random(5321)
    c = mx()
    garbage = bytes(rnd.randrange(256) for _ in range(4000)) + b"\r\n"
    c.send(garbage)
    rs = c.replies(2.0)
    check(all(r[0] in (0, 421, 500, 501, 502, 503) for r in rs), [show(r) for r in rs][:5])
    c2 = mx()
    expect(c2, "NOOP", [250])


@case("100 KB without a line end: 500 5.5.2 / close, without waiting for a line end", "robustness")
def _():
    c = mx()
    try:
        c.send(b"A" * 100_000)
    except OSError:
        pass
    r = c.reply(5)
    check(r[0] == 0 or (r[0] == 500 and "5.5.2" in show(r)) or r[0] == 421, "after 100 KB: " + show(r))
    check(r[0] == 0 or c.closed(5), "not closed")


@case("100 KB line inside DATA: message refused, session goes on", "robustness")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "DATA", [354])
    c.send(b"Subject: long\r\n\r\n" + b"z" * 100_000 + b"\r\n.\r\n")
    r = c.reply(10)
    check(r[0] in (500, 550, 552, 554), show(r))
    expect(c, "NOOP", [250])


@case("many errors -> 421 and close", "robustness")
def _():
    c = mx()
    codes = []
    for _ in range(50):
        r = c.cmd("FOOBAR")
        codes.append(r[0])
        if r[0] in (0, 421):
            break
    check(421 in codes, "codes: %s" % codes)
    check(c.closed(), "not closed")


@case("many NOOPs (junk commands) are bounded", "robustness")
def _():
    c = mx()
    c.send("NOOP\r\n" * 300)
    rs = c.replies(2.0)
    codes = [r[0] for r in rs]
    check(421 in codes or 0 in codes, "300 NOOPs all answered: %d replies" % len(codes))


@case("half-closed after commands: replies, then close", "robustness")
def _():
    c = mx()
    c.send("EHLO probe.example\r\nMAIL FROM:<probe@example.org>\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    rs = c.replies(2.0)
    check([r[0] for r in rs][:2] == [250, 250], [show(r) for r in rs])
    check(rs and rs[-1][0] == 0 or c.closed(5), "not closed after the client's FIN")


@case("half-closed in DATA: nothing queued", "robustness")
def _():
    c = mx()
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "DATA", [354])
    c.send(b"Subject: cut\r\n\r\nno end\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    rs = c.replies(2.0)
    check(not any(r[0] == 250 for r in rs), "queued a cut message: %s" % [show(r) for r in rs])


@case("NUL and control characters in commands: 5xx, no crash", "robustness")
def _():
    c = mx()
    for line in [b"NOOP\x00\r\n", b"EHLO a\x00b\r\n", b"\x00\x00\x00\r\n", b"MAIL FROM:<a\x00b@example.org>\r\n",
                 b"\xff\xfe\xfd\r\n", b"EHLO \x1b[31mred\r\n"]:
        c.send(line)
        r = c.reply()
        check(r[0] is not None and r[0] != 0, "%r -> %s" % (line, show(r)))
    expect(c, "NOOP", [250])


@case("bare LF command line ends are tolerated or refused, never confused", "robustness")
def _():
    c = mx()
    c.send(b"EHLO probe.example\nNOOP\n")
    rs = c.replies(1.5)
    check(len(rs) == 2 and all(r[0] in (250, 500, 501) for r in rs), [show(r) for r in rs])


@case("connection flood from one address -> 421 4.7.0", "robustness")
def _():
    conns, codes = [], []
    try:
        for _ in range(ARGS.flood):
            try:
                c = Conn(ARGS.mx, timeout=5)
            except OSError:
                codes.append(-2)
                continue
            conns.append(c)
            codes.append(c.greeting[0])
    finally:
        for c in conns:
            c.close()
    check(421 in codes, "%d connections, codes %s" % (ARGS.flood, sorted(set(codes))))
    time.sleep(0.5)
    expect(mx(), "NOOP", [250])


@case("early talker (before the greeting) is answered in order", "robustness")
def _():
    c = Conn(ARGS.mx, greet=False)
    c.send("EHLO early.example\r\n")
    r = c.reply()
    check(r[0] in (220, 554), "greeting: " + show(r))
    if r[0] == 220:
        r = c.reply()
        check(r[0] in (250, 503, 554), "EHLO: " + show(r))


# ---------------------------------------------------------------- timeouts (--slow)

@case("slowloris: one octet every 5 s never completing a command -> 421 within the command timeout", "slow")
def _():
    c = mx(timeout=10)
    start = time.time()
    line = b"MAIL FROM:<slow@example.org>"
    i = 0
    while time.time() - start < ARGS.timeout + 60:
        try:
            c.send(line[i % len(line):i % len(line) + 1])
        except OSError:
            break
        i += 1
        r = c.reply(5)
        if r[0] is not None:
            check(r[0] in (0, 421), "got " + show(r))
            break
    took = time.time() - start
    check(took < ARGS.timeout + 15, "held %d s" % took)


@case("slowloris in DATA: one octet every 5 s -> 421", "slow")
def _():
    c = mx(timeout=10)
    mail_ready(c)
    expect(c, "RCPT TO:<" + ARGS.local + ">", [250])
    expect(c, "DATA", [354])
    start = time.time()
    while time.time() - start < ARGS.timeout * 3:
        try:
            c.send(b"x")
        except OSError:
            break
        r = c.reply(5)
        if r[0] is not None:
            check(r[0] in (0, 421), "got " + show(r))
            break
    took = time.time() - start
    check(took < ARGS.timeout + 30, "held %d s" % took)


class SkipCase(Exception):
    pass


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--mx", type=int, default=2525)
    p.add_argument("--submission", type=int, default=2587)
    p.add_argument("--local", default="postmaster@localhost", help="a deliverable local address")
    p.add_argument("--flood", type=int, default=60, help="connections for the flood case (limit + 10)")
    p.add_argument("--timeout", type=int, default=300, help="the listener's command/data timeout, for --slow")
    p.add_argument("--slow", action="store_true", help="also run the timeout cases (minutes)")
    p.add_argument("--only", default="", help="run only cases whose name contains this")
    ARGS = p.parse_args()
    fails = 0
    for fn in CASES:
        if fn.group == "slow" and not ARGS.slow:
            continue
        if ARGS.only and ARGS.only.lower() not in fn.case_name.lower():
            continue
        try:
            fn()
            print("PASS  [%s] %s" % (fn.group, fn.case_name), flush=True)
        except SkipCase as e:
            print("SKIP  [%s] %s: %s" % (fn.group, fn.case_name, e), flush=True)
        except Exception as e:  # a probe reports, it does not stop
            fails += 1
            print("FAIL  [%s] %s: %s: %s" % (fn.group, fn.case_name, type(e).__name__, e), flush=True)
    print("%d failed" % fails)
    sys.exit(min(fails, 100))


if __name__ == "__main__":
    main()
