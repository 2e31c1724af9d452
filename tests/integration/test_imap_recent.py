"""\\Recent (RFC 3501 2.3.2, 6.3.1, 6.3.2, 7.3.2): a new message is \\Recent in exactly one
session, the one that has the mailbox selected read-write when it arrives or else the first
that SELECTs it; EXAMINE takes nothing; RECENT after EXISTS; STATUS (RECENT); SEARCH NEW,
OLD, RECENT; \\Recent in FETCH FLAGS. IMAP4rev2 (RFC 9051) has none of it."""
import re
import time

import pytest

from imap_env import ImapEnv, cmd, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


def recent_of(lines):
    m = [re.match(rb"\* (\d+) RECENT\r\n", l) for l in lines]
    got = [int(x.group(1)) for x in m if x]
    return got[-1] if got else None


def search(lc, tag, keys):
    lines = ok(cmd(lc, tag, "SEARCH " + keys), tag)
    for l in lines:
        if l.startswith(b"* SEARCH"):
            return [int(x) for x in l.split()[2:]]
    raise AssertionError(lines)


def flags_by_seq(lc, tag, seqs="1:*"):
    lines = ok(cmd(lc, tag, "FETCH %s (FLAGS)" % seqs), tag)
    out = {}
    for l in lines:
        m = re.match(rb"\* (\d+) FETCH \(FLAGS \(([^)]*)\)\)", l)
        if m:
            out[int(m.group(1))] = m.group(2).split()
    return out


def append(env, user, box, n, subject="r"):
    m = env.imaps(user)
    for i in range(n):
        typ, _ = m.append(box, None, None, simple_message("%s%d" % (subject, i)))
        assert typ == "OK"
    m.logout()


def status_recent(lc, tag, box):
    lines = ok(cmd(lc, tag, "STATUS %s (RECENT MESSAGES)" % box), tag)
    for l in lines:
        m = re.search(rb"RECENT (\d+)", l)
        if l.startswith(b"* STATUS") and m:
            return int(m.group(1))
    raise AssertionError(lines)


def test_first_select_takes_recent_and_later_ones_do_not(env):
    user = env.add_user("recent1")
    append(env, user, "INBOX", 2)
    a = env.raw(user)
    assert status_recent(a, "st", "INBOX") == 2
    b = env.raw(user)
    lines = ok(cmd(b, "s", "SELECT INBOX"), "s")
    i_exists = next(i for i, l in enumerate(lines) if l == b"* 2 EXISTS\r\n")
    assert lines[i_exists + 1] == b"* 2 RECENT\r\n", lines
    f = flags_by_seq(b, "f")
    assert f == {1: [b"\\Recent"], 2: [b"\\Recent"]}, f
    assert search(b, "r1", "RECENT") == [1, 2]
    assert search(b, "r2", "NEW") == [1, 2]
    assert search(b, "r3", "OLD") == []
    ok(cmd(b, "t", "STORE 1 +FLAGS (\\Seen)"), "t")
    assert search(b, "r4", "NEW") == [2]
    assert search(b, "r5", "NOT RECENT") == []
    # Taken: STATUS from elsewhere counts none, STATUS from the holder counts its own.
    assert status_recent(a, "st2", "INBOX") == 0
    assert status_recent(b, "st3", "INBOX") == 2
    c = env.raw(user)
    lines = ok(cmd(c, "s", "SELECT INBOX"), "s")
    assert recent_of(lines) == 0, lines
    f = flags_by_seq(c, "f")
    assert all(b"\\Recent" not in v for v in f.values()), f
    assert search(c, "r1", "OLD") == [1, 2]
    assert search(c, "r2", "RECENT") == []
    # \Recent cannot be stored: it is ignored in a flag list, never set.
    ok(cmd(c, "t", "STORE 2 +FLAGS (\\Recent)"), "t")
    assert b"\\Recent" not in b"".join(ok(cmd(c, "f2", "FETCH 2 FLAGS"), "f2"))
    # Selecting again in the same session: what it held is no longer recent (a new
    # SELECT is a new look at the mailbox), and nothing is left to take.
    lines = ok(cmd(b, "s2", "SELECT INBOX"), "s2")
    assert recent_of(lines) == 0, lines
    for lc in (a, b, c):
        lc.close()


