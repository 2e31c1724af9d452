"""OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970): MAILBOXID on SELECT,
CREATE and STATUS, kept across RENAME and never reused; EMAILID kept by COPY and MOVE;
THREADID shared by a reply and its parent, whichever arrives first; SAVEDATE set when a
message is saved and searched by day; PREVIEW computed at delivery, with LAZY."""
import datetime
import imaplib
import re

import pytest

from imap_env import MULTIPART, ImapEnv, cmd, simple_message

OBJECTID = rb"[A-Za-z0-9_-]{1,255}"


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


def mailboxid_of(lines):
    for l in lines:
        m = re.search(rb"\[MAILBOXID \((" + OBJECTID + rb")\)\]", l)
        if m:
            return m.group(1)
    raise AssertionError(lines)


def status_id(lc, tag, box):
    lines = ok(cmd(lc, tag, "STATUS %s (MAILBOXID MESSAGES)" % box), tag)
    for l in lines:
        m = re.search(rb"MAILBOXID \((" + OBJECTID + rb")\)", l)
        if l.startswith(b"* STATUS") and m and b"MESSAGES " in l:
            return m.group(1)
    raise AssertionError(lines)


def fetch_items(lc, tag, what, seqs="1:*"):
    """{uid: raw FETCH line} for UID FETCH seqs (what)."""
    lines = ok(cmd(lc, tag, "UID FETCH %s (%s)" % (seqs, what)), tag)
    out = {}
    for l in lines:
        m = re.match(rb"\* \d+ FETCH \(.*UID (\d+)", l)
        if m:
            out[int(m.group(1))] = l
    return out


def ids(lc, tag, seqs="1:*"):
    out = {}
    for uid, l in fetch_items(lc, tag, "EMAILID THREADID", seqs).items():
        e = re.search(rb"EMAILID \((" + OBJECTID + rb")\)", l)
        t = re.search(rb"THREADID \((" + OBJECTID + rb")\)", l)
        assert e and t, l
        out[uid] = (e.group(1), t.group(1))
    return out


def search(lc, tag, keys):
    lines = ok(cmd(lc, tag, "UID SEARCH " + keys), tag)
    for l in lines:
        if l.startswith(b"* SEARCH"):
            return [int(x) for x in l.split()[2:]]
    raise AssertionError(lines)


def append(env, user, box, data):
    m = env.imaps(user)
    typ, resp = m.append(box, None, None, data)
    assert typ == "OK", resp
    m.logout()


def message(subject, msgid, refs=None, body="text\r\n"):
    hdr = "From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\n" % subject
    hdr += "Message-ID: <%s>\r\n" % msgid
    if refs:
        hdr += "References: %s\r\nIn-Reply-To: %s\r\n" % (refs, refs.split()[-1])
    return (hdr + "\r\n" + body).encode()


def test_capabilities(env):
    user = env.add_user("oid0")
    m = env.imaps(user)
    typ, data = m.capability()
    caps = data[0].split()
    for c in (b"OBJECTID", b"SAVEDATE", b"PREVIEW"):
        assert c in caps, caps
    m.logout()


def test_mailboxid_select_create_status_rename(env):
    user = env.add_user("oid1")
    lc = env.raw(user)
    sel = ok(cmd(lc, "s", "SELECT INBOX"), "s")
    inbox = mailboxid_of(sel)
    assert any(re.match(rb"\* OK \[MAILBOXID \(", l) for l in sel), sel
    ex = ok(cmd(lc, "e", "EXAMINE INBOX"), "e")
    assert mailboxid_of(ex) == inbox
    created = ok(cmd(lc, "c", "CREATE Projects"), "c")
    assert re.match(rb"c OK \[MAILBOXID \(" + OBJECTID + rb"\)\]", created[-1]), created
    pid = mailboxid_of(created)
    assert pid != inbox
    assert status_id(lc, "st1", "Projects") == pid
    assert status_id(lc, "st2", "INBOX") == inbox
    # RENAME keeps the id; a new mailbox of the old name gets another one.
    ok(cmd(lc, "r", "RENAME Projects Archive2026"), "r")
    assert status_id(lc, "st3", "Archive2026") == pid
    again = mailboxid_of(ok(cmd(lc, "c2", "CREATE Projects"), "c2"))
    assert again not in (pid, inbox)
    # Deleted and created again: never the old id.
    ok(cmd(lc, "d", "DELETE Projects"), "d")
    third = mailboxid_of(ok(cmd(lc, "c3", "CREATE Projects"), "c3"))
    assert third not in (pid, inbox, again)
    # An id that exists for this user only: another user's INBOX differs.
    other = env.raw(env.add_user("oid1b"))
    assert status_id(other, "o", "INBOX") != inbox
    # Bad STATUS item is still BAD.
    lines = cmd(lc, "b", "STATUS INBOX (MAILBOXIDX)")
    assert lines[-1].startswith(b"b BAD"), lines


