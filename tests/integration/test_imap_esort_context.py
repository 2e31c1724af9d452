"""ESORT (RFC 5267 section 3) and the PARTIAL return option (section 4.4) for SEARCH and
SORT, with raw lines over TLS. The mailbox is built so that every answer is known: six
messages whose sizes give SORT (SIZE) the order 4,1,2,5,6,3, and UIDs that are sequence
numbers + 1 (a first message was expunged), so sequence numbers and UIDs differ."""
import pytest

from imap_env import ImapEnv, cmd

USER = "esorter"


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def msg(n, body_len):
    return ("From: a@x.example\r\nTo: b@x.example\r\nSubject: s%d\r\n"
            "Message-ID: <e%d@t>\r\n\r\n" % (n, n) + "x" * body_len + "\r\n").encode()


# Body lengths of messages 1..6: SORT (SIZE) is 4(50) 1(100) 2(200) 5(400) 6(500) 3(600).
SIZES = [100, 200, 600, 50, 400, 500]


@pytest.fixture(scope="module")
def addr(env):
    address = env.add_user(USER)
    m = env.imaps(address)
    assert m.append("INBOX", None, None, msg(0, 1))[0] == "OK"
    m.select("INBOX")
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    for i, size in enumerate(SIZES):
        assert m.append("INBOX", None, None, msg(i + 1, size))[0] == "OK"
    m.logout()
    return address


@pytest.fixture
def lc(env, addr):
    c = env.raw(addr)
    r = cmd(c, "s1", "SELECT INBOX")
    assert r[-1].startswith(b"s1 OK"), r
    yield c
    c.close()


def untagged(r, word=b"ESEARCH"):
    return [line.rstrip(b"\r\n").decode() for line in r if line.startswith(b"* " + word)]


def ok(lc, tag, line):
    r = cmd(lc, tag, line)
    assert r[-1].startswith(tag.encode() + b" OK"), r
    return r


def test_capability_esort_and_context(lc):
    r = ok(lc, "c1", "CAPABILITY")
    caps = untagged(r, b"CAPABILITY")[0].split()
    assert "ESORT" in caps
    # Live results (test_imap_context.py) are kept too.
    assert "CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps


def test_esort_min_max_count_all_in_sort_order(lc):
    r = ok(lc, "e1", "SORT RETURN (MIN MAX COUNT ALL) (SIZE) UTF-8 ALL")
    # MIN and MAX are the first and last in sort order; ALL keeps that order and makes
    # ranges only of ascending runs.
    assert untagged(r) == ['* ESEARCH (TAG "e1") MIN 4 MAX 3 COUNT 6 ALL 4,1:2,5:6,3']
    assert not untagged(r, b"SORT")


def test_uid_esort(lc):
    r = ok(lc, "e2", "UID SORT RETURN (ALL MIN MAX) (SIZE) UTF-8 ALL")
    assert untagged(r) == ['* ESEARCH (TAG "e2") UID MIN 5 MAX 4 ALL 5,2:3,6:7,4']


def test_esort_reverse_is_never_compressed(lc):
    r = ok(lc, "e3", "SORT RETURN (ALL) (REVERSE SIZE) UTF-8 ALL")
    # 3,6,5,2,1,4: the descending runs 6,5 and 2,1 stay written out (a range is a set,
    # "5:6" would lose the order).
    assert untagged(r) == ['* ESEARCH (TAG "e3") ALL 3,6,5,2,1,4']


def test_esort_empty_return_list_means_all(lc):
    r = ok(lc, "e4", "SORT RETURN () (SIZE) UTF-8 LARGER 300")
    assert untagged(r) == ['* ESEARCH (TAG "e4") ALL 5:6,3']


def test_esort_no_hits(lc):
    r = ok(lc, "e5", "SORT RETURN (MIN MAX COUNT ALL) (SIZE) UTF-8 SUBJECT nothing-like-it")
    assert untagged(r) == ['* ESEARCH (TAG "e5") COUNT 0']
    r = ok(lc, "e6", "UID SORT RETURN (MIN) (SIZE) UTF-8 SUBJECT nothing-like-it")
    assert untagged(r) == ['* ESEARCH (TAG "e6") UID']


def test_plain_sort_unchanged(lc):
    r = ok(lc, "e7", "SORT (SIZE) UTF-8 ALL")
    assert untagged(r, b"SORT") == ["* SORT 4 1 2 5 6 3"]
    assert not untagged(r)


def test_esort_save_keeps_the_set(lc):
    r = ok(lc, "v1", "SORT RETURN (SAVE) (REVERSE SIZE) UTF-8 LARGER 300")
    assert not untagged(r) and not untagged(r, b"SORT")
    r = ok(lc, "v2", "UID FETCH $ (UID)")
    assert [line for line in r if line.startswith(b"* ")] == [
        b"* 3 FETCH (UID 4)\r\n", b"* 5 FETCH (UID 6)\r\n", b"* 6 FETCH (UID 7)\r\n"], r
    r = ok(lc, "v3", "SORT RETURN (SAVE COUNT) (SIZE) UTF-8 SMALLER 200")
    assert untagged(r) == ['* ESEARCH (TAG "v3") COUNT 2']
    r = ok(lc, "v5", "SEARCH $")  # RFC 5182: $ is a search key too
    assert untagged(r, b"SEARCH") == ["* SEARCH 1 4"]
    r = ok(lc, "v6", "UID SORT RETURN (ALL) (REVERSE SIZE) UTF-8 NOT $")
    assert untagged(r) == ['* ESEARCH (TAG "v6") UID ALL 4,7,6,3']
    r = ok(lc, "v4", "FETCH $ (UID)")
    assert [line for line in r if line.startswith(b"* ")] == [
        b"* 1 FETCH (UID 2)\r\n", b"* 4 FETCH (UID 5)\r\n"], r


