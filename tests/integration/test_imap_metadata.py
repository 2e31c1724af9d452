"""IMAP METADATA (RFC 5464) against the real sealmaild over TLS: server and mailbox
annotations, /private and /shared, MAXSIZE and DEPTH, the size and count limits, entry name
rules, annotations following RENAME and going with DELETE, a second session, exact bytes
through literals and literal8, and NOTIFY's metadata events. imaplib where it can say it
(its _simple_command with the commands added), raw lines everywhere else.

The module's server runs with limits.metadata_size 1024 and limits.metadata_entries 10,
the smallest RFC 5464 4.1 allows, so the limits are reached with little traffic."""
import imaplib
import re
import time

import pytest

import harness
from harness import DOMAIN
from imap_env import ImapEnv, cmd, read_response

SIZE_MAX = 1024
ENTRIES_MAX = 10
WAIT = 30

imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


@pytest.fixture(scope="module")
def env(certs, sealmaild_bin, tmp_path_factory):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("meta")),
                         limits={"metadata_size": SIZE_MAX, "metadata_entries": ENTRIES_MAX})
    srv.start()
    yield ImapEnv(srv)
    srv.check_stopped()


def tagged(lines, tag):
    return lines[-1] if isinstance(lines, list) else lines.split(b"\r\n")[-2]


def ok(lines, tag):
    last = tagged(lines, tag)
    assert last.startswith(tag.encode() + b" OK"), lines
    return b"".join(lines) if isinstance(lines, list) else lines


def get(lc, tag, args):
    """GETMETADATA args; the whole response, literals read whole."""
    lc.send("%s GETMETADATA %s\r\n" % (tag, args))
    return read_response(lc, tag)


def metadata_of(resp):
    """The entry-value pairs of the METADATA responses in resp, as {name: bytes or None}."""
    out = {}
    for m in re.finditer(rb"\* METADATA (?:\"[^\"]*\"|\S+) \(", resp):
        p = m.end()
        while resp[p:p + 1] != b")":
            nm = re.match(rb"\s*(\"[^\"]*\"|[^\s()]+) ", resp[p:])
            name = nm.group(1).strip(b'"').decode()
            p += nm.end()
            if resp[p:p + 3] == b"NIL":
                out[name] = None
                p += 3
            elif resp[p:p + 1] == b"\"":
                q = re.match(rb"\"((?:[^\"\\]|\\.)*)\"", resp[p:])
                out[name] = re.sub(rb"\\(.)", rb"\1", q.group(1))
                p += q.end()
            else:
                lm = re.match(rb"~?\{(\d+)\}\r\n", resp[p:])
                n = int(lm.group(1))
                p += lm.end()
                out[name] = resp[p:p + n]
                p += n
            if resp[p:p + 1] == b" ":
                p += 1
    return out


def lit(lc, tag, prefix, data, suffix=b"", eight=False):
    """Sends "tag prefix{N}" (or ~{N}), then data and suffix after the "+"; the lines up to
    the tagged reply (or the refusal instead of the "+")."""
    lc.send(("%s %s%s{%d}\r\n" % (tag, prefix, "~" if eight else "", len(data))).encode())
    cont = lc.readline()
    if not cont.startswith(b"+"):
        return [cont]
    lc.send(data + suffix + b"\r\n")
    return lc.imap_tagged(tag)


def set_ok(lc, tag, mailbox, pairs):
    r = cmd(lc, tag, "SETMETADATA %s (%s)" % (mailbox, pairs))
    return ok(r, tag)


def test_capability_after_login_only(env):
    user = env.add_user("mcap")
    lc = env.raw()
    r = b"".join(cmd(lc, "c", "CAPABILITY"))
    assert b" METADATA" not in r, r
    assert cmd(lc, "g", 'GETMETADATA "" /shared/comment')[-1].startswith(b"g BAD")
    lc.close()
    lc = env.raw(user)
    r = ok(cmd(lc, "c", "CAPABILITY"), "c")
    assert re.search(rb" METADATA( |\r)", r) and re.search(rb" METADATA-SERVER( |\r)", r), r
    lc.close()


