"""CATENATE (RFC 4469) with IMAP URLs (RFC 5092): APPEND builds a message from TEXT
literals and the user's own messages or their parts (SECTION, PARTIAL), also in a
MULTIAPPEND; a URL that names nothing of the user's is NO [BADURL url]; a message over the
size limit is NO [TOOBIG]."""
import re

import pytest

import harness
from imap_env import ImapEnv, cmd, fetch_literal, read_response

SOURCE = (
    b"From: a@example.org\r\n"
    b"To: b@example.org\r\n"
    b"Subject: the original\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n'
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"first part text\r\n"
    b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQF\r\n"
    b"--B--\r\n"
)


@pytest.fixture(scope="module")
def env(certs, sealmaild_bin, tmp_path_factory):
    # A server of its own with a small message size limit for the TOOBIG case.
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                         limits={"message_size": 4000})
    srv.start()
    yield ImapEnv(srv)
    srv.check_stopped()


@pytest.fixture(scope="module")
def session(env):
    user = env.add_user("cat")
    lc = env.raw(user)
    r = cmd(lc, "a", "APPEND INBOX", literal=SOURCE)
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", r[-1])
    assert m, r
    assert cmd(lc, "c", "CREATE Built")[-1].startswith(b"c OK")
    return user, lc, int(m.group(1)), int(m.group(2))


def catenate(lc, tag, parts, mailbox="Built"):
    """APPEND mailbox CATENATE (...) with synchronising literals for TEXT parts; returns
    the tagged line."""
    head = "%s APPEND %s CATENATE (" % (tag, mailbox)
    out = head.encode()
    first = True
    for kind, value in parts:
        out += b"" if first else b" "
        first = False
        if kind == "URL":
            out += b'URL "' + value.encode() + b'"'
        else:
            out += b"TEXT {%d}\r\n" % len(value)
            lc.send(out)
            cont = lc.readline()
            assert cont.startswith(b"+"), cont
            out = value
    lc.send(out + b")\r\n")
    return lc.imap_tagged(tag)[-1]


def body_of(lc, tag, mailbox, uid):
    assert cmd(lc, tag + "s", "EXAMINE " + mailbox)[-1].startswith(tag.encode() + b"s OK")
    lc.send("%s UID FETCH %d BODY.PEEK[]\r\n" % (tag, uid))
    return fetch_literal(read_response(lc, tag))


def appended_uid(line):
    m = re.search(rb"\[APPENDUID \d+ (\d+)\]", line)
    assert m, line
    return int(m.group(1))


def test_capability(session):
    _, lc, _, _ = session
    assert b" CATENATE" in b"".join(cmd(lc, "cap", "CAPABILITY"))


def test_text_and_part_url(session):
    user, lc, uv, uid = session
    head = b"From: me@example.org\r\nSubject: forwarded\r\n\r\n"
    line = catenate(lc, "t1", [("TEXT", head),
                               ("URL", "/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=1" % (uv, uid)),
                               ("TEXT", b"\r\n-- \r\nsig\r\n")])
    assert line.startswith(b"t1 OK"), line
    got = body_of(lc, "f1", "Built", appended_uid(line))
    assert got == head + b"first part text" + b"\r\n-- \r\nsig\r\n", got


def test_absolute_url_whole_message_and_partial(session):
    user, lc, uv, uid = session
    line = catenate(lc, "t2", [("URL", "imap://%s@localhost/INBOX/;UID=%d" % (
        user.replace("@", "%40"), uid))])
    assert line.startswith(b"t2 OK"), line
    assert body_of(lc, "f2", "Built", appended_uid(line)) == SOURCE
    line = catenate(lc, "t3", [("URL", "/INBOX/;UID=%d/;PARTIAL=6.15" % uid)])
    assert line.startswith(b"t3 OK"), line
    assert body_of(lc, "f3", "Built", appended_uid(line)) == SOURCE[6:21]
    line = catenate(lc, "t4", [("URL", "/INBOX/;UID=%d/;SECTION=HEADER.FIELDS%%20(SUBJECT)" % uid)])
    assert line.startswith(b"t4 OK"), line
    assert body_of(lc, "f4", "Built", appended_uid(line)) == b"Subject: the original\r\n\r\n"


@pytest.mark.parametrize("url", [
    "/INBOX;UIDVALIDITY=1/;UID={uid}",          # stale UIDVALIDITY
    "/INBOX/;UID=999",                           # no such message
    "/Nowhere/;UID={uid}",                       # no such mailbox
    "/INBOX/;UID={uid}/;SECTION=7",              # no such part
    "/INBOX",                                    # no message at all
    "imap://someone.else%40example.org@localhost/INBOX/;UID={uid}",  # another user
    "/INBOX/;UID={uid};URLAUTH=anonymous:internal:0123",              # URLAUTH
    "/INBOX/;UID=x",
])
def test_bad_urls(session, url):
    _, lc, _, uid = session
    url = url.replace("{uid}", str(uid))
    line = catenate(lc, "b", [("TEXT", b"Subject: x\r\n\r\n"), ("URL", url)])
    assert line.startswith(b"b NO [BADURL "), line
    # Nothing was stored.
    r = b"".join(cmd(lc, "bs", "STATUS Built (MESSAGES)"))
    assert re.search(rb"MESSAGES \d+", r), r


def test_nothing_stored_after_a_bad_url(env):
    user = env.add_user("cat2")
    lc = env.raw(user)
    assert cmd(lc, "c", "CREATE Built")[-1].startswith(b"c OK")
    line = catenate(lc, "b", [("TEXT", b"Subject: x\r\n\r\nhi\r\n"), ("URL", "/INBOX/;UID=5")])
    assert line.startswith(b"b NO [BADURL /INBOX/;UID=5]"), line
    r = b"".join(cmd(lc, "s", "STATUS Built (MESSAGES)"))
    assert b"MESSAGES 0" in r, r
    lc.close()


def test_multiappend_mixes_catenate_and_literals(session):
    _, lc, uv, uid = session
    lit = b"Subject: plain\r\n\r\nplain body\r\n"
    text = b"Subject: cat\r\n\r\n"
    lc.send(b"m APPEND Built CATENATE (TEXT {%d+}\r\n%s URL \"/INBOX/;UID=%d/;SECTION=1\")"
            b" (\\Seen) {%d+}\r\n%s\r\n" % (len(text), text, uid, len(lit), lit))
    line = lc.imap_tagged("m")[-1]
    m = re.search(rb"\[APPENDUID \d+ (\d+):(\d+)\]", line)
    assert m, line
    first, last = int(m.group(1)), int(m.group(2))
    assert last == first + 1
    assert body_of(lc, "mf1", "Built", first) == text + b"first part text"
    assert body_of(lc, "mf2", "Built", last) == lit


def test_too_big_and_syntax(session):
    _, lc, _, uid = session
    url = "/INBOX/;UID=%d" % uid
    line = catenate(lc, "z", [("URL", url)] * 20)  # 20 copies of 278 bytes: over the 4000-byte limit
    assert line.startswith(b"z NO [TOOBIG]"), line
    for bad in ["APPEND Built CATENATE ()", 'APPEND Built CATENATE (TEXT "quoted")',
                "APPEND Built CATENATE (URL)", "APPEND Built CATENATE (FOO \"/INBOX/;UID=1\")"]:
        r = cmd(lc, "y", bad)
        assert r[-1].startswith(b"y BAD"), (bad, r)
