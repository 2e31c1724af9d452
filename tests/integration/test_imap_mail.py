"""Mailboxes and messages over IMAP: LIST, SELECT/EXAMINE, APPEND (MULTIAPPEND, dates), STORE,
COPY, MOVE, EXPUNGE, UID EXPUNGE, SEARCH, QUOTA — Python's imaplib against sealmaild."""
import imaplib
import os
import re
import time

import pytest

from imap_env import MULTIPART, ImapEnv, cmd, fetch_literal, read_response, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def login(env, local):
    return env.imaps(env.add_user(local))


def uids(m, *criteria):
    typ, data = m.uid("SEARCH", *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_list_and_special_use(env):
    m = login(env, "lister")
    typ, data = m.list()
    assert typ == "OK"
    names = {re.search(rb'"/" "?([^"]*)"?$', l).group(1): l for l in data}
    for n in (b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk", b"Archive"):
        assert n in names, data
    assert b"\\Sent" in names[b"Sent"] and b"\\Trash" in names[b"Trash"]
    m.create("Projects/2024")
    typ, data = m.list('""', "Projects/*")
    assert any(b"Projects/2024" in l for l in data), data
    typ, data = m.list('""', "%")
    assert any(b"Projects" in l and b"\\HasChildren" in l for l in data), data
    typ, data = m.lsub()
    assert typ == "OK"
    m.create("Entw&APw-rfe")
    typ, data = m.list('""', "Entw*")
    assert any(b"Entw&APw-rfe" in l for l in data), data
    m.rename("Projects/2024", "Projects/2025")
    typ, data = m.list('""', "Projects/*")
    assert any(b"2025" in l for l in data) and not any(b"2024" in l for l in data), data
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    assert typ == "OK" and b"UIDNEXT" in data[0], data
    typ, data = m.delete("Projects/2025")
    assert typ == "OK"
    m.logout()


def test_rename_inbox_moves_messages_and_leaves_inbox_empty(env):
    """RFC 9051 6.3.6: RENAME INBOX moves every message to the new mailbox; INBOX stays."""
    m = login(env, "renamer")
    for subject in ("one", "two"):
        m.append("INBOX", r"(\Seen)", None, simple_message(subject))
    m.create("INBOX/Keep")
    typ, data = m.rename("INBOX", "Saved")
    assert typ == "OK", data
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT)")
    assert typ == "OK" and b"MESSAGES 0" in data[0] and b"UIDNEXT 3" in data[0], data
    typ, data = m.status("Saved", "(MESSAGES UNSEEN)")
    assert typ == "OK" and b"MESSAGES 2" in data[0] and b"UNSEEN 0" in data[0], data
    typ, data = m.list('""', "INBOX/*")
    assert any(b"INBOX/Keep" in l for l in data), data
    m.select("Saved")
    typ, data = m.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject: two" in data[0][1], data
    typ, data = m.rename("Saved", "INBOX")
    assert typ == "NO", data
    m.logout()


def test_select_and_examine_responses(env):
    m = login(env, "selector")
    m.append("INBOX", r"(\Seen)", None, simple_message("a"))
    m.append("INBOX", None, None, simple_message("b"))
    lc = env.raw("selector@corp.example")
    r = b"".join(cmd(lc, "s1", "SELECT INBOX"))
    for want in (b"* 2 EXISTS", b"* FLAGS (", b"[PERMANENTFLAGS (", b"[UIDVALIDITY ",
                 b"[UIDNEXT 3]", b"[UNSEEN 2]", b"s1 OK [READ-WRITE]"):
        assert want in r, r
    r = b"".join(cmd(lc, "s2", "EXAMINE INBOX"))
    assert b"s2 OK [READ-ONLY]" in r, r
    r = b"".join(cmd(lc, "s3", "STORE 1 +FLAGS (\\Flagged)"))
    assert b"s3 NO" in r, r
    r = b"".join(cmd(lc, "s4", "SELECT Nonexistent"))
    assert b"s4 NO" in r, r
    r = b"".join(cmd(lc, "s5", "FETCH 1 FLAGS"))
    assert b"s5 BAD" in r, r  # a failed SELECT leaves the selected state
    lc.close()
    m.logout()


def test_append_flags_date_and_appenduid(env):
    m = login(env, "appender")
    date = imaplib.Time2Internaldate(1600000000)
    typ, data = m.append("INBOX", r"(\Seen \Draft $Label1)", date, simple_message("x"))
    assert typ == "OK"
    assert re.search(rb"\[APPENDUID \d+ 1\]", data[0]), data
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1", "(FLAGS INTERNALDATE)")
    assert b"\\Seen" in data[0] and b"\\Draft" in data[0] and b"$Label1" in data[0], data
    assert b'"13-Sep-2020 12:26:40 +0000"' in data[0], data
    typ, data = m.append("NoSuchBox", None, None, simple_message("y"))
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    m.logout()


def test_multiappend(env):
    env.add_user("multi")
    lc = env.raw("multi@corp.example")
    a, b, c = simple_message("m1"), simple_message("m2"), simple_message("m3")
    lc.send(b"ma APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s ($X) \"01-Jan-2021 00:00:00 +0000\" {%d+}\r\n%s\r\n"
            % (len(a), a, len(b), b, len(c), c))
    r = lc.imap_tagged("ma")
    assert r[-1].startswith(b"ma OK"), r
    assert re.search(rb"APPENDUID \d+ 1:3", r[-1]), r
    lc.send("mb SELECT INBOX\r\n")
    r = b"".join(lc.imap_tagged("mb"))
    assert b"* 3 EXISTS" in r, r
    lc.send("mc FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
    out = read_response(lc, "mc")
    assert out.count(b"Subject: m") == 3, out
    assert b'"01-Jan-2021 00:00:00 +0000"' in out and b"$X" in out, out
    lc.close()


def test_store_flags_and_keywords(env):
    m = login(env, "storer")
    for i in range(3):
        m.append("INBOX", None, None, simple_message("s%d" % i))
    m.select("INBOX")
    typ, data = m.store("1:2", "+FLAGS", r"(\Flagged $Important)")
    assert typ == "OK" and len(data) == 2, data
    assert b"$Important" in data[0]
    typ, data = m.store("2", "-FLAGS", r"($Important)")
    assert b"$Important" not in data[0] and b"\\Flagged" in data[0], data
    # This session selected the appended messages first: \Recent, which STORE cannot
    # change.
    typ, data = m.store("3", "FLAGS", r"(\Answered)")
    assert b"(\\Answered \\Recent)" in data[0], data
    typ, data = m.store("1", "+FLAGS.SILENT", r"(\Seen)")
    assert typ == "OK" and data == [None], data
    typ, data = m.uid("STORE", "3", "FLAGS", "()")
    assert b"FLAGS (\\Recent)" in data[0], data
    typ, data = m.fetch("1:3", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"$Important" in data[0]
    assert uids(m, "KEYWORD", "$Important") == [1]
    assert uids(m, "UNKEYWORD", "$Important") == [2, 3]
    with pytest.raises(imaplib.IMAP4.error):
        m.store("1", "+FLAGS", r"(\Bogus)")
    m.logout()


def test_copy_move_expunge_uid_expunge(env):
    m = login(env, "mover")
    for i in range(5):
        m.append("INBOX", None, None, simple_message("c%d" % i))
    m.create("Dest")
    m.select("INBOX")
    lc = env.raw("mover@corp.example")
    cmd(lc, "c1", "SELECT INBOX")
    r = cmd(lc, "c2", "UID COPY 1:2 Dest")
    assert re.search(rb"c2 OK \[COPYUID \d+ 1:2 1,2\]", r[-1]), r
    lc.close()
    typ, data = m.uid("MOVE", "3", "Dest")
    assert typ == "OK", data
    typ, data = m.fetch("1:*", "(UID)")
    assert [int(re.search(rb"UID (\d+)", l).group(1)) for l in data] == [1, 2, 4, 5], data
    m.store("1", "+FLAGS", r"(\Deleted)")
    m.store("4", "+FLAGS", r"(\Deleted)")
    typ, data = m.uid("EXPUNGE", "5")  # UID 5 is seq 4: only that one goes
    assert typ == "OK", data
    assert uids(m, "ALL") == [1, 2, 4]
    typ, data = m.expunge()
    assert typ == "OK" and data[-1] == b"1", data
    assert uids(m, "ALL") == [2, 4]
    typ, data = m.copy("1", "NoSuchBox")
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    m.select("Dest")
    assert uids(m, "ALL") == [1, 2, 3]
    m.close()
    m.logout()


def test_search(env):
    m = login(env, "searcher")
    m.append("INBOX", r"(\Seen)", imaplib.Time2Internaldate(1577880000),  # 2020-01-01
             simple_message("Invoice March", "please pay the invoice\r\n",
                            sender="Billing <billing@shop.example>",
                            date="Mon, 02 Mar 2020 10:00:00 +0000"))
    m.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(1609502400),  # 2021-01-01
             simple_message("holiday photos", "see the pictures of the beach\r\n",
                            sender="Mum <mum@family.example>",
                            date="Fri, 01 Jan 2021 10:00:00 +0000",
                            extra="X-Priority: 1\r\n"))
    m.append("INBOX", None, None, MULTIPART)
    m.select("INBOX")
    assert uids(m, "ALL") == [1, 2, 3]
    assert uids(m, "SEEN") == [1]
    assert uids(m, "UNSEEN") == [2, 3]
    assert uids(m, "FLAGGED") == [2]
    assert uids(m, "OR", "SEEN", "FLAGGED") == [1, 2]
    assert uids(m, "NOT", "SEEN") == [2, 3]
    assert uids(m, "UID", "2:*") == [2, 3]
    assert uids(m, "2:3", "NOT", "FLAGGED") == [3]
    assert uids(m, "FROM", "billing") == [1]
    assert uids(m, "SUBJECT", "holiday") == [2]
    assert uids(m, "SUBJECT", "quartalsbericht") == [3]
    assert uids(m, "TO", "bob@corp.example") == [3]
    assert uids(m, "CC", "carol") == [3]
    assert uids(m, "HEADER", "X-Priority", "1") == [2]
    assert uids(m, "HEADER", "X-Custom", "giraffe") == [3]
    assert uids(m, "HEADER", "Message-ID", "mp-1@example.org") == [3]
    assert uids(m, "SENTBEFORE", "1-Jan-2021") == [1]
    assert uids(m, "SENTON", "1-Jan-2021") == [2]
    assert uids(m, "SENTSINCE", "1-Jan-2021") == [2, 3]
    assert uids(m, "BEFORE", "1-Jun-2020") == [1]
    assert uids(m, "SINCE", "1-Jun-2020") == [2, 3]
    assert uids(m, "ON", "1-Jan-2020") == [1]
    assert uids(m, "BODY", "invoice") == [1]
    assert uids(m, "BODY", "pineapple") == [3]
    assert uids(m, "TEXT", "beach") == [2]
    assert uids(m, "TEXT", "holiday") == [2]
    assert uids(m, "BODY", "nonexistentword") == []
    assert uids(m, "LARGER", "1000") == [3]
    assert uids(m, "SMALLER", "1000") == [1, 2]
    assert uids(m, "OR", "BODY", "invoice", "SUBJECT", "holiday") == [1, 2]
    assert uids(m, "NOT", "FROM", "billing") == [2, 3]
    typ, data = m.search(None, "SUBJECT", "holiday")
    assert data == [b"2"], data
    typ, data = m.search("UTF-8", "SUBJECT", "Quartal")
    assert data == [b"3"], data
    typ, _ = m.uid("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    typ, data = m.response("ESEARCH")
    assert b"MIN 1 MAX 3 COUNT 3" in data[-1], data
    m.logout()


def test_quota(env):
    m = login(env, "quoted")
    m.append("INBOX", None, None, MULTIPART)
    lc = env.raw("quoted@corp.example")
    r = b"".join(cmd(lc, "q1", "GETQUOTAROOT INBOX"))
    # No limit, no quota root: RFC 9208's quota-list holds at least one resource, and
    # every root GETQUOTAROOT names needs a QUOTA response.
    assert b"* QUOTAROOT INBOX\r\n" in r or b'* QUOTAROOT "INBOX"\r\n' in r, r
    assert b"* QUOTA " not in r and b"q1 OK" in r, r
    r = b"".join(cmd(lc, "q2", 'GETQUOTA ""'))
    assert b"q2 NO [NONEXISTENT]" in r, r
    r = b"".join(cmd(lc, "q3", 'GETQUOTA "other"'))
    assert b"q3 NO" in r, r
    lc.close()
    m.logout()


def test_quota_limits_append_and_multiappend_is_all_or_nothing(env):
    import os
    import sqlite3
    user = env.add_user("tight")
    db = os.path.join(env.srv.dir, "data", "mail.db")
    con = sqlite3.connect(db, timeout=10)
    con.execute("UPDATE users SET quota_bytes = 20000 WHERE address = ?", (user,))
    con.commit()
    con.close()
    lc = env.raw(user)
    r = b"".join(cmd(lc, "q1", 'GETQUOTA ""'))
    assert re.search(rb'\* QUOTA "" \(STORAGE 0 19\)', r), r
    small = simple_message("fits", "x" * 5000 + "\r\n")
    r = cmd(lc, "a1", "APPEND INBOX", literal=small)
    assert r[-1].startswith(b"a1 OK"), r
    # Three messages of which the last goes over: none of them stays.
    lc.send(b"a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n"
            % (len(small), small, len(small), small, 12000, b"y" * 12000))
    r = lc.imap_tagged("a2")
    assert r[-1].startswith(b"a2 NO") and b"OVERQUOTA" in r[-1], r
    r = b"".join(cmd(lc, "s", "SELECT INBOX"))
    assert b"* 1 EXISTS" in r, r
    r = b"".join(cmd(lc, "q2", "GETQUOTAROOT INBOX"))
    assert re.search(rb'\* QUOTA "" \(STORAGE [56] 19\)', r), r
    lc.close()


def _spool_files(env):
    d = os.path.join(env.srv.dir, "data", "spool")
    return [os.path.join(d, f) for f in os.listdir(d)] if os.path.isdir(d) else []


def _spool_empties(env, timeout=10.0):
    """The spool file is closed and unlinked on the thread pool after the command has
    answered, so its removal is awaited (bounded) rather than expected at the same instant."""
    deadline = time.time() + timeout
    while _spool_files(env) and time.time() < deadline:
        time.sleep(0.02)
    return _spool_files(env)


def _big_message(subject, mib):
    line = b"".join(bytes([33 + (i * 7 + k) % 90]) for k, i in enumerate(range(76))) + b"\r\n"
    body = line * (mib * 1024 * 1024 // len(line))
    return simple_message(subject, body.decode())


def test_append_large_literal_is_spooled_and_byte_exact(env):
    """A 5 MiB APPEND literal goes to a spool file while it arrives (not held in memory),
    is stored from it byte-exact, and the file is removed afterwards."""
    env.add_user("bigappend")
    lc = env.raw("bigappend@corp.example", timeout=60)
    msg = _big_message("big", 5)
    since = env.srv.log_size()
    lc.send(b"b1 APPEND INBOX {%d}\r\n" % len(msg))
    assert lc.readline().startswith(b"+")
    half = len(msg) // 2
    lc.send(msg[:half])
    # The server writes what it has to data_dir/spool while the rest is on its way.
    deadline = time.time() + 10
    seen = []
    while time.time() < deadline and not seen:
        seen = [f for f in _spool_files(env) if os.path.getsize(f) > 0]
        time.sleep(0.05)
    assert seen, "no spool file while the literal was arriving"
    lc.send(msg[half:] + b"\r\n")
    r = lc.imap_tagged("b1")
    assert r[-1].startswith(b"b1 OK") and b"APPENDUID" in r[-1], r
    env.srv.wait_log(r"event=literal_spooled size=%d" % len(msg), since=since)
    assert _spool_empties(env) == []
    assert b"* 1 EXISTS" in b"".join(cmd(lc, "b2", "SELECT INBOX"))
    lc.send("b3 FETCH 1 (BODY.PEEK[])\r\n")
    assert fetch_literal(read_response(lc, "b3")) == msg
    lc.close()


def test_multiappend_mixes_spooled_and_small_literals(env):
    env.add_user("bigmulti")
    lc = env.raw("bigmulti@corp.example", timeout=60)
    small, big = simple_message("small"), _big_message("large", 1)
    lc.send(b"m1 APPEND INBOX {%d+}\r\n%s (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n"
            % (len(small), small, len(big), big, len(small), small))
    r = lc.imap_tagged("m1")
    assert r[-1].startswith(b"m1 OK") and re.search(rb"APPENDUID \d+ 1:3", r[-1]), r
    assert b"* 3 EXISTS" in b"".join(cmd(lc, "m2", "SELECT INBOX"))
    for seq, want in ((1, small), (2, big), (3, small)):
        lc.send("m3 FETCH %d (BODY.PEEK[])\r\n" % seq)
        assert fetch_literal(read_response(lc, "m3")) == want, seq
    assert _spool_empties(env) == []
    lc.close()
