#!/usr/bin/python3
"""SORT and THREAD (RFC 5256, RFC 5957) on a large threaded mailbox: sealmaild against
Dovecot, every answer compared.

    /usr/bin/python3 bench/sort_bench.py --build DIR [--dovecot] [--messages 10000]
                     [--rounds 5] [--record]

DIR is a meson build directory holding server/sealmaild and cli/sealctl. The servers are
started by benchlib (sealmaild with the integration harness, --dovecot a private Dovecot
2.3 with its defaults) and get the same --messages messages (fixed seed, about 2-4 KiB
each) with MULTIAPPEND + LITERAL+, each with the same INBOX date-time on both (a minute
apart, every 25th equal to the one before). The corpus is made of threads: a third of the
messages start one, the others reply to an earlier message of a recent thread with
References and In-Reply-To (some with only In-Reply-To, some with References cut to the
last three, some with neither but a "Re:" subject), subjects carry "Re:", "RE:", "Fwd:",
"Re[2]:", "[list]" tags, "(fwd)" trailers, "[fwd: ...]" wrappers and encoded words; some
threads hang from a message that is not in the mailbox, a few messages lack Message-ID or
Date or repeat another's Message-ID, and dates come in several time zones with ties.

Measures, over one connection per server after EXAMINE INBOX, first one pass whose times
are reported apart ("first": sealmail reads the sort keys from the store, Dovecot builds
its sort and thread indexes, as a client's first view would), then rounds alternating the
servers: the commands of MEASURES. Time is from sending the command
to its tagged OK; best and median of --rounds, with the server's CPU per command
(utime+stime of its process tree, mean).

Every answer of sealmail is compared with Dovecot's: for SORT the positions where the two
orders differ (with the messages' keys there), for THREAD the threads one has and the
other has not. The differences are printed, not fatal: bench/RESULTS.md explains them.

--record appends a dated section (machine, command line, tables, differences) to
bench/RESULTS.md.
"""
import argparse
import datetime
import os
import random
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from imap_bench import PASSWORD, USER, Raw  # noqa: E402
from fetch_bench import FIRST, LAST, DOMAINS, _text, login  # noqa: E402
import benchlib  # noqa: E402

MEASURES = [
    "SORT (DATE) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "SORT (CC DATE) UTF-8 ALL",
    "SORT (REVERSE SIZE) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
]

TOPICS = ["quarterly figures", "meeting notes", "invoice 2024-%d", "build failed on main",
          "lunch?", "travel plans", "your order has shipped", "weekly report %d",
          "=?UTF-8?Q?Caf=C3=A9_tomorrow_=23%d?=", "=?UTF-8?B?w5xiZXJzaWNodA==?= %d",
          "release %d.0 checklist", "server migration", "[announce] office move %d",
          "budget", "holiday rota %d", "Re", "  spaced   out   %d  ", ""]
REPLY = ["Re: ", "Re: ", "Re: ", "RE: ", "re:", "Fwd: ", "Fw: ", "Re[2]: ", "[list] Re: ",
         "Re: Re: ", "[team] "]
ZONES = ["+0000", "+0100", "-0500", "+0530", "-0800", "+0900"]


def fmt_date(t, zone):
    sign = 1 if zone[0] == "+" else -1
    off = sign * (int(zone[1:3]) * 60 + int(zone[3:5]))
    local = t + datetime.timedelta(minutes=off)
    return local.strftime("%a, %d %b %Y %H:%M:%S ") + zone