def test_emailid_kept_by_copy_and_move(env):
    user = env.add_user("oid2")
    append(env, user, "INBOX", message("one", "one@x"))
    append(env, user, "INBOX", message("two", "two@x"))
    lc = env.raw(user)
    ok(cmd(lc, "c", "CREATE Keep"), "c")
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    before = ids(lc, "f1")
    assert len(before) == 2
    e1, e2 = before[1][0], before[2][0]
    assert e1 != e2 and e1.startswith(b"M")
    ok(cmd(lc, "cp", "UID COPY 1 Keep"), "cp")
    ok(cmd(lc, "mv", "UID MOVE 2 Keep"), "mv")
    ok(cmd(lc, "s2", "SELECT Keep"), "s2")
    after = ids(lc, "f2")
    assert sorted(v[0] for v in after.values()) == sorted([e1, e2]), (before, after)
    # SEARCH EMAILID finds it in the mailbox it is in.
    uid_of_e2 = [u for u, v in after.items() if v[0] == e2]
    assert search(lc, "q1", "EMAILID " + e2.decode()) == uid_of_e2
    assert search(lc, "q2", "EMAILID M0000000000000000") == []
    lines = cmd(lc, "q3", 'UID SEARCH EMAILID "bad id"')
    assert lines[-1].startswith(b"q3 BAD"), lines
    # The same bytes appended again are another message: another EMAILID.
    append(env, user, "Keep", message("one", "one@x"))
    ok(cmd(lc, "n", "NOOP"), "n")
    third = ids(lc, "f3")
    assert len(set(v[0] for v in third.values())) == 3, third


def test_threadid_links_replies_either_order(env):
    user = env.add_user("oid3")
    # The reply arrives before its parent; a grandchild names only the child.
    append(env, user, "INBOX", message("Re: plan", "child@x", "<root@x>"))
    append(env, user, "INBOX", message("plan", "root@x"))
    append(env, user, "INBOX", message("Re: Re: plan", "grand@x", "<child@x>"))
    append(env, user, "INBOX", message("other", "alone@x"))
    lc = env.raw(user)
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    got = ids(lc, "f")
    t = {uid: v[1] for uid, v in got.items()}
    assert t[1] == t[2] == t[3], t
    assert t[4] != t[1]
    assert search(lc, "q", "THREADID " + t[1].decode()) == [1, 2, 3]
    assert search(lc, "q2", "THREADID " + t[4].decode()) == [4]
    # A copy keeps its thread; the thread is the user's, across mailboxes.
    ok(cmd(lc, "c", "CREATE Mine"), "c")
    append(env, user, "Mine", message("Re: plan", "mine@x", "<root@x> <grand@x>"))
    ok(cmd(lc, "s2", "SELECT Mine"), "s2")
    sent = ids(lc, "f2")
    assert list(sent.values())[0][1] == t[1]
    # Another user's copy of the same conversation is another thread.
    other = env.add_user("oid3b")
    append(env, other, "INBOX", message("plan", "root@x"))
    lo = env.raw(other)
    ok(cmd(lo, "s", "SELECT INBOX"), "s")
    assert list(ids(lo, "f").values())[0][1] != t[1]


