"""MULTIAPPEND (RFC 3502) is all or nothing: a command whose 3rd message is refused (over
limits.message_size, a bad date-time, bad flags) leaves none of its messages stored, and a
whole batch is stored in message order (APPENDUID in order, one commit for the batch)."""
import re

import pytest

from imap_env import ImapEnv, cmd, read_response, simple_message

MAX = 20000


@pytest.fixture(scope="module")
def env(certs, sealmaild_bin, tmp_path_factory):
    import harness
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                         limits={"message_size": MAX})
    srv.start()
    yield ImapEnv(srv)
    srv.check_stopped()


def exists(lc, mailbox="INBOX"):
    r = b"".join(cmd(lc, "st", "STATUS %s (MESSAGES UIDNEXT)" % mailbox))
    m = re.search(rb"MESSAGES (\d+) UIDNEXT (\d+)", r)
    assert m, r
    return int(m.group(1)), int(m.group(2))


def nonsync(msgs, extra=None):
    """The arguments of a MULTIAPPEND with LITERAL+, extra[i] before message i."""
    parts = []
    for i, m in enumerate(msgs):
        if extra and i in extra:
            parts.append(extra[i])
        parts.append(b"{%d+}\r\n%s" % (len(m), m))
    return b" ".join(parts)


def msgs(n, tag):
    return [simple_message("%s %d" % (tag, i)) for i in range(n)]


def test_batch_is_stored_in_order(env):
    lc = env.raw(env.add_user("mainorder"))
    batch = msgs(5, "order")
    lc.send(b"a1 APPEND INBOX " + nonsync(batch, {1: b"(\\Seen)"}) + b"\r\n")
    r = lc.imap_tagged("a1")
    assert r[-1].startswith(b"a1 OK") and re.search(rb"\[APPENDUID \d+ 1:5\]", r[-1]), r
    assert exists(lc) == (5, 6)
    cmd(lc, "s", "SELECT INBOX")
    for seq in range(1, 6):
        lc.send("f FETCH %d (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n" % seq)
        r = read_response(lc, "f")
        assert b"UID %d " % seq in r and b"Subject: order %d" % (seq - 1) in r, r
        assert (b"\\Seen" in r) == (seq == 2), r
    lc.close()


def test_third_over_size_limit_sync_literal_stores_none(env):
    lc = env.raw(env.add_user("maintoobig"))
    batch = msgs(2, "sync")
    big = simple_message("big", "x" * (MAX + 100))
    lc.send(b"a2 APPEND INBOX {%d}\r\n" % len(batch[0]))
    assert lc.readline().startswith(b"+")
    lc.send(batch[0] + b" {%d}\r\n" % len(batch[1]))
    assert lc.readline().startswith(b"+")
    lc.send(batch[1] + b" {%d}\r\n" % len(big))
    r = lc.readline()  # no "+": the literal is refused before it is sent
    assert r.startswith(b"a2 ") and b"TOOBIG" in r and not r.startswith(b"a2 OK"), r
    assert exists(lc) == (0, 1)
    lc.close()


def test_third_over_size_limit_nonsync_literal_stores_none(env):
    user = env.add_user("mainonsync")
    lc = env.raw(user)
    batch = msgs(5, "nonsync")
    batch[2] = simple_message("big", "y" * (MAX + 100))
    try:
        lc.send(b"a3 APPEND INBOX " + nonsync(batch) + b"\r\n")
        r = lc.imap_tagged("a3")
        assert not r[-1].startswith(b"a3 OK"), r
    except (EOFError, OSError):
        pass  # refused and hung up (RFC 7888 4: the bytes were on their way)
    lc.close()
    lc = env.raw(user)
    assert exists(lc) == (0, 1)
    lc.close()


@pytest.mark.parametrize("bad", [b"(\\Bogus)", b'"31-Foo-2024 10:00:00 +0000"'])
def test_third_with_bad_argument_stores_none(env, bad):
    lc = env.raw(env.add_user("mainbadarg"))
    before = exists(lc)
    lc.send(b"a4 APPEND INBOX " + nonsync(msgs(5, "badarg"), {2: bad}) + b"\r\n")
    r = lc.imap_tagged("a4")
    assert r[-1].startswith(b"a4 BAD"), r
    assert exists(lc) == before
    lc.close()


def test_batch_then_single_appends_keep_counting(env):
    """After a refused batch the next UIDs follow the last stored message: nothing of the
    refused batch took a UID that shows."""
    lc = env.raw(env.add_user("mainafter"))
    lc.send(b"a5 APPEND INBOX " + nonsync(msgs(3, "first")) + b"\r\n")
    r = lc.imap_tagged("a5")
    assert re.search(rb"\[APPENDUID \d+ 1:3\]", r[-1]), r
    lc.send(b"a6 APPEND INBOX " + nonsync(msgs(5, "refused"), {2: b"(\\Bogus)"}) + b"\r\n")
    assert lc.imap_tagged("a6")[-1].startswith(b"a6 BAD")
    r = cmd(lc, "a7", "APPEND INBOX", literal=simple_message("single"))
    assert re.search(rb"\[APPENDUID \d+ 4\]", r[-1]), r
    assert exists(lc) == (4, 5)
    lc.close()
