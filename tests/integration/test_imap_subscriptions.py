"""Subscriptions are names (RFC 3501 6.3.6, 6.3.9; RFC 5258 3.1, 3.4): DELETE keeps the
subscription of the mailbox it removes, LIST (SUBSCRIBED) shows such a name \\NonExistent,
a name may be subscribed before its mailbox exists, and RENAME carries it along."""
import re

import pytest

from imap_env import ImapEnv, cmd


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


def entries(lines, verb=b"LIST"):
    """{name: (attributes, extended data)} of the LIST/LSUB lines."""
    out = {}
    for l in lines:
        m = re.match(rb"\* " + verb + rb" \(([^)]*)\) \"/\" \"?([^\"\r ]+)\"?(.*)\r\n", l)
        if m:
            out[m.group(2)] = (set(m.group(1).split()), m.group(3).strip())
    return out


def test_deleted_mailbox_stays_subscribed_and_nonexistent(env):
    user = env.add_user("subs1")
    lc = env.raw(user)
    ok(cmd(lc, "c", "CREATE Gone"), "c")
    ok(cmd(lc, "s", "SUBSCRIBE Gone"), "s")
    ok(cmd(lc, "d", "DELETE Gone"), "d")
    got = entries(ok(cmd(lc, "l1", 'LIST (SUBSCRIBED) "" "*"'), "l1"))
    assert b"Gone" in got, got
    assert {b"\\NonExistent", b"\\Subscribed"} <= got[b"Gone"][0], got
    # Plain LIST lists mailboxes only.
    got = entries(ok(cmd(lc, "l2", 'LIST "" "*"'), "l2"))
    assert b"Gone" not in got, got
    got = entries(ok(cmd(lc, "l3", 'LIST "" "*" RETURN (SUBSCRIBED)'), "l3"))
    assert b"Gone" not in got and b"\\Subscribed" in got[b"INBOX"][0], got
    # LSUB still names it (RFC 3501 6.3.9: the subscription is not removed).
    got = entries(ok(cmd(lc, "l4", 'LSUB "" "*"'), "l4"), b"LSUB")
    assert b"Gone" in got, got
    # Unsubscribing removes it; unsubscribing again is no error.
    ok(cmd(lc, "u", "UNSUBSCRIBE Gone"), "u")
    ok(cmd(lc, "u2", "UNSUBSCRIBE Gone"), "u2")
    got = entries(ok(cmd(lc, "l5", 'LIST (SUBSCRIBED) "" "*"'), "l5"))
    assert b"Gone" not in got, got
    lc.close()


def test_subscribe_before_create_and_recursivematch(env):
    user = env.add_user("subs2")
    lc = env.raw(user)
    ok(cmd(lc, "s", "SUBSCRIBE Later/Child"), "s")
    got = entries(ok(cmd(lc, "l1", 'LIST (SUBSCRIBED) "" "*"'), "l1"))
    assert {b"\\NonExistent", b"\\Subscribed"} <= got[b"Later/Child"][0], got
    # RECURSIVEMATCH with "%": the parent (no mailbox, not subscribed) carries CHILDINFO.
    got = entries(ok(cmd(lc, "l2", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), "l2"))
    assert b"\\NonExistent" in got[b"Later"][0], got
    assert b"\\Subscribed" not in got[b"Later"][0], got
    assert got[b"Later"][1] == b'("CHILDINFO" ("SUBSCRIBED"))', got
    # LSUB "%" returns the unsubscribed parent with \Noselect (RFC 3501 6.3.9).
    got = entries(ok(cmd(lc, "l3", 'LSUB "" "%"'), "l3"), b"LSUB")
    assert b"\\Noselect" in got[b"Later"][0], got
    # Once the mailbox exists it is an ordinary subscribed mailbox.
    ok(cmd(lc, "c", "CREATE Later/Child"), "c")
    got = entries(ok(cmd(lc, "l4", 'LIST (SUBSCRIBED) "" "*"'), "l4"))
    assert b"\\NonExistent" not in got[b"Later/Child"][0], got
    assert b"\\Subscribed" in got[b"Later/Child"][0], got
    lc.close()


def test_rename_carries_the_subscription(env):
    user = env.add_user("subs3")
    lc = env.raw(user)
    ok(cmd(lc, "c", "CREATE Old"), "c")
    ok(cmd(lc, "s", "SUBSCRIBE Old"), "s")
    ok(cmd(lc, "r", "RENAME Old New"), "r")
    got = entries(ok(cmd(lc, "l", 'LIST (SUBSCRIBED) "" "*"'), "l"))
    assert b"New" in got and b"\\NonExistent" not in got[b"New"][0], got
    assert b"Old" not in got, got
    lc.close()


def test_imaplib_lsub_after_delete(env):
    user = env.add_user("subs4")
    m = env.imaps(user)
    assert m.create("Temp")[0] == "OK"
    assert m.subscribe("Temp")[0] == "OK"
    assert m.delete("Temp")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert typ == "OK" and any(d.endswith(b'"Temp"') or d.endswith(b" Temp") for d in data), data
    m.logout()
