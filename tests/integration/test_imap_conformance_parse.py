"""IMAP conformance of sequence sets, of the argument parser and of long lines, against
the real sealmaild (RFC 3501 / RFC 9051 formal syntax):

- In a UID set "*" is the largest UID in use, so N:* with N above every UID still names
  the last message; 4294967295 is a number like any other and names only itself. A
  message sequence number above the message count (also as one end of a range, and "*"
  in an empty mailbox) is answered BAD (seq-number: "The server should respond with a
  tagged BAD ... greater than the number of messages").
- "[" and "]" are astring characters outside a FETCH section: a mailbox name holding them
  gets NO (no such mailbox), not BAD. A synchronising {0} literal gets its "+".
- After login a command may be one line of more than 64 KiB; a 2 MiB line is still
  refused (untagged BAD [TOOBIG]) without losing the connection.
"""
import imaplib

import pytest

from imap_env import PASSWORD, ImapEnv, cmd, simple_message

USER = "confparse@corp.example"
EMPTY_USER = "confempty@corp.example"


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("confparse")
    e.add_user("confempty")
    m = e.imaps(USER)
    for i in range(3):
        typ, _ = m.append("INBOX", None, None, simple_message("message %d" % (i + 1)))
        assert typ == "OK"
    m.logout()
    return e


def uids_of(data):
    """UIDs from imaplib FETCH data (b'1 (UID 7)' items)."""
    out = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            item = item[0]
        if b"UID " in item:
            out.append(int(item.split(b"UID ")[1].split(b")")[0].split()[0]))
    return out


@pytest.fixture
def inbox(env):
    m = env.imaps(USER)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], data
    typ, data = m.uid("SEARCH", "ALL")
    uids = [int(u) for u in data[0].split()]
    assert len(uids) == 3, uids
    yield m, uids
    m.logout()


# ---- 1. sequence sets ----

def test_uid_range_to_star_above_every_uid_is_the_last_message(inbox):
    m, uids = inbox
    top = uids[-1]
    typ, data = m.uid("FETCH", "%d:*" % (top + 10), "(UID)")
    assert typ == "OK", data
    assert uids_of(data) == [top], data
    typ, data = m.uid("SEARCH", "UID", "%d:*" % (top + 10))
    assert typ == "OK" and data == [str(top).encode()], data
    typ, data = m.uid("FETCH", "*", "(UID)")
    assert typ == "OK" and uids_of(data) == [top], data


def test_uid_range_to_largest_number_is_not_star(inbox):
    m, uids = inbox
    top = uids[-1]
    typ, data = m.uid("SEARCH", "UID", "%d:4294967295" % (top + 10))
    assert typ == "OK" and data == [b""], data
    typ, data = m.uid("SEARCH", "UID", "4294967295")
    assert typ == "OK" and data == [b""], data
    typ, data = m.search(None, "UID", "%d:4294967295" % (top + 10))
    assert typ == "OK" and data == [b""], data
    typ, data = m.uid("FETCH", "%d:4294967295" % (top + 10), "(UID)")
    assert typ == "OK" and uids_of(data) == [], data
    # The same range from below still holds every message.
    typ, data = m.uid("SEARCH", "UID", "1:4294967295")
    assert typ == "OK" and [int(u) for u in data[0].split()] == uids, data


def test_sequence_numbers(inbox):
    m, uids = inbox
    typ, data = m.fetch("3:*", "(UID)")
    assert typ == "OK" and uids_of(data) == [uids[2]], data
    typ, data = m.fetch("*:2", "(UID)")
    assert typ == "OK" and uids_of(data) == uids[1:], data
    typ, data = m.search(None, "2:*")
    assert typ == "OK" and data == [b"2 3"], data
    # seq-number (RFC 3501 and RFC 9051 alike): a number above the message count is
    # BAD, whether alone or as one end of a range with "*".
    for bad in ("5", "5:*", "*:5", "1,4", "2:4"):
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.fetch(bad, "(UID)")
        assert "BAD" in str(e.value) or "Invalid message sequence number" in str(e.value), \
            (bad, str(e.value))
    typ, _ = m.noop()
    assert typ == "OK"


def test_sequence_numbers_raw_replies(env):
    lc = env.raw(USER)
    r = cmd(lc, "s1", "SELECT INBOX")
    assert r[-1].startswith(b"s1 OK"), r
    r = cmd(lc, "f1", "FETCH 5 (UID)")
    assert r == [b"f1 BAD Invalid message sequence number\r\n"], r
    r = cmd(lc, "f2", "FETCH 5:* (UID)")
    assert r == [b"f2 BAD Invalid message sequence number\r\n"], r
    r = cmd(lc, "f3", "FETCH 3:* (UID)")
    assert len(r) == 2 and r[0].startswith(b"* 3 FETCH (UID ") and r[1].startswith(b"f3 OK"), r
    lc.close()


