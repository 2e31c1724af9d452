"""SORT and THREAD (RFC 5256) with SORT=DISPLAY (RFC 5957) on a small mailbox whose every
answer is worked out by hand below: each sort key, REVERSE, ties by sequence number, UID
SORT, search keys with SORT, charset and syntax errors, THREAD REFERENCES and
ORDEREDSUBJECT, and a message delivered by SMTP that SORT then sees."""
import imaplib

import pytest

from imap_env import ImapEnv, cmd


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def msg(frm, to, subject, date, mid, body_len, cc=None, extra=""):
    h = "From: %s\r\n" % frm
    if to:
        h += "To: %s\r\n" % to
    if cc:
        h += "Cc: %s\r\n" % cc
    h += "Subject: %s\r\n" % subject
    if date:
        h += "Date: %s\r\n" % date
    h += "Message-ID: <%s>\r\n%s\r\n" % (mid, extra)
    return (h + "x" * body_len + "\r\n").encode()


# (message, internal date). The sent date is Date: in UTC, else the internal date.
MESSAGES = [
    # 1: sent 01-05 10:00 UTC, arrived 01-01
    (msg('"Aaron Zed" <zed@x.example>', "bob@x.example", "Re: Apple",
         "Fri, 05 Jan 2024 10:00:00 +0000", "m2@t", 300, cc="carol@x.example",
         extra="References: <m1@t>\r\n"), "01-Jan-2024 00:00:00 +0000"),
    # 2: sent 01-03 05:00 UTC (written in -0500), arrived 01-03
    (msg("alice@x.example", "Yvonne <amy@x.example>", "apple",
         "Wed, 03 Jan 2024 00:00:00 -0500", "m1@t", 100), "03-Jan-2024 00:00:00 +0000"),
    # 3: no Date: sent = arrived 01-04 12:00
    (msg("Bob B <bob@x.example>", "zack@x.example", "[list] Banana (fwd)", None, "m3@t", 500),
     "04-Jan-2024 12:00:00 +0000"),
    # 4: sent 01-02, a reply to 3 by In-Reply-To only
    (msg("charlie <Carl@x.example>", "Anna <x@x.example>", "Fwd: Re: banana",
         "Tue, 02 Jan 2024 00:00:00 +0000", "m4@t", 50, cc="aaron@x.example",
         extra="In-Reply-To: <m3@t>\r\n"), "02-Jan-2024 00:00:00 +0000"),
    # 5 and 6: replies to a message that is not in the mailbox
    (msg('"" <dave@x.example>', None, "Cherry", "Sat, 06 Jan 2024 00:00:00 +0000", "m5@t", 400,
         extra="References: <missing@t>\r\n"), "06-Jan-2024 00:00:00 +0000"),
    (msg("eve@x.example", None, "Re: Cherry", "Sun, 07 Jan 2024 00:00:00 +0000", "m6@t", 200,
         extra="References: <missing@t>\r\n"), "05-Jan-2024 00:00:00 +0000"),
]


@pytest.fixture(scope="module")
def box(env):
    user = env.add_user("sorter")
    m = env.imaps(user)
    # A first message, expunged, so that UIDs are sequence numbers + 1.
    assert m.append("INBOX", None, None, msg("a@b", None, "gone", None, "g@t", 1))[0] == "OK"
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    for data, when in MESSAGES:
        typ, r = m.append("INBOX", None, '"%s"' % when, data)
        assert typ == "OK", r
    typ, data = m.select("INBOX")
    assert data == [b"6"], data
    yield m
    m.logout()


def sort(m, crit, *search, charset="UTF-8"):
    typ, data = m.sort(crit, charset, *(search or ("ALL",)))
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_capabilities(box):
    typ, data = box.capability()
    caps = data[0].split()
    for c in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT"):
        assert c in caps, caps


