"""Keywords are announced before use (RFC 3501 7.2.6, RFC 9051 7.3.5): SELECT's FLAGS names
every keyword in use, and a keyword the session has not named yet (its own STORE, APPEND or
COPY, or another session's change seen in IDLE or NOOP) gets FLAGS and PERMANENTFLAGS again
before the FETCH that shows it."""
import re

import pytest

from imap_env import ImapEnv, cmd, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def fill(env, local, flags=(r"(\Seen)", r"(\Seen)")):
    user = env.add_user(local)
    m = env.imaps(user)
    for i, f in enumerate(flags):
        typ, data = m.append("INBOX", f, None, simple_message("msg %d" % i))
        assert typ == "OK", data
    m.logout()
    return user


def flags_line(lines):
    """The keywords of the last "* FLAGS (...)" among lines, or None."""
    found = None
    for l in lines:
        m = re.match(rb"\* FLAGS \(([^)]*)\)\r\n$", l)
        if m:
            found = m.group(1).split()
    return found


def permanent(lines):
    found = None
    for l in lines:
        m = re.match(rb"\* OK \[PERMANENTFLAGS \(([^)]*)\)\] ", l)
        if m:
            found = m.group(1).split()
    return found


def index_of(lines, pred):
    for i, l in enumerate(lines):
        if pred(l):
            return i
    return -1


# ---- keywords announced before use ----

def test_select_names_keywords_in_use(env):
    user = fill(env, "kwsel", flags=(r"(\Seen $Forwarded)", r"(Junk $Label1)", r"()"))
    lc = env.raw(user)
    for verb in ("SELECT", "EXAMINE"):
        lines = cmd(lc, "s", "%s INBOX" % verb)
        assert lines[-1].startswith(b"s OK"), lines
        kws = flags_line(lines)
        assert kws is not None, lines
        for k in (b"\\Seen", b"\\Flagged", b"$Forwarded", b"Junk", b"$Label1"):
            assert k in kws, (k, lines)
        perm = permanent(lines)
        assert perm is not None and b"\\*" in perm, lines
        for k in (b"$Forwarded", b"Junk", b"$Label1"):
            assert k in perm, (k, lines)
    lc.sock.close()


def test_own_store_announces_new_keyword_first(env):
    user = fill(env, "kwstore")
    m = env.imaps(user)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    # imaplib keeps the untagged responses: the FLAGS of SELECT first.
    typ, fl = m.response("FLAGS")
    assert fl and b"$keyword1" not in fl[-1], fl
    typ, data = m.store("1", "+FLAGS", r"(\Flagged $keyword1)")
    assert typ == "OK", data
    assert any(b"$keyword1" in d for d in data if d), data
    typ, fl = m.response("FLAGS")
    assert fl and b"$keyword1" in fl[-1], fl
    typ, perm = m.response("OK")
    assert any(b"PERMANENTFLAGS" in p and b"$keyword1" in p and b"\\*" in p
               for p in perm if p), perm
    m.logout()

    # The order on the wire: FLAGS, PERMANENTFLAGS, then the FETCH; a keyword already
    # named is not announced again.
    lc = env.raw(user)
    lines = cmd(lc, "s", "SELECT INBOX")
    assert b"$keyword1" in flags_line(lines), lines
    lines = cmd(lc, "t", "STORE 2 +FLAGS ($keyword2)")
    assert lines[-1].startswith(b"t OK"), lines
    fi = index_of(lines, lambda l: l.startswith(b"* FLAGS ("))
    pi = index_of(lines, lambda l: l.startswith(b"* OK [PERMANENTFLAGS ("))
    xi = index_of(lines, lambda l: l.startswith(b"* 2 FETCH ("))
    assert 0 <= fi < pi < xi, lines
    assert b"$keyword2" in lines[fi] and b"$keyword1" in lines[fi], lines
    assert b"$keyword2" in lines[pi] and b"\\*" in lines[pi], lines
    lines = cmd(lc, "u", "STORE 1 +FLAGS ($keyword2)")
    assert lines[-1].startswith(b"u OK"), lines
    assert not any(l.startswith(b"* FLAGS") for l in lines), lines
    # .SILENT still names the keyword: the next FETCH FLAGS shows it.
    lines = cmd(lc, "v", "STORE 1 +FLAGS.SILENT ($quiet)")
    assert lines[-1].startswith(b"v OK"), lines
    assert b"$quiet" in flags_line(lines), lines
    lc.sock.close()


def test_append_and_copy_into_selected_announce(env):
    user = fill(env, "kwappend", flags=(r"(\Seen)",))
    m = env.imaps(user)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    m.response("FLAGS")
    typ, data = m.append("INBOX", r"($appended)", None, simple_message("new one"))
    assert typ == "OK", data
    typ, fl = m.response("FLAGS")
    assert fl and fl[-1] is not None and b"$appended" in fl[-1], fl
    m.logout()
    # COPY from another mailbox into the selected one.
    m = env.imaps(user)
    m.create("Other")
    typ, data = m.append("Other", r"($copied)", None, simple_message("to copy"))
    assert typ == "OK", data
    m.logout()
    lc = env.raw(user)
    cmd(lc, "s", "SELECT Other")
    cmd(lc, "s2", "SELECT INBOX")
    lc2 = env.raw(user)
    cmd(lc2, "o", "SELECT Other")
    assert cmd(lc2, "c", "COPY 1 INBOX")[-1].startswith(b"c OK")
    lines = cmd(lc, "n", "NOOP")
    fi = index_of(lines, lambda l: l.startswith(b"* FLAGS (") and b"$copied" in l)
    ei = index_of(lines, lambda l: l.endswith(b"EXISTS\r\n"))
    assert fi >= 0 and ei >= 0, lines
    lines = cmd(lc, "f", "FETCH 1:* FLAGS")
    assert any(b"$copied" in l for l in lines), lines
    lc.sock.close()
    lc2.sock.close()


def test_other_session_keyword_seen_in_noop_and_idle(env):
    user = fill(env, "kwother")
    lc = env.raw(user)
    lines = cmd(lc, "s", "SELECT INBOX")
    assert b"$other" not in flags_line(lines), lines
    lc2 = env.raw(user)
    cmd(lc2, "s", "SELECT INBOX")
    assert cmd(lc2, "t", "STORE 1 +FLAGS ($other)")[-1].startswith(b"t OK")
    lines = cmd(lc, "n", "NOOP")
    fi = index_of(lines, lambda l: l.startswith(b"* FLAGS (") and b"$other" in l)
    pi = index_of(lines, lambda l: l.startswith(b"* OK [PERMANENTFLAGS (") and b"$other" in l)
    xi = index_of(lines, lambda l: re.match(rb"\* 1 FETCH \(.*\$other", l) is not None)
    assert 0 <= fi < pi < xi, lines

    # IDLE: the announcement comes with the update, before the FETCH.
    lc.send("i IDLE\r\n")
    assert lc.readline().startswith(b"+"), "no continuation"
    assert cmd(lc2, "t2", "STORE 2 +FLAGS ($idle)")[-1].startswith(b"t2 OK")
    got = []
    while True:
        l = lc.readline()
        got.append(l)
        if l.startswith(b"* 2 FETCH"):
            break
    fi = index_of(got, lambda l: l.startswith(b"* FLAGS (") and b"$idle" in l)
    assert 0 <= fi < len(got) - 1, got
    lc.send("DONE\r\n")
    assert lc.imap_tagged("i")[-1].startswith(b"i OK")
    lc.sock.close()
    lc2.sock.close()
