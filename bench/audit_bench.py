#!/usr/bin/python3
"""What the access audit costs: IMAP FETCH and POP3 RETR throughput of one sealmaild build
with audit.enabled true against the same build with it false, side by side in one run.

    /usr/bin/python3 bench/audit_bench.py [--build build] [--messages 2000] [--rounds 5]
                                          [--record]

Two daemons (the integration harness: implicit-TLS IMAP and POP3 on free loopback ports,
each its own folder and store, same certificates) get the same user and the same messages
(fetch_bench.small_message, about 4 KiB, fixed seed) by MULTIAPPEND. Then, rounds
alternating the daemons (on, off, on, off, ...), over one connection each:
  1. IMAP one message per command: UID FETCH n (BODY.PEEK[]) for every message, one after
     the other: messages/s. Every command is one audit record: the worst case.
  2. IMAP the whole mailbox in one command: FETCH 1:N (BODY.PEEK[]): MB/s of literal bytes
     (one record naming N UIDs).
  3. POP3 RETR n for every message, one after the other: messages/s (one record each).
Medians and bests over the rounds, and the ratio on/off (the target: at least 0.90), with
the daemon's CPU time (all threads, from /proc: utime+stime) per message fetched, which the
machine's other load does not change the way it changes wall-clock rates. The
records the audited daemon wrote are counted in its store at the end (they must be there:
one per FETCH command and per RETR, plus logins and logouts), and the run checks that
`sealctl audit verify` passes on it.

--record appends a dated section to bench/RESULTS.md.
"""
import argparse
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from imap_bench import PASSWORD, USER, Raw  # noqa: E402
from fetch_bench import append, small_message  # noqa: E402
import benchlib  # noqa: E402
import harness  # noqa: E402
import peers  # noqa: E402


class Daemon:
    def __init__(self, work, certs, audit):
        self.label = "audit on" if audit else "audit off"
        self.srv = harness.Server(certs, workdir=work,
                                  listeners=[("imap", "implicit", "none"),
                                             ("pop3", "implicit", "none")],
                                  extra_yaml="audit:\n  enabled: %s\n"
                                  % ("true" if audit else "false"))
        self.srv.ca_dir = None
        self.srv.write_config()
        subprocess.run([harness.tool("sealctl"), "-c", self.srv.config_path, "user", "add", USER,
                        "--password-stdin"], input=(PASSWORD + "\n").encode(), check=True,
                       capture_output=True)
        self.srv.start()
        self.port = self.srv.port("imap", "implicit")
        self.pop3 = self.srv.port("pop3", "implicit")

    def records(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.srv.dir, "data", "mail.db"),
                             uri=True)
        try:
            return db.execute("SELECT count(*) FROM audit").fetchone()[0]
        finally:
            db.close()


