#!/usr/bin/env python3
"""SMTP submission benchmark: messages per second accepted over TLS with AUTH, and Postfix.

Starts a real sealmaild (tests/integration/harness.py) with a fresh store, adds a user, and
runs, for 4 KiB and 100 KiB messages: 1, 8 and 64 connections each sending messages in a loop
for --seconds, and one message per connection (connect, TLS, EHLO, AUTH, MAIL/RCPT/DATA, QUIT)
at 8 and 64 concurrent clients. Latency is from MAIL to the 250 after the final dot (the
reply is only sent once the message is durable in the store); for one message per connection
the whole session (connect to QUIT's reply) is given too. Server CPU per message comes
from /proc/PID/stat. Every accepted message is counted in the database at the end.

With --procs P the client runs in P processes (each an asyncio loop with conns/P of the
connections), so one Python process's CPU does not set the latency.

With --client c (the default since 2026-11-29; --client python for the asyncio client of the
earlier sections of RESULTS.md) the load comes from bench/smtp_load (C, one thread, epoll, GnuTLS; built by
bench/meson.build into $SEALMAIL_BUILD/bench/), which runs the same dialogue as the Python
client (EHLO and AUTH written together, then MAIL, RCPT and DATA written together, the message,
QUIT; a full TLS 1.3 handshake per connection, no session resumption) at a fraction of the
Python client's CPU. It does not verify the server's certificate unless --c-verify is given
(a benchmark against our own local servers: the chain check is about a third of the C
client's CPU per one-message session, and it is client work, not server work). --procs does
not apply to it. Its JSON line gives the counts, the latencies and its own CPU time.

With --postfix the same 4 KiB cells, with the same client, run against private Postfix
instances (bench/peers.py; Postfix installed with apt-get if missing, "No configuration"):
smtpd with implicit TLS (smtpd_tls_wrappermode) on a loopback high port, the queue in a
temporary folder, AUTH PLAIN through a private Dovecot's auth service (Dovecot SASL, {PLAIN}
password; --postfix-auth none for no AUTH), and per --postfix-delivery:
  maildir  cleanup fsyncs the queue file before smtpd's 250, then qmgr hands it to virtual(8),
           which writes one file per message into a Maildir (fsync, link into new/);
  discard  the same queue, then discard(8) drops the message.
After each Postfix cell the script waits until the queue is empty before reading CPU, so
Postfix's CPU per message covers smtpd, cleanup, trivial-rewrite, qmgr, virtual/discard,
proxymap, tlsmgr, anvil, postlogd, master and Dovecot's auth processes (the whole process
trees, with the CPU of processes that ended, from /proc). Every instance is stopped on exit,
also on errors; when Postfix cannot be installed or started, the script says why
("POSTFIX NOT MEASURED: ...") with Postfix's own error text.

  SEALMAIL_BUILD=build-bench python3 bench/smtp_bench.py --seconds 3 --procs 2 --only-4k \
      --postfix
  SEALMAIL_BUILD=build-load python3 bench/smtp_bench.py --seconds 3 --only-4k --postfix \
      --client c
"""
import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sqlite3
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from smtp_env import SmtpEnv  # noqa: E402

PASSWORD = "bench password"
BENCH_RCPT = "bench@corp.example"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_message(size):
    head = (b"From: <bench@corp.example>\r\nTo: <bench@corp.example>\r\nSubject: bench\r\n"
            b"Message-ID: <%s@bench>\r\nDate: Tue, 03 Dec 2024 10:00:00 +0000\r\n\r\n"
            % os.urandom(8).hex().encode())
    line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;-=+/" + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[:size - len(head) - 2] + b"\r\n"


class Client:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    async def reply(self):
        while True:
            line = await self.r.readline()
            if not line:
                raise EOFError
            if line[3:4] != b"-":
                return line

    async def open(port, ctx, user):
        # TCP_NODELAY before the handshake, so the client's handshake flights are not held
        # by Nagle either (the same for every server)
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        r, w = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname="127.0.0.1")
        c = Client(r, w)
        await c.reply()
        if user is None:  # Postfix: no AUTH (see the module docstring)
            w.write(b"EHLO bench.example\r\n")
            await c.reply()
            return c
        w.write(b"EHLO bench.example\r\nAUTH PLAIN " + base64.b64encode(
            b"\0" + user.encode() + b"\0" + PASSWORD.encode()) + b"\r\n")
        await c.reply()
        line = await c.reply()
        assert line.startswith(b"235"), line
        return c

    async def send(self, user, msg):
        t0 = time.perf_counter()
        addr = (user or BENCH_RCPT).encode()
        self.w.write(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (addr, addr))
        for _ in range(3):
            await self.reply()
        self.w.write(msg + b".\r\n")
        line = await self.reply()
        assert line.startswith(b"250"), line
        return time.perf_counter() - t0

    async def quit(self):
        self.w.write(b"QUIT\r\n")
        try:
            await self.reply()
        except EOFError:
            pass
        self.w.close()


