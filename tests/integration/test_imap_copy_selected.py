"""COPY and MOVE into the selected mailbox (RFC 3501 6.4.7 and 5.2, RFC 6851, RFC 4315):
the copies get new UIDs and are announced with EXISTS before the tagged reply; MOVE expunges
the originals; MOVE's untagged COPYUID carries text after the code (resp-text)."""
import re

import pytest

from imap_env import ImapEnv, cmd, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def fill(env, local, n=2):
    user = env.add_user(local)
    m = env.imaps(user)
    for i in range(n):
        typ, data = m.append("INBOX", r"(\Seen)", None, simple_message("msg %d" % i))
        assert typ == "OK", data
    return user, m


def uid_list(m):
    typ, data = m.uid("SEARCH", "ALL")
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_copy_into_selected_mailbox_imaplib(env):
    user, m = fill(env, "copysel")
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"], data
    m.response("EXISTS")  # drops what SELECT left
    typ, data = m.copy("1:*", "INBOX")
    assert typ == "OK", data
    assert re.match(rb"\[COPYUID \d+ 1:2 (?:3:4|3,4)\] ", data[0]), data
    # The new size came before the tagged reply (imaplib keeps the untagged EXISTS).
    typ, exists = m.response("EXISTS")
    assert exists == [b"4"], exists
    assert uid_list(m) == [1, 2, 3, 4]
    typ, data = m.fetch("3:4", "(FLAGS)")
    assert typ == "OK" and all(b"\\Seen" in d for d in data), data
    # UID COPY of one of the copies: one more.
    typ, data = m.uid("COPY", "3", "INBOX")
    assert typ == "OK", data
    typ, exists = m.response("EXISTS")
    assert exists == [b"5"], exists
    m.logout()


def test_copy_into_selected_raw_order(env):
    user, m = fill(env, "copyraw")
    m.logout()
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX")
    lines = cmd(lc, "c", "COPY 1:2 INBOX")
    assert lines[-1].startswith(b"c OK [COPYUID "), lines
    assert b"* 4 EXISTS\r\n" in lines, lines
    assert not any(b"EXPUNGE" in l for l in lines), lines
    lc.sock.close()


def test_move_into_selected_mailbox(env):
    user, m = fill(env, "movesel")
    m.logout()
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX")
    lines = cmd(lc, "m", "UID MOVE 1:2 INBOX")
    assert lines[-1].startswith(b"m OK"), lines
    # RFC 6851 3.3 / resp-text: the code, then text.
    assert re.match(rb"\* OK \[COPYUID \d+ 1:2 (?:3:4|3,4)\] \S.*\r\n$", lines[0]), lines
    assert lines[1:3] == [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"], lines
    assert b"* 2 EXISTS\r\n" in lines[3:], lines
    lines = cmd(lc, "u", "UID SEARCH ALL")
    assert lines[0] == b"* SEARCH 3 4\r\n", lines
    lines = cmd(lc, "f", "FETCH 1:* (UID FLAGS)")
    assert len([l for l in lines if l.startswith(b"* ")]) == 2, lines
    assert all(b"\\Seen" in l for l in lines if l.startswith(b"* ")), lines
    lc.sock.close()


def test_move_elsewhere_untagged_ok_has_text(env):
    user, m = fill(env, "moveaway", 1)
    m.logout()
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX")
    lines = cmd(lc, "m", "MOVE 1 Archive")
    assert lines[-1].startswith(b"m OK"), lines
    assert re.match(rb"\* OK \[COPYUID \d+ 1 1\] \S.*\r\n$", lines[0]), lines
    assert b"* 1 EXPUNGE\r\n" in lines, lines
    assert not any(b"EXISTS" in l for l in lines), lines
    lc.sock.close()
