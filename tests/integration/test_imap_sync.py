"""Sessions see each other: IDLE woken by APPEND from another connection (and by SMTP
delivery), NOOP updates, CONDSTORE (MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE) and QRESYNC."""
import re
import time

import pytest

from imap_env import ImapEnv, cmd, read_response, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def wait_for(lc, pattern, timeout=5):
    """Reads lines until one matches pattern; returns everything read."""
    out = b""
    deadline = time.monotonic() + timeout
    lc.sock.settimeout(timeout)
    while time.monotonic() < deadline:
        line = lc.readline()
        out += line
        if re.search(pattern, line):
            return out
    raise AssertionError("no %r in %r" % (pattern, out))


def test_idle_woken_by_append_from_other_connection(env):
    user = env.add_user("idler")
    lc = env.raw(user)
    r = b"".join(cmd(lc, "s", "SELECT INBOX"))
    assert b"* 0 EXISTS" in r, r
    lc.send("i1 IDLE\r\n")
    assert lc.readline().startswith(b"+ ")
    m = env.imaps(user)
    m.append("INBOX", None, None, simple_message("wake up"))
    got = wait_for(lc, rb"^\* 1 EXISTS")
    assert b"* 1 EXISTS" in got
    # A flag change from the other session shows up too.
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Flagged)")
    # The idle session had INBOX selected when the message came: \Recent there.
    got = wait_for(lc, rb"^\* 1 FETCH \(.*FLAGS \(\\Flagged \\Recent\)")
    m.store("1", "+FLAGS", r"(\Deleted)")
    m.expunge()
    got = wait_for(lc, rb"^\* 1 EXPUNGE")
    lc.send("DONE\r\n")
    r = lc.imap_tagged("i1")
    assert r[-1].startswith(b"i1 OK"), r
    m.logout()
    lc.close()


def test_idle_woken_by_smtp_delivery(env):
    user = env.add_user("idlesmtp")
    env.require_smtp_auth()
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX")
    lc.send("i1 IDLE\r\n")
    assert lc.readline().startswith(b"+ ")
    env.submit(user, user, simple_message("by smtp", to=user))
    wait_for(lc, rb"^\* 1 EXISTS", timeout=10)
    lc.send("DONE\r\n")
    assert lc.imap_tagged("i1")[-1].startswith(b"i1 OK")
    lc.close()


def test_noop_shows_other_sessions_changes(env):
    user = env.add_user("nooper")
    a = env.raw(user)
    cmd(a, "s", "SELECT INBOX")
    m = env.imaps(user)
    m.append("INBOX", None, None, simple_message("one"))
    m.append("INBOX", None, None, simple_message("two"))
    r = b"".join(cmd(a, "n1", "NOOP"))
    assert b"* 2 EXISTS" in r, r
    # FETCH by sequence number must not show expunges; NOOP afterwards does.
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Deleted)")
    m.expunge()
    r = b"".join(cmd(a, "f1", "FETCH 1:* (UID)"))
    assert b"EXPUNGE" not in r, r
    r = b"".join(cmd(a, "n2", "NOOP"))
    assert b"* 1 EXPUNGE" in r, r
    m.logout()
    a.close()


