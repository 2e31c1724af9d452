#!/usr/bin/python3
"""IMAP FETCH throughput of two (or more) sealmaild builds, side by side in one run.

    /usr/bin/python3 bench/fetch_bench.py --builds DIR1,DIR2 [--rounds 5] [--record]
    /usr/bin/python3 bench/fetch_bench.py --builds DIR --encrypt [--rounds 5] [--record]

--encrypt runs every build twice, with a plain store and with one encrypted at rest
(docs/encryption.md; label DIR+enc), so the two are measured side by side in one run.

Each DIR is a meson build directory holding server/sealmaild and cli/sealctl. For each build
one sealmaild is started with the integration harness (imap_bench.Sealmail: one implicit-TLS
IMAP listener on a free loopback port, its own folder, certificates from harness.CertSet),
a user is created and its INBOX is filled with MULTIAPPEND + LITERAL+ with the same messages
for every build (generated from a fixed seed):
  - 5,000 messages of about 4 KiB (3.0-5.2 KB, mean ~4.1 KB): Received, DKIM-Signature,
    From/To/Cc, encoded-word subjects, In-Reply-To/References on some, MIME headers; every
    10th one multipart/alternative (text + HTML), the others text/plain;
  - 20 messages of about 2 MiB: multipart/mixed with a base64 attachment, multipart/mixed
    with a nested multipart/alternative and an attachment, a plain-text log, an HTML page.
All the daemons run for the whole run. The measures go over one implicit-TLS connection per
build (Python ssl socket, raw IMAP: imap_bench.Raw reads every literal by its announced
length), after EXAMINE INBOX and one untimed warm-up pass; rounds alternate the builds
(A B A B ...) so that the machine's other load hits them alike:
  1. FETCH 1:5000 (BODY.PEEK[])           MB/s of message bytes (literal bytes; MB = 10^6 B)
  2. FETCH 5001:5020 (BODY.PEEK[])        MB/s, the large messages
  3. FETCH 1:* (FLAGS UID RFC822.SIZE)    ms
  4. FETCH 1:500 (BODYSTRUCTURE ENVELOPE) ms
  5. FETCH 1:500 (BODY.PEEK[HEADER.FIELDS (From To Subject Date)])  ms
Time is from sending the command to reading its tagged OK. Each build's best and median of
--rounds rounds are printed, with the server's CPU time per command: utime+stime from
/proc/PID/stat of sealmaild (all its threads, and any child: imap_bench.Sealmail.cpu()) read
before and after each command, averaged over the rounds (the kernel counts it in ticks of
1/CLK_TCK s, 10 ms here, so the ms measures' CPU is coarse), and this client's own CPU time. The number of FETCH
responses and the literal bytes are checked against the mailbox, and must be equal for all
builds.

Reference, in the same run and alternating with the builds: loopback TLS throughput of a
64 MiB transfer from a Python ssl (OpenSSL) sink server in its own process, same server
certificate, to the same kind of client socket as the measures (recv of 256 KiB). It measures
TCP over loopback + TLS encryption and decryption + this client's reading: roughly the
ceiling this client can observe from a server that does nothing but write. No disk, no IMAP
formatting; the cipher can differ from sealmaild's (both are printed).

--record appends a dated section (machine, command line, table) to bench/RESULTS.md.
"""
import argparse
import base64
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from imap_bench import PASSWORD, USER, WORDS, Raw, Sealmail  # noqa: E402
import harness  # noqa: E402  (tests/integration, put on sys.path by imap_bench)

SMALL = 5000
LARGE = 20
TLS_REF_BYTES = 64 << 20

MEASURES = [
    # (key, command, kind, expected FETCH responses)
    ("small", b"FETCH 1:%d (BODY.PEEK[])" % SMALL, "MB/s", SMALL),
    ("large", b"FETCH %d:%d (BODY.PEEK[])" % (SMALL + 1, SMALL + LARGE), "MB/s", LARGE),
    ("flags", b"FETCH 1:* (FLAGS UID RFC822.SIZE)", "ms", SMALL + LARGE),
    ("bodystructure", b"FETCH 1:500 (BODYSTRUCTURE ENVELOPE)", "ms", 500),
    ("header_fields", b"FETCH 1:500 (BODY.PEEK[HEADER.FIELDS (From To Subject Date)])", "ms",
     500),
]


# ---- messages ----------------------------------------------------------------------------