@pytest.mark.parametrize("crit,want", [
    ("(ARRIVAL)", [1, 4, 2, 3, 6, 5]),
    ("(DATE)", [4, 2, 3, 1, 5, 6]),
    ("(REVERSE DATE)", [6, 5, 1, 3, 2, 4]),
    # Base subjects APPLE APPLE BANANA BANANA CHERRY CHERRY: ties by sequence number,
    # and REVERSE does not turn the tie-break round.
    ("(SUBJECT)", [1, 2, 3, 4, 5, 6]),
    ("(REVERSE SUBJECT)", [5, 6, 3, 4, 1, 2]),
    ("(SUBJECT DATE)", [2, 1, 4, 3, 5, 6]),
    ("(SUBJECT REVERSE DATE)", [1, 2, 3, 4, 6, 5]),
    # addr-mailbox of the first From: zed alice bob Carl dave eve
    ("(FROM)", [2, 3, 4, 5, 6, 1]),
    # display names, else addr-spec: "Aaron Zed" alice@x "Bob B" charlie dave@x eve@x
    ("(DISPLAYFROM)", [1, 2, 3, 4, 5, 6]),
    # To mailboxes: bob amy zack x "" "": empty sorts first
    ("(TO)", [5, 6, 2, 1, 4, 3]),
    ("(DISPLAYTO)", [5, 6, 4, 1, 2, 3]),
    ("(CC)", [2, 3, 5, 6, 4, 1]),
    ("(REVERSE CC)", [1, 4, 2, 3, 5, 6]),
])
def test_sort_keys(box, crit, want):
    assert sort(box, crit) == want


def test_sort_size(box):
    sizes = {i + 1: len(d) for i, (d, _) in enumerate(MESSAGES)}
    assert sort(box, "(SIZE)") == sorted(sizes, key=lambda s: (sizes[s], s))
    assert sort(box, "(REVERSE SIZE)") == sorted(sizes, key=lambda s: (-sizes[s], s))


def test_sort_with_search_keys(box):
    assert sort(box, "(REVERSE DATE)", "OR", "SUBJECT", "apple", "SUBJECT", "banana") == \
        [1, 3, 2, 4]
    assert sort(box, "(DATE)", "2:4") == [4, 2, 3]
    assert sort(box, "(DATE)", "BODY", "no-such-text") == []
    assert sort(box, "(ARRIVAL)", "ALL", charset="us-ascii") == [1, 4, 2, 3, 6, 5]


def test_uid_sort(box):
    typ, data = box.uid("SORT", "(DATE)", "UTF-8", "ALL")
    assert typ == "OK", data
    assert [int(x) for x in data[0].split()] == [5, 3, 4, 2, 6, 7]
    typ, data = box.uid("SORT", "(DATE)", "UTF-8", "UID", "3:5")
    assert [int(x) for x in data[0].split()] == [5, 3, 4]


def test_thread_references(box):
    typ, data = box.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK", data
    assert data == [b"(2 1)(3 4)((5)(6))"]
    typ, data = box.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert data == [b"(3 2)(4 5)((6)(7))"]
    # Only the messages searched are threaded: without 2, 1 hangs from nothing.
    typ, data = box.thread("REFERENCES", "UTF-8", "1,3:6")
    assert data == [b"(3 4)(1)((5)(6))"]


def test_thread_orderedsubject(box):
    typ, data = box.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK", data
    assert data == [b"(4 3)(2 1)(5 6)"]


def test_empty_results(env, box):
    lc = env.raw("sorter@corp.example")
    try:
        r = cmd(lc, "a1", "SELECT INBOX")
        assert r[-1].startswith(b"a1 OK"), r
        r = cmd(lc, "a2", "SORT (DATE) UTF-8 SUBJECT nothing-like-this")
        assert r == [b"* SORT\r\n", b"a2 OK SORT completed\r\n"], r
        r = cmd(lc, "a3", "THREAD REFERENCES UTF-8 SUBJECT nothing-like-this")
        assert r == [b"* THREAD\r\n", b"a3 OK THREAD completed\r\n"], r
    finally:
        lc.close()


@pytest.mark.parametrize("line,status", [
    ("SORT (DATE) KOI8-R ALL", b"NO [BADCHARSET (UTF-8 US-ASCII)]"),
    ("THREAD REFERENCES ISO-8859-1 ALL", b"NO [BADCHARSET (UTF-8 US-ASCII)]"),
    ("SORT () UTF-8 ALL", b"BAD"),
    ("SORT (REVERSE) UTF-8 ALL", b"BAD"),
    ("SORT (REVERSE REVERSE DATE) UTF-8 ALL", b"BAD"),
    ("SORT (DATE FOO) UTF-8 ALL", b"BAD"),
    ("SORT DATE UTF-8 ALL", b"BAD"),
    ("SORT (DATE) UTF-8", b"BAD"),
    ("SORT (DATE)", b"BAD"),
    ("SORT (DATE) UTF-8 CHARSET UTF-8 ALL", b"BAD"),
    ("SORT (DATE) UTF-8 RETURN (ALL) ALL", b"BAD"),
    ("SORT (DATE) UTF-8 NOSUCHKEY", b"BAD"),
    ("SORT (DATE) UTF-8 99", b"BAD"),
    ("THREAD FOO UTF-8 ALL", b"BAD"),
    ("THREAD", b"BAD"),
    ("THREAD REFERENCES UTF-8", b"BAD"),
])
def test_errors(env, box, line, status):
    lc = env.raw("sorter@corp.example")
    try:
        r = cmd(lc, "a1", "SELECT INBOX")
        assert r[-1].startswith(b"a1 OK"), r
        r = cmd(lc, "e1", line)
        assert r[-1].startswith(b"e1 " + status), r
        assert not any(x.startswith((b"* SORT", b"* THREAD")) for x in r), r
    finally:
        lc.close()


