"""FETCH of every item kind over imaplib and raw transcripts, against the real sealmaild."""
import email
import imaplib
import os
import re

import pytest

from imap_env import (MULTIPART, PASSWORD, ImapEnv, cmd, fetch_literal, read_response,
                      simple_message)

USER = "fetcher@corp.example"


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("fetcher")
    m = e.imaps(USER)
    m.create("Fetch")
    m.append("Fetch", r"(\Flagged $Work)", imaplib.Time2Internaldate(1700000000),
             MULTIPART)
    m.append("Fetch", None, None, simple_message("second", "body of two\r\n"))
    m.logout()
    return e


@pytest.fixture
def m(env):
    c = env.imaps(USER)
    c.select("Fetch")
    yield c
    try:
        c.logout()
    except Exception:
        pass


def one(m, item, uid="1"):
    typ, data = m.uid("FETCH", uid, item)
    assert typ == "OK", data
    return data


def test_flags_internaldate_size_uid(m):
    data = one(m, "(FLAGS INTERNALDATE RFC822.SIZE UID)")
    line = data[0]
    assert b"\\Flagged" in line and b"$Work" in line, line
    assert b'INTERNALDATE "14-Nov-2023 22:13:20 +0000"' in line, line
    assert b"RFC822.SIZE %d" % len(MULTIPART) in line, line
    assert b"UID 1" in line


def test_body_full_is_byte_exact(m):
    data = one(m, "(BODY.PEEK[])")
    assert data[0][1] == MULTIPART
    data = one(m, "(RFC822)")
    assert data[0][1] == MULTIPART


def test_peek_does_not_set_seen_but_body_does(m):
    m.uid("STORE", "2", "-FLAGS", r"(\Seen)")
    one(m, "(BODY.PEEK[TEXT])", "2")
    assert b"\\Seen" not in one(m, "(FLAGS)", "2")[0]
    d = one(m, "(BODY[TEXT])", "2")
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in d)
    assert b"\\Seen" in flat, d
    assert b"\\Seen" in one(m, "(FLAGS)", "2")[0]


def test_header_and_text(m):
    head, text = MULTIPART.split(b"\r\n\r\n", 1)
    assert one(m, "(BODY.PEEK[HEADER])")[0][1] == head + b"\r\n\r\n"
    assert one(m, "(BODY.PEEK[TEXT])")[0][1] == text
    assert one(m, "(RFC822.HEADER)")[0][1] == head + b"\r\n\r\n"
    assert one(m, "(RFC822.TEXT)")[0][1] == text


def test_header_fields_and_not(m):
    got = one(m, "(BODY.PEEK[HEADER.FIELDS (Subject X-Custom)])")[0][1]
    assert got == (b"Subject: =?utf-8?q?Quartalsbericht_f=C3=BCr_Q3?=\r\n"
                   b"X-Custom: zebra giraffe\r\n\r\n"), got
    got = one(m, "(BODY.PEEK[HEADER.FIELDS.NOT (Subject X-Custom Content-Type)])")[0][1]
    assert b"Subject:" not in got and b"X-Custom" not in got and b"From:" in got, got


def test_parts_mime_and_nested(m):
    assert one(m, "(BODY.PEEK[1])")[0][1] == \
        "Hallo Welt, der Bericht ist angehängt. pineapple".encode() + b""
    mime = one(m, "(BODY.PEEK[2.MIME])")[0][1]
    assert mime.startswith(b"Content-Type: application/pdf") and mime.endswith(b"\r\n\r\n"), mime
    assert one(m, "(BODY.PEEK[2])")[0][1].startswith(b"JVBERi0xLjQK")
    inner_head = one(m, "(BODY.PEEK[3.HEADER])")[0][1]
    assert inner_head.startswith(b"From: inner@example.com\r\n"), inner_head
    assert one(m, "(BODY.PEEK[3.1])")[0][1] == b"inner plain text"
    assert one(m, "(BODY.PEEK[3.2])")[0][1] == b"<p>inner html</p>"
    assert one(m, "(BODY.PEEK[3.2.MIME])")[0][1].startswith(b"Content-Type: text/html")
    whole = one(m, "(BODY.PEEK[3])")[0][1]
    assert whole.startswith(b"From: inner@example.com") and b"--inner--" in whole