def test_arrival_is_recent_in_exactly_one_selected_session(env):
    user = env.add_user("recent2")
    append(env, user, "INBOX", 1)
    b = env.raw(user)
    c = env.raw(user)
    ok(cmd(b, "s", "SELECT INBOX"), "s")
    ok(cmd(c, "s", "SELECT INBOX"), "s")
    append(env, user, "INBOX", 1, subject="new")
    got = {}
    for name, lc in (("b", b), ("c", c)):
        lines = ok(cmd(lc, "n", "NOOP"), "n")
        assert b"* 2 EXISTS\r\n" in lines, lines
        i = lines.index(b"* 2 EXISTS\r\n")
        assert re.match(rb"\* \d+ RECENT\r\n", lines[i + 1]), lines
        got[name] = b"\\Recent" in b"".join(ok(cmd(lc, "f", "FETCH 2 FLAGS"), "f"))
    assert sorted(got.values()) == [False, True], got
    b.close()
    c.close()


def test_idle_session_is_told_of_recent_arrivals(env):
    user = env.add_user("recent3")
    lc = env.raw(user)
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    lc.send("i IDLE\r\n")
    assert lc.readline().startswith(b"+ ")
    env.require_smtp_auth()
    env.submit(user, user, simple_message("by smtp", sender=user))
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        line = lc.readline()
        seen.append(line)
        if line.startswith(b"* 1 RECENT"):
            break
    assert seen[-2:] == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"], seen
    lc.send("DONE\r\n")
    ok(lc.imap_tagged("i"), "i")
    assert search(lc, "r", "NEW") == [1]
    lc.close()


def test_examine_does_not_take_recent(env):
    user = env.add_user("recent4")
    a = env.raw(user)
    ok(cmd(a, "c", "CREATE Box"), "c")
    append(env, user, "Box", 2)
    d = env.raw(user)
    lines = ok(cmd(d, "e", "EXAMINE Box"), "e")
    assert recent_of(lines) == 2, lines
    assert search(d, "r", "RECENT") == [1, 2]
    assert flags_by_seq(d, "f") == {1: [b"\\Recent"], 2: [b"\\Recent"]}
    assert status_recent(a, "st", "Box") == 2
    e = env.raw(user)
    lines = ok(cmd(e, "s", "SELECT Box"), "s")
    assert recent_of(lines) == 2, lines
    assert status_recent(a, "st2", "Box") == 0
    for lc in (a, d, e):
        lc.close()


def test_imap4rev2_session_neither_shows_nor_takes_recent(env):
    user = env.add_user("recent5")
    append(env, user, "INBOX", 2)
    r2 = env.raw(user)
    ok(cmd(r2, "en", "ENABLE IMAP4rev2"), "en")
    lines = ok(cmd(r2, "s", "SELECT INBOX"), "s")
    assert recent_of(lines) is None, lines
    assert b"\\Recent" not in b"".join(ok(cmd(r2, "f", "FETCH 1:* FLAGS"), "f"))
    r1 = env.raw(user)
    lines = ok(cmd(r1, "s", "SELECT INBOX"), "s")
    assert recent_of(lines) == 2, lines
    r1.close()
    r2.close()


def test_imaplib_sees_recent_response(env):
    user = env.add_user("recent6")
    append(env, user, "INBOX", 3)
    m = env.imaps(user)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], data
    typ, data = m.recent()
    assert data == [b"3"], data
    typ, data = m.search(None, "NEW")
    assert data == [b"1 2 3"], data
    m.logout()