def test_server_annotations_with_imaplib(env):
    user = env.add_user("mserver")
    m = env.imaps(user)
    try:
        typ, data = m._simple_command("SETMETADATA", '""',
                                      '(/shared/comment "Server note" /private/comment "mine")')
        assert typ == "OK", data
        typ, data = m._simple_command("GETMETADATA", '""',
                                      "(/shared/comment /private/comment /shared/admin)")
        assert typ == "OK", data
        typ, meta = m._untagged_response(typ, data, "METADATA")
        text = b" ".join(x if isinstance(x, bytes) else b"".join(x) for x in meta)
        assert b'/private/comment "mine"' in text, text
        assert b'/shared/comment "Server note"' in text, text
        assert ('/shared/admin "mailto:postmaster@%s"' % DOMAIN).encode() in text, text
        # Removing with NIL, then the name reads NIL.
        typ, data = m._simple_command("SETMETADATA", '""', "(/shared/comment NIL)")
        assert typ == "OK", data
        typ, data = m._simple_command("GETMETADATA", '""', "/shared/comment")
        typ, meta = m._untagged_response(typ, data, "METADATA")
        assert meta == [b'"" (/shared/comment NIL)'], meta
    finally:
        m.logout()


def test_admin_and_specialuse_are_read_only(env):
    user = env.add_user("mro")
    lc = env.raw(user)
    r = cmd(lc, "s", 'SETMETADATA "" (/shared/admin "mailto:me@example.org")')
    assert r[-1].startswith(b"s NO [NOPERM]"), r
    r = get(lc, "g", "Sent /private/specialuse")
    ok(r, "g")
    assert metadata_of(r) == {"/private/specialuse": b"\\Sent"}, r
    assert metadata_of(get(lc, "g2", "INBOX /private/specialuse")) == {
        "/private/specialuse": None}
    r = cmd(lc, "s2", 'SETMETADATA Sent (/private/specialuse "\\\\Trash")')
    assert r[-1].startswith(b"s2 NO [NOPERM]"), r
    # On a mailbox /shared/admin is an ordinary entry.
    set_ok(lc, "s3", "INBOX", '/shared/admin "x"')
    lc.close()


def test_mailbox_private_and_shared_are_distinct(env):
    user = env.add_user("mmbox")
    lc = env.raw(user)
    set_ok(lc, "s", "INBOX", '/private/comment "private one" /shared/comment "shared one"')
    r = get(lc, "g", "INBOX (/private/comment /shared/comment)")
    ok(r, "g")
    assert re.search(rb'^\* METADATA "INBOX" \(/private/comment "private one" '
                     rb'/shared/comment "shared one"\)\r\n', r, re.M), r
    # Case-insensitive names (RFC 5464 3.2), INBOX in any case.
    assert metadata_of(get(lc, "g2", "inbox /PRIVATE/Comment")) == {
        "/private/comment": b"private one"}
    # The server's entries are apart from INBOX's.
    assert metadata_of(get(lc, "g3", '"" /private/comment')) == {"/private/comment": None}
    r = cmd(lc, "n", 'GETMETADATA "No such" /private/comment')
    assert r[-1].startswith(b"n NO [NONEXISTENT]"), r
    r = cmd(lc, "n2", 'SETMETADATA "No such" (/private/comment "x")')
    assert r[-1].startswith(b"n2 NO [NONEXISTENT]"), r
    lc.close()


def test_maxsize_and_longentries(env):
    user = env.add_user("mmaxsize")
    lc = env.raw(user)
    big = "b" * 600
    set_ok(lc, "s", "INBOX", '/private/big "%s" /private/small "tiny"' % big)
    r = get(lc, "g", "(MAXSIZE 100) INBOX (/private/big /private/small)")
    assert r.rstrip().endswith(b"g OK [METADATA LONGENTRIES 600] GETMETADATA completed"), r
    assert metadata_of(r) == {"/private/small": b"tiny"}, r
    # Nothing small enough: no METADATA response, still the code.
    r = get(lc, "g2", "(MAXSIZE 5) INBOX /private/big")
    assert b"* METADATA" not in r and b"[METADATA LONGENTRIES 600]" in r, r
    r = get(lc, "g3", "(MAXSIZE 600) INBOX /private/big")
    assert b"LONGENTRIES" not in r and len(metadata_of(r)["/private/big"]) == 600, r
    lc.close()