def test_condstore(env):
    user = env.add_user("condstore")
    m = env.imaps(user)
    for i in range(3):
        m.append("INBOX", None, None, simple_message("c%d" % i))
    m.logout()
    lc = env.raw(user)
    r = b"".join(cmd(lc, "s", "SELECT INBOX (CONDSTORE)"))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", r).group(1))
    r = b"".join(cmd(lc, "f1", "FETCH 1:* (MODSEQ)"))
    mods = [int(x) for x in re.findall(rb"MODSEQ \((\d+)\)", r)]
    assert len(mods) == 3 and max(mods) <= hms, r
    r = b"".join(cmd(lc, "st", "STORE 2 +FLAGS (\\Seen)"))
    new = int(re.search(rb"MODSEQ \((\d+)\)", r).group(1))
    assert new > hms, r
    r = b"".join(cmd(lc, "f2", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms))
    assert r.count(b"* ") == 1 and b"* 2 FETCH" in r and b"MODSEQ" in r, r
    r = b"".join(cmd(lc, "u1", "STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % hms))
    assert b"[MODIFIED 2]" in r, r
    r = b"".join(cmd(lc, "sr", "SEARCH MODSEQ %d" % new))
    assert re.search(rb"\* SEARCH .*\(MODSEQ \d+\)", r), r
    r = b"".join(cmd(lc, "st2", "STATUS INBOX (HIGHESTMODSEQ)"))
    assert b"HIGHESTMODSEQ" in r, r
    r = b"".join(cmd(lc, "st3", "STORE 3 +FLAGS (\\Answered)"))
    last = int(re.search(rb"MODSEQ \((\d+)\)", r).group(1))
    r = b"".join(cmd(lc, "ex", "EXPUNGE"))
    assert b"ex OK [HIGHESTMODSEQ %d]" % last in r, r
    # SEARCHRES: RETURN (SAVE) alone answers nothing; $ is the saved set.
    r = b"".join(cmd(lc, "sv", "UID SEARCH RETURN (SAVE) UID 2:3"))
    assert b"ESEARCH" not in r and b"* SEARCH" not in r, r
    r = b"".join(cmd(lc, "f3", "UID FETCH $ (UID)"))
    assert b"UID 2)" in r and b"UID 3)" in r and r.count(b"* ") == 2, r
    lc.close()


def test_qresync_select(env):
    user = env.add_user("qresync")
    m = env.imaps(user)
    for i in range(5):
        m.append("INBOX", None, None, simple_message("q%d" % i))
    lc = env.raw(user)
    cmd(lc, "e", "ENABLE QRESYNC")
    r = b"".join(cmd(lc, "s1", "SELECT INBOX"))
    uidv = int(re.search(rb"UIDVALIDITY (\d+)", r).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", r).group(1))
    cmd(lc, "c", "CLOSE")
    # Meanwhile: UID 2 expunged, UID 4 flagged.
    m.select("INBOX")
    m.uid("STORE", "2", "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.uid("STORE", "4", "+FLAGS", r"(\Flagged)")
    r = b"".join(cmd(lc, "s2", "SELECT INBOX (QRESYNC (%d %d))" % (uidv, hms)))
    assert b"* VANISHED (EARLIER) 2" in r, r
    assert re.search(rb"\* 3 FETCH \((UID 4 .*FLAGS \(\\Flagged\)|FLAGS \(\\Flagged\).*UID 4)", r), r
    assert b"* 4 EXISTS" in r, r
    # Known UIDs narrow what VANISHED may list.
    cmd(lc, "c2", "CLOSE")
    r = b"".join(cmd(lc, "s3", "SELECT INBOX (QRESYNC (%d %d 1:3))" % (uidv, hms)))
    assert b"* VANISHED (EARLIER) 2" in r, r
    # A wrong UIDVALIDITY means a full resync: no VANISHED.
    cmd(lc, "c3", "CLOSE")
    r = b"".join(cmd(lc, "s4", "SELECT INBOX (QRESYNC (%d %d))" % (uidv + 1, hms)))
    assert b"VANISHED" not in r and b"s4 OK" in r, r
    # UID FETCH ... (CHANGEDSINCE n VANISHED)
    r = b"".join(cmd(lc, "f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms))
    assert b"* VANISHED (EARLIER) 2" in r and b"UID 4" in r, r
    # An expunge in another session now shows as VANISHED, not EXPUNGE.
    m.uid("STORE", "5", "+FLAGS", r"(\Deleted)")
    m.expunge()
    r = b"".join(cmd(lc, "n", "NOOP"))
    assert b"* VANISHED 5" in r and b"EXPUNGE" not in r, r
    lc.close()
    m.logout()


def test_many_idle_sessions_all_woken(env):
    user = env.add_user("crowd")
    m = env.imaps(user)
    for i in range(20):
        m.append("INBOX", None, None, simple_message("pre%d" % i))
    idlers = []
    for k in range(40):
        lc = env.raw(user)
        cmd(lc, "s", "SELECT INBOX")
        lc.send("i IDLE\r\n")
        assert lc.readline().startswith(b"+ ")
        idlers.append(lc)
    m.select("INBOX")
    m.store("3", "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.append("INBOX", None, None, simple_message("for everyone"))
    for lc in idlers:
        got = wait_for(lc, rb"^\* 20 EXISTS")
        assert b"* 3 EXPUNGE" in got, got
        lc.send("DONE\r\n")
        assert lc.imap_tagged("i")[-1].startswith(b"i OK")
        lc.close()
    m.logout()


def test_shared_snapshot_is_copied_before_a_session_changes_it(env):
    """Sessions with equal snapshots share one; a session's own STORE, FETCH \\Seen and
    EXPUNGE change only its copy, so the others still report those changes at NOOP."""
    user = env.add_user("sharers")
    m = env.imaps(user)
    for i in range(4):
        m.append("INBOX", None, None, simple_message("s%d" % i))
    a, b, c = env.raw(user), env.raw(user), env.raw(user)
    for lc in (a, b, c):
        assert b"* 4 EXISTS" in b"".join(cmd(lc, "s", "SELECT INBOX"))
    r = b"".join(cmd(a, "a1", "STORE 1 +FLAGS (\\Flagged)"))
    assert b"\\Flagged" in r, r
    a.send("a2 FETCH 2 (BODY[TEXT])\r\n")
    read_response(a, "a2")
    r = b"".join(cmd(b, "b1", "NOOP"))
    assert re.search(rb"\* 1 FETCH \(FLAGS \(\\Flagged\)\)", r), r
    assert re.search(rb"\* 2 FETCH \(FLAGS \(\\Seen\)\)", r), r
    r = b"".join(cmd(a, "a3", "STORE 3 +FLAGS.SILENT (\\Deleted)"))
    r = b"".join(cmd(a, "a4", "EXPUNGE"))
    assert b"* 3 EXPUNGE" in r, r
    r = b"".join(cmd(c, "c1", "NOOP"))
    assert b"* 3 EXPUNGE" in r and b"\\Flagged" in r and b"\\Seen" in r, r
    r = b"".join(cmd(b, "b2", "NOOP"))
    assert b"* 3 EXPUNGE" in r, r
    for lc, t in ((a, "a5"), (b, "b3"), (c, "c2")):
        r = b"".join(cmd(lc, t, "FETCH 1:* (FLAGS)"))
        assert r.count(b"* ") == 3 and b"\\Deleted" not in r, r
        lc.close()
    m.logout()
