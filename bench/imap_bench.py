#!/usr/bin/python3
"""IMAP benchmark against the real sealmaild and, side by side, a private Dovecot.

Starts sealmaild (tests/integration/harness.py) with one implicit-TLS IMAP listener and
measures, in one run:
  1. memory per idle TLS connection that is logged in, has its (empty) INBOX selected and is
     in IDLE, cumulatively at each count of --idle (default 1,000 then 10,000), from a
     baseline taken after a 20-connection warm-up; the connections are held by --idle-procs
     client processes. Memory is summed over the server's processes (/proc/PID/smaps_rollup):
     RSS (shared pages counted once per process) and PSS (shared pages divided);
  2. a --messages message mailbox populated with MULTIAPPEND + LITERAL+, 200 per command;
  3. login+select+logout per second with warm logins: a full TLS connection, LOGIN, SELECT
     INBOX (the big mailbox), LOGOUT each, over --workers threads;
  4. FETCH 1:* (BODY.PEEK[]) of every full body, MB/s, best of 3;
  5. UID SEARCH BODY <word> on that mailbox, median ms;
  6. memory per connection in IDLE on the big mailbox (--idle-big connections).

With --dovecot the same measures run against a private Dovecot 2.3 (bench/peers.py; installed
with apt-get if missing, its system service never started): `dovecot -c FILE -F` with its own
base_dir, state_dir and log in a temporary folder, IMAPS only (ssl = required) on a loopback
high port with the same certificate, users in a passwd-file ({PLAIN} passwords, so no hash
per login: the counterpart of sealmaild's warm login cache), one Maildir per user (uid
nobody), Dovecot's defaults otherwise, except mail_max_userip_connections (default 10 per
user and IP; raised, as sealmaild's per-IP connection limit is). With --dovecot-tuned also
the idle measure against a tuned Dovecot (imap-login in high-performance mode, idle sessions
hibernated after 5 s, higher process limits: DOVECOT_TUNED in bench/peers.py), with the
kernel's per-user inotify instance limit raised during that run (and put back).

    SEALMAIL_BUILD=build-bench /usr/bin/python3 bench/imap_bench.py --dovecot --dovecot-tuned

--record appends the side-by-side table as a dated section to bench/RESULTS.md.
"""
import argparse
import asyncio
import datetime
import os
import platform
import multiprocessing
import random
import re
import resource
import shutil
import signal
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
import peers  # noqa: E402

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
    return sum(counts) / (time.monotonic() - t0), sum(counts)


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



# ---- idle connections, held by several client processes --------------------------------

async def idle_one(port, ctx, sem, conns, errors, user, timeout):
    async with sem:
        w = None
        try:
            async def login():
                nonlocal w
                r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                     server_hostname="127.0.0.1")
                await r.readline()
                w.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
                while True:
                    line = await r.readline()
                    if not line:
                        raise EOFError("closed after LOGIN")
                    if line.startswith(b"a "):
                        if not line.startswith(b"a OK"):
                            raise RuntimeError(line.strip().decode(errors="replace"))
                        break
                w.write(b"b SELECT INBOX\r\n")
                while not (await r.readline()).startswith(b"b "):
                    pass
                w.write(b"c IDLE\r\n")
                line = await r.readline()
                if not line.startswith(b"+"):
                    raise RuntimeError(line)
                return r, w
            conns.append(await asyncio.wait_for(login(), timeout))
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e)[:200])
            if w is not None:
                w.close()


def _holder(pipe, port, certs, user, timeout):
    """A client process: opens connections on request and keeps them in IDLE."""
    async def run():
        ctx = harness.client_context(certs)
        sem = asyncio.Semaphore(32)
        conns = []
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, pipe.recv)
            if cmd[0] == "close":
                for _, w in conns:
                    w.close()
                await asyncio.sleep(0.5)
                pipe.send(("closed",))
                return
            n, errors, before = cmd[1], [], len(conns)
            # in waves, stopping once a wave mostly fails (a server at its process limit
            # would otherwise make every remaining connection wait for its timeout)
            left = n
            while left > 0:
                wave = min(left, 256)
                e0 = len(errors)
                await asyncio.gather(*(idle_one(port, ctx, sem, conns, errors, user, timeout)
                                       for _ in range(wave)))
                left -= wave
                if len(errors) - e0 > wave // 2:
                    errors.append("gave up: %d connections not attempted" % left)
                    break
            pipe.send((len(conns) - before, errors))

    asyncio.run(run())


