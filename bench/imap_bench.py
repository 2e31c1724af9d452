#!/usr/bin/python3
"""IMAP benchmark against the real sealmaild (not a timed test; targets are reported).

Starts sealmaild (tests/integration/harness.py) with one implicit-TLS IMAP listener and
measures, in one run:
  1. login+select+logout per second with warm logins (the login cache holds the user):
     a full TLS connection, LOGIN, SELECT INBOX, LOGOUT each, over --workers threads;
  2. FETCH of every full body (BODY.PEEK[]) of a --messages message mailbox, in MB/s
     (populated first with MULTIAPPEND + LITERAL+, 200 messages per command);
  3. UID SEARCH BODY <word> on that mailbox, ms per search (FTS5 index);
  4. RSS growth per idle TLS connection that is logged in, has INBOX selected and is in
     IDLE: --idle connections of a user with an empty INBOX, and --idle-big connections on
     the big mailbox (each session keeps a snapshot of its mailbox: that is the cost per
     message).

    /usr/bin/python3 bench/imap_bench.py                      # build/, 10,000 messages
    SEALMAIL_BUILD=build-imap2 /usr/bin/python3 bench/imap_bench.py --record

--record appends a dated "## IMAP" section to bench/RESULTS.md.
"""
import argparse
import asyncio
import datetime
import os
import platform
import random
import re
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

USER = "bench@corp.example"
IDLE_USER = "idle@corp.example"  # an empty INBOX
PASSWORD = "bench password 1"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if want < need:
        sys.exit("RLIMIT_NOFILE hard limit %d is below %d (ulimit -Hn)" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Raw:
    """A minimal IMAP client over TLS that counts bytes (no imaplib parsing overhead)."""

    def __init__(self, port, ctx):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        self.buf = b""
        self.n = 0
        self.readline()

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def skip(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError
            n -= len(self.buf)
            self.buf = b""
            self.buf = chunk
        self.buf = self.buf[n:]

    def cmd(self, line, literal_bytes=None):
        """Sends a command; returns (untagged literal bytes read, tagged line)."""
        self.n += 1
        tag = b"b%d" % self.n
        self.s.sendall(tag + b" " + line + b"\r\n")
        total = 0
        while True:
            l = self.readline()
            m = re.search(rb"\{(\d+)\}\r\n$", l)
            if m:
                k = int(m.group(1))
                self.skip(k)
                total += k
                continue
            if l.startswith(tag + b" "):
                if not l.startswith(tag + b" OK"):
                    raise RuntimeError(l)
                return total, l

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def message(i, rnd):
    body = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(300, 900)))
    if i % 100 == 7:
        body += " zyzzyva"
    text = ("From: sender%d@example.org\r\nTo: %s\r\nSubject: bench message %d\r\n"
            "Date: Wed, 04 Dec 2024 12:00:00 +0000\r\nMessage-ID: <b%d@example.org>\r\n\r\n"
            % (i, USER, i, i))
    lines = [body[k:k + 76] for k in range(0, len(body), 76)]
    return (text + "\r\n".join(lines) + "\r\n").encode()


def populate(port, ctx, count, conns=4, batch=200):
    rnd = random.Random(1)
    msgs = [message(i, rnd) for i in range(count)]
    chunks = [msgs[k:k + batch] for k in range(0, count, batch)]
    total = sum(len(m) for m in msgs)
    errors = []

    def worker(my):
        c = Raw(port, ctx)
        c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
        for ch in my:
            parts = b" ".join(b"{%d+}\r\n%s" % (len(m), m) for m in ch)
            try:
                c.cmd(b"APPEND INBOX " + parts)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        c.close()

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(chunks[k::conns],)) for k in range(conns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0, total


def bench_logins(port, ctx, seconds, workers):
    stop = time.monotonic() + seconds
    counts = [0] * workers

    def worker(k):
        while time.monotonic() < stop:
            c = Raw(port, ctx)
            c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
            c.cmd(b"SELECT INBOX")
            c.cmd(b"LOGOUT")
            c.close()
            counts[k] += 1

    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def bench_fetch(port, ctx, rounds):
    c = Raw(port, ctx)
    c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
    c.cmd(b"EXAMINE INBOX")
    best = None
    nbytes = 0
    for _ in range(rounds):
        t0 = time.monotonic()
        nbytes, _ = c.cmd(b"FETCH 1:* (BODY.PEEK[])")
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    c.close()
    return nbytes, best


def bench_search(port, ctx, rounds):
    c = Raw(port, ctx)
    c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
    c.cmd(b"EXAMINE INBOX")
    times = []
    hits = 0
    for i in range(rounds):
        word = b"zyzzyva" if i % 2 == 0 else random.choice(WORDS).encode()
        t0 = time.monotonic()
        c.s.sendall(b"s%d UID SEARCH BODY %s\r\n" % (i, word))
        while True:
            l = c.readline()
            if l.startswith(b"* SEARCH"):
                if word == b"zyzzyva":
                    hits = len(l.split()) - 2
            if l.startswith(b"s%d " % i):
                break
        times.append(time.monotonic() - t0)
    c.close()
    times.sort()
    return times[len(times) // 2] * 1000, hits


async def idle_one(port, ctx, sem, conns, errors, user=USER):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 60)
            await r.readline()
            w.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
            while not (await r.readline()).startswith(b"a "):
                pass
            w.write(b"b SELECT INBOX\r\n")
            while not (await r.readline()).startswith(b"b "):
                pass
            w.write(b"c IDLE\r\n")
            line = await r.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(line)
            conns.append((r, w))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))


