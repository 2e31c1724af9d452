"""Bounded memory against IMAP clients that do not read, and commands that try to be huge.

- Pipelined FETCHes of a whole 20 MB mailbox, not read: the daemon's RSS (from /proc) grows by
  less than 32 MB (it grew by about one mailbox per command before FETCH waited for the
  client). The same pipeline read slowly afterwards is answered whole and in order.
- A flood of pipelined commands whose replies are not read: bounded too.
- A command other than APPEND holds at most 1 MiB, literals included: refused with
  BAD [TOOBIG] and the connection kept; a MULTIAPPEND of many mid-sized literals still works.
"""
import hashlib
import re
import select
import socket
import ssl
import time

import pytest

import harness
from imap_env import ImapEnv, cmd, read_response

BIG = 12          # messages over the 1 MiB FETCH chunk: streamed in ranges
BIG_SIZE = 1200 * 1024
SMALL = 400       # messages read in batches
SMALL_SIZE = 20 * 1024


def message(i, size):
    head = ("From: a@example.org\r\nTo: bp@corp.example\r\nSubject: m%d\r\n"
            "Message-ID: <bp%d@example.org>\r\n\r\n" % (i, i)).encode()
    line = (b"%05d " % i) + b"y" * 70 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[:size - len(head)]


def populate(lc, messages):
    """MULTIAPPEND with LITERAL+, 50 messages per command."""
    for start in range(0, len(messages), 50):
        part = messages[start:start + 50]
        data = b"ap APPEND INBOX"
        for m in part:
            data += b" {%d+}\r\n" % len(m) + m
        lc.send(data + b"\r\n")
        r = lc.imap_tagged("ap")
        assert r[-1].startswith(b"ap OK"), r[-1]


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("bp")
    e.add_user("bpsmall")
    msgs = [message(i, BIG_SIZE) for i in range(BIG)]
    msgs += [message(BIG + i, SMALL_SIZE) for i in range(SMALL)]
    lc = e.raw("bp@corp.example", timeout=60)
    populate(lc, msgs)
    lc.close()
    e.small = [message(i, BIG_SIZE) for i in range(2)] + \
        [message(2 + i, SMALL_SIZE) for i in range(40)]
    lc = e.raw("bpsmall@corp.example", timeout=60)
    populate(lc, e.small)
    lc.close()
    e.mailbox_bytes = BIG * BIG_SIZE + SMALL * SMALL_SIZE
    return e


def stalled_client(env, user):
    """Logged in, INBOX selected, with a small receive buffer."""
    lc = env.raw(user, timeout=30)
    lc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    r = cmd(lc, "s", "SELECT INBOX")
    assert r[-1].startswith(b"s OK"), r
    return lc


def alive(env, user):
    lc = env.raw(user)
    r = cmd(lc, "n", "NOOP")
    assert r[-1].startswith(b"n OK"), r
    lc.close()


@pytest.mark.skipif(harness.sanitized(), reason="ASan's quarantine keeps freed memory in RSS")
def test_pipelined_fetches_not_read_hold_little_memory(env):
    assert env.mailbox_bytes > 20 * 1000 * 1000
    lc = stalled_client(env, "bp@corp.example")
    before = harness.rss_kib(env.srv.pid)
    lc.send(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(60)))
    peak = before
    for _ in range(12):  # the server goes as far as the client lets it
        time.sleep(0.25)
        peak = max(peak, harness.rss_kib(env.srv.pid))
    grown = peak - before
    lc.close()
    print("60 stalled FETCH 1:* of %d bytes: RSS %d -> peak %d KiB" % (env.mailbox_bytes, before, peak))
    assert grown < 32 * 1024, "sealmaild grew by %d KiB for 60 stalled FETCH 1:*" % grown
    alive(env, "bp@corp.example")


def test_pipelined_fetches_answered_whole_and_in_order(env):
    lc = stalled_client(env, "bpsmall@corp.example")
    n = len(env.small)
    want = hashlib.sha256(b"".join(env.small)).hexdigest()
    lc.send(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(8)) + b"z NOOP\r\n")
    time.sleep(1)  # nothing read meanwhile: the server must wait, not drop or reorder
    for i in range(8):
        out = read_response(lc, "f%d" % i)
        assert out.rsplit(b"\r\n", 2)[-2].startswith(b"f%d OK" % i), out[-200:]
        bodies = []
        pos = 0
        for m in re.finditer(rb"\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n", out):
            if m.start() < pos:
                continue
            size = int(m.group(2))
            bodies.append(out[m.end():m.end() + size])
            pos = m.end() + size
        assert len(bodies) == n, (i, len(bodies))
        assert hashlib.sha256(b"".join(bodies)).hexdigest() == want, i
    r = lc.imap_tagged("z")
    assert r[-1].startswith(b"z OK"), r
    lc.close()