class IdleHolders:
    def __init__(self, port, certs, user, procs, timeout):
        mp = multiprocessing.get_context("fork")
        self.pipes, self.procs = [], []
        for _ in range(procs):
            a, b = mp.Pipe()
            p = mp.Process(target=_holder, args=(b, port, certs, user, timeout), daemon=True)
            p.start()
            self.pipes.append(a)
            self.procs.append(p)

    def open(self, n):
        k = len(self.pipes)
        for i, pipe in enumerate(self.pipes):
            pipe.send(("open", n // k + (1 if i < n % k else 0)))
        opened, errors = 0, []
        for pipe in self.pipes:
            o, e = pipe.recv()
            opened += o
            errors += e
        return opened, errors

    def close(self):
        for pipe in self.pipes:
            try:
                pipe.send(("close",))
                pipe.recv()
            except (OSError, EOFError):
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()


def bench_idle(t, certs, steps, user, procs, settle):
    """Cumulative: a baseline after a 20-connection warm-up, then connections up to each
    count in steps; memory of the server's processes at each. Returns rows of
    (target count, open, RSS KiB, PSS KiB, processes, errors) and the baseline."""
    h = IdleHolders(t.port, certs, user, procs, t.idle_timeout)
    rows = []
    try:
        opened, errors = h.open(20)
        time.sleep(settle)
        base = t.mem()
        total = 0
        for count in steps:
            opened, errors = h.open(count - total)
            total = count
            time.sleep(settle)
            rows.append((count, opened, t.mem(), errors))
    finally:
        h.close()
    out = []
    n = 0
    for count, opened, mem, errors in rows:
        n += opened
        out.append((count, n, (mem[0] - base[0]) / max(n, 1), (mem[1] - base[1]) / max(n, 1),
                    mem[2], errors))
    return base, out


# ---- servers ---------------------------------------------------------------------------

class Sealmail:
    label = "sealmail"
    idle_timeout = 60

    def __init__(self, work, certs, max_conns, extra_yaml=""):
        self.srv = harness.Server(certs, workdir=os.path.join(work, "srv"),
                                  listeners=[("imap", "implicit", "none")],
                                  limits={"connections": max_conns + 300,
                                          "connections_per_ip": max_conns + 300,
                                          "handshake_timeout": 60},
                                  extra_yaml=extra_yaml)
        # The bench issues no certificates, and builds from before ca_dir existed (compared
        # side by side by fetch_bench.py) would refuse the key.
        self.srv.ca_dir = None
        self.srv.write_config()
        for u in (USER, IDLE_USER):
            subprocess.run([harness.tool("sealctl"), "-c", self.srv.config_path, "user", "add",
                            u, "--password-stdin"], input=(PASSWORD + "\n").encode(),
                           check=True, capture_output=True)

    def start(self):
        self.srv.start()
        self.port = self.srv.port("imap", "implicit")
        return self

    def mem(self):
        return peers.tree_mem(self.srv.pid)

    def cpu(self):
        return peers.tree_cpu(self.srv.pid)

    def stop(self):
        self.srv.stop()
        problems = self.srv.problems()
        if problems:
            print("sealmaild problems:", problems)


class DovecotTarget:
    idle_timeout = 15  # connections beyond a process limit wait in the backlog

    def __init__(self, work, certs, tuned):
        self.label = "dovecot-tuned" if tuned else "dovecot"
        # mail_max_userip_connections (default 10) is a per-user policy cap, not a resource
        # setting: raised in both, or the idle test would stop at 10 connections of one user
        self.dv = peers.Dovecot(os.path.join(work, self.label), certs.server, certs.server_key,
                                [(USER, PASSWORD), (IDLE_USER, PASSWORD)], tuned=tuned,
                                max_userip=20000)

    INOTIFY = "/proc/sys/fs/inotify/max_user_instances"

    def start(self):
        # Every session runs as one mail user (uid nobody), and Dovecot watches the mailbox
        # of each IDLE session with its own inotify instance: past the kernel's 128 per user
        # it falls back to polling and then cannot hibernate a session. Tuned: raised for the
        # run (and put back after).
        self.inotify = None
        if self.label == "dovecot-tuned":
            try:
                with open(self.INOTIFY) as f:
                    old = int(f.read())
                if old < 16384:
                    with open(self.INOTIFY, "w") as f:
                        f.write("16384\n")
                    self.inotify = old
            except OSError as e:
                print("dovecot-tuned: could not raise %s: %s" % (self.INOTIFY, e))
        self.dv.start()
        self.port = self.dv.port
        return self

    def mem(self):
        return self.dv.mem()

    def cpu(self):
        return self.dv.cpu()

    def stop(self):
        out = self.dv.stop()
        # what Dovecot said about limits and errors (each message once, with its count)
        seen = {}
        try:
            with open(self.dv.log_path, errors="replace") as f:
                for line in f:
                    if re.search(r"limit|Error|Fatal|Panic", line) and "Inotify" not in line:
                        key = re.sub(r"^\w+ +\d+ [\d:]+ |<\d+>|\[\d+\]|<[\w/+]+>", "",
                                     line.strip())
                        seen[key] = seen.get(key, 0) + 1
        except OSError:
            pass
        for key, n in sorted(seen.items(), key=lambda kv: -kv[1])[:4]:
            print("%s log (%d×): %s" % (self.label, n, key[:300]))
        if self.inotify is not None:
            with open(self.INOTIFY, "w") as f:
                f.write("%d\n" % self.inotify)
        if out:
            print("%s output: %s" % (self.label, out[-500:]))


def run_target(t, args, certs, full=True):
    """All the measures against one server. Returns a dict of results."""
    ctx = harness.client_context(certs)
    res = {"label": t.label}
    settle = 8 if t.label == "dovecot-tuned" else 2  # tuned: past imap_hibernate_timeout (5 s)
    steps = [int(x) for x in args.idle.split(",")]
    base, rows = bench_idle(t, certs, steps, IDLE_USER, args.idle_procs, settle)
    res["idle"] = (base, rows)
    for count, n, rss, pss, procs, errors in rows:
        print("%-13s IDLE, empty INBOX: %5d of %5d open, %.1f KiB RSS (%.1f KiB PSS) per "
              "connection, %d server processes%s" %
              (t.label, n, count, rss, pss, procs,
               (" errors (%d): %s" % (len(errors), errors[:2] + errors[-1:])) if errors else ""),
              flush=True)
    if not full:
        return res
    dt, total = populate(t.port, ctx, args.messages)
    res["populate"] = (args.messages, total, dt)
    print("%-13s populated %d messages (%.1f MB) in %.1f s: %.0f msg/s" %
          (t.label, args.messages, total / 1e6, dt, args.messages / dt), flush=True)
    cpu0 = t.cpu()
    res["logins"], n = bench_logins(t.port, ctx, args.login_seconds, args.workers)
    res["login_cpu"] = (t.cpu() - cpu0) / max(n, 1) * 1000
    print("%-13s login+select+logout: %.0f/s (%d workers, warm), server CPU %.2f ms each" %
          (t.label, res["logins"], args.workers, res["login_cpu"]), flush=True)
    nbytes, best = bench_fetch(t.port, ctx, 3)
    res["fetch"] = (nbytes, best)
    print("%-13s FETCH 1:* BODY.PEEK[]: %.1f MB in %.2f s = %.0f MB/s" %
          (t.label, nbytes / 1e6, best, nbytes / 1e6 / best), flush=True)
    rounds = 20 if t.label == "sealmail" else args.peer_search_rounds
    ms, hits = bench_search(t.port, ctx, rounds)
    res["search"] = (ms, hits, rounds)
    print("%-13s UID SEARCH BODY: median %.1f ms of %d (rare word: %d hits)" %
          (t.label, ms, rounds, hits), flush=True)
    base, rows = bench_idle(t, certs, [args.idle_big], USER, args.idle_procs, settle)
    res["idle_big"] = rows[0]
    count, n, rss, pss, procs, errors = rows[0]
    print("%-13s IDLE, %d-message INBOX: %d of %d open, %.1f KiB RSS (%.1f KiB PSS) each%s" %
          (t.label, args.messages, n, count, rss, pss,
           (" errors: %s" % errors[:2]) if errors else ""), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--idle", default="1000,10000",
                    help="idle connection counts, cumulative (default 1000,10000)")
    ap.add_argument("--idle-big", type=int, default=100)
    ap.add_argument("--idle-procs", type=int, default=4, help="client processes holding them")
    ap.add_argument("--login-seconds", type=float, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--dovecot", action="store_true",
                    help="the same measures against a private Dovecot (defaults), installed "
                    "with apt-get if missing")
    ap.add_argument("--dovecot-tuned", action="store_true",
                    help="with --dovecot: also the idle measure against a tuned Dovecot")
    ap.add_argument("--peer-search-rounds", type=int, default=6)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    steps = [int(x) for x in args.idle.split(",")]
    raise_nofile(max(steps) + 500)
    work = tempfile.mkdtemp(prefix="sealmail-imapbench-")
    certs = harness.CertSet(os.path.join(work, "pki"))
    results = []
    t = Sealmail(work, certs, max(steps)).start()
    try:
        results.append(run_target(t, args, certs))
    finally:
        t.stop()
    if args.dovecot:
        ok, out = peers.Dovecot.install()
        if not ok:
            print("DOVECOT NOT MEASURED: apt-get install dovecot-imapd failed: %s" % out)
        else:
            for tuned in (False, True) if args.dovecot_tuned else (False,):
                try:
                    t = DovecotTarget(work, certs, tuned).start()
                except RuntimeError as e:
                    print("DOVECOT NOT MEASURED: %s" % e)
                    continue
                try:
                    results.append(run_target(t, args, certs, full=not tuned))
                finally:
                    t.stop()
    text = summary(args, results)
    print("\n" + text)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n## IMAP side by side (--record)\n\n%s, `nproc` %d, Linux %s, build `%s`:"
                    "\n\n    %s\n\n%s" % (datetime.date.today().isoformat(), os.cpu_count(),
                                          platform.release(),
                                          os.path.basename(harness.build_dir()),
                                          " ".join(sys.argv), text))
    shutil.rmtree(work, ignore_errors=True)


def summary(args, results):
    by = {r["label"]: r for r in results}
    s, d = by.get("sealmail"), by.get("dovecot")
    cols = [r["label"] for r in results]
    out = ["| measure | " + " | ".join(cols) + " | ratio sealmail/Dovecot | target |",
           "|---|" + "---:|" * len(cols) + "---:|---|"]

    def cell(r, key, fmt):
        if key not in r:
            return "–"
        return fmt(r[key])

    def row(name, key, fmt, ratio=None, target=""):
        vals = [cell(r, key, fmt) for r in results]
        rt = ""
        if ratio and s and d and key in s and key in d:
            rt = ratio(s[key], d[key])
        out.append("| %s | %s | %s | %s |" % (name, " | ".join(vals), rt, target))

    row("login+select+logout/s (warm, %d workers)" % args.workers, "logins",
        lambda v: "%.0f" % v, lambda a, b: "%.1f×" % (a / b), "≥ 5×")
    row("server CPU per login+select+logout, ms", "login_cpu", lambda v: "%.2f" % v,
        lambda a, b: "%.1f× less" % (b / a))
    row("FETCH 1:* BODY.PEEK[], MB/s (best of 3)", "fetch",
        lambda v: "%.0f" % (v[0] / 1e6 / v[1]),
        lambda a, b: "%.1f×" % ((a[0] / a[1]) / (b[0] / b[1])), "≥ 1×")
    row("UID SEARCH BODY, ms (median)", "search", lambda v: "%.1f" % v[0],
        lambda a, b: "%.0f× faster" % (b[0] / a[0]), "≥ 20× faster")
    for i, count in enumerate(int(x) for x in args.idle.split(",")):
        def f(v, i=i):
            c, n, rss, pss, procs, errors = v[1][i]
            text = "%.1f / %.1f" % (rss, pss)
            if n < c:
                text += " (only %d open)" % n
            return text
        row("IDLE, empty INBOX, %d conns: KiB RSS / PSS per conn" % count, "idle", f, None,
            "< 48 KiB at 10,000" if count == 10000 else "")
    row("IDLE, %d-message INBOX, %d conns: KiB RSS / PSS per conn" % (args.messages,
                                                                      args.idle_big),
        "idle_big", lambda v: "%.1f / %.1f%s" % (v[2], v[3], "" if v[1] >= v[0] else
                                                 " (only %d open)" % v[1]))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