def test_depth_and_option_order(env):
    user = env.add_user("mdepth")
    lc = env.raw(user)
    set_ok(lc, "s", '""', '/private/a "1" /private/a/b "2" /private/a/b/c "3" /private/ab "4"')
    assert set(metadata_of(get(lc, "g0", '"" /private/a'))) == {"/private/a"}
    assert set(metadata_of(get(lc, "d0", '(DEPTH 0) "" /private/a'))) == {"/private/a"}
    assert set(metadata_of(get(lc, "d1", '(DEPTH 1) "" /private/a'))) == {
        "/private/a", "/private/a/b"}
    assert set(metadata_of(get(lc, "di", '(DEPTH infinity) "" /private/a'))) == {
        "/private/a", "/private/a/b", "/private/a/b/c"}
    # Both options, either order; a scope as the start of a tree.
    for opts in ("(DEPTH infinity MAXSIZE 1)", "(MAXSIZE 1 DEPTH infinity)"):
        r = get(lc, "o", '%s "" /private' % opts)
        assert set(metadata_of(r)) == {"/private/a", "/private/a/b", "/private/a/b/c",
                                       "/private/ab"}, r
    r = get(lc, "o2", '(MAXSIZE 0 DEPTH 1) "" /private/a')
    assert b"[METADATA LONGENTRIES 1]" in r and b"* METADATA" not in r, r
    for bad in ("(DEPTH 2)", "(DEPTH)", "(MAXSIZE)", "(MAXSIZE -1)", "(MAXSIZE 4294967296)",
                "(MAXSIZE 1 MAXSIZE 2)", "(DEPTH 0 DEPTH 1)", "()", "(FOO 1)", "(DEPTH (1))"):
        r = cmd(lc, "b", 'GETMETADATA %s "" /private/a' % bad)
        assert r[-1].startswith(b"b BAD"), (bad, r)
    lc.close()


def test_toomany_is_all_or_none(env):
    user = env.add_user("mtoomany")
    lc = env.raw(user)
    pairs = " ".join('/private/e%d "%d"' % (i, i) for i in range(ENTRIES_MAX - 1))
    set_ok(lc, "s", '""', pairs)
    set_ok(lc, "s1", "INBOX", '/shared/last "x"')  # the tenth, on a mailbox
    r = cmd(lc, "s2", 'SETMETADATA "" (/private/e0 "changed" /private/new "x")')
    assert r[-1].startswith(b"s2 NO [METADATA TOOMANY]"), r
    assert metadata_of(get(lc, "g", '"" (/private/e0 /private/new)')) == {
        "/private/e0": b"0", "/private/new": None}
    # Changing and removing are always allowed; then there is room again.
    set_ok(lc, "s3", '""', '/private/e0 "changed"')
    set_ok(lc, "s4", "INBOX", "/shared/last NIL")
    set_ok(lc, "s5", '""', '/private/new "x"')
    lc.close()


def test_maxsize_on_set(env):
    user = env.add_user("mbigset")
    lc = env.raw(user)
    r = cmd(lc, "q", 'SETMETADATA INBOX (/private/comment "%s")' % ("x" * (SIZE_MAX + 1)))
    assert r[-1].startswith(b"q NO [METADATA MAXSIZE %d]" % SIZE_MAX), r
    set_ok(lc, "q2", "INBOX", '/private/comment "%s"' % ("x" * SIZE_MAX))
    # A literal over the limit is refused before the "+": nothing is read.
    for size in (SIZE_MAX + 1, 100000, 10 ** 12):
        lc.send("l SETMETADATA INBOX (/private/comment {%d}\r\n" % size)
        line = lc.readline()
        assert line.startswith(b"l NO [METADATA MAXSIZE %d]" % SIZE_MAX), (size, line)
    # A non-synchronising one comes anyway: skipped, and the session goes on.
    lc.send(b"n SETMETADATA INBOX (/private/comment {2000+}\r\n" + b"y" * 2000 + b")\r\n")
    line = lc.readline()
    assert line.startswith(b"n NO [METADATA MAXSIZE %d]" % SIZE_MAX), line
    ok(cmd(lc, "after", "NOOP"), "after")
    r = get(lc, "g", "INBOX /private/comment")
    assert metadata_of(r)["/private/comment"] == b"x" * SIZE_MAX
    lc.close()


