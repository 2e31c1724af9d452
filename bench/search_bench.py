#!/usr/bin/python3
"""SEARCH BODY and TEXT on a large mailbox: sealmaild against Dovecot, answers checked.

    /usr/bin/python3 bench/search_bench.py --build DIR [--dovecot] [--messages 10000]
                     [--rounds 5] [--deliveries 1000] [--record]

DIR is a meson build directory holding server/sealmaild and cli/sealctl; it is started
with the integration harness (imap_bench.Sealmail: implicit-TLS IMAP on a free loopback
port, its own folder). --dovecot adds a private Dovecot 2.3 with its defaults (bench/peers.py:
maildir in the run's folder, same certificate, IMAPS on a free loopback port, no full-text
plugin: it reads and decodes the messages for each search) and stops it at the end. Every
server gets the same --messages messages (fetch_bench.small_message, fixed seed: about
4 KiB each, realistic headers, every 10th multipart/alternative, every 10th subject an
encoded word), with a rare word in the body of every 1,000th message and in a header of
every 2,500th, appended with MULTIAPPEND + LITERAL+.

Measures, over one connection per server after EXAMINE INBOX and one untimed warm-up pass,
rounds alternating the servers: SEARCH BODY and TEXT with a substring inside words, whole
words (one that every message has, a phrase of three that a few percent have), a rare word
and a piece of it. Time is from sending the command to its tagged OK; best and median of
--rounds, with the server's CPU per command (utime+stime of its process tree, mean).

Every sealmail answer is compared with a substring scan of the same messages done here,
decoded as delivery decodes them (header block plus its decoded encoded words for TEXT;
the text parts, transfer encoding undone and converted from their charset): any
difference fails the run. Dovecot's answers are compared too and reported (not fatal).

Then the index: its size (dbstat, bytes per message) and its cost per delivery, from
--deliveries messages appended (200 per MULTIAPPEND) to three fresh sealmaild stores of the
same build in the same run: the trigram index as shipped, the word index (unicode61) that
came before it, and no index (the same rows in a plain table), each twice, alternating.

--record appends a dated section (machine, command line, tables) to bench/RESULTS.md.
"""
import argparse
import email
import email.header
import email.policy
import os
import random
import sqlite3
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from imap_bench import Raw, Sealmail  # noqa: E402
from fetch_bench import append, small_message  # noqa: E402
import benchlib  # noqa: E402

RARE = "zanzibarquokka"

MEASURES = [
    ("BODY", "ovemb", "substring inside a word, in every message"),
    ("BODY", "alpha bravo charlie", "three whole words, a few percent"),
    ("BODY", "whiskey", "whole word, every message"),
    ("BODY", RARE, "rare word"),
    ("BODY", "barquok", "rare, inside a word"),
    ("TEXT", "whiskey", "whole word, every message"),
    ("TEXT", RARE, "rare word, body and header"),
    ("TEXT", "dmitri", "name in From, a few percent"),
    ("TEXT", "ibarqu", "rare, inside a word"),
]


def quoted(s):
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def messages(n):
    rnd = random.Random(20241204)
    out = []
    for i in range(n):
        m = small_message(i, rnd)
        if i % 1000 == 500:  # plain text (i % 10 == 0): the body's first word
            k = m.index(b"\r\n\r\n") + 4
            m = m[:k] + RARE.encode() + b" " + m[k:]
        if i % 2500 == 1234:
            m = m.replace(b"MIME-Version: 1.0\r\n",
                          b"X-Tracking: ref-%s-%d\r\nMIME-Version: 1.0\r\n"
                          % (RARE.encode(), i), 1)
        out.append(m)
    return out


# ---- the reference: a plain substring scan of the decoded messages -----------------------

def decoded(raw):
    """(header, body) as the store indexes them: the raw header block, plus the decoded
    Subject/From/To/Cc when it has encoded words; the text parts decoded, one after the
    other."""
    end = raw.find(b"\r\n\r\n")
    head = raw[:end + 4] if end >= 0 else raw
    header = head.decode("utf-8", "replace")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if "=?" in header:
        for name in ("Subject", "From", "To", "Cc"):
            v = msg.get(name)
            if v is not None:
                header += str(email.header.make_header(email.header.decode_header(v))) + "\n"
    texts = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        data = part.get_payload(decode=True) or b""
        cs = part.get_content_charset() or "utf-8"
        try:
            texts.append(data.decode(cs, "replace"))
        except LookupError:
            texts.append(data.decode("utf-8", "replace"))
    return header.lower(), "\n".join(texts).lower()


