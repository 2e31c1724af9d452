"""Hostile IMAP input against the real sealmaild: literals over their limit (refused before
the "+"), literals before login, deep nesting, bad mailbox names, over-long lines, pipelining,
and curl's imaps:// for good measure."""
import os
import re
import shutil
import subprocess

import pytest

from imap_env import PASSWORD, ImapEnv, cmd, read_response, simple_message

USER = "hostile@corp.example"


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("hostile")
    return e


def alive(env, lc):
    r = cmd(lc, "zz", "NOOP")
    assert r[-1].startswith(b"zz OK"), r


def test_append_literal_over_limit_refused_before_continuation(env):
    lc = env.raw(USER)
    lc.send("a1 APPEND INBOX {999999999999}\r\n")
    line = lc.readline()
    assert not line.startswith(b"+"), line
    assert b"a1 BAD" in line or b"* BAD" in line or b"a1 NO" in line, line
    assert b"TOOBIG" in line, line
    alive(env, lc)
    lc.close()


def test_nonsync_literal_over_limit_closes(env):
    lc = env.raw(USER)
    lc.send("a1 APPEND INBOX {999999999999+}\r\nxxxx")
    data = b""
    try:
        while True:
            line = lc.readline()
            data += line
            if b"BYE" in line:
                break
    except (EOFError, OSError):
        pass
    assert b"TOOBIG" in data or b"BYE" in data, data
    assert lc.at_eof(timeout=3, allow_data=True)


def test_small_literal_over_limit_for_non_append(env):
    lc = env.raw(USER)
    lc.send("a1 SELECT {100000}\r\n")
    line = lc.readline()
    assert not line.startswith(b"+") and b"BAD" in line, line
    alive(env, lc)
    lc.close()


def test_literal_before_login_is_small_and_checked_first(env):
    lc = env.raw()
    lc.send("p1 APPEND INBOX {10}\r\n")
    line = lc.readline()
    assert line.startswith(b"p1 BAD"), line
    lc.send("p2 LOGIN {100000}\r\n")
    line = lc.readline()
    assert line.startswith(b"p2 BAD") and b"TOOBIG" in line, line
    # A literal that may come, does: LOGIN with literal user and password.
    user = USER.encode()
    lc.send(b"p3 LOGIN {%d}\r\n" % len(user))
    assert lc.readline().startswith(b"+")
    lc.send(user + b" {%d}\r\n" % len(PASSWORD))
    assert lc.readline().startswith(b"+")
    lc.send(PASSWORD.encode() + b"\r\n")
    r = lc.imap_tagged("p3")
    assert r[-1].startswith(b"p3 OK"), r
    lc.close()


def test_refused_nonsync_literal_bytes_are_skipped(env):
    lc = env.raw()
    lc.send("p1 BOGUS {5+}\r\nhello\r\np2 NOOP\r\n")
    r = lc.imap_tagged("p1")
    assert r[-1].startswith(b"p1 BAD"), r
    r = lc.imap_tagged("p2")
    assert r[-1].startswith(b"p2 OK"), r
    lc.close()


def test_deep_nesting(env):
    lc = env.raw(USER)
    cmd(lc, "s", "SELECT INBOX")
    r = cmd(lc, "d1", "SEARCH " + "(" * 200 + "ALL" + ")" * 200)
    assert r[-1].startswith(b"d1 BAD"), r
    r = cmd(lc, "d2", "SEARCH " + "NOT " * 100 + "ALL")
    assert r[-1].startswith(b"d2 BAD") or r[-1].startswith(b"d2 OK"), r
    r = cmd(lc, "d3", "FETCH 1 " + "(" * 100 + "FLAGS" + ")" * 100)
    assert r[-1].startswith(b"d3 BAD"), r
    alive(env, lc)
    lc.close()


def test_deep_mime_nesting_message(env):
    depth = 200
    msg = b"Subject: deep\r\n"
    for i in range(depth):
        msg += b"Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n" % (i, i)
    msg += b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for i in reversed(range(depth)):
        msg += b"--b%d--\r\n" % i
    m = env.imaps(USER)
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK"
    uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    m.select("INBOX")
    typ, data = m.uid("FETCH", uid, "(BODYSTRUCTURE BODY.PEEK[1.1.1])")
    assert typ == "OK"
    typ, data = m.uid("FETCH", uid, "(BODY.PEEK[])")
    assert data[0][1] == msg
    m.logout()


def test_many_header_fields(env):
    msg = b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"Subject: many\r\n\r\nbody\r\n"
    m = env.imaps(USER)
    typ, data = m.append("INBOX", None, None, msg)
    assert typ == "OK"
    uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    m.select("INBOX")
    typ, data = m.uid("FETCH", uid, "(ENVELOPE BODY.PEEK[HEADER.FIELDS (X-H19999)])")
    assert typ == "OK", data
    m.logout()