BAD_NAMES = [
    "/comment", "comment", "/private/", "/private//x", "/private/x/", "/private/a*b",
    "/private/a%b", "/PRIVATEX/a", "/sharedx", '""', "/private/" + "a" * 1100,
    "(/private/a)",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_entry_names_are_bad(env, name):
    user = env.add_user("mbadname")
    lc = env.raw(user)
    r = cmd(lc, "s", "SETMETADATA INBOX (%s \"v\")" % name)
    assert r[-1].startswith(b"s BAD"), (name, r)
    if not name.startswith("("):
        r = cmd(lc, "g", "GETMETADATA INBOX %s" % name)
        assert r[-1].startswith(b"g BAD"), (name, r)
    lc.close()


def test_bad_bytes_in_names_and_values(env):
    user = env.add_user("mbadbytes")
    lc = env.raw(user)
    # Non-ASCII, a control character and NUL in a name (literals carry them).
    for raw in (b"/private/\xc3\xa9", b"/private/a\x01", b"/private/a\x00b", b"/private/a\x7f",
                b"/private/a\x1f"):
        r = lit(lc, "n", "SETMETADATA INBOX (", raw, b' "v")')
        assert r[-1].startswith(b"n BAD"), (raw, r)
        r = lit(lc, "g", "GETMETADATA INBOX ", raw)
        assert r[-1].startswith(b"g BAD"), (raw, r)
    # A plain name as a literal is fine; a space is printable ASCII (RFC 5464 3.2).
    ok(lit(lc, "nl", "SETMETADATA INBOX (", b"/private/with space", b' "v")'), "nl")
    r = get(lc, "gl", 'INBOX "/private/with space"')
    assert metadata_of(r) == {"/private/with space": b"v"}, r
    # NUL only in a literal8; an atom or a list is no value; pairs only.
    r = lit(lc, "v", "SETMETADATA INBOX (/private/x ", b"a\x00b", b")")
    assert r[-1].startswith(b"v BAD"), r
    for args in ("(/private/x value)", "(/private/x (v))", "(/private/x)", "()",
                 "/private/x \"v\"", "(/private/x \"v\" /private/y)"):
        r = cmd(lc, "a", "SETMETADATA INBOX %s" % args)
        assert r[-1].startswith(b"a BAD"), (args, r)
    # Scopes and short vendor names are where a tree starts: GET only.
    for name in ("/shared", "/private", "/shared/vendor", "/private/vendor/example.org"):
        r = cmd(lc, "sc", "SETMETADATA INBOX (%s \"v\")" % name)
        assert r[-1].startswith(b"sc BAD"), (name, r)
        r = cmd(lc, "gc", "GETMETADATA INBOX %s" % name)
        assert r[-1].startswith(b"gc OK"), (name, r)
    set_ok(lc, "vd", "INBOX", '/private/vendor/example.org/x "v"')
    # Deep lists are BAD, not a crash; a literal8 is only for SETMETADATA values.
    r = cmd(lc, "d", "GETMETADATA INBOX " + "(" * 40 + "/private/x" + ")" * 40)
    assert r[-1].startswith(b"d BAD"), r
    lc.send("l8 GETMETADATA INBOX ~{10}\r\n")
    assert lc.readline().startswith(b"l8 BAD"), "literal8 accepted outside SETMETADATA"
    # In SETMETADATA only a value may be a literal8, not the mailbox or an entry name.
    r = lit(lc, "l9", "SETMETADATA ", b"INBOX", b' (/private/x "v")', True)
    assert r[-1].startswith(b"l9 BAD"), r
    r = lit(lc, "l10", "SETMETADATA INBOX (", b"/private/x", b' "v")', True)
    assert r[-1].startswith(b"l10 BAD"), r
    ok(cmd(lc, "after", "NOOP"), "after")
    lc.close()


def test_values_round_trip_exactly(env):
    user = env.add_user("mbytes")
    lc = env.raw(user)
    utf8 = "Grüße, 日本 \"quoted\" \\ back".encode()
    multi = b"line one\r\nline two\r\n\xff\xfe raw 8-bit"
    nul = b"a\x00b\x00\xff"
    ok(lit(lc, "u", "SETMETADATA INBOX (/private/utf8 ", utf8, b")"), "u")
    ok(lit(lc, "m", "SETMETADATA INBOX (/shared/multi ", multi, b")"), "m")
    ok(lit(lc, "z", "SETMETADATA INBOX (/private/nul ", nul, b' /private/empty "")', True), "z")
    set_ok(lc, "q", "INBOX", r'/private/quoted "say \"hi\" \\ there"')
    r = get(lc, "g", "INBOX (/private/utf8 /shared/multi /private/nul /private/empty "
                     "/private/quoted)")
    got = metadata_of(r)
    assert got == {"/private/utf8": utf8, "/shared/multi": multi, "/private/nul": nul,
                   "/private/empty": b"", "/private/quoted": b'say "hi" \\ there'}, r
    assert b"~{%d}\r\n" % len(nul) in r, r  # NUL needs a literal8
    lc.close()


def test_delete_drops_and_rename_keeps(env):
    user = env.add_user("mlife")
    lc = env.raw(user)
    ok(cmd(lc, "c", "CREATE Project"), "c")
    set_ok(lc, "s", "Project", '/shared/comment "plans"')
    ok(cmd(lc, "r", "RENAME Project Archive2026"), "r")
    assert metadata_of(get(lc, "g", "Archive2026 /shared/comment")) == {
        "/shared/comment": b"plans"}
    ok(cmd(lc, "d", "DELETE Archive2026"), "d")
    ok(cmd(lc, "c2", "CREATE Archive2026"), "c2")
    assert metadata_of(get(lc, "g2", "Archive2026 /shared/comment")) == {
        "/shared/comment": None}
    # Renaming INBOX keeps INBOX's and gives the new mailbox a copy (RFC 5464 4.1).
    set_ok(lc, "s2", "INBOX", '/private/comment "inbox note"')
    ok(cmd(lc, "ri", "RENAME INBOX OldInbox"), "ri")
    for mb in ("INBOX", "OldInbox"):
        assert metadata_of(get(lc, "g3", "%s /private/comment" % mb)) == {
            "/private/comment": b"inbox note"}, mb
    lc.close()


def test_second_session_and_other_users(env):
    user = env.add_user("mtwo")
    other = env.add_user("mthree")
    a = env.raw(user)
    b = env.raw(user)
    c = env.raw(other)
    set_ok(a, "s", "INBOX", '/private/comment "from a"')
    set_ok(a, "s2", '""', '/shared/comment "server from a"')
    assert metadata_of(get(b, "g", "INBOX /private/comment")) == {
        "/private/comment": b"from a"}
    assert metadata_of(get(b, "g2", '"" /shared/comment')) == {
        "/shared/comment": b"server from a"}
    # Another user's INBOX and server entries are their own.
    assert metadata_of(get(c, "g", "INBOX /private/comment")) == {"/private/comment": None}
    assert metadata_of(get(c, "g2", '"" /shared/comment')) == {"/shared/comment": None}
    for x in (a, b, c):
        x.close()


def wait_for(lc, pattern, timeout=WAIT):
    out = b""
    deadline = time.monotonic() + timeout
    lc.sock.settimeout(timeout)
    while time.monotonic() < deadline:
        line = lc.readline()
        out += line
        if re.search(pattern, line):
            return out
    raise AssertionError("no %r in %r" % (pattern, out))


def test_notify_metadata_events(env):
    user = env.add_user("mnotify")
    a = env.raw(user)
    b = env.raw(user)
    ok(cmd(b, "n", "NOTIFY SET (PERSONAL (MailboxMetadataChange ServerMetadataChange))"), "n")
    set_ok(a, "s", "INBOX", '/private/comment "x" /shared/comment "y"')
    out = wait_for(b, rb"^\* METADATA")
    assert re.search(rb'^\* METADATA "INBOX" /private/comment /shared/comment\r\n', out, re.M), out
    set_ok(a, "s2", '""', "/private/comment NIL")
    out = wait_for(b, rb"^\* METADATA")
    assert re.search(rb'^\* METADATA "" /private/comment\r\n', out, re.M), out
    # The session's own change is not told back to it (RFC 5464 4.4: third parties).
    set_ok(b, "own", "INBOX", '/private/comment "z"')
    b.send("z BOGUS\r\n")
    assert b.readline().startswith(b"z BAD")
    # Without the events nothing comes.
    ok(cmd(b, "n2", "NOTIFY SET (PERSONAL (MailboxName))"), "n2")
    set_ok(a, "s3", "INBOX", '/private/comment "w"')
    ok(cmd(a, "sync", "NOOP"), "sync")
    b.send("z2 BOGUS\r\n")
    assert b.readline().startswith(b"z2 BAD")
    a.close()
    b.close()