class Pop3(Raw):
    """POP3 over TLS reading RETR answers up to their terminating line (no poplib); the
    connection and line reading are imap_bench.Raw's (its constructor reads the greeting)."""

    def __init__(self, port, ctx):
        super().__init__(port, ctx)
        self.ok(b"USER " + USER.encode())
        self.ok(b"PASS " + PASSWORD.encode())

    def ok(self, cmd):
        self.s.sendall(cmd + b"\r\n")
        line = self.readline()
        if not line.startswith(b"+OK"):
            raise RuntimeError(line)
        return line

    def retr(self, n):
        self.ok(b"RETR %d" % n)
        while True:
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                self.buf = self.buf[i + 5:]
                return i + 2
            chunk = self.s.recv(262144)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def close(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.readline()
        except (OSError, EOFError):
            pass
        super().close()


def imap(d, ctx):
    c = Raw(d.port, ctx)
    c.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
    c.cmd(b"EXAMINE INBOX")
    return c


def one_by_one(d, ctx, n):
    c = imap(d, ctx)
    t0 = time.perf_counter()
    for uid in range(1, n + 1):
        c.cmd(b"UID FETCH %d (BODY.PEEK[])" % uid)
    t = time.perf_counter() - t0
    c.close()
    return n / t


def bulk(d, ctx, n):
    c = imap(d, ctx)
    t0 = time.perf_counter()
    got, _ = c.cmd(b"FETCH 1:%d (BODY.PEEK[])" % n)
    t = time.perf_counter() - t0
    c.close()
    return got / t / 1e6


def retr(d, ctx, n):
    p = Pop3(d.pop3, ctx)
    t0 = time.perf_counter()
    for k in range(1, n + 1):
        p.retr(k)
    t = time.perf_counter() - t0
    p.close()
    return n / t


MEASURES = [("IMAP UID FETCH n (BODY.PEEK[]), one per command", "messages/s", one_by_one),
            ("IMAP FETCH 1:N (BODY.PEEK[])", "MB/s", bulk),
            ("POP3 RETR n, one per command", "messages/s", retr)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    os.environ["SEALMAIL_BUILD"] = os.path.abspath(args.build)
    with benchlib.Servers("audit-bench-") as sv:
        rnd = random.Random(20241204)
        msgs = [small_message(i, rnd) for i in range(args.messages)]
        on = Daemon(os.path.join(sv.work, "on"), sv.certs, True)
        off = Daemon(os.path.join(sv.work, "off"), sv.certs, False)
        sv.running += [on.srv, off.srv]
        for d in (on, off):
            benchlib.fill(d, sv.ctx, msgs, d.label)
            for _, _, fn in MEASURES:  # warm-up, untimed
                fn(d, sv.ctx, min(args.messages, 200))
        before = on.records()
        results = {(d.label, k): [] for d in (on, off) for k in range(len(MEASURES))}
        cpu = {(d.label, k): 0.0 for d in (on, off) for k in range(len(MEASURES))}
        for r in range(args.rounds):
            for k, (_, _, fn) in enumerate(MEASURES):
                for d in ((on, off) if r % 2 == 0 else (off, on)):
                    c0 = peers.tree_cpu(d.srv.pid)
                    results[(d.label, k)].append(fn(d, sv.ctx, args.messages))
                    cpu[(d.label, k)] += peers.tree_cpu(d.srv.pid) - c0
            print("round %d done" % (r + 1), flush=True)
        time.sleep(1)  # the last records' flush interval
        written = on.records() - before
        expected = args.rounds * (2 * args.messages + 1)  # FETCH and RETR commands
        verify = subprocess.run([harness.tool("sealctl"), "-c", on.srv.config_path, "audit",
                                 "verify"], capture_output=True, text=True)
        assert off.records() == 0, "the daemon with audit off wrote records"
        lines = ["| measure | audit on (median, best) | audit off (median, best) | on/off "
                 "(median) | server CPU per message, on / off |", "|---|---:|---:|---:|---:|"]
        per = args.rounds * args.messages
        for k, (name, unit, _) in enumerate(MEASURES):
            a, b = results[("audit on", k)], results[("audit off", k)]
            lines.append("| %s | %.0f %s (%.0f) | %.0f %s (%.0f) | %.2f | %.0f / %.0f us |" % (
                name, statistics.median(a), unit, max(a), statistics.median(b), unit, max(b),
                statistics.median(a) / statistics.median(b),
                cpu[("audit on", k)] / per * 1e6, cpu[("audit off", k)] / per * 1e6))
        body = "\n".join(lines) + "\n\n"
        body += ("Audit records the audited daemon wrote during the timed rounds: %d (at "
                 "least %d expected: one per FETCH command and per RETR, plus logins and "
                 "logouts). `sealctl audit verify` on it: %s\n" %
                 (written, expected, verify.stdout.strip().splitlines()[0]
                  if verify.stdout else verify.stderr.strip()))
        print(body)
        ok = written >= expected and verify.returncode == 0
        if not ok:
            print("FAILED: records missing or the chain does not verify")
        if args.record:
            load = os.getloadavg()
            benchlib.record("Access audit: FETCH and RETR with audit on and off", "audit_bench.py",
                            ", %d messages of ~4 KiB, %d rounds alternating, load average "
                            "before %.2f" % (args.messages, args.rounds, load[0]), body)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
