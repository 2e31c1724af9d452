"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and LSUB (RFC 3501 6.3.9) against
sealmaild: selection and return options, CHILDINFO, several patterns, refusals.

The hierarchy every test sees (besides INBOX and the special-use mailboxes, all subscribed):
Fruit is no mailbox, Fruit/Apple is unsubscribed and Fruit/Banana subscribed; Tofu is
subscribed; Vegetable exists unsubscribed with a subscribed Vegetable/Carrot.
"""
import re

import pytest

from imap_env import ImapEnv, cmd

USER = "lister-ext"


@pytest.fixture(scope="module")
def env(server):
    env = ImapEnv(server)
    m = env.imaps(env.add_user(USER))
    for name in ("Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable", "Vegetable/Carrot"):
        typ, data = m.create(name)
        assert typ == "OK", data
    for name in ("Fruit/Apple", "Vegetable"):
        typ, data = m.unsubscribe(name)
        assert typ == "OK", data
    m.logout()
    return env


@pytest.fixture
def lc(env):
    c = env.raw(env.add_user(USER))
    yield c
    c.sock.close()


def entries(lines, kind=b"LIST"):
    """{name: (attributes, rest of the line after the name)} of the untagged kind lines."""
    out = {}
    for line in lines:
        m = re.match(rb'\* ' + kind + rb' \(([^)]*)\) "/" "?([^" ]*)"?(.*)\r\n$', line)
        if m:
            assert m.group(2) not in out, lines
            out[m.group(2)] = (m.group(1).split(), m.group(3).strip())
    return out


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


def test_capability_names_both_extensions(env):
    m = env.imaps(env.add_user(USER))
    typ, data = m.capability()  # after login: the greeting's list is the pre-auth one
    caps = data[0].split()
    assert typ == "OK" and b"LIST-EXTENDED" in caps and b"LIST-STATUS" in caps, data
    assert b"SPECIAL-USE" in caps and b"CHILDREN" in caps, data
    m.logout()


def test_subscribed_selection_returns_subscribed_only(lc):
    got = entries(ok(cmd(lc, "s1", 'LIST (SUBSCRIBED) "" "*"'), "s1"))
    assert b"Fruit/Banana" in got and b"Tofu" in got and b"Vegetable/Carrot" in got, got
    assert b"Fruit/Apple" not in got and b"Vegetable" not in got and b"Fruit" not in got, got
    for name, (attrs, rest) in got.items():
        assert b"\\Subscribed" in attrs, (name, attrs)
        assert rest == b"", (name, rest)  # no CHILDINFO without RECURSIVEMATCH
    assert b"\\Sent" in got[b"Sent"][0]


def test_recursivematch_returns_parents_with_childinfo(lc):
    got = entries(ok(cmd(lc, "r1", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), "r1"))
    # Fruit is no mailbox: \NonExistent, and its subscribed child is named in CHILDINFO.
    assert b"\\NonExistent" in got[b"Fruit"][0], got
    assert b"\\Subscribed" not in got[b"Fruit"][0], got
    assert got[b"Fruit"][1] == b'("CHILDINFO" ("SUBSCRIBED"))', got
    # Vegetable exists but is not subscribed: returned only for its child.
    assert b"\\Subscribed" not in got[b"Vegetable"][0], got
    assert b"\\NonExistent" not in got[b"Vegetable"][0], got
    assert got[b"Vegetable"][1] == b'("CHILDINFO" ("SUBSCRIBED"))', got
    assert b"\\Subscribed" in got[b"Tofu"][0] and got[b"Tofu"][1] == b"", got
    assert b"Fruit/Banana" not in got, got
    # With "*" every subscribed child matches itself: no parent is added for it.
    got = entries(ok(cmd(lc, "r2", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"'), "r2"))
    assert b"Fruit" not in got and b"Vegetable" not in got, got
    assert all(rest == b"" for _, rest in got.values()), got


def test_return_subscribed_and_children(lc):
    got = entries(ok(cmd(lc, "c1", 'LIST "" "%" RETURN (SUBSCRIBED CHILDREN)'), "c1"))
    assert b"\\Subscribed" in got[b"Tofu"][0] and b"\\HasNoChildren" in got[b"Tofu"][0], got
    assert b"\\Subscribed" not in got[b"Vegetable"][0], got
    assert b"\\HasChildren" in got[b"Vegetable"][0], got
    assert b"\\Noselect" in got[b"Fruit"][0] and b"\\HasChildren" in got[b"Fruit"][0], got
    # REMOTE selects nothing more here (there are no remote mailboxes).
    remote = entries(ok(cmd(lc, "c2", 'LIST (REMOTE) "" "%"'), "c2"))
    assert set(remote) == set(got), (remote, got)
    # An empty selection list is plain LIST.
    empty = entries(ok(cmd(lc, "c3", 'LIST () "" "%"'), "c3"))
    assert set(empty) == set(got), (empty, got)


def test_several_patterns(env):
    m = env.imaps(env.add_user(USER))
    typ, data = m.list('""', '("INBOX" "Fruit/*")')
    assert typ == "OK", data
    names = sorted(re.search(rb'"/" "?([^"]*)"?$', l).group(1) for l in data)
    assert names == [b"Fruit/Apple", b"Fruit/Banana", b"INBOX"], data
    typ, data = m.list('""', '("Tofu" "T*" "Sen%")')
    names = sorted(re.search(rb'"/" "?([^"]*)"?$', l).group(1) for l in data)
    assert names == [b"Sent", b"Tofu", b"Trash"], data  # each name once
    m.logout()


def test_list_status_follows_each_selectable_mailbox(lc):
    lines = ok(cmd(lc, "t1", 'LIST "" "%" RETURN (STATUS (MESSAGES UIDNEXT))'), "t1")
    untagged = lines[:-1]
    listed = 0
    for i, line in enumerate(untagged):
        m = re.match(rb'\* LIST \(([^)]*)\) "/" "?([^" ]*)"?\r\n$', line)
        if not m:
            assert line.startswith(b"* STATUS "), lines
            continue
        listed += 1
        nxt = untagged[i + 1] if i + 1 < len(untagged) else b""
        if b"\\Noselect" in m.group(1) or b"\\NonExistent" in m.group(1):
            assert not nxt.startswith(b"* STATUS"), lines
        else:
            st = re.match(rb'\* STATUS "?([^" ]*)"? \(MESSAGES \d+ UIDNEXT \d+\)\r\n$', nxt)
            assert st and st.group(1) == m.group(2), (line, nxt)
    assert listed >= 8, lines
    # With SUBSCRIBED: STATUS only for what is listed and selectable.
    lines = ok(cmd(lc, "t2", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (STATUS (MESSAGES))'),
               "t2")
    statuses = [l for l in lines if l.startswith(b"* STATUS")]
    assert not any(b'"Fruit"' in l or b" Fruit " in l for l in statuses), lines
    assert not any(b"Vegetable" in l for l in statuses), lines
    assert any(b"Tofu" in l for l in statuses), lines


@pytest.mark.parametrize("line", [
    'LIST (BOGUS) "" "*"',
    'LIST (RECURSIVEMATCH) "" "*"',
    'LIST (REMOTE RECURSIVEMATCH) "" "*"',
    'LIST "" "*" RETURN (BOGUS)',
    'LIST "" "*" RETURN (STATUS)',
    'LIST "" "*" RETURN (STATUS (NOPE))',
    'LIST "" "*" EXTRA',
    'LIST "" ()',
])
def test_unknown_or_incomplete_options_are_bad(lc, line):
    lines = cmd(lc, "b1", line)
    assert lines[-1].startswith(b"b1 BAD"), lines
    assert not any(l.startswith(b"* LIST") for l in lines), lines


def test_special_use_kept(lc):
    got = entries(ok(cmd(lc, "u1", 'LIST "" "*" RETURN (SPECIAL-USE)'), "u1"))
    for name, attr in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash"),
                       (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")):
        assert attr in got[name][0], got
    only = entries(ok(cmd(lc, "u2", 'LIST (SPECIAL-USE) "" "*"'), "u2"))
    assert set(only) == {b"Sent", b"Drafts", b"Trash", b"Junk", b"Archive"}, only


def test_lsub_returns_unsubscribed_parent_noselect(env):
    m = env.imaps(env.add_user(USER))
    typ, data = m.lsub('""', "%")
    assert typ == "OK", data
    got = {}
    for l in data:
        mm = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', l)
        assert mm, data
        got[mm.group(2)] = mm.group(1).split()
    assert b"\\Noselect" in got[b"Fruit"], got
    assert b"\\Noselect" in got[b"Vegetable"], got
    assert b"\\Noselect" not in got[b"Tofu"] and b"\\Noselect" not in got[b"INBOX"], got
    typ, data = m.lsub('""', "*")
    names = {re.search(rb'"/" "?([^"]*)"?$', l).group(1) for l in data}
    assert {b"Fruit/Banana", b"Vegetable/Carrot", b"Tofu"} <= names, data
    assert not names & {b"Fruit", b"Vegetable", b"Fruit/Apple"}, data
    m.logout()
