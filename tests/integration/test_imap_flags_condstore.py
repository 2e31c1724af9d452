"""Keywords are announced before use (RFC 3501 7.2.6, RFC 9051 7.3.5): SELECT's FLAGS names
every keyword in use, and a keyword the session has not named yet (its own STORE, APPEND or
COPY, or another session's change seen in IDLE or NOOP) gets FLAGS and PERMANENTFLAGS again
before the FETCH that shows it.

CONDSTORE enabling commands (RFC 7162 3.1): FETCH MODSEQ, FETCH (CHANGEDSINCE), SEARCH
MODSEQ, STORE (UNCHANGEDSINCE) and SELECT (CONDSTORE) enable CONDSTORE as ENABLE does; the
first with a mailbox selected is answered with "* OK [HIGHESTMODSEQ n]", and from then on
every FETCH a STORE causes carries UID and MODSEQ. SEARCH with a MODSEQ key returns the
highest modseq of the messages it returns (RFC 7162 3.1.5, RFC 4731 3.2)."""
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
        if verb == "EXAMINE":
            # Read-only: no flag can be stored (RFC 3501 6.3.2's example).
            assert perm == [], lines
            continue
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


# ---- CONDSTORE enabling commands ----

def highestmodseq(lines):
    for l in lines:
        m = re.match(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", l)
        if m:
            return int(m.group(1))
    return None


@pytest.mark.parametrize("local,enabler", [
    ("csfetch", "FETCH 1 (FLAGS MODSEQ)"),
    ("cschanged", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1)"),
    ("cssearchkey", "SEARCH MODSEQ 1"),
    ("csunchanged", "STORE 2 (UNCHANGEDSINCE 1000000) +FLAGS (\\Answered)"),
    ("csstatus", "STATUS INBOX (HIGHESTMODSEQ)"),
])
def test_enabling_command_sends_highestmodseq_then_modseq(env, local, enabler):
    user = fill(env, local)
    lc = env.raw(user)
    lines = cmd(lc, "s", "SELECT INBOX")
    hms = highestmodseq(lines)
    assert hms is not None, lines
    # Not enabled yet: a STORE's FETCH has neither MODSEQ nor UID. (This session is the
    # first to select the new messages: they are \Recent here.)
    lines = cmd(lc, "a", "STORE 1 +FLAGS (\\Draft)")
    assert lines[0] == b"* 1 FETCH (FLAGS (\\Seen \\Draft \\Recent))\r\n", lines
    lines = cmd(lc, "e", enabler)
    assert lines[-1].startswith(b"e OK"), lines
    got = highestmodseq(lines)
    assert got is not None and got > hms, lines
    assert index_of(lines, lambda l: l.startswith(b"* OK [HIGHESTMODSEQ")) == 0, lines
    # Only the first enabling command says so.
    lines = cmd(lc, "e2", enabler)
    assert highestmodseq(lines) is None, lines
    lines = cmd(lc, "b", "STORE 1 +FLAGS (\\Flagged)")
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Flagged \\Draft \\Recent\) MODSEQ \(\d+\)\)\r\n$",
                    lines[0]), lines
    lc.sock.close()


def test_select_condstore_and_enable_need_no_extra_line(env):
    user = fill(env, "csselect")
    lc = env.raw(user)
    lines = cmd(lc, "s", "SELECT INBOX (CONDSTORE)")
    assert len([l for l in lines if b"HIGHESTMODSEQ" in l]) == 1, lines
    lines = cmd(lc, "f", "FETCH 1 MODSEQ")
    assert highestmodseq(lines) is None, lines
    lines = cmd(lc, "b", "STORE 1 -FLAGS (\\Seen)")
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) MODSEQ \(\d+\)\)\r\n$", lines[0]), lines
    lc.sock.close()


def test_unsolicited_fetch_carries_modseq_after_fetch_modseq(env):
    user = fill(env, "csunsol")
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX")
    lines = cmd(lc, "f", "FETCH 1 MODSEQ")
    assert highestmodseq(lines) is not None, lines
    lc2 = env.raw(user)
    cmd(lc2, "s", "SELECT INBOX")
    assert cmd(lc2, "t", "STORE 2 +FLAGS (\\Flagged)")[-1].startswith(b"t OK")
    lines = cmd(lc, "n", "NOOP")
    assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen \\Flagged \\Recent\) MODSEQ \(\d+\)\)", l)
               for l in lines), lines
    lc.sock.close()
    lc2.sock.close()


def test_search_modseq_results(env):
    user = fill(env, "cssearch", flags=(r"(\Seen)", r"(\Seen)", r"(\Seen)"))
    lc = env.raw(user)
    cmd(lc, "s", "SELECT INBOX (CONDSTORE)")
    lines = cmd(lc, "f", "FETCH 1:* MODSEQ")
    mods = {}
    for l in lines:
        m = re.match(rb"\* (\d+) FETCH \(MODSEQ \((\d+)\)\)", l)
        if m:
            mods[int(m.group(1))] = int(m.group(2))
    assert len(mods) == 3, lines
    lines = cmd(lc, "t", "STORE 2 +FLAGS (\\Flagged)")
    m2 = int(re.search(rb"MODSEQ \((\d+)\)", lines[0]).group(1))
    assert m2 > max(mods.values()), lines
    lines = cmd(lc, "q", "SEARCH MODSEQ 1")
    assert lines[0] == b"* SEARCH 1 2 3 (MODSEQ %d)\r\n" % m2, lines
    lines = cmd(lc, "q2", "SEARCH MODSEQ %d" % (m2 + 1))
    assert lines[0] == b"* SEARCH\r\n", lines
    lines = cmd(lc, "r", "SEARCH RETURN (ALL) MODSEQ 1")
    assert lines[0] == b'* ESEARCH (TAG "r") ALL 1:3 MODSEQ %d\r\n' % m2, lines
    lines = cmd(lc, "r2", "UID SEARCH RETURN (MIN) MODSEQ 1")
    assert lines[0] == b'* ESEARCH (TAG "r2") UID MIN 1 MODSEQ %d\r\n' % mods[1], lines
    lines = cmd(lc, "r3", "SEARCH RETURN (COUNT) MODSEQ 1")
    assert lines[0] == b'* ESEARCH (TAG "r3") COUNT 3 MODSEQ %d\r\n' % m2, lines
    lc.sock.close()


def test_imaplib_fetch_modseq_then_store(env):
    """The brief's case through imaplib: STORE after FETCH MODSEQ shows MODSEQ."""
    user = fill(env, "csimaplib")
    m = env.imaps(user)
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    typ, data = m.fetch("1", "(MODSEQ)")
    assert typ == "OK" and re.search(rb"MODSEQ \(\d+\)", data[0]), data
    typ, hms = m.response("HIGHESTMODSEQ")
    assert hms and hms[-1] is not None, hms
    typ, data = m.store("1", "+FLAGS", r"(\Answered)")
    assert typ == "OK", data
    assert re.search(rb"UID 1 FLAGS \([^)]*\) MODSEQ \(\d+\)", data[0]), data
    m.logout()
