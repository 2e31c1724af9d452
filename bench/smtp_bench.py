#!/usr/bin/env python3
"""SMTP submission benchmark: messages per second accepted over TLS with AUTH.

Starts a real sealmaild (tests/integration/harness.py) with a fresh store, adds a user, and
runs, for 4 KiB and 100 KiB messages: 1, 8 and 64 connections each sending messages in a loop
for --seconds, and one message per connection (connect, TLS, EHLO, AUTH, MAIL/RCPT/DATA, QUIT)
at 8 and 64 concurrent clients. Latency is from MAIL to the 250 after the final dot (the
reply is only sent once the message is durable in the store). Server CPU per message comes
from /proc/PID/stat. Every accepted message is counted in the database at the end.

  SEALMAIL_BUILD=build-smtp python3 bench/smtp_bench.py [--seconds 5]
"""
import argparse
import asyncio
import base64
import os
import sqlite3
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402
from smtp_env import SmtpEnv  # noqa: E402

PASSWORD = "bench password"


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
        c = Client(r, w)
        await c.reply()
        w.write(b"EHLO bench.example\r\nAUTH PLAIN " + base64.b64encode(
            b"\0" + user.encode() + b"\0" + PASSWORD.encode()) + b"\r\n")
        await c.reply()
        line = await c.reply()
        assert line.startswith(b"235"), line
        return c

    async def send(self, user, msg):
        t0 = time.perf_counter()
        self.w.write(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (user.encode(),
                                                                        user.encode()))
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


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] * 1000 if v else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sealmail-bench-")
    certs = harness.CertSet(os.path.join(tmp, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(tmp, "srv"),
                         listeners=[("submission", "implicit", "none")],
                         limits={"connections_per_ip": 1000})
    srv.start()
    env = SmtpEnv(srv)
    user = env.add_user("bench", PASSWORD)
    ctx = ssl.create_default_context(cafile=certs.ca)
    port = srv.port("submission", "implicit")
    rows = []
    total = 0
    try:
        for size in (4096, 102400):
            msg = make_message(size)
            for mode, conns in (("loop", 1), ("loop", 8), ("loop", 64), ("per-conn", 8),
                                ("per-conn", 64)):
                cpu0 = cpu_seconds(srv.pid)
                t0 = time.perf_counter()
                fn = run_loop if mode == "loop" else run_per_connection
                lat = asyncio.run(fn(port, ctx, user, msg, conns, args.seconds))
                wall = time.perf_counter() - t0
                cpu = cpu_seconds(srv.pid) - cpu0
                total += len(lat)
                rows.append((size // 1024, mode, conns, len(lat), len(lat) / wall,
                             pct(lat, 50), pct(lat, 99), cpu / max(1, len(lat)) * 1000))
                print("%4d KiB %-8s %3d conns: %6d msgs %8.0f msg/s  p50 %6.1f ms  p99 %6.1f ms"
                      "  cpu %.3f ms/msg" % rows[-1], flush=True)
    finally:
        srv.stop()
    con = sqlite3.connect("file:%s?mode=ro" % env.db, uri=True)
    stored = con.execute("SELECT count(*) FROM entries").fetchone()[0]
    con.close()
    print("accepted %d, in the mailbox after the run: %d" % (total, stored))
    print("\n| size | mode | conns | msgs | msg/s | p50 ms | p99 ms | server CPU ms/msg |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d KiB | %s | %d | %d | %.0f | %.1f | %.1f | %.3f |" % r)
    return 0 if stored == total else 1


if __name__ == "__main__":
    sys.exit(main())