def test_not_selected(env, box):
    lc = env.raw("sorter@corp.example")
    try:
        r = cmd(lc, "n1", "SORT (DATE) UTF-8 ALL")
        assert r[-1].startswith(b"n1 BAD") or r[-1].startswith(b"n1 NO"), r
    finally:
        lc.close()


def test_smtp_delivery_then_sort(env):
    env.require_smtp_auth()
    user = env.add_user("sortsmtp")
    m = env.imaps(user)
    try:
        assert m.append("INBOX", None, None, msg("b@x.example", None, "Middle", None, "s1@t",
                                                 10))[0] == "OK"
        m.select("INBOX")
        # The session keeps the keys it read, the orders and the last THREAD answer: the
        # next SORT and THREAD must still see new mail.
        assert sort(m, "(SUBJECT)") == [1]
        assert sort(m, "(DATE)") == [1]
        assert m.thread("REFERENCES", "UTF-8", "ALL")[1] == [b"(1)"]
        env.submit(user, user, msg(user, user, "Re: [x] 0 first by subject",
                                   "Mon, 01 Jan 2001 00:00:00 +0000", "s2@t", 10,
                                   extra="In-Reply-To: <s1@t>\r\n"))
        m.noop()
        typ, data = m.search(None, "ALL")
        assert data == [b"1 2"], data
        assert sort(m, "(SUBJECT)") == [2, 1]
        assert sort(m, "(DATE)") == [2, 1]
        typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
        assert data == [b"(1 2)"], data
        # And an expunged message is gone from the answers.
        m.store("2", "+FLAGS", "\\Deleted")
        m.expunge()
        assert sort(m, "(SUBJECT)") == [1]
        typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
        assert data == [b"1"], data
    finally:
        m.logout()


def test_unicode_collation(env):
    """RFC 5256 section 1: strings collate as I18NLEVEL=1 (i;unicode-casemap, RFC 5051):
    "Örsted" sorts as "O", a combining diaeresis, "RSTED": between N and P, not after Z."""
    user = env.add_user("sortuni")
    m = env.imaps(user)
    try:
        for name, subject in [("Zoe", "zebra"), ("=?UTF-8?Q?=C3=96rsted?=", "=?UTF-8?Q?=C3=9Cber?="),
                              ("Nina", "twenty"), ("paul", "Under")]:
            data = msg("%s <x@x.example>" % name, None, subject, None, "%s@t" % subject, 5)
            assert m.append("INBOX", None, None, data)[0] == "OK"
        m.select("INBOX")
        assert sort(m, "(DISPLAYFROM)") == [3, 2, 4, 1]
        # "Über" is "U", a combining diaeresis (0xCC 0x88), "BER": after "twenty", and
        # after "Under" too, since the mark's bytes sort above every letter.
        assert sort(m, "(SUBJECT)") == [3, 4, 2, 1]
    finally:
        m.logout()


def test_repeated_commands_follow_flag_changes(env, box):
    """The session keeps orders and THREAD answers; the hits of flag keys still change."""
    assert sort(box, "(DATE)", "UNSEEN") == [4, 2, 3, 1, 5, 6]
    box.store("2,5", "+FLAGS", "\\Seen")
    try:
        assert sort(box, "(DATE)", "UNSEEN") == [4, 3, 1, 6]
        assert sort(box, "(DATE)", "SEEN") == [2, 5]
        typ, data = box.thread("REFERENCES", "UTF-8", "UNSEEN")
        assert data == [b"(3 4)(1)(6)"], data  # 3 was sent before 1
    finally:
        box.store("2,5", "-FLAGS", "\\Seen")
    typ, data = box.thread("REFERENCES", "UTF-8", "UNSEEN")
    assert data == [b"(2 1)(3 4)((5)(6))"], data