def test_savedate_fetch_and_search(env):
    user = env.add_user("oid4")
    m = env.imaps(user)
    # An internal date long ago: the save date is today, not that.
    old = imaplib.Time2Internaldate(datetime.datetime(2001, 2, 3, 4, 5, 6,
                                                      tzinfo=datetime.timezone.utc))
    typ, _ = m.append("INBOX", None, old, simple_message("saved"))
    assert typ == "OK"
    m.logout()
    lc = env.raw(user)
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    line = fetch_items(lc, "f", "SAVEDATE INTERNALDATE")[1]
    sd = re.search(rb'SAVEDATE "(\d{2}-\w{3}-\d{4}) \d\d:\d\d:\d\d \+0000"', line)
    idate = re.search(rb'INTERNALDATE "(\d{2}-\w{3}-\d{4})', line)
    assert sd and idate, line
    assert idate.group(1) == b"03-Feb-2001"
    today = datetime.datetime.now(datetime.timezone.utc)
    saved_day = datetime.datetime.strptime(sd.group(1).decode(), "%d-%b-%Y").date()
    assert abs((saved_day - today.date()).days) <= 1, line
    day = sd.group(1).decode().lstrip("0")
    assert search(lc, "q1", "SAVEDON " + day) == [1]
    assert search(lc, "q2", "SAVEDBEFORE 1-Jan-2002") == []
    assert search(lc, "q3", "BEFORE 1-Jan-2002") == [1]
    assert search(lc, "q4", "SAVEDSINCE 1-Jan-2002") == [1]
    assert search(lc, "q5", "SAVEDATESUPPORTED") == [1]
    lines = cmd(lc, "q6", "UID SEARCH SAVEDON 31-Foo-2020")
    assert lines[-1].startswith(b"q6 BAD"), lines


PLAIN = (b"From: a@example.org\r\nSubject: p\r\nMessage-ID: <p1@x>\r\n\r\n"
         b"Hello   Bob,\r\n\r\nthe  report is\tready.\r\n> quoted old text\r\n"
         b"-- \r\nAlice's signature\r\n")

HTML = (b"From: a@example.org\r\nSubject: h\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><title>T</title><style>p{color:red}</style></head>"
        b"<body><p>Caf&eacute; &amp; <b>cr\xc3\xa8me</b></p><p>line&#33;</p></body></html>\r\n")

ALT = (b"From: a@example.org\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
       b"--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n"
       b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n")

LONG = (b"From: a@example.org\r\nSubject: long\r\n\r\n" + b"word " * 400 + b"\r\n")

ATTACH_ONLY = (b"From: a@example.org\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=z\r\n\r\n"
               b"--z\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
               b"\r\nJVBERi0=\r\n--z--\r\n")


def previews(lc, tag, what="PREVIEW"):
    lines = ok(cmd(lc, tag, "UID FETCH 1:* (%s)" % what), tag)
    text = b"".join(lines)
    out = {}
    for m in re.finditer(rb"\* \d+ FETCH \(UID (\d+) PREVIEW (\"(?:[^\"\\\\]|\\\\.)*\"|NIL|"
                         rb"\{(\d+)\}\r\n)", text):
        uid = int(m.group(1))
        if m.group(3):
            n = int(m.group(3))
            out[uid] = text[m.end():m.end() + n]
        elif m.group(2) == b"NIL":
            out[uid] = None
        else:
            out[uid] = m.group(2)[1:-1]
    return out


def test_preview(env):
    user = env.add_user("oid5")
    for data in (PLAIN, HTML, ALT, LONG, ATTACH_ONLY, MULTIPART):
        append(env, user, "INBOX", data)
    lc = env.raw(user)
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    p = previews(lc, "f", "UID PREVIEW")
    assert p[1] == b"Hello Bob, the report is ready.", p
    assert p[2] == "Café & crème line!".encode(), p
    assert p[3] == b"plain version", p
    assert len(p[4].decode()) == 256 and p[4].startswith(b"word word"), p[4]
    assert p[5] == b"", p
    assert p[6].startswith("Hallo Welt".encode()), p
    # LAZY: the preview is always at hand, so the same answer.
    assert previews(lc, "g", "UID PREVIEW (LAZY)") == p
    for bad in ("PREVIEW (FUZZY)", "PREVIEW ()"):
        lines = cmd(lc, "b", "UID FETCH 1 (%s)" % bad)
        assert lines[-1].startswith(b"b BAD"), (bad, lines)
    # PREVIEW does not set \Seen.
    lines = ok(cmd(lc, "fl", "FETCH 1 (FLAGS)"), "fl")
    assert b"\\Seen" not in lines[0], lines


def test_items_with_body_and_delivery_over_smtp(env):
    env.require_smtp_auth()
    user = env.add_user("oid6")
    env.submit(user, user, simple_message("by smtp", to=user))
    lc = env.raw(user)
    ok(cmd(lc, "s", "SELECT INBOX"), "s")
    lines = ok(cmd(lc, "f", "FETCH 1 (EMAILID THREADID SAVEDATE PREVIEW BODY.PEEK[])"), "f")
    head = lines[0]
    assert re.search(rb"EMAILID \(M[0-9a-f]{16}\) THREADID \(T[0-9a-f]{16}\) SAVEDATE \"",
                     head), head
    assert b"PREVIEW " in head and b"BODY[] {" in head, head
