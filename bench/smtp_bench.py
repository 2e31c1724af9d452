#!/usr/bin/env python3
"""SMTP submission benchmark: messages per second accepted over TLS with AUTH.

Starts a real sealmaild (tests/integration/harness.py) with a fresh store, adds a user, and
runs, for 4 KiB and 100 KiB messages: 1, 8 and 64 connections each sending messages in a loop
for --seconds, and one message per connection (connect, TLS, EHLO, AUTH, MAIL/RCPT/DATA, QUIT)
at 8 and 64 concurrent clients. Latency is from MAIL to the 250 after the final dot (the
reply is only sent once the message is durable in the store). Server CPU per message comes
from /proc/PID/stat. Every accepted message is counted in the database at the end.

With --procs P the client runs in P processes (each an asyncio loop with conns/P of the
connections), so one Python process's CPU does not set the latency. With --postfix the script
installs Postfix if needed (apt-get, "No configuration"), runs a private instance on a
loopback high port with implicit TLS (smtpd_tls_wrappermode), accepting for the test domain
and discarding after the queue (so "accepted" means durably queued, as Postfix answers 250
after its queue file is fsync'd), runs the 4 KiB cells against it in the same run, prints
both side by side, and stops it. Postfix's SASL needs Dovecot or Cyrus, so Postfix is
measured WITHOUT AUTH (sealmaild always with AUTH PLAIN).

  SEALMAIL_BUILD=build-smtp python3 bench/smtp_bench.py [--seconds 5] [--procs 2] [--postfix]
"""
import argparse
import asyncio
import base64
import multiprocessing
import os
import shutil
import socket
import subprocess
import sqlite3
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402
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
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                             server_hostname="127.0.0.1")
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    lat = []
    deadline = time.perf_counter() + seconds

    async def one():
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            c = await Client.open(port, ctx, user)
            await c.send(user, msg)
            await c.quit()
            lat.append(time.perf_counter() - t0)

    await asyncio.gather(*(one() for _ in range(conns)))
    return lat


def _cell_proc(a):
    port, ca, user, size, mode, conns, seconds = a
    ctx = ssl.create_default_context(cafile=ca)
    fn = run_loop if mode == "loop" else run_per_connection
    return asyncio.run(fn(port, ctx, user, make_message(size), conns, seconds))


def run_cell(port, ca, user, size, mode, conns, seconds, procs):
    """Latencies of one cell, with the client spread over procs processes."""
    procs = max(1, min(procs, conns))
    split = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    if procs == 1:
        return _cell_proc((port, ca, user, size, mode, conns, seconds))
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_cell_proc, [(port, ca, user, size, mode, n, seconds) for n in split])
    return [x for p in parts for x in p]


# ---- Postfix, side by side ---------------------------------------------------------------

POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - 200 smtpd -o smtpd_tls_wrappermode=yes
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
pickup unix n - n 60 1 pickup
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
meta_directory = /etc/postfix
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
myhostname = bench.localdomain
mydestination = corp.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
default_transport = discard
local_transport = discard
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = encrypt
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
maillog_file = {dir}/maillog
"""


def postfix_install():
    if shutil.which("postfix") or os.path.exists("/usr/sbin/postfix"):
        return True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type "
                   b"select No configuration\n", check=False)
    r = subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, capture_output=True)
    return r.returncode == 0


def postfix_free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def postfix_start(tmp, certs):
    d = os.path.join(tmp, "postfix")
    for sub in ("etc", "queue", "data"):
        os.makedirs(os.path.join(d, sub))
    shutil.chown(os.path.join(d, "data"), "postfix")
    port = postfix_free_port()
    with open(os.path.join(d, "etc", "main.cf"), "w") as f:
        f.write(POSTFIX_MAIN.format(dir=d, cert=certs.server, key=certs.server_key))
    with open(os.path.join(d, "etc", "master.cf"), "w") as f:
        f.write(POSTFIX_MASTER.format(port=port))
    os.chmod(certs.server_key, 0o600)
    cmd = ["/usr/sbin/postfix", "-c", os.path.join(d, "etc")]
    subprocess.run(cmd + ["check"], capture_output=True)
    r = subprocess.run(cmd + ["start"], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("postfix start: %s" % r.stderr.decode())
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return cmd, port, d


def postfix_stop(cmd):
    subprocess.run(cmd + ["stop"], capture_output=True)


def postfix_pids(d):
    """The Postfix processes of this instance (for their CPU time)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmdline = f.read()
            with open("/proc/%s/environ" % p, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if b"postfix" in cmdline or (d.encode() in env and b"MAIL_CONFIG" in env):
            pids.append(int(p))
    return pids


def cpu_of(pids):
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):
            pass
    return total


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] * 1000 if v else 0