async def run_loop(port, ctx, user, msg, conns, seconds):
    lat = []
    deadline = time.perf_counter() + seconds

    async def one():
        c = await Client.open(port, ctx, user)
        while time.perf_counter() < deadline:
            lat.append(await c.send(user, msg))
        await c.quit()

    await asyncio.gather(*(one() for _ in range(conns)))
    return lat


async def run_per_connection(port, ctx, user, msg, conns, seconds):
    """(MAIL-to-250 latencies, whole-session latencies)"""
    lat, sess = [], []
    deadline = time.perf_counter() + seconds

    async def one():
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            c = await Client.open(port, ctx, user)
            lat.append(await c.send(user, msg))
            await c.quit()
            sess.append(time.perf_counter() - t0)

    await asyncio.gather(*(one() for _ in range(conns)))
    return lat, sess


def _cell_proc(a):
    port, ca, user, size, mode, conns, seconds = a
    ctx = ssl.create_default_context(cafile=ca)
    fn = run_loop if mode == "loop" else run_per_connection
    t = os.times()
    lat = asyncio.run(fn(port, ctx, user, make_message(size), conns, seconds))
    t2 = os.times()
    lat, sess = lat if mode != "loop" else (lat, [])
    return lat, sess, (t2.user - t.user) + (t2.system - t.system)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] * 1000 if v else 0


def run_cell_python(port, ca, user, size, mode, conns, seconds, procs):
    procs = max(1, min(procs, conns))
    split = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    if procs == 1:
        parts = [_cell_proc((port, ca, user, size, mode, conns, seconds))]
    else:
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            parts = pool.map(_cell_proc,
                             [(port, ca, user, size, mode, n, seconds) for n in split])
    lat = [x for p in parts for x in p[0]]
    sess = [x for p in parts for x in p[1]]
    return {"messages": len(lat), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
            "session_p50_ms": pct(sess, 50) if sess else None,
            "session_p99_ms": pct(sess, 99) if sess else None, "errors": 0,
            "first_error": "", "client_cpu": sum(p[2] for p in parts)}


def c_client():
    return os.path.join(harness.build_dir(), "bench", "smtp_load")


def run_cell_c(port, ca, user, size, mode, conns, seconds, verify):
    cmd = [c_client(), "--port", str(port), "--conns", str(conns), "--seconds", str(seconds),
           "--size", str(size), "--mode", mode] + (["--ca", ca] if verify else ["--insecure"])
    if user is None:  # Postfix without AUTH
        cmd += ["--no-auth", "--from", BENCH_RCPT]
    else:
        cmd += ["--user", user, "--password", PASSWORD]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("smtp_load exited %d: %s" % (r.returncode, r.stderr.strip()))
    j = json.loads(r.stdout.strip().splitlines()[-1])
    j["client_cpu"] = j["cpu_user_s"] + j["cpu_sys_s"]
    if mode == "loop":
        j["session_p50_ms"] = j["session_p99_ms"] = None
    return j


def run_cell(port, ca, user, size, mode, conns, seconds, procs, client="python"):
    # client: "python", "c" (no certificate verification) or "c-verify"
    """A dict of one cell: messages, p50_ms, p99_ms, session_p50_ms, session_p99_ms (None
    for loop), errors, first_error, client_cpu (seconds)."""
    if client in ("c", "c-verify"):
        return run_cell_c(port, ca, user, size, mode, conns, seconds, client == "c-verify")
    return run_cell_python(port, ca, user, size, mode, conns, seconds, procs)



