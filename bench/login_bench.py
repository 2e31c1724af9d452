#!/usr/bin/env python3
"""Login cost over TLS, cold and warm, beside the raw yescrypt cost on this machine.

Starts a real sealmaild (tests/integration/harness.py) with implicit-TLS submission and IMAP
listeners and a fresh store, adds users with sealctl (yescrypt, libxcrypt's default cost),
then for SMTP AUTH PLAIN and IMAP LOGIN, at 1 and 8 concurrent clients:
  cold: the first login of each of --users users (the server runs yescrypt once per login);
  warm: the same users again within the login cache's lifetime (no yescrypt).
One login = TCP connect, TLS 1.3 handshake, greeting, EHLO + AUTH PLAIN (or LOGIN), QUIT
(LOGOUT); logins/s is over the wall time of the cell, the latency per login is p50/p99.
The raw cost: crypt(3) of the same password against a stored hash, in this process
(ctypes, libcrypt), single-threaded.

  SEALMAIL_BUILD=build python3 bench/login_bench.py [--users 48]
"""
import argparse
import asyncio
import base64
import ctypes
import ctypes.util
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402

PASSWORD = "bench login password"


def raw_yescrypt(stored_hash, rounds=20):
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.crypt(PASSWORD.encode(), stored_hash.encode())  # warm-up
    t0 = time.perf_counter()
    for _ in range(rounds):
        out = lib.crypt(PASSWORD.encode(), stored_hash.encode())
    dt = (time.perf_counter() - t0) / rounds
    assert out.decode() == stored_hash
    return dt


async def read_reply(r, done):
    while True:
        line = await r.readline()
        if not line:
            raise EOFError
        if done(line):
            return line


async def smtp_login(port, ctx, user):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    smtp_done = lambda l: l[3:4] != b"-"  # noqa: E731
    await read_reply(r, smtp_done)
    w.write(b"EHLO bench.example\r\nAUTH PLAIN " +
            base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode()) + b"\r\n")
    await read_reply(r, smtp_done)
    line = await read_reply(r, smtp_done)
    assert line.startswith(b"235"), line
    w.write(b"QUIT\r\n")
    await read_reply(r, smtp_done)
    w.close()


async def imap_login(port, ctx, user):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    await read_reply(r, lambda l: l.startswith(b"* "))
    w.write(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
    line = await read_reply(r, lambda l: l.startswith(b"a "))
    assert line.startswith(b"a OK"), line
    w.write(b"b LOGOUT\r\n")
    await read_reply(r, lambda l: l.startswith(b"b "))
    w.close()


async def run(fn, port, ctx, users, conns):
    lat = []
    queue = list(users)

    async def worker():
        while queue:
            user = queue.pop()
            t0 = time.perf_counter()
            await fn(port, ctx, user)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return lat, time.perf_counter() - t0


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] * 1000 if v else 0


def add_users(srv, names):
    def add(address):
        r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "user", "add", address,
                            "--password-stdin"], input=(PASSWORD + "\n").encode(),
                           capture_output=True)
        assert r.returncode == 0, r.stderr

    with ThreadPoolExecutor(4) as ex:
        list(ex.map(add, names))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=48, help="users per cold cell")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sealmail-login-bench-")
    certs = harness.CertSet(os.path.join(tmp, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(tmp, "srv"),
                         listeners=[("submission", "implicit", "none"),
                                    ("imap", "implicit", "none")],
                         limits={"connections_per_ip": 1000})
    srv.start()
    ctx = ssl.create_default_context(cafile=certs.ca)
    rows = []
    try:
        cells = [("SMTP AUTH PLAIN", smtp_login, srv.port("submission", "implicit")),
                 ("IMAP LOGIN", imap_login, srv.port("imap", "implicit"))]
        groups = {(proto, conns): ["lb-%s-c%d-%d@%s" % (proto.split()[0].lower(), conns, i,
                                                       harness.DOMAIN)
                                   for i in range(args.users)]
                  for proto, _, _ in cells for conns in (1, 8)}
        all_users = [u for g in groups.values() for u in g]
        t0 = time.perf_counter()
        add_users(srv, all_users)
        print("added %d users in %.1f s" % (len(all_users), time.perf_counter() - t0))
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.dir, "data", "mail.db"),
                              uri=True)
        stored = con.execute("SELECT password_hash FROM users LIMIT 1").fetchone()[0]
        con.close()
        raw = raw_yescrypt(stored)
        print("raw yescrypt (%s...): %.1f ms per hash, %.0f hashes/s on one thread"
              % (stored[:7], raw * 1000, 1 / raw))
        for proto, fn, port in cells:
            for conns in (1, 8):
                users = groups[(proto, conns)]
                for phase in ("cold", "warm"):
                    lat, wall = asyncio.run(run(fn, port, ctx, users, conns))
                    rows.append((proto, conns, phase, len(lat), len(lat) / wall, pct(lat, 50),
                                 pct(lat, 99)))
                    print("%-16s %2d conns %-4s: %4d logins %7.1f logins/s  p50 %6.1f ms  "
                          "p99 %6.1f ms" % rows[-1], flush=True)
    finally:
        srv.stop()
    print("\nraw yescrypt: %.1f ms per hash (%.0f/s, one thread; `nproc` %d)"
          % (raw * 1000, 1 / raw, os.cpu_count()))
    print("\n| login | conns | cache | logins | logins/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d | %s | %d | %.1f | %.1f | %.1f |" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