async def bench_idle(srv, port, ctx, count, user=USER):
    conns, errors = [], []
    sem = asyncio.Semaphore(64)
    await asyncio.gather(*(idle_one(port, ctx, sem, conns, errors, user) for _ in range(20)))
    await asyncio.sleep(1)
    before = harness.rss_kib(srv.pid)
    warm = len(conns)
    await asyncio.gather(*(idle_one(port, ctx, sem, conns, errors, user)
                           for _ in range(count)))
    await asyncio.sleep(2)
    after = harness.rss_kib(srv.pid)
    n = len(conns) - warm
    for _, w in conns:
        w.close()
    return before, after, n, errors[:3]


def dovecot_note():
    for p in ("/usr/sbin/dovecot", "/usr/bin/dovecot"):
        if os.path.exists(p):
            return "installed (not run by this script)"
    return "not installed here: figures from FACTS.md"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--idle-big", type=int, default=100)
    ap.add_argument("--login-seconds", type=float, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()

    raise_nofile(args.idle + 300)
    work = tempfile.mkdtemp(prefix="sealmail-imapbench-")
    certs = harness.CertSet(os.path.join(work, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(work, "srv"),
                         listeners=[("imap", "implicit", "none")],
                         limits={"connections": args.idle + 200,
                                 "connections_per_ip": args.idle + 200,
                                 "handshake_timeout": 60})
    for u in (USER, IDLE_USER):
        subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "user", "add", u,
                        "--password-stdin"], input=(PASSWORD + "\n").encode(), check=True,
                       capture_output=True)
    srv.start()
    port = srv.port("imap", "implicit")
    ctx = harness.client_context(certs)
    out = {}
    try:
        before, after, n, errs = asyncio.run(bench_idle(srv, port, ctx, args.idle, IDLE_USER))
        out["idle"] = (before, after, n)
        print("IDLE, empty INBOX: %d connections, RSS %d -> %d KiB = %.1f KiB each%s" %
              (n, before, after, (after - before) / max(n, 1),
               (" errors: %s" % errs) if errs else ""), flush=True)
        # (first, on a fresh server: later phases leave freed memory the count would hide)
        dt, total = populate(port, ctx, args.messages)
        out["populate"] = (args.messages, total, dt)
        print("populated %d messages (%.1f MB) in %.1f s: %.0f msg/s" %
              (args.messages, total / 1e6, dt, args.messages / dt), flush=True)
        out["logins"] = bench_logins(port, ctx, args.login_seconds, args.workers)
        print("login+select+logout: %.0f/s (%d workers, warm)" %
              (out["logins"], args.workers), flush=True)
        nbytes, best = bench_fetch(port, ctx, 3)
        out["fetch"] = (nbytes, best)
        print("FETCH 1:* BODY.PEEK[]: %.1f MB in %.2f s = %.0f MB/s" %
              (nbytes / 1e6, best, nbytes / 1e6 / best), flush=True)
        ms, hits = bench_search(port, ctx, 20)
        out["search"] = (ms, hits)
        print("UID SEARCH BODY: median %.1f ms (rare word: %d hits)" % (ms, hits), flush=True)
        before, after, n, errs = asyncio.run(bench_idle(srv, port, ctx, args.idle_big))
        out["idle_big"] = (before, after, n)
        print("IDLE, %d-message INBOX: %d connections, RSS %d -> %d KiB = %.1f KiB each%s" %
              (args.messages, n, before, after, (after - before) / max(n, 1),
               (" errors: %s" % errs) if errs else ""), flush=True)
    finally:
        srv.stop()
    problems = srv.problems()
    if problems:
        print("server problems:", problems)
    if args.record:
        record(args, out)


def record(args, out):
    n, total, dt = out["populate"]
    nbytes, best = out["fetch"]
    ms, hits = out["search"]
    before, after, idle_n = out["idle"]
    build = os.path.basename(harness.build_dir())
    text = []
    text.append("\n## IMAP\n\n")
    text.append("sealmaild with one implicit-TLS IMAP listener (TLS 1.3), one user, %d messages "
                "of 2-6 KiB (%.1f MB) appended with MULTIAPPEND first (%.0f msg/s over 4 "
                "connections). Dovecot side by side: %s.\n\n" %
                (n, total / 1e6, n / dt, dovecot_note()))
    text.append("%s, `nproc` %d, Linux %s, build `%s`:\n\n" %
                (datetime.date.today().isoformat(), os.cpu_count(), platform.release(), build))
    text.append("    SEALMAIL_BUILD=%s /usr/bin/python3 bench/imap_bench.py%s --record\n\n" %
                (build, "" if args.messages == 10000 else " --messages %d" % args.messages))
    text.append("| measure | sealmail | Dovecot 2.3 (FACTS.md) | target |\n|---|---:|---:|---|\n")
    text.append("| login+select+logout/s (warm, %d workers) | %.0f | ~50 | ≥ 5× Dovecot |\n" %
                (args.workers, out["logins"]))
    text.append("| FETCH all bodies, MB/s | %.0f | 183 | ≥ Dovecot |\n" % (nbytes / 1e6 / best))
    text.append("| SEARCH BODY, ms per search (median of 20) | %.1f | ~1100 | ≥ 20× faster |\n" %
                ms)
    text.append("| RSS per idle TLS connection in IDLE, empty INBOX (%d conns), KiB | %.1f | "
                "1800 (60-90 tuned) | < 48 |\n" % (idle_n, (after - before) / max(idle_n, 1)))
    b2, a2, n2 = out["idle_big"]
    text.append("| RSS per connection in IDLE on the %d-message INBOX (%d conns), KiB | %.1f | "
                "| |\n" % (args.messages, n2, (a2 - b2) / max(n2, 1)))
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("".join(text))


if __name__ == "__main__":
    main()
