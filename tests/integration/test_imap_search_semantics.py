"""SEARCH finds what RFC 3501 6.4.4 (RFC 9051 6.4.4) says it finds:
- BODY and TEXT are case-insensitive substring matches, inside words too; TEXT covers the
  header as well as the body, BODY only the body; both see the text as delivery decoded it
  (base64, quoted-printable, charsets);
- SENTBEFORE/SENTON/SENTSINCE take the day of Date: as written, in its own zone, time and
  zone ignored; BEFORE/ON/SINCE the internal date's day in UTC;
- HEADER <field> "" matches every message that has the field; SUBJECT NIL looks for the
  three letters (NIL is an astring there)."""
import base64
import quopri

import pytest

from imap_env import ImapEnv, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def b64_message(text, charset="utf-8"):
    body = base64.encodebytes(text.encode(charset)).replace(b"\n", b"\r\n")
    return (b"From: b64@example.org\r\nTo: alice@corp.example\r\nSubject: encoded\r\n"
            b"Date: Wed, 04 Dec 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=" + charset.encode() + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + body +
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(b"attachmentsecretxyz").replace(b"\n", b"\r\n") +
            b"--b--\r\n")


def qp_message(text, charset):
    body = quopri.encodestring(text.encode(charset)).replace(b"\n", b"\r\n")
    return (b"From: qp@example.org\r\nTo: alice@corp.example\r\nSubject: qp\r\n"
            b"Date: Wed, 04 Dec 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body + b"\r\n")


MESSAGES = [
    # 1: the string inside a longer word of the body
    simple_message("plain", "prefixqwertyuiopsuffix and more\r\n"),
    # 2: the string only in a header field other than Subject/From/To
    simple_message("hdr", "nothing here\r\n", extra="X-Ref: abcQWERTYUIOPdef\r\n"),
    # 3: the string in a base64 text part (and a base64 attachment that is not text)
    b64_message("base64 says zxcvbnmasdf inside"),
    # 4: quoted-printable in ISO-8859-1, decoded to UTF-8 at delivery
    qp_message("Gr\u00fc\u00dfe aus M\u00fcnchen, lkjhgfdsapoiu", "iso-8859-1"),
    # 5: the string only in the Subject
    simple_message("Re: NIL results for poiuytrewq", "body text\r\n"),
    # 6: a phrase with spaces and an unusual character mix
    simple_message("phrase", "100% of \"quoted\" words_here\r\n"),
]


@pytest.fixture(scope="module")
def box(env):
    user = env.add_user("searchsem")
    m = env.imaps(user)
    for msg in MESSAGES:
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [str(len(MESSAGES)).encode()], data
    yield m
    m.logout()


def search(m, *criteria):
    typ, data = m.search(None, *criteria)
    assert typ == "OK", (criteria, data)
    return [int(x) for x in data[0].split()]


@pytest.mark.parametrize("criteria,want", [
    (("TEXT", "qwertyuiop"), [1, 2]),
    (("TEXT", "QWERTYUIOP"), [1, 2]),
    (("BODY", "qwertyuiop"), [1]),
    (("TEXT", "ertyu"), [1, 2]),
    (("BODY", "ZXCVBNMASDF"), [3]),
    (("TEXT", "zxcvbnm"), [3]),
    (("BODY", "attachmentsecret"), []),
    (("BODY", "\"gr\u00fc\u00dfe aus\"".encode()), [4]),
    (("BODY", "\"M\u00dcNCHEN\"".encode()), [4]),
    (("BODY", "fdsapo"), [4]),
    (("TEXT", "poiuytrewq"), [5]),
    (("BODY", "poiuytrewq"), []),
    (("TEXT", '"X-Ref: abc"'), [2]),
    (("BODY", "\"100% of\""), [6]),
    (("BODY", "\"\\\"quoted\\\" words_\""), [6]),
    (("BODY", "\"of \\\"q\""), [6]),
    (("BODY", "%"), [6]),
    (("BODY", "_h"), [6]),
    (("BODY", "q"), [1, 6]),
    (("TEXT", "\"\""), [1, 2, 3, 4, 5, 6]),
    (("BODY", "\"no such string\""), []),
    (("NOT", "TEXT", "qwertyuiop"), [3, 4, 5, 6]),
    (("OR", "BODY", "zxcvbnm", "TEXT", "X-Ref"), [2, 3]),
])
def test_body_and_text_are_substring_matches(box, criteria, want):
    assert search(box, *criteria) == want


def test_uid_search_text(box):
    typ, data = box.uid("SEARCH", "TEXT", "tyuio")
    assert typ == "OK", data
    assert len(data[0].split()) == 2, data


def test_text_in_a_literal(box):
    # imaplib sends a string with 8-bit bytes as a literal when asked to.
    box.literal = "m\u00fcnchen".encode()
    typ, data = box.search("UTF-8", "BODY")
    assert typ == "OK", data
    assert data[0].split() == [b"4"], data


@pytest.fixture(scope="module")
def dates(env):
    user = env.add_user("searchdates")
    m = env.imaps(user)
    sent = [
        # 1: late on 2 Jan in its zone, 3 Jan in UTC
        "Tue, 2 Jan 2024 23:30:00 -0800",
        # 2: early on 3 Jan in its zone, 2 Jan in UTC
        "Wed, 3 Jan 2024 00:30:00 +1400",
        # 3: no day-of-week, two-digit year, no seconds
        "4 Jan 24 08:00 +0000",
    ]
    internal = ['"02-Jan-2024 23:30:00 -0800"', '"03-Jan-2024 00:30:00 +1400"',
                '"04-Jan-2024 08:00:00 +0000"']
    for d, idate in zip(sent, internal):
        typ, data = m.append("INBOX", None, idate, simple_message("dated", date=d))
        assert typ == "OK", data
    typ, data = m.append("INBOX", None, None,
                         b"From: a@example.org\r\nSubject: undated\r\n\r\nno date\r\n")
    assert typ == "OK", data
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    yield m
    m.logout()


@pytest.mark.parametrize("criteria,want", [
    (("SENTON", "2-Jan-2024"), [1]),
    (("SENTON", "3-Jan-2024"), [2]),
    (("SENTON", "4-Jan-2024"), [3]),
    (("SENTBEFORE", "3-Jan-2024"), [1]),
    (("SENTSINCE", "3-Jan-2024"), [2, 3]),
    (("SENTSINCE", "1-Jan-1970"), [1, 2, 3]),
    (("NOT", "SENTBEFORE", "3-Jan-2024"), [2, 3, 4]),
    # The internal date's day is counted in UTC.
    (("ON", "3-Jan-2024"), [1]),
    (("ON", "2-Jan-2024"), [2]),
    (("BEFORE", "3-Jan-2024"), [2]),
    (("SINCE", "3-Jan-2024"), [1, 3, 4]),
])
def test_date_keys(dates, criteria, want):
    assert search(dates, *criteria) == want


@pytest.fixture(scope="module")
def headers(env):
    user = env.add_user("searchhdr")
    m = env.imaps(user)
    msgs = [
        simple_message("has tag", extra="X-Tag: \r\n"),
        simple_message("two tags", extra="X-Tag: first\r\nX-Tag: second\r\n"),
        simple_message("Re: NIL in the subject"),
        b"From: a@example.org\r\nTo: alice@corp.example\r\n\r\nno subject\r\n",
    ]
    for msg in msgs:
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    yield m
    m.logout()


@pytest.mark.parametrize("criteria,want", [
    (("HEADER", "X-Tag", '""'), [1, 2]),
    (("HEADER", "x-tag", '""'), [1, 2]),
    (("HEADER", "Subject", '""'), [1, 2, 3]),
    (("HEADER", "X-Missing", '""'), []),
    (("HEADER", "X-Tag", "second"), [2]),
    (("NOT", "HEADER", "X-Tag", '""'), [3, 4]),
    (("SUBJECT", "NIL"), [3]),
    (("SUBJECT", "nil"), [3]),
    (("SUBJECT", '"NIL"'), [3]),
    (("NOT", "SUBJECT", "NIL"), [1, 2, 4]),
    (("HEADER", "Subject", "NIL"), [3]),
])
def test_header_keys(headers, criteria, want):
    assert search(headers, *criteria) == want