def reference(docs, key, term):
    t = term.lower()
    return [i + 1 for i, (h, b) in enumerate(docs) if t in b or (key == "TEXT" and t in h)]


# ---- servers -----------------------------------------------------------------------------

class Counted(Raw):
    """Raw that keeps the numbers of the untagged SEARCH responses."""
    hits = None

    def readline(self):
        line = super().readline()
        if line.startswith(b"* SEARCH"):
            self.hits = [int(x) for x in line[8:].split()]
        return line


class Target:
    def __init__(self, label, server):
        self.label, self.t = label, server
        self.times = {m: [] for m in MEASURES}
        self.cpu = {m: 0.0 for m in MEASURES}
        self.answers = {}
        self.conn = None

    def open(self, ctx):
        from imap_bench import PASSWORD, USER
        self.conn = Counted(self.t.port, ctx)
        self.conn.cmd(b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))
        self.conn.cmd(b"EXAMINE INBOX")

    def measure(self, record=True):
        for m in MEASURES:
            key, term, _ = m
            c = self.conn
            c.hits = None
            cpu0 = self.t.cpu()
            t0 = time.perf_counter()
            c.cmd(b"SEARCH CHARSET UTF-8 " + key.encode() + b" " + quoted(term))
            dt = time.perf_counter() - t0
            cpu = self.t.cpu() - cpu0
            self.answers[m] = c.hits
            if record:
                self.times[m].append(dt)
                self.cpu[m] += cpu

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def search_table(targets, rounds, want):
    a = targets[0]
    head = ["SEARCH", "what", "hits"]
    for t in targets:
        head += ["%s best ms" % t.label, "%s median ms" % t.label, "%s CPU ms" % t.label]
    for t in targets[1:]:
        head.append("%s/%s median" % (t.label, a.label))
    out = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for m in MEASURES:
        key, term, what = m
        row = ["%s %s" % (key, quoted(term).decode()), what, "%d" % len(want[m])]
        med = {}
        for t in targets:
            v = sorted(x * 1000 for x in t.times[m])
            med[t.label] = statistics.median(v)
            row += ["%.1f" % v[0], "%.1f" % med[t.label],
                    "%.0f" % (t.cpu[m] / rounds * 1000)]
        for t in targets[1:]:
            row.append("%.1f" % (med[t.label] / med[a.label]))
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


# ---- the index: size and cost per delivery ------------------------------------------------

def db_path(s):
    return os.path.join(s.srv.dir, "data", "mail.db")