def test_sort_partial(lc):
    r = ok(lc, "p1", "SORT RETURN (PARTIAL 2:4) (SIZE) UTF-8 ALL")
    assert untagged(r) == ['* ESEARCH (TAG "p1") PARTIAL (2:4 1:2,5)']
    r = ok(lc, "p2", "UID SORT RETURN (COUNT PARTIAL 5:100) (SIZE) UTF-8 ALL")
    assert untagged(r) == ['* ESEARCH (TAG "p2") UID COUNT 6 PARTIAL (5:100 7,4)']
    r = ok(lc, "p3", "SORT RETURN (PARTIAL 7:9) (SIZE) UTF-8 ALL")
    assert untagged(r) == ['* ESEARCH (TAG "p3") PARTIAL (7:9 NIL)']
    r = ok(lc, "p4", "SORT RETURN (PARTIAL 1:1) (REVERSE SIZE) UTF-8 ALL")
    assert untagged(r) == ['* ESEARCH (TAG "p4") PARTIAL (1:1 3)']


def test_search_partial(lc):
    r = ok(lc, "q1", "SEARCH RETURN (PARTIAL 2:3) ALL")
    assert untagged(r) == ['* ESEARCH (TAG "q1") PARTIAL (2:3 2:3)']
    r = ok(lc, "q2", "UID SEARCH RETURN (COUNT PARTIAL 3:2) ALL")
    # A range is a range either way round.
    assert untagged(r) == ['* ESEARCH (TAG "q2") UID COUNT 6 PARTIAL (2:3 3:4)']
    r = ok(lc, "q3", "SEARCH RETURN (PARTIAL 1:10) SUBJECT nothing-like-it")
    assert untagged(r) == ['* ESEARCH (TAG "q3") PARTIAL (1:10 NIL)']
    r = ok(lc, "q4", "UID SEARCH RETURN (MIN PARTIAL 6:4294967295) ALL")
    assert untagged(r) == ['* ESEARCH (TAG "q4") UID MIN 2 PARTIAL (6:4294967295 7)']


@pytest.mark.parametrize("line", [
    "SORT RETURN (ALL PARTIAL 1:2) (SIZE) UTF-8 ALL",
    "SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
    "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
    "SORT RETURN (PARTIAL 0:5) (SIZE) UTF-8 ALL",
    "SORT RETURN (PARTIAL -1:-5) (SIZE) UTF-8 ALL",
    "SEARCH RETURN (PARTIAL 4294967296:1) ALL",
    "SEARCH RETURN (PARTIAL) ALL",
    "SEARCH RETURN (PARTIAL 1:2:3) ALL",
    "SORT RETURN (BOGUS) (SIZE) UTF-8 ALL",
    "SORT RETURN ALL (SIZE) UTF-8 ALL",
    "SORT RETURN",
    "SORT RETURN (ALL)",
    "SORT RETURN (ALL) (SIZE)",
    "SORT RETURN (ALL) (SIZE) UTF-8 RETURN (ALL) ALL",
    "THREAD RETURN (ALL) REFERENCES UTF-8 ALL",
])
def test_bad_syntax(lc, line):
    r = cmd(lc, "b1", line)
    assert r[-1].startswith(b"b1 BAD"), r
    assert not untagged(r)


def test_esort_badcharset(lc):
    r = cmd(lc, "b2", "SORT RETURN (ALL) (SIZE) KOI8-R ALL")
    assert r[-1].startswith(b"b2 NO [BADCHARSET"), r


def test_esort_follows_other_session_and_smtp(env, addr, lc):
    """A second session flags and expunges, SMTP delivers: the next ESORT sees it."""
    other = env.raw(addr)
    try:
        ok(other, "o1", "SELECT INBOX")
        ok(other, "o2", "STORE 2,5 +FLAGS (\\Flagged)")
        ok(lc, "n1", "NOOP")
        r = ok(lc, "f1", "SORT RETURN (ALL COUNT) (REVERSE SIZE) UTF-8 FLAGGED")
        assert untagged(r) == ['* ESEARCH (TAG "f1") COUNT 2 ALL 5,2']
        env.require_smtp_auth()
        env.submit(addr, addr, msg(7, 2000))  # the largest
        ok(other, "o3", "STORE 2 -FLAGS (\\Flagged)")
        ok(other, "o4", "UID STORE 8 +FLAGS (\\Flagged)")  # the delivered message
        r = ok(lc, "n2", "NOOP")
        assert any(b"* 7 EXISTS" in line for line in r), r
        r = ok(lc, "f2", "UID SORT RETURN (ALL MIN MAX) (SIZE) UTF-8 FLAGGED")
        assert untagged(r) == ['* ESEARCH (TAG "f2") UID MIN 6 MAX 8 ALL 6,8']
        ok(other, "o5", "STORE 1:* -FLAGS (\\Flagged)")
        ok(other, "o6", "STORE 1 +FLAGS (\\Deleted)")
        ok(other, "o7", "EXPUNGE")
        ok(lc, "n3", "NOOP")
        r = ok(lc, "f3", "SORT RETURN (ALL) (SIZE) UTF-8 ALL")
        # 4,1,2,5,6,3,7 without 1, each numbered down by one
        assert untagged(r) == ['* ESEARCH (TAG "f3") ALL 3,1,4:5,2,6']
    finally:
        other.close()