# Hand-made messages put at the end of the corpus: the corners of RFC 5256 where servers
# may part ways. (headers, body) with %(i)d for a number unique in the corpus.
EDGES = [
    # References in a cycle, a message naming itself, one naming its own child
    "From: a@edge.example\r\nSubject: cycle one\r\nMessage-ID: <cyc1@edge>\r\n"
    "References: <cyc2@edge>\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000",
    "From: b@edge.example\r\nSubject: cycle two\r\nMessage-ID: <cyc2@edge>\r\n"
    "References: <cyc1@edge>\r\nDate: Mon, 03 Mar 2025 10:01:00 +0000",
    "From: c@edge.example\r\nSubject: self\r\nMessage-ID: <self@edge>\r\n"
    "References: <self@edge>\r\nDate: Mon, 03 Mar 2025 10:02:00 +0000",
    # subjects: only a blob, nested [fwd:], a blob before Re, Re with a blob, "(fwd)" twice
    "From: d@edge.example\r\nSubject: [only a blob]\r\nDate: Mon, 03 Mar 2025 10:03:00 +0000",
    "From: e@edge.example\r\nSubject: [fwd: [Fwd: Re: nested (fwd)]]\r\n"
    "Date: Mon, 03 Mar 2025 10:04:00 +0000",
    "From: f@edge.example\r\nSubject: [x] [y] re[3]: blobbed\r\n"
    "Date: Mon, 03 Mar 2025 10:05:00 +0000",
    "From: g@edge.example\r\nSubject: nested (fwd) (FWD)\r\nDate: Mon, 03 Mar 2025 10:06:00 +0000",
    "From: h@edge.example\r\nSubject: Re: [only a blob]\r\nDate: Mon, 03 Mar 2025 10:07:00 +0000",
    # no Subject, an empty one, white space only
    "From: i@edge.example\r\nDate: Mon, 03 Mar 2025 10:08:00 +0000",
    "From: j@edge.example\r\nSubject: \r\nDate: Mon, 03 Mar 2025 10:09:00 +0000",
    "From: k@edge.example\r\nSubject:  \t \r\nDate: Mon, 03 Mar 2025 10:10:00 +0000",
    # addresses: a group first, no From, a quoted local part, an encoded display name,
    # a display name that is empty quotes
    "From: Team: q1@edge.example, q2@edge.example;\r\nCc: undisclosed-recipients:;\r\n"
    "Subject: group\r\nDate: Mon, 03 Mar 2025 10:11:00 +0000",
    "Subject: no from\r\nDate: Mon, 03 Mar 2025 10:12:00 +0000",
    "From: \"quoted local\"@edge.example\r\nSubject: quoted\r\n"
    "Date: Mon, 03 Mar 2025 10:13:00 +0000",
    "From: \"\" <empty.name@edge.example>\r\nSubject: empty name\r\n"
    "Date: Mon, 03 Mar 2025 10:14:00 +0000",
    # dates: unparsable, a far zone, the same instant written in two zones
    "From: l@edge.example\r\nSubject: bad date\r\nDate: yesterday at noon",
    "From: m@edge.example\r\nSubject: zone a\r\nDate: Mon, 03 Mar 2025 23:30:00 -1200",
    "From: n@edge.example\r\nSubject: zone b\r\nDate: Tue, 04 Mar 2025 11:30:00 +0000",
    # two messages with one Message-ID, and a reply to it
    "From: o@edge.example\r\nSubject: twin\r\nMessage-ID: <twin@edge>\r\n"
    "Date: Mon, 03 Mar 2025 10:15:00 +0000",
    "From: p@edge.example\r\nSubject: twin\r\nMessage-ID: <twin@edge>\r\n"
    "Date: Mon, 03 Mar 2025 10:16:00 +0000",
    "From: q@edge.example\r\nSubject: Re: twin\r\nMessage-ID: <twin-reply@edge>\r\n"
    "In-Reply-To: <twin@edge>\r\nDate: Mon, 03 Mar 2025 10:17:00 +0000",
    # In-Reply-To with junk before the msg-id, References with an invalid one
    "From: r@edge.example\r\nSubject: Re: twin\r\nMessage-ID: <irt@edge>\r\n"
    "In-Reply-To: your message of today <twin-reply@edge>\r\n"
    "Date: Mon, 03 Mar 2025 10:18:00 +0000",
    "From: s@edge.example\r\nSubject: Re: twin\r\nMessage-ID: <badref@edge>\r\n"
    "References: not-a-msg-id\r\nIn-Reply-To: <irt@edge>\r\n"
    "Date: Mon, 03 Mar 2025 10:19:00 +0000",
]


