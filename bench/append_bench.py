#!/usr/bin/python3
"""APPEND and MULTIAPPEND rate: sealmaild builds side by side, and Dovecot.

    /usr/bin/python3 bench/append_bench.py --builds DIR1,DIR2 [--dovecot]
                     [--messages 2000] [--conns 4] [--batch 100] [--rounds 3] [--record]

Each DIR is a meson build directory holding server/sealmaild and cli/sealctl; one sealmaild
per build is started with the integration harness (imap_bench.Sealmail: implicit-TLS IMAP
on a free loopback port, its own folder, synchronous=FULL as always). --dovecot adds a
private Dovecot 2.3 with its defaults (bench/peers.py: maildir, fsync_mode optimized, same
certificate, IMAPS on a free loopback port). Every server gets the same --messages
messages (fetch_bench.small_message, fixed seed: about 4 KiB each, every 10th
multipart/alternative), with the same client code, each round into a new mailbox:
  1. single: one APPEND per message (LITERAL+), over --conns connections at once, each
     appending its share in turn and waiting for every tagged OK (an imapsync per folder);
  2. multi: MULTIAPPEND (RFC 3502) of --batch messages per command with LITERAL+, on one
     connection.
Time is from the first command to the last tagged OK (logins and CREATE are outside);
messages/s, best and median of --rounds, with the server's CPU time per 1,000 messages
(utime+stime of its process tree from /proc, mean of the rounds). Each round checks that the
mailbox then holds exactly the messages appended (STATUS MESSAGES).

The physical limit is measured in the same run: fsyncs/s of a file in the run's folder
(4 KiB appended and fdatasync'd, for 2 s), as a WAL commit does. A server that answers
every APPEND only after its own fsync cannot go past it; group commit can.

--record appends a dated section (machine, command line, table) to bench/RESULTS.md.
"""
import argparse
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from fetch_bench import login, small_message  # noqa: E402
import benchlib  # noqa: E402

MEASURES = ["single", "multi"]


def fsync_rate(folder, seconds=2.0):
    """4 KiB appended and fdatasync'd in a loop: commits/s the disk allows one at a time."""
    path = os.path.join(folder, "fsync-probe")
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    try:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        dt = time.perf_counter() - t0
    finally:
        os.close(fd)
        os.unlink(path)
    return n / dt


def literal(m):
    return b"{%d+}\r\n%s" % (len(m), m)


class Target:
    def __init__(self, label, server):
        self.label, self.t = label, server
        self.rates = {k: [] for k in MEASURES}
        self.cpu = {k: 0.0 for k in MEASURES}
        self.round = 0

    def _mailbox(self, ctx, key):
        self.round += 1
        name = b"bench-%s-%d" % (key.encode(), self.round)
        c = login(self.t.port, ctx)
        c.cmd(b"CREATE " + name)
        return c, name

    def _check(self, c, name, expect):
        _, _ = c.cmd(b"NOOP")
        c.s.sendall(b"st STATUS " + name + b" (MESSAGES)\r\n")
        got = None
        while True:
            line = c.readline()
            if line.startswith(b"* STATUS"):
                got = int(line.rsplit(b"MESSAGES ", 1)[1].split(b")")[0])
            if line.startswith(b"st "):
                break
        if got != expect:
            raise RuntimeError("%s: %s holds %s messages, expected %d" %
                               (self.label, name.decode(), got, expect))

    def single(self, ctx, msgs, conns):
        c0, name = self._mailbox(ctx, "single")
        clients = [login(self.t.port, ctx) for _ in range(conns)]
        errors = []

        def run(k):
            try:
                for m in msgs[k::conns]:
                    clients[k].cmd(b"APPEND " + name + b" " + literal(m))
            except Exception as e:  # noqa: BLE001  (reported after the join)
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
        cpu0 = self.t.cpu()
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        dt = time.perf_counter() - t0
        cpu = self.t.cpu() - cpu0
        for c in clients:
            c.close()
        if errors:
            raise RuntimeError("%s: single APPEND: %s" % (self.label, errors[0]))
        self._check(c0, name, len(msgs))
        c0.close()
        return dt, cpu

    def multi(self, ctx, msgs, batch):
        c, name = self._mailbox(ctx, "multi")
        cmds = [b"APPEND " + name + b" " + b" ".join(literal(m) for m in msgs[k:k + batch])
                for k in range(0, len(msgs), batch)]
        cpu0 = self.t.cpu()
        t0 = time.perf_counter()
        for cmd in cmds:
            c.cmd(cmd)
        dt = time.perf_counter() - t0
        cpu = self.t.cpu() - cpu0
        self._check(c, name, len(msgs))
        c.close()
        return dt, cpu

    def measure(self, ctx, msgs, args):
        for key in MEASURES:
            if key == "single":
                dt, cpu = self.single(ctx, msgs, args.conns)
            else:
                dt, cpu = self.multi(ctx, msgs, args.batch)
            self.rates[key].append(len(msgs) / dt)
            self.cpu[key] += cpu * 1000 / len(msgs)