def measure(label, port, ca, user, size, mode, conns, seconds, procs, cpu_fn):
    cpu0 = cpu_fn()
    t0 = time.perf_counter()
    lat = run_cell(port, ca, user, size, mode, conns, seconds, procs)
    wall = time.perf_counter() - t0
    cpu = cpu_fn() - cpu0
    row = (label, size // 1024, mode, conns, len(lat), len(lat) / wall, pct(lat, 50),
           pct(lat, 99), cpu / max(1, len(lat)) * 1000)
    print("%-9s %4d KiB %-8s %3d conns: %6d msgs %8.0f msg/s  p50 %6.1f ms  p99 %6.1f ms"
          "  cpu %.3f ms/msg" % row, flush=True)
    return row, len(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--procs", type=int, default=1, help="client processes")
    ap.add_argument("--postfix", action="store_true", help="also run the 4 KiB cells "
                    "against a private Postfix instance (installed with apt-get if missing)")
    ap.add_argument("--only-4k", action="store_true", help="skip the 100 KiB cells")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sealmail-bench-")
    certs = harness.CertSet(os.path.join(tmp, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(tmp, "srv"),
                         listeners=[("submission", "implicit", "none")],
                         limits={"connections_per_ip": 1000})
    srv.start()
    env = SmtpEnv(srv)
    user = env.add_user("bench", PASSWORD)
    port = srv.port("submission", "implicit")
    cells = [("loop", 1), ("loop", 8), ("loop", 64), ("per-conn", 8), ("per-conn", 64)]
    rows = []
    total = 0
    try:
        for size in (4096,) if args.only_4k else (4096, 102400):
            for mode, conns in cells:
                row, n = measure("sealmail", port, certs.ca, user, size, mode, conns,
                                 args.seconds, args.procs, lambda: cpu_seconds(srv.pid))
                rows.append(row)
                total += n
    finally:
        srv.stop()
    con = sqlite3.connect("file:%s?mode=ro" % env.db, uri=True)
    stored = con.execute("SELECT count(*) FROM entries").fetchone()[0]
    con.close()
    print("accepted %d, in the mailbox after the run: %d" % (total, stored))
    if args.postfix:
        if not postfix_install():
            print("postfix: could not be installed; no side-by-side figures")
        else:
            try:
                cmd, pport, pdir = postfix_start(tmp, certs)
            except RuntimeError as e:
                print("postfix: did not start (%s); no side-by-side figures" % e)
                cmd = None
            try:
                if cmd is None:
                    raise StopIteration
                pids = postfix_pids(pdir)
                for mode, conns in cells:
                    row, _ = measure("postfix", pport, certs.ca, None, 4096, mode, conns,
                                     args.seconds, args.procs,
                                     lambda: cpu_of(set(pids) | set(postfix_pids(pdir))))
                    rows.append(row)
            except StopIteration:
                pass
            finally:
                if cmd is not None:
                    postfix_stop(cmd)
    print("\n| server | size | mode | conns | msgs | msg/s | p50 ms | p99 ms | server CPU ms/msg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d KiB | %s | %d | %d | %.0f | %.1f | %.1f | %.3f |" % r)
    return 0 if stored == total else 1


if __name__ == "__main__":
    sys.exit(main())