def measure(label, port, ca, user, size, mode, conns, seconds, procs, cpu_fn, settle=None,
            client="python"):
    """One cell. settle(): called after the clients are done and before CPU is read again
    (Postfix: waits until the queue is delivered, so delivery's CPU counts); returns a note.
    Row: label, KiB, mode, conns, msgs, msg/s, p50, p99, server and client CPU ms/msg,
    session p50, session p99 (None for loop), errors, note."""
    cpu0 = cpu_fn()
    t0 = time.perf_counter()
    res = run_cell(port, ca, user, size, mode, conns, seconds, procs, client)
    wall = time.perf_counter() - t0
    note = settle() if settle else ""
    cpu = cpu_fn() - cpu0
    n = res["messages"]
    if res["errors"]:
        note += "  (%d CLIENT ERRORS, first: %s)" % (res["errors"], res["first_error"])
    row = (label, size // 1024, mode, conns, n, n / wall, res["p50_ms"], res["p99_ms"],
           cpu / max(1, n) * 1000, res["client_cpu"] / max(1, n) * 1000,
           res["session_p50_ms"], res["session_p99_ms"], res["errors"])
    sess = "" if row[10] is None else "  session p50 %.1f p99 %.1f ms" % row[10:12]
    print("%-16s %4d KiB %-8s %3d conns: %6d msgs %8.0f msg/s  p50 %6.1f ms  p99 %6.1f ms"
          "  cpu %.3f ms/msg (client %.3f)" % row[:10] + sess + note, flush=True)
    return row + (note,), n


CELLS = [("loop", 1), ("loop", 8), ("loop", 64), ("per-conn", 8), ("per-conn", 64)]


def run_postfix(args, tmp, certs, user):
    """The 4 KiB cells against private Postfix instances, one per delivery mode. Returns rows;
    prints why not when Postfix (or its Dovecot SASL) cannot be had or started."""
    ok, out = peers.Postfix.install()
    if not ok:
        print("POSTFIX NOT MEASURED: apt-get install postfix failed: %s" % out.strip())
        return []
    sasl = args.postfix_auth == "dovecot"
    if sasl:
        ok, out = peers.Dovecot.install()
        if not ok:
            print("postfix: Dovecot (for its SASL) could not be installed (%s); Postfix runs "
                  "WITHOUT AUTH" % out.strip())
            sasl = False
    print("Postfix %s, AUTH PLAIN %s" % (peers.Postfix.version(),
          "through Dovecot %s SASL" % peers.Dovecot.version() if sasl else "OFF (no SASL)"),
          flush=True)
    rows = []
    for delivery in args.postfix_delivery.split(","):
        folder = os.path.join(tmp, "postfix-" + delivery)
        pf = peers.Postfix(folder, certs.server, certs.server_key, delivery=delivery, sasl=sasl,
                           extra=args.postfix_set)
        dv = None
        try:
            pf.prepare()
            if sasl:
                dv = peers.Dovecot(folder + "-auth", certs.server, certs.server_key,
                                   [(BENCH_RCPT, PASSWORD)], imap=False,
                                   auth_listener=pf.auth_socket).start()
            pf.start()
        except RuntimeError as e:
            print("POSTFIX NOT MEASURED (%s delivery): %s" % (delivery, e), flush=True)
            pf.stop()
            if dv:
                dv.stop()
            continue
        label = "postfix-" + delivery + ("+" + ",".join(args.postfix_set)
                                         if args.postfix_set else "")
        total = [0]

        def cpu():
            return pf.cpu() + (dv.cpu() if dv else 0.0)

        def settle():
            left = pf.queued()
            took = pf.drain(timeout=300)
            note = "  (queue %d at the end, empty %.1f s later" % (
                left, took) if took is not None else "  (queue NOT empty after 300 s"
            d = pf.delivered()
            if d is not None:
                note += ", %d in the Maildir" % d
            if pf.deferred():
                note += ", %d DEFERRED" % pf.deferred()
            return note + ")"

        try:
            for mode, conns in CELLS:
                row, n = measure(label, pf.port, certs.ca, BENCH_RCPT if sasl else None, 4096,
                                 mode, conns, args.seconds, args.procs, cpu, settle,
                                 args.client)
                rows.append(row)
                total[0] += n
            d = pf.delivered()
            if d is not None:
                print("%s: accepted %d, in the Maildir after the run: %d" % (label, total[0], d))
        except Exception as e:  # noqa: BLE001 - reported, then the instance is stopped
            print("postfix (%s) run failed: %r; %s" % (delivery, e, pf.log_tail()), flush=True)
        finally:
            pf.stop()
            if dv:
                dv.stop()
    return rows