def messages(n):
    """n messages in threads, the last len(EDGES) of them hand-made corners."""
    rnd = random.Random(20261207)
    t0 = datetime.datetime(2025, 3, 1, 8, 0, tzinfo=datetime.timezone.utc)
    threads = []  # [subject, [message ids]]
    ids = []
    out = []
    for i in range(n):
        t = t0 + datetime.timedelta(minutes=3 * i + rnd.randint(-20, 20))
        if rnd.random() < 0.02:
            t = t0 + datetime.timedelta(minutes=3 * (i - 1))  # ties
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        dom = rnd.choice(DOMAINS)
        local = "%s.%s" % (first.lower(), last.lower())
        r = rnd.random()
        if r < 0.6:
            frm = '"%s %s" <%s@%s>' % (first, last, local, dom)
        elif r < 0.8:
            frm = "%s@%s" % (local, dom)
        elif r < 0.9:
            frm = "=?UTF-8?Q?%s_=C3=96rsted?= <%s@%s>" % (first, local, dom)
        else:
            frm = "%s %s <%s@%s>" % (last.upper(), first, local.upper(), dom)
        h = ["From: " + frm, "To: Bench User <%s>" % USER]
        if rnd.random() < 0.3:
            h.append("Cc: %s <%s@%s>, team@%s" % (rnd.choice(FIRST), rnd.choice(FIRST).lower(),
                                                   dom, dom))
        mid = "<%08x.%d@%s>" % (rnd.getrandbits(32), i, dom)
        r = rnd.random()
        if r < 0.01:
            mid = None
        elif r < 0.015 and ids:
            mid = rnd.choice(ids)  # a duplicate Message-ID
        refs = irt = None
        if not threads or rnd.random() < 0.33:
            topic = rnd.choice(TOPICS)
            subject = topic % i if "%d" in topic else topic
            r = rnd.random()
            if r < 0.03:
                # a thread whose first message is not in the mailbox
                gone = "<gone.%d@%s>" % (i, dom)
                refs, irt = gone, gone
                subject = "Re: " + subject
                threads.append([subject, [gone]])
            else:
                threads.append([subject, []])
            th = threads[-1]
        else:
            th = threads[-1 - min(int(rnd.expovariate(0.3)), len(threads) - 1)]
            subject = rnd.choice(REPLY) + th[0]
            r = rnd.random()
            if r < 0.03:
                subject = "[fwd: %s]" % th[0]
            elif r < 0.06:
                subject = th[0] + " (fwd)"
            if th[1]:
                parent = rnd.randrange(len(th[1]))
                chain = th[1][:parent + 1]
                r = rnd.random()
                if r < 0.10:
                    irt = chain[-1]
                elif r < 0.15:
                    pass  # neither: threaded by subject only
                elif r < 0.25:
                    refs, irt = " ".join(chain[-3:]), chain[-1]
                else:
                    refs, irt = " ".join(chain), chain[-1]
        if refs:
            h.append("References: " + refs)
        if irt:
            h.append("In-Reply-To: " + irt)
        h.append("Subject: " + subject)
        if rnd.random() > 0.01:
            h.append("Date: " + fmt_date(t, rnd.choice(ZONES)))
        if mid:
            h.append("Message-ID: " + mid)
            th[1].append(mid)
            ids.append(mid)
        h += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"']
        body = _text(rnd, rnd.randint(1500, 3500))
        out.append(("\r\n".join(h) + "\r\n\r\n" + body).encode())
    if n > 2 * len(EDGES):
        for k, e in enumerate(EDGES):
            out[n - len(EDGES) + k] = (e + "\r\nTo: Bench User <%s>\r\n\r\nedge case %d\r\n"
                                       % (USER, k)).encode()
    return out


def arrivals(n):
    """The INTERNALDATE of each message: a minute apart, every 25th the same as the one
    before (ties for ARRIVAL), so that both servers hold the same dates."""
    t0 = datetime.datetime(2025, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)
    out, k = [], 0
    for i in range(n):
        if i % 25 != 24:
            k += 1
        out.append((t0 + datetime.timedelta(minutes=k)).strftime("%d-%b-%Y %H:%M:%S +0000"))
    return out


