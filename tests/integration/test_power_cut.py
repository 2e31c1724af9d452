"""Power cuts under mixed load: sealmaild runs with the faultvfs shim preloaded
(tests/tools/faultvfs.c), which logs the bytes every database and WAL write overwrites; at a
random moment the process is killed and every write that no completed fsync covered is
undone (powercut.py), which is what a power cut would leave on a disk that keeps exactly what
was synced. The store then has to hold, exactly once, every message whose acknowledgement
went out (SMTP 250 for local and relayed mail, IMAP APPEND and MOVE OK, POP3 DELE
committed by QUIT's +OK), nothing
half-written, and pass integrity_check; the next cycle restarts on the same files.

SEALMAIL_POWERCUT_CYCLES sets the number of cuts (tests/run.sh: 100; docs/testing.md has
the longer run). The encrypted case runs the same load on a store encrypted at rest
(docs/encryption.md) for a fifth of the cuts (at least 3), reading the file through
tests/tools/sealed_sql since sqlite3 cannot."""
import subprocess
import collections
import imaplib
import os
import poplib
import random
import re
import smtplib
import socket
import sqlite3
import threading
import time

import pytest

import harness
import powercut
from imap_env import ImapEnv, simple_message

CYCLES = int(os.environ.get("SEALMAIL_POWERCUT_CYCLES", "100"))
REMOTE = "someone@remote.example"  # relayed: stays in the queue (its route is dead)
PASSWORD = "powercut-pass"


def faultvfs():
    path = os.path.join(harness.build_dir(), "tests", "libfaultvfs.so")
    if not os.path.exists(path):
        pytest.fail("libfaultvfs.so is not built under %s" % harness.build_dir())
    return path


def preload_env(extra):
    env = {"LD_PRELOAD": faultvfs()}
    if harness.sanitized():
        # The shim is preloaded before the ASan runtime; it does not allocate through it.
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0"
    env.update(extra)
    return env


class Load:
    """Clients that keep acknowledged work in sets; stop() ends them."""

    def __init__(self, srv, users, cycle):
        self.srv, self.users, self.cycle = srv, users, cycle
        self.stop_ev = threading.Event()
        self.smtp_acked = []  # (rcpt, subject)
        self.appended = []
        self.move_tried, self.moved = set(), set()
        self.dele_tried, self.deleted = set(), set()
        self.ctx = ImapEnv(srv).ctx()

    def run(self, fn):
        def loop():
            while not self.stop_ev.is_set():
                try:
                    fn()
                except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto,
                        EOFError, ValueError):
                    time.sleep(0.01)
        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def smtp(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.srv.port("submission", "implicit"),
                             context=self.ctx, timeout=5)
        s.login(self.users["sender"], PASSWORD)
        i = 0
        while not self.stop_ev.is_set():
            rcpt = (self.users["smtp"], self.users["pop"], REMOTE)[i % 3]
            subj = "s-%d-%d" % (self.cycle, i)
            i += 1
            s.sendmail(self.users["sender"], [rcpt], simple_message(subj, sender=self.users["sender"]))
            self.smtp_acked.append((rcpt, subj))  # after the 250 only

    def imap_append(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.port("imap", "implicit"),
                              ssl_context=self.ctx, timeout=5)
        m.login(self.users["imap"], PASSWORD)
        i = 0
        while not self.stop_ev.is_set():
            subj = "a-%d-%d" % (self.cycle, i)
            i += 1
            typ, _ = m.append("INBOX", None, None, simple_message(subj))
            if typ == "OK":
                self.appended.append(subj)

    def imap_move(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.port("imap", "implicit"),
                              ssl_context=self.ctx, timeout=5)
        m.login(self.users["imap"], PASSWORD)
        m.select("INBOX")
        while not self.stop_ev.is_set():
            todo = [s for s in self.appended if s not in self.move_tried][:1]
            if not todo or len(self.move_tried) > len(self.appended) // 2:
                time.sleep(0.01)
                m.noop()
                continue
            subj = todo[0]
            typ, data = m.uid("SEARCH", "HEADER", "Subject", subj)
            uids = data[0].split() if typ == "OK" and data and data[0] else []
            if not uids:
                m.noop()
                continue
            self.move_tried.add(subj)
            typ, _ = m.uid("MOVE", uids[0].decode(), "Moved")
            if typ == "OK":
                self.moved.add(subj)

    def pop3(self):
        p = poplib.POP3_SSL("127.0.0.1", self.srv.port("pop3", "implicit"), context=self.ctx,
                            timeout=5)
        p.user(self.users["pop"])
        p.pass_(PASSWORD)
        count, _ = p.stat()
        marked = []
        for n in range(1, min(count, 3) + 1):
            _, lines, _ = p.retr(n)
            subj = next((l[9:].decode() for l in lines if l.startswith(b"Subject: ")), None)
            p.dele(n)
            if subj is not None:
                marked.append(subj)
        self.dele_tried.update(marked)
        p.quit()  # +OK: the deletions are committed
        self.deleted.update(marked)
        time.sleep(0.02)