def test_partial(m):
    d = one(m, "(BODY.PEEK[]<0.10>)")
    assert d[0][1] == MULTIPART[:10]
    assert b"BODY[]<0>" in d[0][0], d
    d = one(m, "(BODY.PEEK[]<100.50>)")
    assert d[0][1] == MULTIPART[100:150]
    d = one(m, "(BODY.PEEK[TEXT]<5.20>)")
    text = MULTIPART.split(b"\r\n\r\n", 1)[1]
    assert d[0][1] == text[5:25]
    d = one(m, "(BODY.PEEK[]<%d.100>)" % (len(MULTIPART) - 5))
    assert d[0][1] == MULTIPART[-5:]


def test_envelope(m):
    line = one(m, "(ENVELOPE)")[0]
    assert b'"Tue, 03 Dec 2024 10:00:00 +0100"' in line, line
    assert b'"=?utf-8?q?Quartalsbericht_f=C3=BCr_Q3?="' in line, line
    assert b'(("=?utf-8?q?J=C3=BCrgen?=" NIL "juergen" "example.org"))' in line, line
    assert b'(("Alice" NIL "alice" "corp.example")(NIL NIL "bob" "corp.example"))' in line
    assert b'"<prev@example.org>" "<mp-1@example.org>"' in line, line


def test_bodystructure(m):
    line = one(m, "(BODYSTRUCTURE)")[0].decode()
    low = line.lower()
    assert '("text" "plain" ("charset" "utf-8") nil nil "8bit" 49 1 nil nil nil nil)' in low, line
    assert '("application" "pdf" ("name" "q3.pdf") nil nil "base64"' in low, line
    assert '("attachment" ("filename" "q3.pdf"))' in low, line
    assert '"message" "rfc822"' in low, line
    assert '"alternative" ("boundary" "inner")' in low, line
    assert '"mixed" ("boundary" "outer")' in low, line
    assert line.count("(") == line.count(")"), line
    body = one(m, "(BODY)")[0]
    assert b"BODY (" in body and b"boundary" not in body.lower(), body


def test_all_fast_full_macros(m):
    for macro in ("ALL", "FAST", "FULL"):
        typ, data = m.uid("FETCH", "1:*", macro)
        assert typ == "OK", data


def test_sequence_fetch_and_star(env):
    lc = env.raw(USER)
    cmd(lc, "s1", "EXAMINE Fetch")
    out = read_response(lc, "s2") if lc.send("s2 FETCH 1:* (UID RFC822.SIZE)\r\n") is None \
        else None
    assert out.count(b" FETCH (") == 2, out
    lc.send("s3 FETCH * (UID)\r\n")
    out = read_response(lc, "s3")
    assert b"* 2 FETCH (UID 2)" in out, out
    lc.send("s4 FETCH 3 (UID)\r\n")
    out = read_response(lc, "s4")
    assert b"s4 BAD" in out or b"s4 NO" in out, out
    lc.close()


def test_examine_does_not_set_seen(env):
    lc = env.raw(USER)
    cmd(lc, "e0", "SELECT Fetch")
    cmd(lc, "e1", "UID STORE 2 -FLAGS (\\Seen)")
    cmd(lc, "e2", "EXAMINE Fetch")
    lc.send("e3 UID FETCH 2 (BODY[])\r\n")
    out = read_response(lc, "e3")
    assert b"e3 OK" in out and b"\\Seen" not in out, out
    r = cmd(lc, "e4", "UID FETCH 2 FLAGS")
    assert b"\\Seen" not in b"".join(r), r
    lc.close()