def fill(server, ctx, msgs, label, batch=200):
    """MULTIAPPEND with LITERAL+ and an INBOX date-time per message, in order."""
    dates = arrivals(len(msgs))
    t0 = time.perf_counter()
    c = login(server.port, ctx)
    for k in range(0, len(msgs), batch):
        c.cmd(b"APPEND INBOX " + b" ".join(
            b'"%s" {%d+}\r\n%s' % (dates[j].encode(), len(msgs[j]), msgs[j])
            for j in range(k, min(k + batch, len(msgs)))))
    c.close()
    print("%s: %d messages appended in %.1f s" % (label, len(msgs), time.perf_counter() - t0),
          flush=True)


# ---- answers -------------------------------------------------------------------------------

class Answered(Raw):
    """Raw that keeps the untagged SORT or THREAD answer."""
    answer = None

    def readline(self):
        line = super().readline()
        if line.startswith(b"* SORT") or line.startswith(b"* THREAD"):
            self.answer = line.rstrip(b"\r\n")
        return line


def parse_threads(s):
    """The top-level threads of a THREAD answer as strings, and each message's parent."""
    body = s[len("* THREAD"):].strip()
    tops, depth, start = [], 0, 0
    parent, stack, last = {}, [], None
    for tok in re.findall(r"\(|\)|\d+", body):
        if tok == "(":
            stack.append(last)
        elif tok == ")":
            last = stack.pop()
        else:
            m = int(tok)
            parent[m] = last
            last = m
    for k, ch in enumerate(body):
        if ch == "(":
            if depth == 0:
                start = k
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                tops.append(body[start:k + 1])
    return tops, parent


class Target:
    def __init__(self, label, server):
        self.label, self.t = label, server
        self.times = {m: [] for m in MEASURES}
        self.cpu = {m: 0.0 for m in MEASURES}
        self.answers = {}
        self.first = {}
        self.conn = None

    def open(self, ctx):
        self.conn = Answered(self.t.port, ctx)
        self.conn.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
        self.conn.cmd(b"EXAMINE INBOX")

    def measure(self, record=True):
        for m in MEASURES:
            c = self.conn
            c.answer = None
            cpu0 = self.t.cpu()
            t0 = time.perf_counter()
            c.cmd(m.encode())
            dt = time.perf_counter() - t0
            cpu = self.t.cpu() - cpu0
            self.answers[m] = (c.answer or b"").decode()
            if record:
                self.times[m].append(dt)
                self.cpu[m] += cpu
            else:
                self.first[m] = dt

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def keys_of(msgs):
    """Per sequence number, the header fields that SORT and THREAD look at (for reports)."""
    out = {}
    for i, m in enumerate(msgs):
        head = m[:m.index(b"\r\n\r\n")].decode("utf-8", "replace")
        f = {}
        for line in head.split("\r\n"):
            k, _, v = line.partition(": ")
            f[k.lower()] = v
        out[i + 1] = "Subject=%r From=%r Date=%r Cc=%r" % (
            f.get("subject"), f.get("from"), f.get("date"), f.get("cc"))
    return out


def compare(a, b, m, keys, limit=6):
    """Lines describing how b's answer to m differs from a's."""
    if a.answers[m] == b.answers[m]:
        return []
    out = []
    if m.startswith("SORT"):
        x = [int(v) for v in a.answers[m].split()[2:]]
        y = [int(v) for v in b.answers[m].split()[2:]]
        diff = [k for k in range(min(len(x), len(y))) if x[k] != y[k]]
        out.append("%s: %d of %d positions differ (%s %d numbers, %s %d)" % (
            m, len(diff), max(len(x), len(y)), a.label, len(x), b.label, len(y)))
        for k in diff[:limit]:
            out.append("  position %d: %s has %d [%s], %s has %d [%s]" % (
                k + 1, a.label, x[k], keys[x[k]], b.label, y[k], keys[y[k]]))
        return out
    ta, pa = parse_threads(a.answers[m])
    tb, pb = parse_threads(b.answers[m])
    sa, sb = set(ta), set(tb)
    only_a = [t for t in ta if t not in sb]
    only_b = [t for t in tb if t not in sa]
    moved = [k for k in pa if pa.get(k) != pb.get(k)]
    out.append("%s: %d threads at the top (%s), %d (%s); %d only in %s, %d only in %s; "
               "%d messages with another parent" % (m, len(ta), a.label, len(tb), b.label,
                                                    len(only_a), a.label, len(only_b),
                                                    b.label, len(moved)))
    if not only_a and not only_b:
        out.append("  same threads, in another order")
    for t in only_a[:limit]:
        out.append("  only %s: %s" % (a.label, t[:300]))
    for t in only_b[:limit]:
        out.append("  only %s: %s" % (b.label, t[:300]))
    for k in moved[:limit]:
        out.append("  message %d: parent %s in %s, %s in %s [%s]" % (
            k, pa.get(k), a.label, pb.get(k), b.label, keys[k]))
    return out


