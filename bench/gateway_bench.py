"""Gateway benchmark: sealmaild's gateway listener beside stunnel4, same run, same
certificate (ECDSA P-256 from the test PKI), same plaintext backend on loopback.

    python3 bench/gateway_bench.py [--build build] [--mb 512] [--seconds 10] [--idle 500]
                                   [--record]

Measures, for each gateway:
- MB/s through one connection, client to backend (upload) and backend to client
  (download): --mb MiB each way, best of --rounds;
- relayed connections per second: TCP connect, full TLS 1.3 handshake (no resumption), one
  round trip through the backend, close; two client processes for --seconds;
- memory per idle relayed connection: the gateway's RSS (all its processes) before and
  after --idle connections that each made one round trip through the backend and then
  stay open, divided by --idle.

The backend is a separate Python process (threads; recv_into and sendall of a 1 MiB
buffer), so it is the same for both. stunnel4 missing: its columns are skipped (install
with apt-get install -y stunnel4). --record appends a dated section to bench/RESULTS.md.
"""
import argparse
import datetime
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import harness  # noqa: E402

CHUNK = 1 << 20


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- the backend

def backend_main(port_q):
    """Sink, source and idle holder: the first line says which (UP n, DOWN n, PING, IDLE)."""
    raise_nofile()
    threading.stack_size(256 * 1024)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    port_q.put(ls.getsockname()[1])
    out = os.urandom(CHUNK)

    def serve(c):
        try:
            f = b""
            while b"\n" not in f:
                d = c.recv(64)
                if not d:
                    return
                f += d
            line, rest = f.split(b"\n", 1)
            w = line.split()
            if w[0] == b"UP":
                want, n = int(w[1]), len(rest)
                mv = memoryview(bytearray(CHUNK))
                while n < want:
                    k = c.recv_into(mv[:min(CHUNK, want - n)])
                    if k == 0:
                        break
                    n += k
                c.sendall(b"%d\n" % n)
            elif w[0] == b"DOWN":
                left = int(w[1])
                mv = memoryview(out)
                while left > 0:
                    k = min(left, CHUNK)
                    c.sendall(mv[:k])
                    left -= k
            elif w[0] == b"PING":
                c.sendall(b"P\n")
            elif w[0] == b"IDLE":
                c.sendall(b"K\n")
                c.recv(1)  # holds until the client goes
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# --------------------------------------------------------------------------- the gateways

class Sealmail:
    name = "sealmaild gateway"

    def __init__(self, work, certs, backend_port, build):
        os.environ["SEALMAIL_BUILD"] = os.path.abspath(build)
        self.srv = harness.Server(
            certs, workdir=os.path.join(work, "sealmail"),
            listeners=[{"protocol": "gateway", "tls": "implicit",
                        "backend": {"host": "127.0.0.1", "port": backend_port}}],
            limits={"connections": 20000, "connections_per_ip": 20000})

    def start(self):
        self.srv.start()
        self.port = self.srv.port("gateway", "implicit")
        return self

    def pids(self):
        return [self.srv.pid]

    def version(self):
        r = subprocess.run([harness.tool("sealmaild"), "--version"], capture_output=True,
                           text=True)
        return (r.stdout or r.stderr).strip().splitlines()[0]

    def stop(self):
        self.srv.stop()


