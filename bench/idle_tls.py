#!/usr/bin/python3
"""Memory per idle TLS connection: RSS growth of sealmaild holding N idle IMAPS connections.

Starts the real sealmaild (tests/integration/harness.py) with one implicit-TLS IMAP
listener on a free loopback port, warms it up, reads VmRSS from /proc/PID/status, opens N
concurrent TLS 1.3 connections (asyncio; each reads the greeting and then stays idle), waits
for RSS to settle, reads VmRSS again and prints the growth per connection.

    /usr/bin/python3 bench/idle_tls.py                  # 1,000 connections, build/
    /usr/bin/python3 bench/idle_tls.py --count 10000
    SEALMAIL_BUILD=build-release /usr/bin/python3 bench/idle_tls.py --record

--record appends the figures to the "## Idle TLS connections" section of bench/RESULTS.md.
Not a test: the target (< 64 KiB per connection) is reported, not asserted.
"""
import argparse
import asyncio
import datetime
import os
import platform
import resource
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

TARGET_KIB = 64


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if want < need:
        sys.exit("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed "
                 "(raise it: ulimit -Hn)" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


async def open_one(port, ctx, sem, conns, errors):
    async with sem:
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                        server_hostname="127.0.0.1"), 30)
            line = await asyncio.wait_for(r.readline(), 30)
            if not line.startswith(b"* OK"):
                raise RuntimeError("greeting %r" % line)
            conns.append((r, w))
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))


async def hold(port, ctx, count, parallel):
    sem = asyncio.Semaphore(parallel)
    conns, errors = [], []
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(port, ctx, sem, conns, errors) for _ in range(count)))
    return conns, errors, time.monotonic() - t0


async def close_all(conns):
    for _, w in conns:
        w.close()
    await asyncio.gather(*(w.wait_closed() for _, w in conns), return_exceptions=True)


async def settle(pid, seconds=1.0):
    """Waits until VmRSS stops changing (or seconds pass); returns it."""
    last = harness.rss_kib(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = harness.rss_kib(pid)
        if now == last:
            break
        last = now
    return last


async def run(args, srv, ctx):
    port = srv.port("imap", "implicit")
    # Warm-up: one-time allocations (TLS context, allocator arenas) are not per connection.
    conns, errors, _ = await hold(port, ctx, min(50, args.count), args.parallel)
    if errors:
        raise SystemExit("warm-up failed: %s" % errors[:3])
    await close_all(conns)
    await asyncio.sleep(0.5)
    before = await settle(srv.pid)
    conns, errors, took = await hold(port, ctx, args.count, args.parallel)
    after = await settle(srv.pid, 3.0)
    hwm = vm_hwm(srv.pid)
    await asyncio.sleep(args.hold)
    after2 = harness.rss_kib(srv.pid)
    await close_all(conns)
    return {"before": before, "after": after, "after_hold": after2, "hwm": hwm,
            "open": len(conns), "errors": errors, "open_seconds": took}


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def record(path, intro, run_block):
    """Appends run_block to the "## Idle TLS connections" section (made with intro if
    missing), keeping earlier runs and every other section."""
    heading = "## Idle TLS connections"
    body = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    if heading in body:
        start = body.index(heading)
        nxt = body.find("\n## ", start + len(heading))
        end = len(body) if nxt < 0 else nxt + 1
        section = body[start:end].rstrip("\n") + "\n\n" + run_block.rstrip("\n") + "\n"
        body = body[:start] + section + ("\n" + body[end:] if nxt >= 0 else "")
    else:
        body = body.rstrip("\n") + "\n\n" + heading + "\n\n" + intro + "\n" + run_block
    with open(path, "w") as f:
        f.write(body.rstrip("\n") + "\n")


def buildtype():
    try:
        import json
        with open(os.path.join(harness.build_dir(), "meson-info", "intro-buildoptions.json")) as f:
            for o in json.load(f):
                if o["name"] == "buildtype":
                    return o["value"]
    except (OSError, ValueError, KeyError):
        pass
    return "unknown buildtype"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="idle connections (default 1000)")
    ap.add_argument("--parallel", type=int, default=64, help="handshakes in flight")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds to hold them idle")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--record", action="store_true",
                    help="append the result to bench/RESULTS.md")
    args = ap.parse_args()

    raise_nofile(args.count + 200)  # the server inherits the raised limit
    work = tempfile.mkdtemp(prefix="sealmail-bench-")
    certs = harness.CertSet(os.path.join(work, "pki"))
    srv = harness.Server(certs, workdir=os.path.join(work, "srv"),
                         listeners=[("imap", "implicit", "none")],
                         limits={"connections": args.count + 100,
                                 "connections_per_ip": args.count + 100,
                                 "idle_timeout_preauth": 3600,
                                 "handshake_timeout": 60})
    srv.start()
    try:
        version = ssl.TLSVersion.TLSv1_3 if args.tls == "1.3" else ssl.TLSVersion.TLSv1_2
        ctx = harness.client_context(certs, minv=version, maxv=version)
        res = asyncio.run(run(args, srv, ctx))
    finally:
        rc = srv.stop()
        problems = srv.problems()
    growth = res["after"] - res["before"]
    per = growth * 1024 / max(res["open"], 1)
    binary = harness.tool("sealmaild")
    lines = [
        "sealmaild %s (TLS %s, implicit IMAP, 127.0.0.1)" % (binary, args.tls),
        "connections open: %d of %d (%d errors) in %.1f s" % (res["open"], args.count,
                                                             len(res["errors"]),
                                                             res["open_seconds"]),
        "VmRSS before: %d KiB, with connections: %d KiB (after %.0f s idle: %d KiB), "
        "VmHWM %d KiB" % (res["before"], res["after"], args.hold, res["after_hold"], res["hwm"]),
        "RSS growth per idle TLS connection: %.1f KiB (target < %d KiB: %s)"
        % (per / 1024, TARGET_KIB, "met" if per / 1024 < TARGET_KIB else "NOT met"),
    ]
    if res["errors"]:
        lines.append("first errors: %s" % "; ".join(res["errors"][:3]))
    if problems:
        lines.append("server problems at exit: %s" % "; ".join(problems))
    print("\n".join(lines))
    if args.record:
        now = datetime.date.today().isoformat()
        cmd = "/usr/bin/python3 bench/idle_tls.py" + (
            " --count %d" % args.count if args.count != 1000 else "") + (
            " --tls 1.2" if args.tls != "1.3" else "")
        intro = ("RSS growth of sealmaild per idle TLS connection: implicit-TLS IMAP listener, "
                 "each client completes the handshake, reads the greeting and stays silent; "
                 "VmRSS from /proc/PID/status after a 50-connection warm-up and again once "
                 "all N are open. Target: under %d KiB each (Dovecot 2.3: 1.8 MB by default, "
                 "60-90 KB tuned, an earlier measurement on this machine).\n" % TARGET_KIB)
        run_block = ("%s, `nproc` %d, Linux %s, build `%s` (%s):\n\n    %s\n\n"
                     "| connections | TLS | RSS before (KiB) | RSS with them (KiB) | "
                     "KiB per connection |\n|---:|:---:|---:|---:|---:|\n"
                     "| %d | %s | %d | %d | %.1f |\n"
                     % (now, os.cpu_count(), platform.release(),
                        os.path.relpath(harness.build_dir(), ROOT), buildtype(), cmd,
                        res["open"], args.tls, res["before"], res["after"], per / 1024))
        record(os.path.join(HERE, "RESULTS.md"), intro, run_block)
    return 0 if not res["errors"] and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