class SealedDb:
    """The few calls counts() makes, on an encrypted store (tests/tools/sealed_sql)."""

    def __init__(self, db, key):
        self.db, self.key = db, key

    def execute(self, sql):
        r = subprocess.run([harness.tool("sealed_sql"), self.db, self.key, sql],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rows = [tuple(line.split("\t")) for line in r.stdout.splitlines()]
        return Rows([tuple(int(v) if v.isdigit() else v for v in row) for row in rows])

    def close(self):
        pass


class Rows(list):
    def fetchall(self):
        return list(self)

    def fetchone(self):
        return self[0] if self else None


def counts(db, key=None):
    c = SealedDb(db, key) if key else sqlite3.connect(db, timeout=10)
    try:
        ok = c.execute("PRAGMA integrity_check").fetchall()
        assert ok == [("ok",)], ok
        assert c.execute("PRAGMA foreign_key_check").fetchall() == []
        bad = c.execute("SELECT count(*) FROM contents WHERE length(body) <> size").fetchone()[0]
        assert bad == 0, "%d half-written messages" % bad
        got = collections.Counter()
        for (subj,) in c.execute("SELECT c.hdr_subject FROM queue q "
                                 "JOIN contents c ON c.id = q.content_id"):
            got[("queue", subj)] += 1
        for addr, box, subj in c.execute(
                "SELECT u.address, m.name, c.hdr_subject FROM entries e "
                "JOIN contents c ON c.id = e.content_id JOIN mailboxes m ON m.id = e.mailbox_id "
                "JOIN users u ON u.id = m.user_id"):
            got[(addr, box, subj)] += 1
        return got
    finally:
        c.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_acknowledged_work_survives_power_cuts(certs, sealmaild_bin, tmp_path_factory,
                                               encrypted):
    work = str(tmp_path_factory.mktemp("srv"))
    key, extra, cycles = None, "", CYCLES
    if encrypted:
        key = os.path.join(work, "store.kek")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(key, 0o400)
        extra, cycles = "encryption:\n  key_file: %s\n" % key, max(CYCLES // 5, 3)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there: relayed mail is deferred and stays queued
    srv = harness.Server(certs, workdir=work,
                         extra_yaml="relay:\n  routes:\n    - { domain: remote.example, "
                                    "host: 127.0.0.1, port: %d, tls: none }\n" % dead_port
                         + extra)
    srv.start()
    env = ImapEnv(srv)
    users = {k: env.add_user("pc-" + k, PASSWORD) for k in ("sender", "smtp", "imap", "pop")}
    m = env.imaps(users["imap"], PASSWORD)
    assert m.create("Moved")[0] == "OK"
    m.logout()
    srv.stop()
    db = os.path.join(srv.dir, "data", "mail.db")
    rng = random.Random(int(os.environ.get("SEALMAIL_POWERCUT_SEED", "0")) or None)
    smtp_acked, appended, moved, move_tried = [], [], set(), set()
    deleted, dele_tried = set(), set()
    undone_total = 0
    for cycle in range(cycles):
        journal = os.path.join(srv.dir, "cut.undo")
        if os.path.exists(journal):
            os.unlink(journal)
        srv.start(env=preload_env({"SEALMAIL_FAULTVFS_JOURNAL": journal}))
        load = Load(srv, users, cycle)
        threads = [load.run(load.smtp), load.run(load.imap_append), load.run(load.imap_move),
                   load.run(load.pop3)]
        # Cut once work is flowing (logins cost more on a loaded machine), at a random
        # moment after that.
        deadline = time.monotonic() + 20
        while not (load.smtp_acked and load.appended) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        srv.proc.kill()  # the power cut
        srv.proc.wait()
        load.stop_ev.set()
        for t in threads:
            t.join(10)
        srv.log_file.close()
        undone_total += powercut.apply(journal)
        for ext in ("-shm",):
            if os.path.exists(db + ext):
                os.unlink(db + ext)
        smtp_acked += load.smtp_acked
        appended += load.appended
        moved |= load.moved
        move_tried |= load.move_tried
        deleted |= load.deleted
        dele_tried |= load.dele_tried
        got = counts(db, key)
        for rcpt, subj in smtp_acked:
            n = got[(rcpt, "INBOX", subj)] if rcpt != REMOTE else got[("queue", subj)]
            if rcpt == users["pop"] and subj in deleted:
                assert n == 0, "cycle %d: %s came back after a committed DELE" % (cycle, subj)
            elif rcpt == users["pop"] and subj in dele_tried:
                assert n in (0, 1), (cycle, subj, n)
            else:
                assert n == 1, "cycle %d: acknowledged %s to %s found %d times" % (
                    cycle, subj, rcpt, n)
        for subj in appended:
            inbox, box = got[(users["imap"], "INBOX", subj)], got[(users["imap"], "Moved", subj)]
            if subj in moved:
                assert (inbox, box) == (0, 1), "cycle %d: moved %s: %r" % (cycle, subj, (inbox, box))
            else:
                assert inbox + box == 1, "cycle %d: appended %s: %r" % (cycle, subj, (inbox, box))
    # The test must have cut something: acknowledged work and unsynced writes undone.
    assert len(smtp_acked) > cycles and len(appended) > cycles, (len(smtp_acked), len(appended))
    assert moved and deleted, (len(moved), len(deleted))
    assert undone_total > 0
    print("power cuts: %d, acknowledged: %d SMTP, %d APPEND, %d MOVE, %d POP3 DELE; "
          "unsynced writes undone: %d" % (cycles, len(smtp_acked), len(appended), len(moved),
                                          len(deleted), undone_total))
    srv.start()
    srv.stop()
    srv.check_stopped()
