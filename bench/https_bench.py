#!/usr/bin/python3
"""HTTPS side: requests per second over TLS keep-alive for /metrics, /healthz and the
Thunderbird autoconfig document, and the memory an idle HTTPS connection costs.

Starts the real sealmaild (tests/integration/harness.py) with one implicit-TLS https
listener on a free loopback port. Requests: P client processes, each with one keep-alive
connection (Python http.client, TLS 1.3) sending N GETs of one path in a row; the figure is
all answers over the wall time. Idle cost: VmRSS growth of sealmaild holding C idle
HTTPS connections (handshake done, no request), after a warm-up.

    /usr/bin/python3 bench/https_bench.py                     # build/, 2 processes
    /usr/bin/python3 bench/https_bench.py --requests 5000 --idle 2000 --record

The client is Python: with one process per core it, not sealmaild, is usually the limit,
which the CPU time sealmaild used per request (from /proc) shows. Not a test.
"""
import argparse
import asyncio
import http.client
import multiprocessing
import os
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402

PATHS = [("/metrics", "metrics"), ("/healthz", "healthz"),
         ("/mail/config-v1.1.xml?emailaddress=bench%40" + harness.DOMAIN, "autoconfig")]


def worker(port, cafile, path, n, q):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    ok = 0
    t0 = time.perf_counter()
    for _ in range(n):
        c.request("GET", path, headers={"Host": "mail." + harness.DOMAIN})
        r = c.getresponse()
        r.read()
        ok += r.status == 200
    q.put((ok, time.perf_counter() - t0))
    c.close()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def rate(srv, path, procs, n):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(srv.port("https", "implicit"),
                                                       srv.certs.ca, path, n, q))
          for _ in range(procs)]
    cpu0 = cpu_ticks(srv.pid)
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    wall = time.perf_counter() - t0
    for p in ps:
        p.join()
    cpu = (cpu_ticks(srv.pid) - cpu0) / os.sysconf("SC_CLK_TCK")
    ok = sum(r[0] for r in res)
    return ok, procs * n, ok / wall, cpu / max(ok, 1) * 1e6


async def idle(srv, count):
    ctx = harness.client_context(srv.certs)
    port = srv.port("https", "implicit")
    sem = asyncio.Semaphore(64)
    conns = []

    async def one():
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                  server_hostname="127.0.0.1")
            conns.append(w)

    async def hold(k):
        await asyncio.gather(*(one() for _ in range(k)))

    await hold(min(50, count))
    for w in conns:
        w.close()
    conns.clear()
    await asyncio.sleep(1)
    before = harness.rss_kib(srv.pid)
    await hold(count)
    await asyncio.sleep(2)
    after = harness.rss_kib(srv.pid)
    n = len(conns)
    for w in conns:
        w.close()
    return n, before, after


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    ap.add_argument("--requests", type=int, default=2000, help="requests per process")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections to hold")
    ap.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sealmail-https-bench-")
    certs = harness.CertSet(os.path.join(work, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(work, "srv"),
                         listeners=[("https", "implicit", "none")],
                         limits={"connections": args.idle + 200,
                                 "connections_per_ip": args.idle + 200,
                                 "idle_timeout_preauth": 3600, "handshake_timeout": 60})
    srv.start()
    rows = []
    try:
        for path, name in PATHS:
            rate(srv, path, 1, 200)  # warm-up
            ok, total, rps, us = rate(srv, path, args.procs, args.requests)
            rows.append((name, ok, total, rps, us))
            print("%-10s %6d/%d ok  %8.0f req/s  sealmaild CPU %.0f us/request" %
                  (name, ok, total, rps, us), flush=True)
        n, before, after = asyncio.run(idle(srv, args.idle))
        per = (after - before) / max(n, 1)
        print("idle HTTPS connections: %d held, VmRSS %d -> %d KiB: %.1f KiB each" %
              (n, before, after, per))
    finally:
        srv.stop()
    if args.record:
        import benchlib
        body = ("| path | answers | requests/s | sealmaild CPU per request |\n"
                "|---|---:|---:|---:|\n")
        for name, ok, total, rps, us in rows:
            body += "| %s | %d of %d | %.0f | %.0f us |\n" % (name, ok, total, rps, us)
        body += ("\nIdle HTTPS connections (TLS 1.3, handshake done, no request): %d held, "
                 "VmRSS %d -> %d KiB, **%.1f KiB each**.\n" % (n, before, after, per))
        benchlib.record("HTTPS: requests over keep-alive and idle connections",
                        "https_bench.py",
                        " (%d client processes, one keep-alive connection each)" % args.procs,
                        body)


if __name__ == "__main__":
    main()