def test_empty_mailbox(env):
    lc = env.raw(EMPTY_USER)
    r = cmd(lc, "s1", "SELECT INBOX")
    assert b"* 0 EXISTS\r\n" in r and r[-1].startswith(b"s1 OK"), r
    # "*" in an empty mailbox is a sequence number above the count: BAD.
    r = cmd(lc, "f1", "FETCH * (UID)")
    assert r == [b"f1 BAD Invalid message sequence number\r\n"], r
    r = cmd(lc, "f2", "FETCH 1:* (UID)")
    assert r == [b"f2 BAD Invalid message sequence number\r\n"], r
    # A UID set names no message, and that is no error.
    r = cmd(lc, "u1", "UID FETCH 1:* (UID)")
    assert r == [b"u1 OK FETCH completed\r\n"] or (len(r) == 1 and r[0].startswith(b"u1 OK")), r
    r = cmd(lc, "u2", "UID SEARCH UID 10:*")
    assert r[0] == b"* SEARCH\r\n" and r[-1].startswith(b"u2 OK"), r
    lc.close()


# ---- 2. parser and errors ----

def test_bracket_is_an_atom_character(env):
    lc = env.raw(USER)
    r = cmd(lc, "s1", "SELECT !#$&'+,-.0123456789:;<=>?@^_|[}")
    assert len(r) == 1 and r[0].startswith(b"s1 NO"), r
    r = cmd(lc, "s2", "SELECT a]b")
    assert len(r) == 1 and r[0].startswith(b"s2 NO"), r
    r = cmd(lc, "s3", "EXAMINE [Gmail]")
    assert len(r) == 1 and r[0].startswith(b"s3 NO"), r
    # A FETCH section is still bracketed, and must still be closed.
    r = cmd(lc, "s4", "SELECT INBOX")
    assert r[-1].startswith(b"s4 OK"), r
    r = cmd(lc, "f1", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert b"Subject: message 1" in b"".join(r) and r[-1].startswith(b"f1 OK"), r
    r = cmd(lc, "f2", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)")
    assert r == [b"f2 BAD missing ]\r\n"], r
    lc.close()


def test_bracket_in_a_mailbox_name_round_trips(env):
    m = env.imaps(USER)
    typ, data = m.create("[Brackets]x[y")
    assert typ == "OK", data
    typ, data = m.list('""', "*Brackets*")
    assert typ == "OK" and any(b"[Brackets]x[y" in d for d in data), data
    typ, data = m.select("[Brackets]x[y")
    assert typ == "OK" and data == [b"0"], data
    m.close()
    typ, data = m.delete("[Brackets]x[y")
    assert typ == "OK", data
    m.logout()


def test_empty_synchronising_literal_gets_continuation(env):
    lc = env.raw(USER)
    lc.send("e1 SELECT {0}\r\n")
    assert lc.readline().startswith(b"+"), "no continuation for {0}"
    lc.send("\r\n")
    r = lc.imap_tagged("e1")
    assert len(r) == 1 and r[0].startswith(b"e1 NO"), r
    # An empty message: the "+" comes, and the command is answered. RFC 5322 allows a
    # message without header fields or body, and sealmail keeps it (NO would do too).
    r = cmd(lc, "c1", "CREATE Zero")
    assert r[-1].startswith(b"c1 OK"), r
    lc.send("e2 APPEND Zero {0}\r\n")
    assert lc.readline().startswith(b"+"), "no continuation for APPEND {0}"
    lc.send("\r\n")
    r = lc.imap_tagged("e2")
    assert len(r) == 1 and r[0].startswith(b"e2 OK [APPENDUID "), r
    r = cmd(lc, "x1", "EXAMINE Zero")
    assert b"* 1 EXISTS\r\n" in r and r[-1].startswith(b"x1 OK"), r
    r = cmd(lc, "x2", "FETCH 1 (RFC822.SIZE BODY.PEEK[])")
    assert r[0] == b"* 1 FETCH (RFC822.SIZE 0 BODY[] {0}\r\n" and r[-1].startswith(b"x2 OK"), r
    # A non-synchronising {0+} gets no "+": the next reply is the tagged one.
    lc.send("e3 SELECT {0+}\r\n\r\n")
    r = lc.imap_tagged("e3")
    assert r[-1].startswith(b"e3 NO") and not any(x.startswith(b"+") for x in r), r
    r = cmd(lc, "e4", "NOOP")
    assert r[-1].startswith(b"e4 OK"), r
    lc.close()


def test_empty_literals_in_login(env):
    lc = env.raw()
    lc.send("l1 LOGIN {0}\r\n")
    assert lc.readline().startswith(b"+"), "no continuation for LOGIN {0}"
    lc.send(" {0}\r\n")
    assert lc.readline().startswith(b"+"), "no continuation for the second {0}"
    lc.send("\r\n")
    r = lc.imap_tagged("l1")
    assert len(r) == 1 and r[0].startswith(b"l1 NO"), r
    lc.send('l2 LOGIN "%s" {0}\r\n' % USER)
    assert lc.readline().startswith(b"+")
    lc.send("\r\n")
    r = lc.imap_tagged("l2")
    assert len(r) == 1 and r[0].startswith(b"l2 NO"), r
    # A {0} user name followed by nothing is a syntax error, still answered.
    lc.send("l3 LOGIN {0}\r\n")
    assert lc.readline().startswith(b"+")
    lc.send("\r\n")
    r = lc.imap_tagged("l3")
    assert len(r) == 1 and r[0].startswith(b"l3 BAD"), r
    lc.send('l4 LOGIN {%d}\r\n' % len(USER))
    assert lc.readline().startswith(b"+")
    lc.send('%s "%s"\r\n' % (USER, PASSWORD))
    r = lc.imap_tagged("l4")
    assert r[-1].startswith(b"l4 OK"), r
    lc.close()


# ---- 3. long lines after login ----

def test_id_with_thirty_long_parameters(env):
    lc = env.raw(USER)
    params = " ".join('"k%02d" "%s"' % (i, chr(ord("a") + i % 26) * 1024) for i in range(30))
    r = cmd(lc, "i1", "ID (%s)" % params)
    assert r[0].startswith(b"* ID (") and r[-1].startswith(b"i1 OK"), r
    lc.close()


def test_search_with_long_or_chain(env):
    lc = env.raw(USER)
    r = cmd(lc, "s1", "SELECT INBOX")
    assert r[-1].startswith(b"s1 OK"), r
    # 2,000 terms ORed together, written as a balanced prefix tree (OR OR a b OR c d ...)
    # so the search stays shallow; one of them matches message 2.
    terms = ["SUBJECT \"no such subject %04d here\"" % i for i in range(2000)]
    terms[1234] = "SUBJECT \"message 2\""

    def tree(ts):
        if len(ts) == 1:
            return ts[0]
        half = len(ts) // 2
        return "OR %s %s" % (tree(ts[:half]), tree(ts[half:]))

    line = "SEARCH " + tree(terms)
    assert len(line) > 64 * 1024, len(line)
    r = cmd(lc, "s2", line)
    assert len(r) == 2 and r[0] == b"* SEARCH 2\r\n" and r[1].startswith(b"s2 OK"), r
    # The same over 64 KiB as a UID SEARCH with a long UID set.
    uidset = ",".join("%d:%d" % (100000 + 3 * i, 100001 + 3 * i) for i in range(6000))
    assert len(uidset) > 64 * 1024
    r = cmd(lc, "s3", "UID SEARCH UID %s" % uidset)
    assert r[0] == b"* SEARCH\r\n" and r[-1].startswith(b"s3 OK"), r
    lc.close()


def test_two_mib_command_refused_and_session_kept(env):
    lc = env.raw(USER)
    lc.send("b1 ID (\"k\" \"" + "x" * (2 * 1024 * 1024) + "\")\r\n")
    assert lc.readline() == b"* BAD [TOOBIG] Line too long\r\n"
    r = cmd(lc, "b2", "NOOP")
    assert r == [b"b2 OK NOOP completed\r\n"] or (len(r) == 1 and r[0].startswith(b"b2 OK")), r
    # Just over the 1 MiB a command may hold: the same.
    lc.send("b3 ID (\"k\" \"" + "x" * (1024 * 1024 + 10) + "\")\r\n")
    assert lc.readline() == b"* BAD [TOOBIG] Line too long\r\n"
    r = cmd(lc, "b4", "NOOP")
    assert len(r) == 1 and r[0].startswith(b"b4 OK"), r
    lc.close()


def test_long_line_before_login_still_refused(env):
    lc = env.raw()
    lc.send("p1 ID (\"k\" \"" + "x" * (64 * 1024) + "\")\r\n")
    assert lc.readline() == b"* BAD [TOOBIG] Line too long\r\n"
    r = cmd(lc, "p2", "CAPABILITY")
    assert r[-1].startswith(b"p2 OK"), r
    lc.close()
