"""POP3 against the real sealmaild: retrieval, UIDL, DELE/RSET/QUIT, clients from Debian.

Messages are put into the INBOX with tests/tools/store_tool (through the store, beside the
running server), so these tests depend on no other protocol.
"""
import poplib
import shutil
import socket
import ssl
import subprocess

import pytest

from pop3_env import Pop3Env, deliver, expunge, inbox_uids, pop3s, pop3_stls

PASSWORD = "correct horse battery staple"


def drop(p):
    """Cuts the TCP connection without QUIT (poplib's file object keeps the fd open)."""
    p.sock.shutdown(socket.SHUT_RDWR)
    p.file.close()
    p.sock.close()


@pytest.fixture
def env(server):
    return Pop3Env(server)


def msg_bytes(n, extra=b""):
    return (b"From: sender@corp.example\r\n"
            b"To: alice@corp.example\r\n"
            b"Subject: message %d\r\n"
            b"\r\n"
            b"line one of %d\r\n"
            b".a line that starts with a dot\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b"last line\r\n" % (n, n)) + extra


def test_retr_is_byte_exact_over_implicit_tls(env):
    user = env.add_user("alice", PASSWORD)
    body = msg_bytes(1)
    deliver(env, user, body)
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    count, octets = p.stat()
    assert (count, octets) == (1, len(body))
    resp, lines, size = p.retr(1)
    assert resp.startswith(b"+OK")
    assert b"\r\n".join(lines) + b"\r\n" == body
    assert p.list(1).split()[2] == str(len(body)).encode()
    p.quit()


def test_retr_of_a_large_message_streams_byte_exact(env):
    user = env.add_user("big", PASSWORD)
    line = b"." + b"x" * 70 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * 60000  # ~4.3 MB, many store chunks
    deliver(env, user, body)
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    resp, lines, size = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == body
    p.quit()


def test_message_without_final_crlf_gets_one(env):
    user = env.add_user("nocrlf", PASSWORD)
    deliver(env, user, b"Subject: x\r\n\r\nno newline at the end")
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    resp, lines, size = p.retr(1)
    assert lines == [b"Subject: x", b"", b"no newline at the end"]
    p.quit()


def test_stls_then_user_pass(env):
    user = env.add_user("stls", PASSWORD)
    body = msg_bytes(2)
    deliver(env, user, body)
    p = pop3_stls(env)
    p.user(user)
    p.pass_(PASSWORD)
    resp, lines, size = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == body
    p.quit()


def test_top(env):
    user = env.add_user("top", PASSWORD)
    deliver(env, user, msg_bytes(3))
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    resp, lines, size = p.top(1, 0)
    assert lines == [b"From: sender@corp.example", b"To: alice@corp.example",
                     b"Subject: message 3", b""]
    resp, lines, size = p.top(1, 2)
    assert lines[-2:] == [b"line one of 3", b".a line that starts with a dot"]
    p.quit()


def test_uidl_is_stable_across_sessions_and_expunges(env):
    user = env.add_user("uidl", PASSWORD)
    for i in range(3):
        deliver(env, user, msg_bytes(10 + i))
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    first = dict(l.split() for l in p.uidl()[1])
    p.quit()
    assert len(set(first.values())) == 3
    uids = inbox_uids(env, user)
    expunge(env, user, uids[0])  # another client removes message 1
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    second = dict(l.split() for l in p.uidl()[1])
    p.quit()
    assert sorted(second.values()) == sorted([first[b"2"], first[b"3"]])
    assert second[b"1"] == first[b"2"]


def test_dele_then_quit_removes_exactly_those(env):
    user = env.add_user("dele", PASSWORD)
    for i in range(4):
        deliver(env, user, msg_bytes(20 + i))
    before = inbox_uids(env, user)
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(2)
    p.dele(4)
    with pytest.raises(poplib.error_proto):
        p.dele(2)  # already deleted
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    assert p.stat()[0] == 2
    p.quit()
    assert inbox_uids(env, user) == [before[0], before[2]]


def test_dele_then_dropped_connection_removes_nothing(env):
    user = env.add_user("drop", PASSWORD)
    for i in range(2):
        deliver(env, user, msg_bytes(30 + i))
    before = inbox_uids(env, user)
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(1)
    p.dele(2)
    drop(p)  # no QUIT
    env.wait_unlocked(user, PASSWORD)
    assert inbox_uids(env, user) == before


def test_rset_unmarks(env):
    user = env.add_user("rset", PASSWORD)
    for i in range(2):
        deliver(env, user, msg_bytes(40 + i))
    before = inbox_uids(env, user)
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(1)
    assert p.stat()[0] == 1
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 2
    p.quit()
    assert inbox_uids(env, user) == before


def test_messages_delivered_after_login_are_not_shown(env):
    user = env.add_user("snap", PASSWORD)
    deliver(env, user, msg_bytes(50))
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    deliver(env, user, msg_bytes(51))
    assert p.stat()[0] == 1
    p.quit()
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 2
    p.quit()


def test_retr_of_a_message_expunged_meanwhile_is_an_error(env):
    user = env.add_user("gone", PASSWORD)
    deliver(env, user, msg_bytes(60))
    deliver(env, user, msg_bytes(61))
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    expunge(env, user, inbox_uids(env, user)[0])
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    resp, lines, size = p.retr(2)
    assert b"Subject: message 61" in lines
    p.dele(1)
    p.quit()
    assert len(inbox_uids(env, user)) == 1


def test_auth_plain(env):
    user = env.add_user("plain", PASSWORD)
    deliver(env, user, msg_bytes(70))
    import base64
    p = pop3s(env)
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode()).decode()
    assert p._shortcmd("AUTH PLAIN " + token).startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()
    # continuation form, then the cancel form
    p = pop3s(env)
    assert p._shortcmd("AUTH PLAIN").startswith(b"+")
    assert p._shortcmd(token).startswith(b"+OK")
    p.quit()
    p = pop3s(env)
    assert p._shortcmd("AUTH PLAIN").startswith(b"+")
    with pytest.raises(poplib.error_proto):
        p._shortcmd("*")
    p.quit()