def index_bytes(path):
    """Bytes of the fts tables (and their shadow tables), from dbstat."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        rows = db.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'fts%' "
                          "GROUP BY name").fetchall()
        total = db.execute("SELECT sum(pgsize) FROM dbstat").fetchone()[0]
    finally:
        db.close()
    return dict(rows), total


VARIANTS = {
    "trigram": None,
    "words": "CREATE VIRTUAL TABLE fts USING fts5 (header, body,"
             " tokenize = 'unicode61 remove_diacritics 2');",
    "none": "CREATE TABLE fts (rowid INTEGER PRIMARY KEY, header, body);",
}


def delivery_store(work, certs, name):
    s = Sealmail(os.path.join(work, "deliver-" + name), certs, 10)
    sql = VARIANTS[name]
    if sql is not None:
        s.start()
        s.stop()
        db = sqlite3.connect(db_path(s))
        db.executescript("DROP TABLE fts;" + sql)
        db.close()
    s.start()
    return s


def deliveries(work, certs, ctx, msgs, n, rounds=2):
    stores = {name: delivery_store(work, certs, name) for name in VARIANTS}
    times = {name: [] for name in VARIANTS}
    cpu = {name: [] for name in VARIANTS}
    try:
        for r in range(rounds):
            batch = msgs[r * n:(r + 1) * n]
            for name, s in stores.items():
                c0 = s.cpu()
                t0 = time.perf_counter()
                append(s.port, ctx, batch)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(s.cpu() - c0)
        sizes = {name: index_bytes(db_path(s)) for name, s in stores.items()}
    finally:
        for s in stores.values():
            s.stop()
    out = ["| index | %d deliveries, s (each round) | server CPU s (each round) | "
           "index bytes | index bytes per message | database bytes |" % n,
           "|---|---|---|---:|---:|---:|"]
    for name in VARIANTS:
        fts, total = sizes[name]
        idx = sum(fts.values())
        out.append("| %s | %s | %s | %d | %.0f | %d |" % (
            name, ", ".join("%.2f" % t for t in times[name]),
            ", ".join("%.2f" % t for t in cpu[name]), idx, idx / (rounds * n), total))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="meson build directory")
    ap.add_argument("--dovecot", action="store_true", help="also a private Dovecot")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--deliveries", type=int, default=1000)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    os.environ["SEALMAIL_BUILD"] = os.path.abspath(args.build)

    msgs = messages(args.messages)
    t0 = time.perf_counter()
    docs = [decoded(m) for m in msgs]
    want = {m: reference(docs, m[0], m[1]) for m in MEASURES}
    print("reference scan: %d messages decoded in %.1f s; hits %s" % (
        len(msgs), time.perf_counter() - t0,
        ", ".join("%s %s %d" % (m[0], m[1], len(want[m])) for m in MEASURES)), flush=True)

    targets = []
    with benchlib.Servers("search-bench-") as sv:
        ctx = sv.ctx
        try:
            targets.append(Target("sealmail", sv.sealmail(args.build)))
            if args.dovecot:
                targets.append(Target(*sv.dovecot()))
            for t in targets:
                benchlib.fill(t.t, ctx, msgs, t.label)
                t.open(ctx)
                t.measure(record=False)
            for r in range(args.rounds):
                for t in targets:
                    t.measure()
                print("round %d: %s" % (r + 1, "; ".join(
                    "%s %s" % (t.label, " ".join("%.0f" % (t.times[m][-1] * 1000)
                                                 for m in MEASURES)) for t in targets)),
                      flush=True)
            wrong = [(m, len(targets[0].answers[m] or []), len(want[m])) for m in MEASURES
                     if (targets[0].answers[m] or []) != want[m]]
            if wrong:
                raise RuntimeError("sealmail answers differ from the substring scan: %s"
                                   % wrong)
            notes = []
            for t in targets[1:]:
                for m in MEASURES:
                    if (t.answers[m] or []) != want[m]:
                        notes.append("- %s answers %s %s with %d messages, the scan %d" % (
                            t.label, m[0], quoted(m[1]).decode(), len(t.answers[m] or []),
                            len(want[m])))
            size, total = index_bytes(db_path(targets[0].t))
            idx = sum(size.values())
            result = search_table(targets, args.rounds, want)
            result += ("\n- every sealmail answer equals the substring scan of the decoded "
                       "messages\n")
            result += "\n".join(notes) + ("\n" if notes else "")
            result += ("- %d rounds, alternating %s; ms: lower is better; CPU: server "
                       "utime+stime per command, mean of the rounds (ticks of %.0f ms)\n" % (
                           args.rounds, " ".join(t.label for t in targets),
                           1000 / os.sysconf("SC_CLK_TCK")))
            result += ("- trigram index of the %d messages: %d bytes (%.0f per message; the "
                       "messages are %.0f bytes on average), database %d bytes\n" % (
                           len(msgs), idx, idx / len(msgs), sum(map(len, msgs)) / len(msgs),
                           total))
            print(result, flush=True)
        finally:
            for t in targets:
                t.close()
        for t in targets:
            sv.stop(t.t)
        deliver = deliveries(sv.work, sv.certs, ctx, msgs, args.deliveries)
        print(deliver)
        if args.record:
            benchlib.record("SEARCH BODY and TEXT", "search_bench.py",
                            " (%d messages)" % args.messages,
                            result + "\nCost per delivery:\n\n" + deliver)


if __name__ == "__main__":
    main()