@pytest.mark.parametrize("name", ['"a\\"b\x01c"', '"../etc"', '"a/../b"', '"' + "x" * 1000 + '"',
                                  '"a//b"', '"/abs"', '"tr&ail"'])
def test_bad_mailbox_names(env, name):
    lc = env.raw(USER)
    r = cmd(lc, "b1", "CREATE %s" % name)
    assert r[-1].startswith(b"b1 NO") or r[-1].startswith(b"b1 BAD"), r
    r = cmd(lc, "b2", "SELECT %s" % name)
    assert r[-1].startswith(b"b2 NO") or r[-1].startswith(b"b2 BAD"), r
    lc.close()


def test_nul_in_mailbox_name_literal(env):
    lc = env.raw(USER)
    r = cmd(lc, "n1", "CREATE", literal=b"ab\x00cd")
    assert r[-1].startswith(b"n1 NO") or r[-1].startswith(b"n1 BAD"), r
    r = b"".join(cmd(lc, "n2", 'LIST "" "ab*"'))
    assert b"ab" not in r.split(b"\r\n", 1)[0] or b"* LIST" not in r, r
    alive(env, lc)
    lc.close()


def test_over_long_line(env):
    lc = env.raw(USER)
    # After login a line may be as long as a command may hold (1 MiB): go past that.
    lc.send("l1 NOOP " + "x" * (2 * 1024 * 1024) + "\r\n")
    data = b""
    try:
        while b"l1 " not in data and b"BAD" not in data:
            data += lc.readline()
    except (EOFError, OSError):
        pass
    assert b"BAD" in data or b"BYE" in data, data[:200]


def test_over_long_line_before_login_closes(env):
    lc = env.raw()
    lc.send("l1 LOGIN " + "x" * 100000 + "\r\n")
    data = b""
    try:
        while True:
            line = lc.readline()
            data += line
            if b"BYE" in line or b"l1 " in line:
                break
    except (EOFError, OSError):
        pass
    assert b"BAD" in data or b"BYE" in data or data == b"", data[:200]


def test_pipelined_commands(env):
    lc = env.raw(USER)
    msg = simple_message("piped")
    lc.send(b"p1 SELECT INBOX\r\np2 NOOP\r\np3 APPEND INBOX {%d+}\r\n%s\r\np4 NOOP\r\n"
            b"p5 UID SEARCH SUBJECT piped\r\np6 FETCH 1 (UID)\r\np7 LOGOUT\r\n"
            % (len(msg), msg))
    out = read_response(lc, "p7")
    for t in (b"p1 OK", b"p2 OK", b"p3 OK", b"p4 OK", b"p5 OK", b"p6 OK", b"p7 OK"):
        assert t in out, out
    assert out.index(b"p1 OK") < out.index(b"p2 OK") < out.index(b"p3 OK") < \
        out.index(b"p5 OK") < out.index(b"p7 OK")
    assert re.search(rb"\* SEARCH \d+", out), out


def test_garbage_and_bad_tags(env):
    lc = env.raw(USER)
    for line in (b"\r\n", b"* NOOP\r\n", b"+ NOOP\r\n", b"a\x00b NOOP\r\n", b"t1\r\n",
                 b"t2 FETCH\r\n", b'"quoted NOOP\r\n', b"t3 NOOP (((\r\n"):
        lc.send(line)
        got = lc.readline()
        assert b"BAD" in got, (line, got)
    alive(env, lc)
    lc.close()


# ---- curl ----

@pytest.fixture
def curl():
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed")
    return path


def test_curl_imaps_list_and_fetch(env, curl):
    m = env.imaps(USER)
    msg = simple_message("for curl", "curl body line\r\n")
    m.create("CurlBox")
    typ, data = m.append("CurlBox", None, None, msg)
    m.logout()
    base = "imaps://127.0.0.1:%d" % env.port
    r = subprocess.run([curl, "-sS", "--cacert", env.ca, base + "/", "-u",
                        "%s:%s" % (USER, PASSWORD)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"INBOX" in r.stdout and b"CurlBox" in r.stdout, r.stdout
    r = subprocess.run([curl, "-sS", "--cacert", env.ca, base + "/CurlBox;UID=1", "-u",
                        "%s:%s" % (USER, PASSWORD)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg, r.stdout
    r = subprocess.run([curl, "-sS", "--cacert", env.ca, base + "/CurlBox?SUBJECT%20curl",
                        "-u", "%s:%s" % (USER, PASSWORD)], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"SEARCH 1" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run([curl, "-sS", "--cacert", env.ca, base + "/CurlBox;UID=1", "-u",
                        "%s:wrong" % USER], capture_output=True, timeout=30)
    assert r.returncode != 0