def table(targets, args, fsyncs):
    a = targets[0]
    head = ["measure"]
    for t in targets:
        head += ["%s best msg/s" % t.label, "%s median msg/s" % t.label,
                 "%s CPU s/1000" % t.label]
    for t in targets[1:]:
        head.append("%s/%s median" % (t.label, a.label))
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    names = {"single": "APPEND, %d connections" % args.conns,
             "multi": "MULTIAPPEND of %d, 1 connection" % args.batch}
    for key in MEASURES:
        row = [names[key]]
        med = {}
        for t in targets:
            v = sorted(t.rates[key], reverse=True)
            med[t.label] = statistics.median(v)
            row += ["%.0f" % v[0], "%.0f" % med[t.label],
                    "%.2f" % (t.cpu[key] / args.rounds)]
        for t in targets[1:]:
            row.append("%.2f" % (med[t.label] / med[a.label]))
        out.append("| " + " | ".join(row) + " |")
    lines = ["\n".join(out), ""]
    lines.append("- fsync rate of the run's folder (4 KiB appended + fdatasync, one at a "
                 "time): %s per second" % " / ".join("%.0f" % f for f in fsyncs))
    lines.append("- %d messages of about 4 KiB per measure and round, %d rounds alternating "
                 "%s; msg/s: higher is better; CPU: server utime+stime per 1,000 messages, "
                 "mean of the rounds (ticks of %.0f ms)" %
                 (args.messages, args.rounds, " ".join(t.label for t in targets),
                  1000 / os.sysconf("SC_CLK_TCK")))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builds", required=True, help="comma-separated meson build directories")
    ap.add_argument("--dovecot", action="store_true", help="also a private Dovecot")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    paths = [os.path.abspath(p) for p in args.builds.split(",")]
    names = [os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in paths]

    rnd = random.Random(20241204)
    msgs = [small_message(i, rnd) for i in range(args.messages)]
    with benchlib.Servers("append-bench-") as sv:
        ctx = sv.ctx
        targets = []
        fsyncs = [fsync_rate(sv.work)]
        print("fsync: %.0f/s" % fsyncs[0], flush=True)
        for name, path in zip(names, paths):
            targets.append(Target(name, sv.sealmail(path)))
        if args.dovecot:
            targets.append(Target(*sv.dovecot()))
        for r in range(args.rounds):
            for t in targets:
                t.measure(ctx, msgs, args)
            print("round %d: %s" % (r + 1, "; ".join(
                "%s %s" % (t.label, " ".join("%s %.0f/s" % (k, t.rates[k][-1])
                                             for k in MEASURES)) for t in targets)),
                  flush=True)
        fsyncs.append(fsync_rate(sv.work))
        result = table(targets, args, fsyncs)
        print(result)
        if args.record:
            benchlib.record("APPEND and MULTIAPPEND", "append_bench.py", "", result)


if __name__ == "__main__":
    main()