def test_curl_pop3s(env):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    user = env.add_user("curl", PASSWORD)
    body = msg_bytes(80)
    deliver(env, user, body)
    out = subprocess.run(
        ["curl", "-sS", "--cacert", env.ca, "--resolve",
         "%s:%d:127.0.0.1" % (env.hostname, env.pop3s_port),
         "--user", "%s:%s" % (user, PASSWORD),
         "pop3s://%s:%d/1" % (env.hostname, env.pop3s_port)],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body
    out = subprocess.run(
        ["curl", "-sS", "--cacert", env.ca, "--resolve",
         "%s:%d:127.0.0.1" % (env.hostname, env.pop3s_port),
         "--user", "%s:%s" % (user, PASSWORD), "-X", "UIDL",
         "pop3s://%s:%d/" % (env.hostname, env.pop3s_port)],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"1 ")
    # STLS on the plain port, TLS required.
    out = subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "--cacert", env.ca, "--resolve",
         "%s:%d:127.0.0.1" % (env.hostname, env.stls_port),
         "--user", "%s:%s" % (user, PASSWORD),
         "pop3://%s:%d/1" % (env.hostname, env.stls_port)],
        capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body


def test_fetchmail_retrieves_and_deletes(env, tmp_path):
    if shutil.which("fetchmail") is None:
        pytest.skip("fetchmail not installed (apt install fetchmail)")
    user = env.add_user("fetch", PASSWORD)
    bodies = [msg_bytes(90), msg_bytes(91)]
    for b in bodies:
        deliver(env, user, b)
    mbox = tmp_path / "out"
    mda = tmp_path / "mda.sh"
    mda.write_text("#!/bin/sh\ncat >> '%s'\nprintf '\\n--END--\\n' >> '%s'\n" % (mbox, mbox))
    mda.chmod(0o700)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        'poll %s via 127.0.0.1 port %d protocol POP3 auth password:\n'
        '  user "%s" password "%s" ssl sslcertck sslcertfile "%s" sslcommonname "%s"\n'
        '  mda "%s" fetchall\n' % (env.hostname, env.pop3s_port, user, PASSWORD, env.ca, env.hostname, mda))
    rc.chmod(0o600)
    out = subprocess.run(
        ["fetchmail", "-f", str(rc), "-i", str(tmp_path / "ids"), "--nodetach", "--nosyslog",
         "--pidfile", str(tmp_path / "pid")],
        capture_output=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    got = mbox.read_bytes()
    for b in bodies:
        # fetchmail adds a Received: line and writes LF line ends to the MDA
        assert b.replace(b"\r\n", b"\n") in got
    assert inbox_uids(env, user) == []


def test_imap_session_sees_the_pop3_expunges(env):
    import imaplib
    user = env.add_user("imapsees", PASSWORD)
    for i in range(3):
        deliver(env, user, msg_bytes(100 + i))
    m = imaplib.IMAP4_SSL("127.0.0.1", env.srv.port("imap", "implicit"),
                          ssl_context=env.ssl_context())
    m.login(user, PASSWORD)
    assert m.select("INBOX") == ("OK", [b"3"])
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(2)
    p.quit()
    typ, _ = m.noop()
    assert typ == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [b"2"]
    m.logout()


def test_message_submitted_over_smtp_is_retrieved_byte_exact(env):
    import smtplib
    user = env.add_user("viasmtp", PASSWORD)
    body = (b"From: viasmtp@corp.example\r\nTo: viasmtp@corp.example\r\n"
            b"Subject: over SMTP\r\nMessage-ID: <pop3-smtp-1@corp.example>\r\n"
            b"Date: Sun, 29 Nov 2026 04:00:00 +0000\r\n\r\n"
            b"first line\r\n.leading dot\r\n..two\r\nlast line\r\n")
    s = smtplib.SMTP_SSL("127.0.0.1", env.srv.port("submission", "implicit"),
                         context=env.ssl_context(), timeout=30)
    s.login(user, PASSWORD)
    s.sendmail(user, [user], body)
    s.quit()
    p = pop3s(env)
    p.user(user)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    resp, lines, size = p.retr(1)
    got = b"\r\n".join(lines) + b"\r\n"
    # The server adds its trace header(s) on top; the submitted bytes follow unchanged.
    assert got.endswith(body), got
    assert got.startswith(b"Return-Path: <viasmtp@corp.example>\r\nReceived:"), got[:100]
    assert int(p.list(1).split()[2]) == len(got)
    p.quit()