def ratio_lines(rows):
    def find(label, mode, conns):
        for r in rows:
            if r[0] == label and r[1] == 4 and r[2] == mode and r[3] == conns:
                return r
        return None
    out = []
    for peer in sorted({r[0] for r in rows if r[0].startswith("postfix")}):
        for mode, conns, target in (("loop", 64, 5), ("per-conn", 64, 4), ("per-conn", 8, 4)):
            s, p = find("sealmail", mode, conns), find(peer, mode, conns)
            if s and p and p[5] > 0:
                x = s[5] / p[5]
                out.append("4 KiB %s x %d: sealmail %.0f/s vs %s %.0f/s = %.1fx (target >= %dx: "
                           "%s)" % (mode, conns, s[5], peer, p[5], x, target,
                                    "met" if x >= target else "NOT met"))
    s = find("sealmail", "loop", 64)
    if s:
        out.append("sealmail 64 x 4 KiB: p99 %.1f ms (target < 50: %s), server CPU %.3f ms/msg "
                   "(target < 0.5: %s)" % (s[7], "met" if s[7] < 50 else "NOT met", s[8],
                                           "met" if s[8] < 0.5 else "NOT met"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--procs", type=int, default=1, help="client processes")
    ap.add_argument("--postfix", action="store_true", help="also run the 4 KiB cells "
                    "against private Postfix instances (installed with apt-get if missing)")
    ap.add_argument("--postfix-delivery", default="maildir,discard",
                    help="comma-separated: maildir (virtual(8) into a Maildir), discard")
    ap.add_argument("--postfix-auth", choices=["dovecot", "none"], default="dovecot",
                    help="AUTH PLAIN on Postfix through a private Dovecot's auth service "
                    "(installed if missing), or no AUTH")
    ap.add_argument("--postfix-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra main.cf setting for Postfix (repeatable; labelled in rows)")
    ap.add_argument("--only-4k", action="store_true", help="skip the 100 KiB cells")
    ap.add_argument("--client", choices=["python", "c"], default="c",
                    help="load client: bench/smtp_load (C, the default), or the asyncio one "
                    "here (--procs applies to it only)")
    ap.add_argument("--c-verify", action="store_true", help="with --client c: verify the "
                    "server's certificate against the bench CA (off by default: client CPU)")
    args = ap.parse_args()
    if args.client == "c" and not os.access(c_client(), os.X_OK):
        print("--client c: %s is not built (ninja -C %s)" % (c_client(), harness.build_dir()))
        return 2
    print("client: %s" % ("bench/smtp_load (C, one thread, certificate %s)" % (
        "verified" if args.c_verify else "NOT verified") if args.client == "c" else
        "asyncio, %d process(es)" % max(1, args.procs)), flush=True)
    if args.client == "c" and args.procs > 1:
        print("--procs %d ignored: the C client is one process" % args.procs)
    if args.client == "c" and args.c_verify:
        args.client = "c-verify"
    # a SIGTERM still runs the finally blocks that stop the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="sealmail-bench-")
    certs = harness.CertSet(os.path.join(tmp, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(tmp, "srv"),
                         listeners=[("submission", "implicit", "none")],
                         limits={"connections_per_ip": 1000})
    srv.start()
    env = SmtpEnv(srv)
    user = env.add_user("bench", PASSWORD)
    port = srv.port("submission", "implicit")
    rows = []
    total = 0
    try:
        for size in (4096,) if args.only_4k else (4096, 102400):
            for mode, conns in CELLS:
                row, n = measure("sealmail", port, certs.ca, user, size, mode, conns,
                                 args.seconds, args.procs, lambda: cpu_seconds(srv.pid),
                                 client=args.client)
                rows.append(row)
                total += n
    finally:
        srv.stop()
    con = sqlite3.connect("file:%s?mode=ro" % env.db, uri=True)
    stored = con.execute("SELECT count(*) FROM entries").fetchone()[0]
    con.close()
    print("sealmail: accepted %d, in the mailbox after the run: %d" % (total, stored),
          flush=True)
    if args.postfix:
        rows += run_postfix(args, tmp, certs, user)
    print("\n| server | size | mode | conns | msgs | msg/s | p50 ms | p99 ms | session p50 ms "
          "| session p99 ms | server CPU ms/msg | client CPU ms/msg | errors |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        sess = ("-", "-") if r[10] is None else ("%.1f" % r[10], "%.1f" % r[11])
        print("| %s | %d KiB | %s | %d | %d | %.0f | %.1f | %.1f | %s | %s | %.3f | %.3f | %d |"
              % (r[:8] + sess + r[8:10] + (r[12],)))
    print()
    for line in ratio_lines(rows):
        print(line)
    shutil.rmtree(tmp, ignore_errors=True)
    errors = sum(r[12] for r in rows)
    if errors:
        print("client errors: %d (see the notes above)" % errors)
    return 0 if stored == total and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