def send_while_taken(lc, data, seconds):
    """Sends as much of data as the server takes within seconds, reading nothing."""
    sock = lc.sock
    sock.setblocking(False)
    deadline = time.monotonic() + seconds
    while data and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], 0.2)
        if not w:
            continue
        try:
            n = sock.send(data[:65536])
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            continue
        data = data[n:]
    sock.settimeout(30)
    return len(data)


@pytest.mark.skipif(harness.sanitized(), reason="ASan's quarantine keeps freed memory in RSS")
def test_pipelined_commands_not_read_hold_little_memory(env):
    lc = stalled_client(env, "bpsmall@corp.example")
    before = harness.rss_kib(env.srv.pid)
    # 700,000 CAPABILITY commands (10 MB, more than the socket buffers take): about 280 MB
    # of replies if all were produced.
    left = send_while_taken(lc, b"c CAPABILITY\r\n" * 700000, 3)
    assert left > 0  # the server stopped taking commands whose replies were not read
    time.sleep(0.5)
    peak = harness.rss_kib(env.srv.pid)
    lc.close()
    grown = peak - before
    print("unread CAPABILITY flood: RSS %d -> %d KiB" % (before, peak))
    assert grown < 16 * 1024, "sealmaild grew by %d KiB for unread CAPABILITY replies" % grown
    alive(env, "bpsmall@corp.example")


def test_pipelined_commands_all_answered_once_read(env):
    lc = stalled_client(env, "bpsmall@corp.example")
    lc.sock.settimeout(60)
    count = 4000
    lc.send(b"".join(b"c%d CAPABILITY\r\n" % i for i in range(count)))
    time.sleep(1)
    for i in range(count):
        r = lc.imap_tagged("c%d" % i)
        assert r[-1].startswith(b"c%d OK" % i), r
    lc.close()


def test_command_over_one_mib_refused_and_connection_kept(env):
    lc = env.raw("bpsmall@corp.example", timeout=30)
    cmd(lc, "s", "SELECT INBOX")
    # Synchronising literals, each within the 64 KiB literal limit: the one that would
    # take the command past 1 MiB gets BAD [TOOBIG] instead of "+".
    lc.send(b"t1 SEARCH TEXT {60000}\r\n")
    sent = 0
    refused = None
    for _ in range(40):
        line = lc.readline()
        if not line.startswith(b"+"):
            refused = line
            break
        lc.send(b"x" * 60000 + b" TEXT {60000}\r\n")
        sent += 60000
    assert refused is not None and refused.startswith(b"t1 BAD") and b"TOOBIG" in refused, \
        (refused, sent)
    assert 900 * 1024 < sent <= 1024 * 1024, sent
    r = cmd(lc, "n1", "NOOP")
    assert r[-1].startswith(b"n1 OK"), r
    lc.close()


def test_nonsync_command_over_one_mib_skipped_and_connection_kept(env):
    lc = env.raw("bpsmall@corp.example", timeout=30)
    cmd(lc, "s", "SELECT INBOX")
    # 51 MB of LITERAL+ literals in one SEARCH, sent without waiting: refused once past
    # 1 MiB, the rest skipped (not taken for commands), the connection kept.
    part = b" TEXT {60000+}\r\n" + b"z" * 60000
    lc.send(b"t2 SEARCH" + part * 850 + b"\r\nn2 NOOP\r\n")
    lines = lc.imap_tagged("n2")
    tagged = [x for x in lines if x.startswith(b"t2 ")]
    assert len(tagged) == 1 and tagged[0].startswith(b"t2 BAD") and b"TOOBIG" in tagged[0], lines
    assert lines[-1].startswith(b"n2 OK"), lines
    # Nothing of the skipped bytes was answered as commands.
    assert all(not x.startswith(b"* BAD") for x in lines), lines
    lc.close()


def test_multiappend_of_many_midsized_literals(env):
    env.add_user("bpappend")
    lc = env.raw("bpappend@corp.example", timeout=60)
    msgs = [message(1000 + i, 200 * 1024) for i in range(15)]  # 3 MB, each under the spool size
    data = b"ma APPEND INBOX"
    for m in msgs:
        data += b" {%d+}\r\n" % len(m) + m
    lc.send(data + b"\r\n")
    r = lc.imap_tagged("ma")
    assert r[-1].startswith(b"ma OK"), r[-1]
    cmd(lc, "s", "SELECT INBOX")
    lc.send(b"f FETCH 1:* BODY.PEEK[]\r\n")
    out = read_response(lc, "f")
    sizes = [int(x) for x in re.findall(rb"BODY\[\] \{(\d+)\}", out)]
    assert sizes == [len(m) for m in msgs], sizes
    lc.close()
