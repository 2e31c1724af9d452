"""FETCH of a part reads that part, not the message: a 20 MB message whose second part is
small, fetched by part, by MIME header and by structure. The answers are byte exact, and
the daemon's peak RSS (VmHWM, reset through /proc/PID/clear_refs just before) grows by less
than 16 MB (29 MB when FETCH loaded the message to parse it; about 8 MB now, which is
SQLite walking the blob's overflow pages to the part's offset, not FETCH's buffers).
"""
import re

import pytest

import harness
from imap_env import ImapEnv

USER = "ranges@corp.example"
BIG = 20 * 1024 * 1024

HEAD = (b"From: Big Sender <big@example.org>\r\n"
        b"To: ranges@corp.example\r\n"
        b"Subject: twenty megabytes\r\n"
        b"Message-ID: <big-1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"sep\"\r\n"
        b"\r\n")
PART1_HEAD = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
PART2_HEAD = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
PART2 = b"the small second part\r\nof two lines"


def big_message():
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    body1 = line * (BIG // len(line))
    return (HEAD + b"--sep\r\n" + PART1_HEAD + body1 + b"\r\n--sep\r\n" + PART2_HEAD + PART2 +
            b"\r\n--sep--\r\n"), len(body1)


def peak_reset(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


def peak_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("ranges")
    msg, body1_len = big_message()
    m = e.imaps(USER, timeout=120)
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK", data
    m.logout()
    e.msg, e.body1_len = msg, body1_len
    return e


def test_part_of_a_large_message_reads_that_part(env):
    m = env.imaps(USER, timeout=120)
    m.select("INBOX")
    pid = env.srv.pid
    peak_reset(pid)
    before = harness.rss_kib(pid)
    typ, data = m.fetch("1", "(BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2]<4.5>)")
    assert typ == "OK", data
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == [PART2, PART2_HEAD, PART2[4:9]], got
    typ, data = m.fetch("1", "(BODYSTRUCTURE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b'"application" "octet-stream" NIL NIL NIL "base64" %d' % env.body1_len in flat, \
        flat[:400]
    assert b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d 2' % len(PART2) in flat
    assert b'(("Big Sender" NIL "big" "example.org"))' in flat
    assert b"Subject: twenty megabytes\r\n\r\n" in flat
    grown = peak_kib(pid) - before
    print("peak RSS growth for the part: %d KiB" % grown)
    if not harness.sanitized():
        assert grown < 16 * 1024, "peak RSS grew by %d KiB for a small part" % grown
    # The big part itself is still whole and exact.
    typ, data = m.fetch("1", "(BODY.PEEK[1]<0.100> BODY.PEEK[1]<%d.100>)" % (env.body1_len - 50))
    got = [d[1] for d in data if isinstance(d, tuple)]
    body1 = env.msg[len(HEAD) + 7 + len(PART1_HEAD):][:env.body1_len]
    assert got == [body1[:100], body1[-50:]], [g[:20] for g in got]
    m.logout()


def test_whole_big_part_byte_exact(env):
    m = env.imaps(USER, timeout=120)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[1])")
    assert typ == "OK"
    body1 = env.msg[len(HEAD) + 7 + len(PART1_HEAD):][:env.body1_len]
    assert data[0][1] == body1
    assert re.search(rb"BODY\[1\] \{%d\}" % env.body1_len, data[0][0]), data[0][0]
    m.logout()
