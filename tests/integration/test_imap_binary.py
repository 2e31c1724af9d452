"""BINARY (RFC 3516): FETCH BINARY[part], BINARY.PEEK, BINARY.SIZE with base64 and
quoted-printable undone, <partial> counted in decoded bytes, literal8 only when the data
holds NUL, NO [UNKNOWN-CTE] for an encoding the server cannot undo, and APPEND of a
literal8."""
import base64
import re

import pytest

from imap_env import ImapEnv, cmd, read_response

BLOB = bytes(range(256)) * 3  # every octet value, NUL included

MESSAGE = (
    b"From: a@example.org\r\n"
    b"To: b@example.org\r\n"
    b"Subject: binary parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9 au lait, a long line that is wrapped with a soft=\r\n"
    b" break =3D fine\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b"\r\n".join(base64.encodebytes(BLOB).split(b"\n")).rstrip(b"\r\n") + b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"plain 8bit \xc3\xa9\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"end\r\n"
    b"--XX--\r\n"
)

# A part's body ends before the CRLF that opens the next boundary (RFC 2046 5.1.1).
QP_TEXT = "café au lait, a long line that is wrapped with a soft break = fine".encode()


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


@pytest.fixture(scope="module")
def lc(env):
    user = env.add_user("binary")
    lc = env.raw(user)
    r = cmd(lc, "a", "APPEND INBOX", literal=MESSAGE)
    assert r[-1].startswith(b"a OK"), r
    r = cmd(lc, "s", "SELECT INBOX")
    assert r[-1].startswith(b"s OK"), r
    yield lc
    lc.close()


def item(resp, name):
    """The bytes of FETCH item name (a literal, literal8, quoted string or NIL) and whether
    it came as a literal8."""
    i = resp.find(name.encode() + b" ")
    assert i >= 0, resp[:400]
    rest = resp[i + len(name) + 1:]
    m = re.match(rb"(~?)\{(\d+)\}\r\n", rest)
    if m:
        n = int(m.group(2))
        return rest[m.end():m.end() + n], m.group(1) == b"~"
    if rest.startswith(b'""'):
        return b"", False
    if rest.startswith(b"NIL"):
        return None, False
    raise AssertionError(rest[:200])


def fetch(lc, tag, items):
    lc.send("%s FETCH 1 (%s)\r\n" % (tag, items))
    out = read_response(lc, tag)
    return out


def test_capability(env, lc):
    r = b"".join(cmd(lc, "c", "CAPABILITY"))
    assert b" BINARY" in r, r


def test_base64_part_with_nul_comes_as_literal8(lc):
    out = fetch(lc, "f1", "BINARY.PEEK[2]")
    assert out.rstrip().endswith(b"f1 OK FETCH completed"), out[-200:]
    data, lit8 = item(out, "BINARY[2]")
    assert data == BLOB and lit8


def test_quoted_printable_part_and_seen(lc):
    out = fetch(lc, "f2", "BINARY.PEEK[1] FLAGS")
    data, lit8 = item(out, "BINARY[1]")
    assert data == QP_TEXT and not lit8
    assert b"\\Seen" not in out
    # BINARY without PEEK sets \Seen, like BODY[].
    out = fetch(lc, "f3", "BINARY[3]")
    data, lit8 = item(out, "BINARY[3]")
    assert data == b"plain 8bit \xc3\xa9" and not lit8
    assert b"\\Seen" in out, out


def test_size_and_partial_count_decoded_bytes(lc):
    out = fetch(lc, "f4", "BINARY.SIZE[2] BINARY.SIZE[1]")
    assert re.search(rb"BINARY\.SIZE\[2\] %d\b" % len(BLOB), out), out
    assert re.search(rb"BINARY\.SIZE\[1\] %d\b" % len(QP_TEXT), out), out
    out = fetch(lc, "f5", "BINARY.PEEK[2]<254.4>")
    data, lit8 = item(out, "BINARY[2]<254>")
    assert data == BLOB[254:258] and lit8
    out = fetch(lc, "f6", "BINARY.PEEK[1]<0.4>")
    data, _ = item(out, "BINARY[1]<0>")
    assert data == QP_TEXT[:4]
    out = fetch(lc, "f7", "BINARY.PEEK[1]<100000.5>")
    data, _ = item(out, "BINARY[1]<100000>")
    assert data == b""


def test_whole_message_and_missing_part(lc):
    out = fetch(lc, "f8", "BINARY.PEEK[]")
    data, _ = item(out, "BINARY[]")
    assert data == MESSAGE
    out = fetch(lc, "f9", "BINARY.PEEK[9]")
    data, _ = item(out, "BINARY[9]")
    assert data is None
    assert out.rstrip().endswith(b"f9 OK FETCH completed"), out


def test_unknown_encoding_is_no_unknown_cte(lc):
    out = fetch(lc, "fa", "BINARY.PEEK[4]")
    assert re.search(rb"fa NO \[UNKNOWN-CTE\]", out), out
    assert b"* 1 FETCH" not in out, out


@pytest.mark.parametrize("items", ["BINARY[HEADER]", "BINARY[1.MIME]", "BINARY.SIZE[1]<0.5>",
                                   "BINARY[1.TEXT]", "BINARY.PEEK[x]"])
def test_section_binary_is_part_numbers_only(lc, items):
    out = fetch(lc, "fb", items)
    assert out.startswith(b"fb BAD"), out


def test_append_literal8_with_nul(env):
    user = env.add_user("binary8")
    lc = env.raw(user)
    msg = b"Subject: raw\r\nContent-Transfer-Encoding: binary\r\n\r\nbefore\0after\r\n"
    lc.send("a APPEND INBOX ~{%d}\r\n" % len(msg))
    assert lc.readline().startswith(b"+ ")
    lc.send(msg + b"\r\n")
    r = lc.imap_tagged("a")
    assert r[-1].startswith(b"a OK"), r
    # The non-synchronising form too (LITERAL+).
    lc.send(b"b APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    r = lc.imap_tagged("b")
    assert r[-1].startswith(b"b OK"), r
    assert cmd(lc, "s", "SELECT INBOX")[-1].startswith(b"s OK")
    out = fetch(lc, "f", "BINARY.PEEK[1]")
    data, lit8 = item(out, "BINARY[1]")
    assert data == b"before\0after\r\n" and lit8
    lc.close()


def test_literal8_outside_append_is_refused_before_continuation(env):
    user = env.add_user("binary9")
    lc = env.raw(user)
    assert cmd(lc, "s", "SELECT INBOX")[-1].startswith(b"s OK")
    lc.send("x SEARCH TEXT ~{3}\r\n")
    line = lc.readline()
    assert line.startswith(b"x BAD"), line
    # The session goes on.
    assert cmd(lc, "n", "NOOP")[-1].startswith(b"n OK")
    lc.close()
