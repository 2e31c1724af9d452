"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4) over TLS with raw lines: one session
keeps a UID SEARCH or UID SORT result with RETURN (UPDATE) and is sent ADDTO and REMOVEFROM
as a second IMAP session (imaplib: APPEND, STORE, EXPUNGE) and SMTP delivery change the
mailbox, in IDLE and after commands. Nothing here is timed: every wait is for a line, and
"nothing arrived" is shown by a reply that must come first."""
import re
import time

import pytest

from imap_env import ImapEnv, cmd, simple_message

WAIT = 30


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def wait_for(lc, pattern, timeout=WAIT):
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


def nothing_waiting(lc, tag="z"):
    """No unsolicited line is queued: a command answered BAD (nothing goes out before a BAD)
    must be the very next thing read."""
    lc.send("%s BOGUS\r\n" % tag)
    first = lc.readline()
    assert first.startswith(tag.encode() + b" BAD"), first


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return b"".join(lines)


def esearch(data, tag):
    """The ESEARCH lines for tag in data."""
    return re.findall(rb'^\* ESEARCH \(TAG "' + tag.encode() + rb'"\)[^\r\n]*', data, re.M)


def idle(lc, tag="i"):
    lc.send("%s IDLE\r\n" % tag)
    first = lc.readline()
    assert first.startswith(b"+"), first


def done(lc, tag="i"):
    lc.send("DONE\r\n")
    return ok(lc.imap_tagged(tag), tag)


def fill(env, user, subjects):
    b = env.imaps(user)
    for s in subjects:
        b.append("INBOX", None, None, simple_message(s, to=user))
    return b


def test_capability_lists_context(env):
    user = env.add_user("ctxcap")
    lc = env.raw(user)
    r = ok(cmd(lc, "c", "CAPABILITY"), "c")
    assert re.search(rb"^\* CAPABILITY .* CONTEXT=SEARCH CONTEXT=SORT( |\r)", r, re.M), r
    lc.close()


def test_search_update_in_idle(env):
    user = env.add_user("ctxsearch")
    env.require_smtp_auth()
    b = fill(env, user, ["one", "two", "three"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) UNSEEN"), "u1")
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID ALL 1:3'], r
    idle(a)
    # A flag change that makes a message leave the result.
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\)')
    assert b"* 2 FETCH (FLAGS (\\Seen" in got, got
    assert esearch(got, "u1") == [b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 2)'], got
    # ... and come back.
    b.uid("STORE", "2", "-FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\)')
    assert esearch(got, "u1") == [b'* ESEARCH (TAG "u1") UID ADDTO (0 2)'], got
    # New mail over SMTP: EXISTS first, then ADDTO.
    env.submit(user, user, simple_message("four", to=user))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\)')
    assert got.index(b"* 4 EXISTS") < got.index(b"ADDTO"), got
    assert esearch(got, "u1") == [b'* ESEARCH (TAG "u1") UID ADDTO (0 4)'], got
    # Expunged members leave the result.
    b.uid("STORE", "1,3", "+FLAGS", r"(\Deleted)")
    b.expunge()
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\) UID REMOVEFROM')
    assert esearch(got, "u1")[-1] == b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 1,3)', got
    done(a)
    nothing_waiting(a)
    b.logout()
    a.close()


def test_search_update_after_own_commands(env):
    user = env.add_user("ctxown")
    b = fill(env, user, ["one", "two", "three"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "u1", "UID SEARCH RETURN (COUNT UPDATE) KEYWORD work"), "u1")
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID COUNT 0'], r
    # The session's own STORE: the update comes before its tagged OK.
    r = ok(cmd(a, "t1", "UID STORE 1,3 +FLAGS (work)"), "t1")
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID ADDTO (0 1,3)'], r
    # Another session's change shows after the next command, with its FETCH.
    b.select("INBOX")
    b.uid("STORE", "3", "-FLAGS", "(work)")
    r = ok(cmd(a, "n", "NOOP"), "n")
    assert r.index(b"* 3 FETCH") < r.index(b"REMOVEFROM"), r
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 3)'], r
    # The session's own EXPUNGE.
    ok(cmd(a, "t2", "UID STORE 1 +FLAGS (\\Deleted)"), "t2")
    r = ok(cmd(a, "x", "EXPUNGE"), "x")
    assert b"* 1 EXPUNGE" in r, r
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 1)'], r
    nothing_waiting(a)
    b.logout()
    a.close()


def test_sort_update_positions(env):
    user = env.add_user("ctxsort")
    env.require_smtp_auth()
    b = fill(env, user, ["bravo", "delta", "foxtrot"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "o1", "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNFLAGGED"), "o1")
    assert esearch(r, "o1") == [b'* ESEARCH (TAG "o1") UID ALL 1:3'], r
    idle(a)
    # "charlie" sorts between bravo and delta: position 2.
    env.submit(user, user, simple_message("charlie", to=user))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID ADDTO (2 4)'], got
    # "alpha" goes first.
    b.append("INBOX", None, None, simple_message("alpha", to=user))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID ADDTO (1 5)'], got
    # Now alpha(5) bravo(1) charlie(4) delta(2) foxtrot(3): delta leaves from position 4
    # when flagged, and comes back there.
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", r"(\Flagged)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID REMOVEFROM (4 2)'], got
    b.uid("STORE", "2", "-FLAGS", r"(\Flagged)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID ADDTO (4 2)'], got
    # Two neighbours leave at once: one pair at one position.
    b.uid("STORE", "1,4", "+FLAGS", r"(\Flagged)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID REMOVEFROM (2 1,4)'], got
    b.uid("STORE", "1,4", "-FLAGS", r"(\Flagged)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID ADDTO (2 1,4)'], got
    # Expunge of a member: its position, not its mailbox order.
    b.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    b.expunge()
    got = wait_for(a, rb'^\* ESEARCH \(TAG "o1"\)')
    assert esearch(got, "o1") == [b'* ESEARCH (TAG "o1") UID REMOVEFROM (5 3)'], got
    done(a)
    # The kept result is what a new SORT says.
    r = ok(cmd(a, "o2", "UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNFLAGGED"), "o2")
    assert esearch(r, "o2") == [b'* ESEARCH (TAG "o2") UID ALL 5,1,4,2'], r
    b.logout()
    a.close()


def test_cancelupdate_stops_updates(env):
    user = env.add_user("ctxcancel")
    b = fill(env, user, ["one", "two"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) FLAGGED"), "u1")
    ok(cmd(a, "u2", "UID SEARCH RETURN (UPDATE MIN) UNFLAGGED"), "u2")
    r = ok(cmd(a, "c", 'CANCELUPDATE "u1"'), "c")
    assert not esearch(r, "u1"), r
    b.select("INBOX")
    b.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
    r = ok(cmd(a, "n", "NOOP"), "n")
    assert b"* 1 FETCH" in r, r
    assert not esearch(r, "u1"), r
    # The other one lives on.
    assert esearch(r, "u2") == [b'* ESEARCH (TAG "u2") UID REMOVEFROM (0 1)'], r
    # A cancelled tag is unknown; both at once, and one named twice.
    r = cmd(a, "c2", 'CANCELUPDATE "u1"')
    assert r[-1].startswith(b"c2 NO"), r
    ok(cmd(a, "c3", 'CANCELUPDATE "u2" "u2"'), "c3")
    b.uid("STORE", "1", "-FLAGS", r"(\Flagged)")
    r = ok(cmd(a, "n2", "NOOP"), "n2")
    assert b"* 1 FETCH" in r and b"ESEARCH" not in r, r
    # The tag may be used again once cancelled.
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) FLAGGED"), "u1")
    b.logout()
    a.close()


def test_select_ends_updates(env):
    user = env.add_user("ctxselect")
    b = fill(env, user, ["one", "two"])
    b.create("Other")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) ALL"), "u1")
    ok(cmd(a, "s2", "SELECT Other"), "s2")
    # Back in INBOX: the old result is not kept any more.
    ok(cmd(a, "s3", "SELECT INBOX"), "s3")
    b.append("INBOX", None, None, simple_message("three", to=user))
    r = ok(cmd(a, "n", "NOOP"), "n")
    assert b"* 3 EXISTS" in r and b"ESEARCH" not in r, r
    r = cmd(a, "c", 'CANCELUPDATE "u1"')
    assert r[-1].startswith(b"c NO"), r
    # UNSELECT and CLOSE too.
    ok(cmd(a, "u2", "UID SEARCH RETURN (UPDATE) ALL"), "u2")
    ok(cmd(a, "us", "UNSELECT"), "us")
    ok(cmd(a, "s4", "SELECT INBOX"), "s4")
    b.append("INBOX", None, None, simple_message("four", to=user))
    r = ok(cmd(a, "n2", "NOOP"), "n2")
    assert b"* 4 EXISTS" in r and b"ESEARCH" not in r, r
    ok(cmd(a, "u3", "UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL"), "u3")
    ok(cmd(a, "cl", "CLOSE"), "cl")
    r = cmd(a, "c2", 'CANCELUPDATE "u3"')
    assert r[-1].startswith(b"c2 BAD"), r  # not in the selected state
    b.logout()
    a.close()


@pytest.mark.parametrize("line", [
    "CANCELUPDATE",
    "CANCELUPDATE u1",
    "CANCELUPDATE (\"u1\")",
    "CANCELUPDATE NIL",
    "CANCELUPDATE \"u1\" u2",
    "UID SEARCH RETURN (UPDATE BOGUS) ALL",
    "UID SEARCH RETURN UPDATE ALL",
    "UID SORT RETURN (UPDATE) ALL",
    "UID SORT RETURN (UPDATE (SUBJECT)) (SUBJECT) UTF-8 ALL",
    "UID THREAD RETURN (UPDATE) REFERENCES UTF-8 ALL",
])
def test_bad_syntax(env, line):
    user = env.add_user("ctxbad")
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = cmd(a, "t", line)
    assert r[-1].startswith(b"t BAD"), (line, r)
    a.close()


def test_literal_tag_is_bad(env):
    user = env.add_user("ctxlit")
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) ALL"), "u1")
    r = cmd(a, "t", "CANCELUPDATE", literal=b"u1")
    assert r[-1].startswith(b"t BAD"), r
    a.close()


def test_tag_reuse_is_bad(env):
    user = env.add_user("ctxreuse")
    fill(env, user, ["one"]).logout()
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) ALL"), "u1")
    r = cmd(a, "u1", "UID SEARCH RETURN (UPDATE) SEEN")
    assert r[-1].startswith(b"u1 BAD"), r
    r = cmd(a, "u1", "UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL")
    assert r[-1].startswith(b"u1 BAD"), r
    # Without UPDATE the tag may be reused as IMAP allows.
    ok(cmd(a, "u1", "UID SEARCH RETURN (COUNT) ALL"), "u1")
    a.close()


@pytest.mark.parametrize("line,answer", [
    ("SEARCH RETURN (UPDATE) ALL", b'* ESEARCH (TAG "t") ALL 1:2'),
    ("SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL", b'* ESEARCH (TAG "t") ALL 1:2'),
    ("UID SEARCH RETURN (UPDATE SAVE COUNT) ALL", b'* ESEARCH (TAG "t") UID COUNT 2'),
    ("UID SEARCH RETURN (UPDATE) 1:2", b'* ESEARCH (TAG "t") UID ALL 1:2'),
    ("UID SEARCH RETURN (UPDATE) OR SEEN 2", b'* ESEARCH (TAG "t") UID ALL 2'),
    ("UID SEARCH RETURN (UPDATE) UID 2:*", b'* ESEARCH (TAG "t") UID ALL 2'),
    ("UID SEARCH RETURN (UPDATE) $", b'* ESEARCH (TAG "t") UID'),
])
def test_noupdate(env, line, answer):
    """What cannot be kept up to date is answered all the same, with NO [NOUPDATE]."""
    user = env.add_user("ctxnoupd")
    b = env.imaps(user)
    b.select("INBOX")
    typ, data = b.search(None, "ALL")
    if not data[0]:
        for s in ("one", "two"):
            b.append("INBOX", None, None, simple_message(s, to=user))
    b.logout()
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "t", line), "t")
    assert answer in r, (line, r)
    assert re.search(rb'^\* NO \[NOUPDATE "t"\] ', r, re.M), (line, r)
    assert r.index(answer) < r.index(b"NOUPDATE"), r
    a.close()


def test_context_limit(env):
    user = env.add_user("ctxlimit")
    fill(env, user, ["one"]).logout()
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    for i in range(16):
        r = ok(cmd(a, "k%d" % i, "UID SEARCH RETURN (UPDATE) ALL"), "k%d" % i)
        assert b"NOUPDATE" not in r, r
    r = ok(cmd(a, "k16", "UID SEARCH RETURN (UPDATE COUNT) ALL"), "k16")
    assert b'* ESEARCH (TAG "k16") UID COUNT 1' in r, r
    assert b'* NO [NOUPDATE "k16"] Too many contexts' in r, r
    # Cancelling one makes room.
    ok(cmd(a, "c", 'CANCELUPDATE "k3"'), "c")
    r = ok(cmd(a, "k17", "UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL"), "k17")
    assert b"NOUPDATE" not in r, r
    a.close()


def test_sort_modseq(env):
    user = env.add_user("ctxmodseq")
    b = fill(env, user, ["one", "two"])
    b.select("INBOX")
    b.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
    b.logout()
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX (CONDSTORE)"), "s")
    r = ok(cmd(a, "f", "UID FETCH 1:* (MODSEQ)"), "f")
    mods = {int(u): int(m) for m, u in re.findall(rb"MODSEQ \((\d+)\) UID (\d+)", r)}
    assert len(mods) == 2, r
    top = max(mods.values())
    r = ok(cmd(a, "o", "UID SORT (ARRIVAL) UTF-8 MODSEQ 1"), "o")
    assert b"* SORT 1 2 (MODSEQ %d)" % top in r, r
    r = ok(cmd(a, "o2", "UID SORT RETURN (ALL) (ARRIVAL) UTF-8 MODSEQ 1"), "o2")
    assert b'* ESEARCH (TAG "o2") UID ALL 1:2 MODSEQ %d' % top in r, r
    # MAX alone: the modseq of that message only.
    r = ok(cmd(a, "o3", "UID SORT RETURN (MAX) (ARRIVAL) UTF-8 MODSEQ 1"), "o3")
    assert b'* ESEARCH (TAG "o3") UID MAX 2 MODSEQ %d' % mods[2] in r, r
    # Without a MODSEQ key, no MODSEQ.
    r = ok(cmd(a, "o4", "UID SORT (ARRIVAL) UTF-8 ALL"), "o4")
    assert b"* SORT 1 2\r\n" in r, r
    a.close()


def test_header_and_text_keys(env):
    """Header and text keys: messages that arrive are read once for them; a flag change
    of a message already seen needs no read."""
    user = env.add_user("ctxhdr")
    env.require_smtp_auth()
    b = fill(env, user, ["report one", "lunch", "report two"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "h1", "UID SEARCH RETURN (UPDATE) UNSEEN SUBJECT report"), "h1")
    assert esearch(r, "h1") == [b'* ESEARCH (TAG "h1") UID ALL 1,3'], r
    r = ok(cmd(a, "h2", "UID SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 "
                        "OR BODY pineapple HEADER X-Tag blue"), "h2")
    assert esearch(r, "h2") == [b'* ESEARCH (TAG "h2") UID'], r
    r = ok(cmd(a, "h3", "UID SEARCH RETURN (UPDATE) SENTSINCE 1-Jan-2030"), "h3")
    assert esearch(r, "h3") == [b'* ESEARCH (TAG "h3") UID'], r
    assert b"NOUPDATE" not in r, r
    idle(a)
    b.select("INBOX")
    b.uid("STORE", "3", "+FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "h1"\)')
    assert esearch(got, "h1") == [b'* ESEARCH (TAG "h1") UID REMOVEFROM (0 3)'], got
    # New mail: its subject, its body (full-text index), a raw header field and its Date.
    env.submit(user, user, simple_message("report three", to=user,
                                          body="with pineapple\r\n"))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "h2"\)')
    assert esearch(got, "h1") == [b'* ESEARCH (TAG "h1") UID ADDTO (0 4)'], got
    assert esearch(got, "h2") == [b'* ESEARCH (TAG "h2") UID ADDTO (1 4)'], got
    env.submit(user, user, simple_message("a blue one", to=user, extra="X-Tag: blue\r\n",
                                          date="Mon, 01 Jan 2035 10:00:00 +0000"))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "h3"\)')
    assert esearch(got, "h3") == [b'* ESEARCH (TAG "h3") UID ADDTO (0 5)'], got
    # "report three" sorts before "a blue one" in REVERSE SUBJECT.
    assert esearch(got, "h2") == [b'* ESEARCH (TAG "h2") UID ADDTO (2 5)'], got
    assert not esearch(got, "h1"), got
    # Unseen again: back in the SUBJECT result, without reading anything.
    b.uid("STORE", "3", "-FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "h1"\)')
    assert esearch(got, "h1") == [b'* ESEARCH (TAG "h1") UID ADDTO (0 3)'], got
    done(a)
    nothing_waiting(a)
    b.logout()
    a.close()


def test_updates_with_notify_and_own_fetch(env):
    """With NOTIFY's SELECTED events the updates come between commands, without IDLE; a
    FETCH that sets \\Seen changes a result like a STORE."""
    user = env.add_user("ctxnotify")
    b = fill(env, user, ["one", "two"])
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    r = ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) UNSEEN"), "u1")
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID ALL 1:2'], r
    r = ok(cmd(a, "f", "UID FETCH 2 (BODY[TEXT])"), "f")
    assert r.index(b"* 2 FETCH") < r.index(b"REMOVEFROM"), r
    assert esearch(r, "u1") == [b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 2)'], r
    ok(cmd(a, "n", "NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange))"), "n")
    b.select("INBOX")
    b.uid("STORE", "1", "+FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\)')
    assert esearch(got, "u1") == [b'* ESEARCH (TAG "u1") UID REMOVEFROM (0 1)'], got
    b.append("INBOX", None, None, simple_message("three", to=user))
    got = wait_for(a, rb'^\* ESEARCH \(TAG "u1"\)')
    assert got.index(b"* 3 EXISTS") < got.index(b"ADDTO"), got
    assert esearch(got, "u1") == [b'* ESEARCH (TAG "u1") UID ADDTO (0 3)'], got
    nothing_waiting(a)
    b.logout()
    a.close()


def test_many_tags_and_odd_strings(env):
    """CANCELUPDATE with thousands of tags, and tags that are no command's, is answered and
    the session goes on."""
    user = env.add_user("ctxmany")
    a = env.raw(user)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "u1", "UID SEARCH RETURN (UPDATE) ALL"), "u1")
    tags = " ".join('"t%d"' % i for i in range(1000))
    r = cmd(a, "c", "CANCELUPDATE " + tags)
    assert r[-1].startswith(b"c NO"), r[-1]
    # Past what the command parser takes: BAD, and nothing cancelled.
    tags = " ".join('"t%d"' % i for i in range(100000))
    r = cmd(a, "c1", "CANCELUPDATE " + tags)
    assert r[-1].startswith(b"c1 BAD"), r[-1]
    r = cmd(a, "c2", 'CANCELUPDATE "" "u1 " "\\"u1\\""')
    assert r[-1].startswith(b"c2 NO"), r[-1]
    # u1 is still there.
    ok(cmd(a, "c3", 'CANCELUPDATE "u1"'), "c3")
    a.close()