class Stunnel:
    name = "stunnel4"

    def __init__(self, work, certs, backend_port):
        self.dir = os.path.join(work, "stunnel")
        os.makedirs(self.dir)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.conf = os.path.join(self.dir, "stunnel.conf")
        with open(self.conf, "w") as f:
            f.write("foreground = yes\npid =\ndebug = 3\noutput = %s/stunnel.log\n"
                    "[gw]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
                    "cert = %s\nkey = %s\n" % (self.dir, self.port, backend_port,
                                               certs.server, certs.server_key))

    def start(self):
        self.proc = subprocess.Popen([shutil.which("stunnel4") or "stunnel", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("stunnel did not start")
                time.sleep(0.05)

    def pids(self):
        out = [self.proc.pid]
        try:
            kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read()
            out += [int(p) for p in kids.split()]
        except OSError:
            pass
        return out

    def version(self):
        r = subprocess.run([shutil.which("stunnel4") or "stunnel", "-version"],
                           capture_output=True, text=True)
        for line in (r.stdout + r.stderr).splitlines():
            if line.startswith("stunnel "):
                return line.strip()
        return "stunnel"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def rss_kib(pids):
    return sum(harness.rss_kib(p) for p in pids)


def cpu_s(pids):
    """User + system CPU seconds of the processes (their threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        with open("/proc/%d/stat" % p) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


# --------------------------------------------------------------------------- the measures

def client_ctx(certs):
    ctx = harness.client_context(certs, minv=ssl.TLSVersion.TLSv1_3)
    return ctx


def connect(port, ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def upload(port, ctx, nbytes):
    s = connect(port, ctx)
    block = memoryview(os.urandom(CHUNK))
    t0 = time.perf_counter()
    s.sendall(b"UP %d\n" % nbytes)
    left = nbytes
    while left > 0:
        k = min(left, CHUNK)
        s.sendall(block[:k])
        left -= k
    got = b""
    while not got.endswith(b"\n"):
        d = s.recv(64)
        if not d:
            break
        got += d
    dt = time.perf_counter() - t0
    s.close()
    if int(got or b"0") != nbytes:
        raise RuntimeError("backend counted %r of %d bytes" % (got, nbytes))
    return nbytes / dt / 1e6


def download(port, ctx, nbytes):
    s = connect(port, ctx)
    t0 = time.perf_counter()
    s.sendall(b"DOWN %d\n" % nbytes)
    mv = memoryview(bytearray(CHUNK))
    n = 0
    while n < nbytes:
        k = s.recv_into(mv)
        if k == 0:
            break
        n += k
    dt = time.perf_counter() - t0
    s.close()
    if n != nbytes:
        raise RuntimeError("got %d of %d bytes" % (n, nbytes))
    return nbytes / dt / 1e6


def _hs_worker(port, certs_dir, seconds, q):
    raise_nofile()
    certs = harness.CertSet.__new__(harness.CertSet)
    certs.ca = os.path.join(certs_dir, "ca.crt")
    ctx = client_ctx(certs)
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        s = connect(port, ctx)
        s.sendall(b"PING\n")
        if s.recv(2) != b"P\n":
            raise RuntimeError("no pong")
        s.close()
        n += 1
    q.put(n)


def handshakes(port, certs, seconds, procs=2):
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=_hs_worker, args=(port, certs.dir, seconds, q))
          for _ in range(procs)]
    t0 = time.perf_counter()
    for p in ps:
        p.start()
    total = sum(q.get() for _ in ps)
    for p in ps:
        p.join()
    return total / (time.perf_counter() - t0)


def idle_memory(gw, ctx, n):
    time.sleep(0.5)
    before = rss_kib(gw.pids())
    socks = []
    for _ in range(n):
        s = connect(gw.port, ctx)
        s.sendall(b"IDLE\n")
        if s.recv(2) != b"K\n":
            raise RuntimeError("no K")
        socks.append(s)
    time.sleep(1.0)
    after = rss_kib(gw.pids())
    for s in socks:
        s.close()
    return (after - before) / n, before, after


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    raise_nofile()
    work = tempfile.mkdtemp(prefix="gateway-bench-")
    certs = harness.CertSet(os.path.join(work, "certs"))
    q = multiprocessing.Queue()
    be = multiprocessing.Process(target=backend_main, args=(q,), daemon=True)
    be.start()
    backend_port = q.get()
    gws = [Sealmail(work, certs, backend_port, args.build)]
    if shutil.which("stunnel4") or shutil.which("stunnel"):
        gws.append(Stunnel(work, certs, backend_port))
    else:
        print("stunnel4 not installed: measuring sealmaild alone")
    load0 = loadavg()
    results = {}
    try:
        for gw in gws:
            gw.start()
        ctx = client_ctx(certs)
        nbytes = args.mb << 20
        for gw in gws:
            results[gw.name] = {"version": gw.version(), "up": 0.0, "down": 0.0,
                                "cpu_up": [], "cpu_down": []}
        # Alternate the gateways round by round, so a busy moment hurts both alike. The
        # gateway's own CPU time per GiB moved is steadier than MB/s on a shared machine.
        gib = nbytes / (1 << 30)
        for _ in range(args.rounds):
            for gw in gws:
                r = results[gw.name]
                c0 = cpu_s(gw.pids())
                r["up"] = max(r["up"], upload(gw.port, ctx, nbytes))
                c1 = cpu_s(gw.pids())
                r["down"] = max(r["down"], download(gw.port, ctx, nbytes))
                c2 = cpu_s(gw.pids())
                r["cpu_up"].append((c1 - c0) / gib)
                r["cpu_down"].append((c2 - c1) / gib)
        for gw in gws:
            results[gw.name]["hs"] = handshakes(gw.port, certs, args.seconds)
        for gw in gws:
            per, b, a = idle_memory(gw, ctx, args.idle)
            results[gw.name].update(idle=per, rss0=b, rss1=a)
        s = connect(gws[0].port, ctx)
        cipher = "%s %s" % (s.version(), s.cipher()[0])
        s.close()
    finally:
        for gw in gws:
            try:
                gw.stop()
            except Exception:
                pass
        be.terminate()
    load1 = loadavg()
    lines = []
    lines.append("| gateway | upload MB/s | download MB/s | gateway CPU s/GiB up, down "
                 "(median) | relayed connections/s | KiB per idle relayed connection (RSS "
                 "before → after %d) |" % args.idle)
    lines.append("|---|---:|---:|---:|---:|---:|")
    med = lambda v: sorted(v)[len(v) // 2]
    for name, r in results.items():
        lines.append("| %s (%s) | %.0f | %.0f | %.2f, %.2f | %.0f | %.1f (%d → %d KiB) |" % (
            name, r["version"], r["up"], r["down"], med(r["cpu_up"]), med(r["cpu_down"]),
            r["hs"], r["idle"], r["rss0"], r["rss1"]))
    table = "\n".join(lines)
    print(table)
    print("cipher: %s; load average before %s, after %s" % (cipher, load0, load1))
    if args.record:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                       platform.processor())
        text = ("\n## Gateway beside stunnel4 (%s)\n\n"
                "One TLS connection's throughput each way (%d MiB, best of %d), relayed "
                "connections per second (connect, full TLS 1.3 handshake, one round trip "
                "through the backend, close; two client processes, %g s) and memory per "
                "idle relayed connection (RSS delta over %d connections), for sealmaild's "
                "gateway listener (`tls: implicit`, no client certificate) and stunnel4 "
                "with its defaults, same certificate (ECDSA P-256) and the same Python "
                "backend on loopback, clients in Python (ssl), all on one machine.\n\n"
                "Command:\n\n    python3 bench/gateway_bench.py --build %s --mb %d "
                "--seconds %g --idle %d --record\n\n"
                "Machine: `nproc` %d (%s), Linux %s; %s; load average %s before, %s "
                "after (other engineers share the machine).\n\n%s\n" % (
                    datetime.date.today().isoformat(), args.mb, args.rounds, args.seconds,
                    args.idle, os.path.relpath(args.build, SRC), args.mb, args.seconds,
                    args.idle, os.cpu_count(), cpu, platform.release(), cipher, load0,
                    load1, table))
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