def test_large_append_and_fetch_byte_exact(env):
    big = simple_message("big", "") + os.urandom(2 * 1024 * 1024 // 2).hex().encode()[:2 * 1024 * 1024]
    m = env.imaps(USER)
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "OK", data
    uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    m.select("INBOX")
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[] RFC822.SIZE)")
    assert typ == "OK"
    assert data[0][1] == big
    assert b"RFC822.SIZE %d" % len(big) in data[0][0] + data[1], data[1]
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[]<1048570.20>)")
    assert data[0][1] == big[1048570:1048590]
    m.logout()


def test_message_from_smtp_is_byte_identical(env):
    env.add_user("smtpin")
    env.require_smtp_auth()
    msg = simple_message("via smtp", "line one\r\n.dot line\r\n", to="smtpin@corp.example")
    env.submit("smtpin@corp.example", "smtpin@corp.example", msg)
    m = env.imaps("smtpin@corp.example")
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    got = data[0][1]
    # The server adds Return-Path: and its Received: field in front; the rest is the
    # submitted message.
    assert got.startswith(b"Return-Path: <smtpin@corp.example>\r\nReceived: "), got[:100]
    assert got.endswith(msg), got
    m.logout()


def test_fetch_many_bodies_in_one_command(env):
    """Whole-message sections of many messages go out in batches: every literal exact."""
    user = env.add_user("batcher")
    m = env.imaps(user)
    msgs = [simple_message("b%d" % i, "x" * (i * 997 % 50000) + "\r\n") for i in range(60)]
    for msg in msgs:
        m.append("INBOX", None, None, msg)
    m.select("INBOX")
    m.store("7", "+FLAGS", r"(\Deleted)")
    m.expunge()
    del msgs[6]
    typ, data = m.fetch("1:*", "(UID BODY.PEEK[])")
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == msgs
    typ, data = m.fetch("1:*", "(BODY.PEEK[]<3.40> FLAGS)")
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == [x[3:43] for x in msgs]
    typ, data = m.fetch("2", "(RFC822)")
    assert data[0][1] == msgs[1]
    typ, data = m.fetch("2", "(FLAGS)")
    assert b"\\Seen" in data[0], data
    m.logout()


def test_header_items_of_a_large_message(env):
    """Header-only items read the header, not the whole message."""
    user = env.add_user("headeronly")
    big = simple_message("large one", "") + b"z" * (3 * 1024 * 1024)
    m = env.imaps(user)
    m.append("INBOX", None, None, big)
    m.select("INBOX")
    typ, data = m.fetch("1", "(ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)")
    assert typ == "OK"
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert b'"large one"' in flat and b"Subject: large one\r\n\r\n" in flat, flat[:300]
    assert b"RFC822.SIZE %d" % len(big) in flat
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
    assert data[0][1] == big.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    m.logout()


@pytest.mark.parametrize("header,expected", [
    (b'"Real Name" <user@example.com>', b'(("Real Name" NIL "user" "example.com"))'),
    (b"Real Name <user@example.com>", b'(("Real Name" NIL "user" "example.com"))'),
    (b"user@example.com (Real Name)", b'(("Real Name" NIL "user" "example.com"))'),
    (b"user@example.com", b'((NIL NIL "user" "example.com"))'),
])
def test_envelope_keeps_display_names_in_every_form(env, header, expected):
    """RFC 5322 allows a quoted name, a bare phrase and a trailing comment; ENVELOPE's
    address structure carries each as the personal name (RFC 3501 7.4.2)."""
    c = env.imaps(USER)
    try:
        c.create("Names")
        msg = (b"From: " + header + b"\r\nTo: fetcher@corp.example\r\nSubject: names\r\n"
               b"\r\nbody\r\n")
        typ, data = c.append("Names", None, None, msg)
        assert typ == "OK", data
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        c.select("Names")
        typ, data = c.uid("FETCH", uid, "(ENVELOPE)")
        assert typ == "OK", data
        env_line = data[0]
        # The From address list is the third element after date and subject.
        assert expected in env_line, env_line
    finally:
        c.logout()
