"""POP3 hostile input against the real sealmaild: before TLS, over-long lines, locks,
pipelining, bad logins."""
import poplib
import socket
import ssl
import time

import pytest

from pop3_env import Pop3Env, deliver, inbox_uids, pop3s, pop3_stls

PASSWORD = "hostile test password"


@pytest.fixture
def env(server):
    return Pop3Env(server)


class Raw:
    """A line client on a plain or TLS socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def multiline(self):
        out = []
        while True:
            l = self.line()
            if l == b".":
                return out
            out.append(l[1:] if l.startswith(b".") else l)

    def eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False


def plain(env):
    s = socket.create_connection(("127.0.0.1", env.stls_port), timeout=10)
    r = Raw(s)
    assert r.line().startswith(b"+OK")
    return r


def tls(env):
    ctx = env.ssl_context()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.pop3s_port), timeout=10),
                        server_hostname="127.0.0.1")
    r = Raw(s)
    assert r.line().startswith(b"+OK")
    return r


def login(r, user, password=PASSWORD):
    r.send(b"USER %s\r\nPASS %s\r\n" % (user.encode(), password.encode()))
    assert r.line().startswith(b"+OK")
    return r.line()


def test_capa_before_tls_offers_stls_not_user_or_sasl(env):
    r = plain(env)
    r.send(b"CAPA\r\n")
    assert r.line().startswith(b"+OK")
    caps = r.multiline()
    assert b"STLS" in caps
    assert not any(c.startswith(b"USER") or c.startswith(b"SASL") for c in caps)


def test_user_pass_auth_and_maildrop_commands_refused_before_tls(env):
    user = env.add_user("pretls", PASSWORD)
    r = plain(env)
    for cmd in (b"USER " + user.encode(), b"PASS " + PASSWORD.encode(), b"AUTH PLAIN",
                b"STAT", b"LIST", b"RETR 1"):
        r.send(cmd + b"\r\n")
        assert r.line().startswith(b"-ERR"), cmd


def test_pipelined_bytes_before_stls_are_discarded(env):
    """CVE-2011-0411: a command sent in plaintext after STLS must never run under TLS."""
    r = plain(env)
    r.send(b"STLS\r\nQUIT\r\n")
    assert r.line().startswith(b"+OK")
    ctx = env.ssl_context()
    s = ctx.wrap_socket(r.sock, server_hostname="127.0.0.1")
    t = Raw(s)
    # Had the plaintext QUIT run, the server would have said goodbye and closed.
    t.send(b"CAPA\r\n")
    assert t.line().lower().startswith(b"+ok capability")
    assert b"USER" in t.multiline()
    t.send(b"QUIT\r\n")
    assert t.line().startswith(b"+OK")


def test_capa_after_tls_offers_user_and_sasl(env):
    r = tls(env)
    r.send(b"CAPA\r\n")
    assert r.line().startswith(b"+OK")
    caps = r.multiline()
    for c in (b"USER", b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"):
        assert c in caps, caps
    assert any(c.startswith(b"SASL") and b"PLAIN" in c for c in caps), caps
    assert b"STLS" not in caps


def test_over_long_line_is_refused_and_closes(env):
    r = tls(env)
    r.send(b"USER " + b"a" * 5000 + b"\r\n")  # over the 2048-byte limit before login
    assert r.line().startswith(b"-ERR")
    assert r.eof()


def test_unknown_user_and_wrong_password_get_the_same_answer(env):
    user = env.add_user("same", PASSWORD)
    r = tls(env)
    a = login(r, user, "wrong password")
    r2 = tls(env)
    b = login(r2, "nobody@corp.example", "wrong password")
    assert a.startswith(b"-ERR [AUTH]")
    assert a == b
    log = env.srv.log()
    assert "event=auth_failed" in log and "ip=127.0.0.1" in log
    assert "wrong password" not in log


def test_second_session_on_a_locked_maildrop_gets_in_use(env):
    user = env.add_user("lock", PASSWORD)
    deliver(env, user, b"Subject: a\r\n\r\nb\r\n")
    r1 = tls(env)
    assert login(r1, user).startswith(b"+OK")
    r2 = tls(env)
    resp = login(r2, user)
    assert resp.startswith(b"-ERR [IN-USE]"), resp
    # After the first leaves, the lock is free again.
    r1.send(b"QUIT\r\n")
    assert r1.line().startswith(b"+OK")
    r3 = tls(env)
    assert login(r3, user).startswith(b"+OK")


def test_pipelined_session(env):
    user = env.add_user("pipe", PASSWORD)
    for i in range(3):
        deliver(env, user, b"Subject: %d\r\n\r\n.body %d\r\n" % (i, i))
    r = tls(env)
    r.send(b"USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nTOP 2 0\r\nDELE 3\r\nUIDL\r\nLIST 3\r\n"
           b"QUIT\r\n" % (user.encode(), PASSWORD.encode()))
    assert r.line().startswith(b"+OK")  # USER
    assert r.line().startswith(b"+OK")  # PASS
    assert r.line() == b"+OK 3 %d" % (3 * len(b"Subject: 0\r\n\r\n.body 0\r\n"))
    assert r.line().startswith(b"+OK")
    assert r.multiline() == [b"Subject: 0", b"", b".body 0"]
    assert r.line().startswith(b"+OK")
    assert r.multiline() == [b"Subject: 1", b""]
    assert r.line().startswith(b"+OK")  # DELE
    assert r.line().startswith(b"+OK")
    assert len(r.multiline()) == 2
    assert r.line().startswith(b"-ERR")  # LIST 3: deleted
    assert r.line().startswith(b"+OK")  # QUIT
    assert r.eof()
    assert len(inbox_uids(env, user)) == 2


def test_bad_arguments(env):
    user = env.add_user("args", PASSWORD)
    deliver(env, user, b"Subject: a\r\n\r\nb\r\n")
    bad = [b"RETR", b"RETR 0", b"RETR 2", b"RETR -1", b"RETR 1x", b"RETR 99999999999",
           b"TOP 1", b"TOP 1 -1", b"TOP x 1", b"DELE", b"LIST 0", b"UIDL 2", b"STAT 1",
           b"USER x", b"PASS x", b"AUTH PLAIN", b"STLS", b"XYZZY"]
    # limits.errors (10 by default) ends a session: 6 refusals per session.
    for i in range(0, len(bad), 6):
        r = tls(env)
        assert login(r, user).startswith(b"+OK")
        for cmd in bad[i:i + 6]:
            r.send(cmd + b"\r\n")
            assert r.line().startswith(b"-ERR"), cmd
        r.send(b"NOOP\r\n")
        assert r.line().startswith(b"+OK")
        r.send(b"QUIT\r\n")
        assert r.line().startswith(b"+OK")


def test_too_many_errors_close_the_session(env):
    user = env.add_user("errs", PASSWORD)
    r = tls(env)
    assert login(r, user).startswith(b"+OK")
    for i in range(9):
        r.send(b"RETR 5\r\n")
        assert r.line().startswith(b"-ERR")
    r.send(b"RETR 5\r\n")
    assert r.line().startswith(b"-ERR")
    assert r.line() == b"-ERR Too many errors"
    assert r.eof()


def test_auth_plain_with_another_authzid_fails(env):
    import base64
    user = env.add_user("authz", PASSWORD)
    other = env.add_user("authz2", PASSWORD)
    r = tls(env)
    tok = base64.b64encode(b"%s\0%s\0%s" % (other.encode(), user.encode(), PASSWORD.encode()))
    r.send(b"AUTH PLAIN " + tok + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    r.send(b"AUTH PLAIN !!!notbase64\r\n")
    assert r.line().startswith(b"-ERR")
    r.send(b"AUTH CRAM-MD5\r\n")
    assert r.line().startswith(b"-ERR")
