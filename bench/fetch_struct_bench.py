#!/usr/bin/python3
"""FETCH of message structure and of one part: sealmaild builds side by side, and Dovecot.

    /usr/bin/python3 bench/fetch_struct_bench.py --builds DIR1,DIR2 [--dovecot]
                     [--messages 10000] [--rounds 5] [--record]

Each DIR is a meson build directory holding server/sealmaild and cli/sealctl; one sealmaild
per build is started with the integration harness (imap_bench.Sealmail: implicit-TLS IMAP
on a free loopback port, its own folder). --dovecot adds a private Dovecot 2.3 with its
defaults (bench/peers.py: maildir in the run's folder, same certificate, IMAPS on a free
loopback port; apt-get installs dovecot-imapd when missing) and stops it at the end. Every
server gets the same --messages messages (fetch_bench.small_message, fixed seed: about
4 KiB each, realistic headers, every 10th multipart/alternative) with MULTIAPPEND +
LITERAL+, and runs for the whole run.

Measures, over one implicit-TLS connection per server after EXAMINE INBOX and one untimed
warm-up pass (which also lets Dovecot fill its cache file, as a client's first listing
would), rounds alternating the servers:
  1. FETCH 1:* (BODYSTRUCTURE ENVELOPE)   ms
  2. FETCH 1:* (BODY.PEEK[1])             ms
Time is from sending the command to reading its tagged OK; best and median of --rounds,
with the server's CPU time per command (utime+stime of its process tree from /proc, mean
of the rounds). Every server must answer --messages FETCH responses; the sealmaild builds
must send the same literal bytes.

--record appends a dated section (machine, command line, table) to bench/RESULTS.md.
"""
import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from fetch_bench import login, small_message  # noqa: E402
import benchlib  # noqa: E402
from benchlib import distro  # noqa: E402,F401  (its old home: other scripts import it here)

MEASURES = [
    ("structure", b"FETCH 1:* (BODYSTRUCTURE ENVELOPE)"),
    ("part1", b"FETCH 1:* (BODY.PEEK[1])"),
]


class Target:
    def __init__(self, label, server):
        self.label, self.t = label, server
        self.times = {k: [] for k, _ in MEASURES}
        self.cpu = {k: 0.0 for k, _ in MEASURES}
        self.bytes = {}
        self.conn = None

    def open(self, ctx):
        self.conn = login(self.t.port, ctx)
        self.conn.cmd(b"EXAMINE INBOX")

    def measure(self, expect, record=True):
        for key, cmd in MEASURES:
            c = self.conn
            c.fetches = 0
            cpu0 = self.t.cpu()
            t0 = time.perf_counter()
            nbytes, _ = c.cmd(cmd)
            dt = time.perf_counter() - t0
            cpu = self.t.cpu() - cpu0
            if c.fetches != expect:
                raise RuntimeError("%s: %s gave %d FETCH responses, expected %d"
                                   % (self.label, cmd.decode(), c.fetches, expect))
            self.bytes[key] = nbytes
            if record:
                self.times[key].append(dt)
                self.cpu[key] += cpu

    def close(self):
        if self.conn:
            self.conn.close()


def table(targets, rounds):
    a = targets[0]
    head = ["measure"]
    for t in targets:
        head += ["%s best ms" % t.label, "%s median ms" % t.label, "%s CPU ms" % t.label]
    for t in targets[1:]:
        head.append("%s/%s median" % (t.label, a.label))
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key, cmd in MEASURES:
        row = [cmd.decode()]
        med = {}
        for t in targets:
            v = sorted(x * 1000 for x in t.times[key])
            med[t.label] = statistics.median(v)
            row += ["%.0f" % v[0], "%.0f" % med[t.label], "%.0f" % (t.cpu[key] / rounds * 1000)]
        for t in targets[1:]:
            row.append("%.2f" % (med[t.label] / med[a.label]))
        out.append("| " + " | ".join(row) + " |")
    lines = ["\n".join(out), ""]
    for t in targets:
        lines.append("- %s: literal bytes per command %s" % (
            t.label, ", ".join("%d" % t.bytes.get(k, 0) for k, _ in MEASURES)))
    lines.append("- %d rounds, alternating %s; ms: lower is better; CPU: server utime+stime "
                 "per command, mean of the rounds (ticks of %.0f ms)" %
                 (rounds, " ".join(t.label for t in targets),
                  1000 / os.sysconf("SC_CLK_TCK")))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", required=True, help="comma-separated meson build directories")
    ap.add_argument("--dovecot", action="store_true", help="also a private Dovecot")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    paths = [os.path.abspath(p) for p in args.builds.split(",")]
    names = [os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in paths]

    rnd = random.Random(20241204)
    msgs = [small_message(i, rnd) for i in range(args.messages)]
    targets = []
    with benchlib.Servers("fetch-struct-bench-") as sv:
        try:
            for name, path in zip(names, paths):
                targets.append(Target(name, sv.sealmail(path)))
            if args.dovecot:
                targets.append(Target(*sv.dovecot()))
            for t in targets:
                benchlib.fill(t.t, sv.ctx, msgs, t.label)
                t.open(sv.ctx)
                t.measure(len(msgs), record=False)
            for r in range(args.rounds):
                for t in targets:
                    t.measure(len(msgs))
                print("round %d: %s" % (r + 1, "; ".join(
                    "%s %s" % (t.label, " ".join("%.0f ms" % (t.times[k][-1] * 1000)
                                                 for k, _ in MEASURES)) for t in targets)),
                      flush=True)
            sm = [t for t in targets if not t.label.startswith("dovecot")]
            for key, _ in MEASURES:
                if len({t.bytes[key] for t in sm}) > 1:
                    raise RuntimeError("sealmaild builds differ in %s bytes: %s" %
                                       (key, [t.bytes[key] for t in sm]))
            result = table(targets, args.rounds)
            print(result)
            if args.record:
                benchlib.record("FETCH structure and part 1", "fetch_struct_bench.py",
                                " (%d messages)" % args.messages, result)
        finally:
            for t in targets:
                t.close()


if __name__ == "__main__":
    main()