FIRST = "Anna Bruno Chiara Dmitri Elena Farid Greta Hiro Ines Jonas Kasia Luca Maya Nils".split()
LAST = "Rossi Novak Schmidt Dubois Tanaka Silva Berg Kowalski Moreau Larsen Costa Weber".split()
DOMAINS = "example.org example.net mail.example.com lists.example.org partner.example".split()
SUBJECTS = ["Re: quarterly figures", "Meeting notes", "Fwd: invoice", "Build failed on main",
            "Lunch?", "Re: Re: travel plans", "Your order has shipped", "Weekly report",
            "=?UTF-8?Q?Caf=C3=A9_tomorrow?=", "=?UTF-8?B?w5xiZXJzaWNodCBkZXIgQXVmZ2FiZW4=?="]


def _date(i):
    t = datetime.datetime(2024, 12, 4, 8, 0, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(minutes=7 * i)
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


def _text(rnd, size):
    """Plain text lines of words, about size bytes."""
    lines, n = [], 0
    while n < size:
        words, k = [], 0
        while k < 70:
            w = rnd.choice(WORDS)
            words.append(w)
            k += len(w) + 1
        line = " ".join(words)
        lines.append(line)
        n += len(line) + 2
    return "\r\n".join(lines) + "\r\n"


def _b64(rnd, size):
    raw = rnd.randbytes(size * 3 // 4)
    return base64.encodebytes(raw).decode().replace("\n", "\r\n")


def _headers(i, rnd, extra):
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    dom = rnd.choice(DOMAINS)
    local = "%s.%s" % (first.lower(), last.lower())
    date = _date(i)
    h = ["Return-Path: <%s@%s>" % (local, dom),
         "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail.corp.example (sealmail) "
         "with ESMTPS id %016x\r\n\tfor <%s>; %s" % (i % 3, dom, i % 3, dom, i % 250 + 1,
                                                    rnd.getrandbits(64), USER, date),
         "Received: from [10.%d.%d.%d] (unknown [198.51.100.%d])\r\n\tby mx.%s with ESMTPSA "
         "id %012x; %s" % (i % 200, i % 100, i % 50 + 1, i % 200 + 1, dom,
                           rnd.getrandbits(48), date),
         "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=s2024;\r\n\t"
         "h=from:to:cc:subject:date:message-id:mime-version:content-type;\r\n\tbh=%s;\r\n\tb=%s"
         % (dom, base64.b64encode(rnd.randbytes(32)).decode(),
            "\r\n\t ".join(base64.b64encode(rnd.randbytes(256)).decode()[k:k + 72]
                           for k in range(0, 344, 72))),
         'From: "%s %s" <%s@%s>' % (first, last, local, dom),
         "To: Bench User <%s>" % USER]
    if i % 3 == 0:
        h.append("Cc: %s <%s@%s>, team@%s" % (rnd.choice(FIRST), rnd.choice(FIRST).lower(),
                                               dom, dom))
    h += ["Subject: %s #%d" % (rnd.choice(SUBJECTS), i), "Date: " + date,
          "Message-ID: <%016x.%d@%s>" % (rnd.getrandbits(64), i, dom)]
    if i % 4 == 1:
        ref = "<%016x@%s>" % (rnd.getrandbits(64), dom)
        h += ["In-Reply-To: " + ref, "References: " + ref]
    h += ["MIME-Version: 1.0"] + extra
    return "\r\n".join(h) + "\r\n\r\n"


def small_message(i, rnd):
    size = rnd.randint(3000, 5200)
    if i % 10 == 3:
        b = "=_alt_%d" % i
        head = _headers(i, rnd, ['Content-Type: multipart/alternative; boundary="%s"' % b])
        left = max(size - len(head) - 300, 600)
        text = _text(rnd, left * 2 // 5)
        html = "<html><body><p>" + _text(rnd, left * 3 // 5 - 40) + "</p></body></html>\r\n"
        body = ("--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n"
                "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--%s--\r\n"
                % (b, text, b, html, b))
    else:
        head = _headers(i, rnd, ['Content-Type: text/plain; charset="utf-8"; format=flowed',
                                 "Content-Transfer-Encoding: 8bit"])
        body = _text(rnd, max(size - len(head), 200))
    return (head + body).encode()


def large_message(i, k, rnd):
    size = 2 * 1024 * 1024 + rnd.randint(-65536, 65536)
    kind = k % 4
    if kind == 0:  # multipart/mixed: a note and a PDF attachment
        b = "=_mixed_%d" % i
        head = _headers(i, rnd, ['Content-Type: multipart/mixed; boundary="%s"' % b])
        body = ("This is a multi-part message in MIME format.\r\n\r\n"
                "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
                "--%s\r\nContent-Type: application/pdf; name=\"report-%d.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"report-%d.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n"
                % (b, _text(rnd, 1500), b, k, k, _b64(rnd, size - len(head) - 2000), b))
    elif kind == 1:  # multipart/mixed > multipart/alternative + an image
        b, a = "=_mixed_%d" % i, "=_alt_%d" % i
        head = _headers(i, rnd, ['Content-Type: multipart/mixed; boundary="%s"' % b])
        body = ("--%s\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
                "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>%s"
                "</body></html>\r\n--%s--\r\n\r\n"
                "--%s\r\nContent-Type: image/jpeg; name=\"photo-%d.jpg\"\r\n"
                "Content-Disposition: attachment; filename=\"photo-%d.jpg\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n"
                % (b, a, a, _text(rnd, 2000), a, _text(rnd, 3000), a, b, k, k,
                   _b64(rnd, size - len(head) - 6000), b))
    elif kind == 2:  # a long plain-text log
        head = _headers(i, rnd, ['Content-Type: text/plain; charset="utf-8"',
                                 "Content-Transfer-Encoding: 8bit"])
        body = _text(rnd, size - len(head))
    else:  # a big HTML page
        head = _headers(i, rnd, ['Content-Type: text/html; charset="utf-8"',
                                 "Content-Transfer-Encoding: 8bit"])
        body = "<html><body>\r\n<p>" + _text(rnd, size - len(head) - 40) + "</p></body></html>\r\n"
    return (head + body).encode()


def make_messages():
    rnd = random.Random(20241204)
    small = [small_message(i, rnd) for i in range(SMALL)]
    large = [large_message(SMALL + k, k, rnd) for k in range(LARGE)]
    return small, large


# ---- population and measures ---------------------------------------------------------------

class Counted(Raw):
    """imap_bench.Raw that also counts untagged FETCH responses."""
    fetches = 0

    def readline(self):
        line = super().readline()
        if line.startswith(b"* ") and b" FETCH (" in line[:24]:
            self.fetches += 1
        return line


def login(port, ctx):
    c = Counted(port, ctx)
    c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
    return c


def append(port, ctx, msgs, batch_bytes=8 << 20, batch_count=200):
    """MULTIAPPEND with LITERAL+, in order, on one connection."""
    c = login(port, ctx)
    k = 0
    while k < len(msgs):
        parts, size = [], 0
        while k < len(msgs) and len(parts) < batch_count and \
                (not parts or size + len(msgs[k]) <= batch_bytes):
            parts.append(b"{%d+}\r\n%s" % (len(msgs[k]), msgs[k]))
            size += len(msgs[k])
            k += 1
        c.cmd(b"APPEND INBOX " + b" ".join(parts))
    c.close()


class Build:
    def __init__(self, label, path, work, certs, encrypt=False):
        self.label, self.path = label, path
        self.bin = os.path.join(path, "server", "sealmaild")
        self.id0 = self.binary_id()
        os.environ["SEALMAIL_BUILD"] = path  # read by harness.tool() when sealctl runs
        extra = ""
        if encrypt:
            key = os.path.join(work, label + ".kek")
            with open(key, "w") as f:
                f.write(os.urandom(32).hex())
            os.chmod(key, 0o400)
            extra = "encryption:\n  key_file: %s\n" % key
        self.t = Sealmail(os.path.join(work, label), certs, 10, extra_yaml=extra)
        self.t.start()  # ... and when sealmaild starts
        self.conn = None
        self.times = {m[0]: [] for m in MEASURES}
        self.cpu = {m[0]: 0.0 for m in MEASURES}
        self.client_cpu = {m[0]: 0.0 for m in MEASURES}
        self.bytes = {}

    def options(self):
        """buildtype and sanitizers from meson-info (empty if unreadable)."""
        try:
            with open(os.path.join(self.path, "meson-info", "intro-buildoptions.json")) as f:
                o = {x["name"]: x["value"] for x in json.load(f)}
            return ", %s, b_sanitize=%s" % (o["buildtype"], o["b_sanitize"])
        except (OSError, ValueError, KeyError):
            return ""

    def binary_id(self):
        st = os.stat(self.bin)
        with open(self.bin, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return "%s, %s" % (digest, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime)))

    def open(self, ctx):
        self.conn = login(self.t.port, ctx)
        _, tagged = self.conn.cmd(b"EXAMINE INBOX")
        self.cipher = self.conn.s.cipher()
        self.version = self.conn.s.version()

    def measure(self, record=True):
        for key, cmd, kind, expect in MEASURES:
            c = self.conn
            c.fetches = 0
            cpu0 = self.t.cpu()
            t0, p0 = time.perf_counter(), time.process_time()
            nbytes, _ = c.cmd(cmd)
            dt, pdt = time.perf_counter() - t0, time.process_time() - p0
            cpu = self.t.cpu() - cpu0
            if c.fetches != expect:
                raise RuntimeError("%s: %s gave %d FETCH responses, expected %d"
                                   % (self.label, cmd.decode(), c.fetches, expect))
            if self.bytes.setdefault(key, nbytes) != nbytes:
                raise RuntimeError("%s: %s gave %d literal bytes, then %d"
                                   % (self.label, cmd.decode(), self.bytes[key], nbytes))
            if record:
                self.times[key].append(dt)
                self.cpu[key] += cpu
                self.client_cpu[key] += pdt

    def stop(self):
        if self.conn:
            self.conn.close()
        self.t.stop()


def _sink(port_pipe, cert, key, nbytes):
    """A TLS server that writes nbytes to each client, then closes (one process)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    port_pipe.send(ls.getsockname()[1])
    block = bytes(range(256)) * 1024
    while True:
        s, _ = ls.accept()
        try:
            s = ctx.wrap_socket(s, server_side=True)
            left = nbytes
            while left > 0:
                left -= s.send(block[:min(left, len(block))])
            s.close()
        except OSError:
            pass


def tls_reference(port, ctx):
    """Seconds to read TLS_REF_BYTES after the handshake, and the cipher."""
    s = harness.tls_connect(port, ctx, timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = 0
    t0 = time.perf_counter()
    while got < TLS_REF_BYTES:
        chunk = s.recv(262144)
        if not chunk:
            raise EOFError("sink closed after %d bytes" % got)
        got += len(chunk)
    dt = time.perf_counter() - t0
    cipher, version = s.cipher(), s.version()
    s.close()
    return dt, "%s %s" % (version, cipher[0])


# ---- report ------------------------------------------------------------------------------

def fmt_value(kind, nbytes, dt):
    return nbytes / 1e6 / dt if kind == "MB/s" else dt * 1000


def table(builds, rounds, tls_ref):
    a = builds[0]
    head = ["measure"]
    for b in builds:
        head += ["%s best" % b.label, "%s median" % b.label]
    for b in builds[1:]:
        head += ["%s/%s best" % (b.label, a.label), "%s/%s median" % (b.label, a.label)]
    for b in builds:
        head.append("%s CPU ms" % b.label)
    for b in builds[1:]:
        head.append("CPU %s/%s" % (b.label, a.label))
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key, cmd, kind, expect in MEASURES:
        name = "%s, %s" % (cmd.decode().replace("|", "\\|"), kind)
        vals = {}
        for b in builds:
            v = sorted(fmt_value(kind, b.bytes[key], t) for t in b.times[key])
            best = v[-1] if kind == "MB/s" else v[0]
            vals[b.label] = (best, statistics.median(v), b.cpu[key] / rounds * 1000)
        f = "%.0f" if kind == "MB/s" else "%.1f"
        row = [name]
        for b in builds:
            row += [f % vals[b.label][0], f % vals[b.label][1]]
        for b in builds[1:]:
            row += ["%.2f" % (vals[b.label][0] / vals[a.label][0]),
                    "%.2f" % (vals[b.label][1] / vals[a.label][1])]
        for b in builds:
            row.append("%.0f" % vals[b.label][2])
        for b in builds[1:]:
            ca, cb = vals[a.label][2], vals[b.label][2]
            row.append("%.2f" % (cb / ca) if ca and cb else "–")  # 0: under one tick
        out.append("| " + " | ".join(row) + " |")
    lines = ["\n".join(out), ""]
    for b in builds:
        lines.append("- %s = `%s` (sealmaild sha256 %s%s), client TLS: %s %s" %
                     (b.label, b.path, b.id0, b.options(), b.version, b.cipher[0]))
    for b in builds:
        lines.append("- client CPU per command (this Python process), ms, measures 1-5, %s: %s"
                     % (b.label, ", ".join("%.0f" % (b.client_cpu[m[0]] / rounds * 1000)
                                          for m in MEASURES)))
    sizes = builds[0].bytes
    lines.append("- message bytes per FETCH: %.1f MB (%d small), %.1f MB (%d large)" %
                 (sizes["small"] / 1e6, SMALL, sizes["large"] / 1e6, LARGE))
    speeds = sorted(TLS_REF_BYTES / 1e6 / dt for dt, _ in tls_ref)
    lines.append("- reference, loopback TLS of 64 MiB from a Python ssl sink to this client "
                 "(%s): best %.0f MB/s, median %.0f MB/s" %
                 (tls_ref[0][1], speeds[-1], statistics.median(speeds)))
    lines.append("- %d rounds per build, alternating %s; MB/s: higher is better, ms: lower is "
                 "better; CPU: sealmaild utime+stime per command, mean of the rounds (ticks of "
                 "%.0f ms)" % (rounds, " ".join(b.label for b in builds),
                               1000 / os.sysconf("SC_CLK_TCK")))
    return "\n".join(lines) + "\n"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def labels_for(paths):
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    if len(set(names)) == len(names):
        return names
    return ["build%d" % (k + 1) for k in range(len(paths))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", required=True,
                    help="comma-separated meson build directories (DIR1,DIR2)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--encrypt", action="store_true",
                    help="each build twice: plain store, then encrypted at rest")
    ap.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    paths = [os.path.abspath(p) for p in args.builds.split(",") if p]
    if len(paths) < (1 if args.encrypt else 2) or args.rounds < 1:
        ap.error("--builds needs at least two directories (one with --encrypt) and --rounds "
                 "at least 1")
    for p in paths:
        for exe in ("server/sealmaild", "cli/sealctl"):
            if not os.access(os.path.join(p, exe), os.X_OK):
                sys.exit("%s is missing or not executable (not built, or mid-rebuild?)"
                         % os.path.join(p, exe))
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="sealmail-fetchbench-")
    certs = harness.CertSet(os.path.join(work, "pki"))
    ctx = harness.client_context(certs)
    small, large = make_messages()
    print("mailbox: %d messages, %.1f MB (mean %.0f B) + %d messages, %.1f MB" %
          (SMALL, sum(map(len, small)) / 1e6, sum(map(len, small)) / SMALL, LARGE,
           sum(map(len, large)) / 1e6), flush=True)
    mp = multiprocessing.get_context("fork")
    rx, tx = mp.Pipe(duplex=False)
    sink = mp.Process(target=_sink, args=(tx, certs.server, certs.server_key, TLS_REF_BYTES),
                      daemon=True)
    sink.start()
    sink_port = rx.recv()
    builds = []
    try:
        runs = [(label, path, False) for label, path in zip(labels_for(paths), paths)]
        if args.encrypt:
            runs = [r for label, path, _ in runs
                    for r in ((label, path, False), (label + "+enc", path, True))]
        for label, path, encrypt in runs:
            b = Build(label, path, work, certs, encrypt)
            builds.append(b)
            t0 = time.monotonic()
            append(b.t.port, ctx, small)
            append(b.t.port, ctx, large, batch_bytes=8 << 20)
            b.open(ctx)
            b.measure(record=False)  # warm-up, not counted
            print("%s: sealmaild pid %d port %d, populated in %.1f s" %
                  (label, b.t.srv.pid, b.t.port, time.monotonic() - t0), flush=True)
        tls_ref = []
        for r in range(args.rounds):
            tls_ref.append(tls_reference(sink_port, ctx))
            for b in builds:
                b.measure()
            print("round %d/%d: %s; TLS reference %.0f MB/s" %
                  (r + 1, args.rounds, "; ".join(
                      "%s %.0f/%.0f MB/s" % (b.label, b.bytes["small"] / 1e6 / b.times["small"][-1],
                                             b.bytes["large"] / 1e6 / b.times["large"][-1])
                      for b in builds),
                   TLS_REF_BYTES / 1e6 / tls_ref[-1][0]), flush=True)
        for b in builds[1:]:
            for key in b.bytes:
                if b.bytes[key] != builds[0].bytes[key]:
                    raise RuntimeError("%s: %s returned %d literal bytes, %s %d" %
                                       (b.label, key, b.bytes[key], builds[0].label,
                                        builds[0].bytes[key]))
        for b in builds:
            if b.binary_id() != b.id0:
                print("WARNING: %s changed during the run (was %s, now %s); the daemon kept "
                      "running the old one" % (b.bin, b.id0, b.binary_id()))
    finally:
        for b in builds:
            b.stop()
        sink.kill()
        sink.join()
    text = table(builds, args.rounds, tls_ref)
    elapsed = time.monotonic() - started
    print("\n" + text)
    print("run took %.0f s" % elapsed)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n## IMAP FETCH, builds side by side (--record, %s)\n\n"
                    "Machine: `nproc` = %d, Linux %s, %s. Command:\n\n    %s\n\n%s" %
                    (datetime.date.today().isoformat(), len(os.sched_getaffinity(0)),
                     platform.release(), cpu_model(), " ".join([sys.executable] + sys.argv),
                     text))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