def table(targets, rounds):
    a = targets[0]
    head = ["command"]
    for t in targets:
        head += ["%s first ms" % t.label, "%s best ms" % t.label, "%s median ms" % t.label,
                 "%s CPU ms" % t.label]
    for t in targets[1:]:
        head.append("%s/%s median" % (t.label, a.label))
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for m in MEASURES:
        row = ["`%s`" % m]
        med = {}
        for t in targets:
            v = sorted(x * 1000 for x in t.times[m])
            med[t.label] = statistics.median(v)
            row += ["%.1f" % (t.first[m] * 1000), "%.1f" % v[0], "%.1f" % med[t.label],
                    "%.1f" % (t.cpu[m] / rounds * 1000)]
        for t in targets[1:]:
            row.append("%.1f" % (med[t.label] / med[a.label]))
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="meson build directory")
    ap.add_argument("--dovecot", action="store_true", help="also a private Dovecot")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()

    msgs = messages(args.messages)
    keys = keys_of(msgs)
    targets = []
    with benchlib.Servers("sort-bench-") as sv:
        try:
            targets.append(Target("sealmail", sv.sealmail(args.build)))
            if args.dovecot:
                targets.append(Target(*sv.dovecot()))
            for t in targets:
                fill(t.t, sv.ctx, msgs, t.label)
                t.open(sv.ctx)
                t.measure(record=False)
            for r in range(args.rounds):
                for t in targets:
                    t.measure()
                print("round %d: %s" % (r + 1, "; ".join(
                    "%s %s" % (t.label, " ".join("%.1f" % (t.times[m][-1] * 1000)
                                                 for m in MEASURES)) for t in targets)),
                      flush=True)
            for t in targets:
                for m in MEASURES:
                    got = t.answers[m].split()
                    if m.startswith("SORT") and len(got) - 2 != len(msgs):
                        raise RuntimeError("%s: %s named %d messages of %d" % (
                            t.label, m, len(got) - 2, len(msgs)))
            result = table(targets, args.rounds)
            result += ("\n- %d rounds, alternating %s; ms: lower is better; CPU: server "
                       "utime+stime per command, mean of the rounds (ticks of %.0f ms)\n" % (
                           args.rounds, " ".join(t.label for t in targets),
                           1000 / os.sysconf("SC_CLK_TCK")))
            diffs = []
            for t in targets[1:]:
                for m in MEASURES:
                    diffs += compare(targets[0], t, m, keys)
            same = [m for m in MEASURES if all(t.answers[m] == targets[0].answers[m]
                                               for t in targets[1:])]
            if len(targets) > 1:
                result += "- identical answers: %s\n" % (
                    ", ".join("`%s`" % m for m in same) or "none")
            print(result, flush=True)
            print("\n".join(diffs), flush=True)
            if args.record:
                body = result
                if diffs:
                    body += "\nDifferences (first few of each):\n\n```\n%s\n```\n" % (
                        "\n".join(diffs))
                benchlib.record("SORT and THREAD", "sort_bench.py",
                                " (%d messages)" % args.messages, body)
        finally:
            for t in targets:
                t.close()


if __name__ == "__main__":
    main()
