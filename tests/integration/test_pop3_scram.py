"""POP3 AUTH SCRAM-SHA-256 (RFC 5802, 7677; RFC 5034) against the real sealmaild: poplib with
the SCRAM client of scram_client.py (poplib has no AUTH of its own: its command layer
carries the exchange), and raw lines for hostile input. The exchange is the one SMTP and
IMAP use (server/auth/scram_login.c); these tests check that POP3 speaks it right and
that every refusal answers like the same refusal of PLAIN.

Each test connects from its own loopback address and uses its own accounts, so the
failed-login delays of one test do not slow another. The module's server turns
auth.channel_binding on (SCRAM-SHA-256-PLUS is offered only then)."""
import base64
import itertools
import os
import poplib
import socket
import sqlite3
import ssl
import subprocess

import pytest

import harness
from harness import DOMAIN
from pop3_env import Pop3Env
from scram_client import Scram, attrs, b64

PASSWORD = "pop3 scram password"
CHANNEL_BINDING = "auth:\n  channel_binding: true\n"
WRONG = "-ERR [AUTH] invalid user name or password"
_source = itertools.count(2)


@pytest.fixture(scope="module")
def server(certs, sealmaild_bin, tmp_path_factory):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                         extra_yaml=CHANNEL_BINDING)
    srv.start()
    yield srv
    srv.check_stopped()


@pytest.fixture(scope="module")
def env(server):
    return Pop3Env(server)


def connect(env, port=None, ctx=None, source=None):
    """A LineClient after the greeting, from a loopback address of its own."""
    source = source or "127.0.0.%d" % next(_source)
    raw = socket.create_connection(("127.0.0.1", port or env.pop3s_port), timeout=30,
                                   source_address=(source, 0))
    sock = (ctx or env.ssl_context()).wrap_socket(raw, server_hostname="127.0.0.1")
    lc = harness.LineClient(sock, timeout=30)
    assert lc.readline().startswith(b"+OK")
    return lc


def line(lc):
    return lc.readline().decode().rstrip("\r\n")


def scram(lc, user, password, ir=True, mech="SCRAM-SHA-256", cbind=b"n,,", cb_data=b"",
          tamper=False, nonce=None, ack=""):
    """One AUTH exchange; returns (the final reply line, server-first)."""
    cl = Scram(user, password, cbind)
    if ir:
        lc.send("AUTH %s %s\r\n" % (mech, cl.first()))
    else:
        lc.send("AUTH %s\r\n" % mech)
        first = line(lc)
        assert first == "+ ", first
        lc.send(cl.first() + "\r\n")
    r = line(lc)
    if not r.startswith("+ "):
        return r, None
    server_first = r[2:]
    lc.send(cl.final(server_first, cb_data, tamper, nonce) + "\r\n")
    r = line(lc)
    if not r.startswith("+ "):
        return r, server_first
    cl.check_server_final(r[2:])
    lc.send(ack + "\r\n")
    return line(lc), server_first


def quit(lc):
    lc.send("QUIT\r\n")
    assert line(lc).startswith("+OK")
    lc.close()


def plain_reply(env, user, password, port=None, ctx=None):
    """The reply to AUTH PLAIN, to compare SCRAM's refusals with."""
    lc = connect(env, port, ctx)
    lc.send("AUTH PLAIN %s\r\n" % b64(b"\0" + user.encode() + b"\0" + password.encode()))
    r = line(lc)
    quit(lc)
    return r


def sql(env, statement, *args):
    con = sqlite3.connect(env.db, timeout=10)
    try:
        con.execute(statement, args)
        con.commit()
    finally:
        con.close()


# --------------------------------------------------------------------------- success


def test_capa_and_bare_auth_list_scram(env):
    p = poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=env.ssl_context(), timeout=30)
    assert p.capa()["SASL"] == ["PLAIN", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    p.quit()
    lc = connect(env)
    lc.send("AUTH\r\n")
    assert lc.pop3_multiline() == [b"+OK\r\n", b"PLAIN\r\n", b"SCRAM-SHA-256-PLUS\r\n",
                                   b"SCRAM-SHA-256\r\n", b".\r\n"]
    quit(lc)


def test_poplib_logs_in_and_is_logged(env):
    user = env.add_user("poplib", PASSWORD)
    since = env.srv.log_size()
    p = poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=env.ssl_context(), timeout=30)
    cl = Scram(user, PASSWORD)
    # poplib's command layer: a "+ " continuation is a positive answer to it.
    server_first = p._shortcmd("AUTH SCRAM-SHA-256 " + cl.first())
    assert server_first.startswith(b"+ "), server_first
    server_final = p._shortcmd(cl.final(server_first[2:].decode()))
    assert server_final.startswith(b"+ "), server_final
    cl.check_server_final(server_final[2:].decode())
    assert p._shortcmd("").startswith(b"+OK")
    assert p.stat() == (0, 0)
    p.quit()
    env.srv.wait_log(r"proto=pop3 event=auth_ok mech=SCRAM-SHA-256 user=%s ip=127\.0\.0\.1"
                     % user, since=since)


def test_without_initial_response_and_any_case(env):
    user = env.add_user("noir", PASSWORD)
    lc = connect(env)
    r, _ = scram(lc, user.upper(), PASSWORD, ir=False, mech="scram-sha-256")
    assert r.startswith("+OK"), r
    lc.send("STAT\r\n")
    assert line(lc) == "+OK 0 0"
    quit(lc)


def test_secrets_are_not_logged(env):
    log = env.srv.log()
    assert PASSWORD not in log
    assert "AUTH SCRAM" not in log and ",p=" not in log


# --------------------------------------------------------------------------- refusals


def test_wrong_password_and_unknown_user_answer_alike_and_are_logged(env):
    user = env.add_user("wrong", PASSWORD)
    nobody = "nobody-pop3@" + DOMAIN
    since = env.srv.log_size()
    lc = connect(env)
    wrong, sf_wrong = scram(lc, user, "not the password")
    quit(lc)
    lc = connect(env)
    unknown, sf_unknown = scram(lc, nobody, PASSWORD)
    quit(lc)
    assert wrong == unknown == WRONG == plain_reply(env, user, "not it either")
    assert len(attrs(sf_wrong)["s"]) == len(attrs(sf_unknown)["s"])
    assert attrs(sf_wrong)["i"] == attrs(sf_unknown)["i"]
    for who in (user, nobody):
        env.srv.wait_log(r"proto=pop3 event=auth_failed mech=SCRAM-SHA-256 user=%s "
                         r"ip=127\.0\.0\.\d+ reason=bad_credentials" % who, since=since)


def test_failures_wait_and_success_does_not(env):
    """As for IMAP: after four failures from an address the fifth waits 2 s, and a right
    password sent after it from the same address is answered first."""
    user = env.add_user("throttle", PASSWORD)
    other = env.add_user("throttle2", PASSWORD)
    source = "127.0.0.%d" % next(_source)
    for i in range(4):
        lc = connect(env, source=source)
        r, _ = scram(lc, user, "wrong %d" % i)
        assert r == WRONG, r
        quit(lc)
    slow = connect(env, source=source)
    cl = Scram(user, "wrong again")
    slow.send("AUTH SCRAM-SHA-256 %s\r\n" % cl.first())
    slow.send(cl.final(line(slow)[2:]) + "\r\n")
    fast = connect(env, source=source)
    r, _ = scram(fast, other, PASSWORD)
    assert r.startswith("+OK"), r
    assert slow.buf == b""
    slow.sock.setblocking(False)
    try:
        pending = slow.sock.recv(4096)
    except (BlockingIOError, ssl.SSLWantReadError):
        pending = b""
    slow.sock.settimeout(30)
    assert pending == b"", pending  # the failure is still waiting
    assert line(slow) == WRONG
    quit(slow)
    quit(fast)


def test_cancel_at_every_step(env):
    user = env.add_user("cancel", PASSWORD)
    lc = connect(env)
    lc.send("AUTH SCRAM-SHA-256\r\n")
    assert line(lc) == "+ "
    lc.send("*\r\n")
    assert line(lc) == "-ERR authentication cancelled"
    cl = Scram(user, PASSWORD)
    lc.send("AUTH SCRAM-SHA-256 %s\r\n" % cl.first())
    assert line(lc).startswith("+ ")
    lc.send("*\r\n")
    assert line(lc) == "-ERR authentication cancelled"
    r, _ = scram(lc, user, PASSWORD, ack="*")
    assert r == "-ERR authentication cancelled", r
    lc.send("STAT\r\n")
    assert line(lc) == "-ERR Not authenticated"
    r, _ = scram(lc, user, PASSWORD)
    assert r.startswith("+OK"), r
    quit(lc)


def test_malformed_messages(env):
    user = env.add_user("malformed", PASSWORD)
    lc = connect(env)
    for ir in ["!!!", "=", b64(b"n,,r=nonce-without-name"),
               b64(b"m=ext,n=" + user.encode() + b",r=abc")]:
        lc.send("AUTH SCRAM-SHA-256 %s\r\n" % ir)
        assert line(lc) == "-ERR [AUTH] malformed SASL SCRAM message", ir
    quit(lc)
    lc = connect(env)
    lc.send("AUTH SCRAM-SHA-256\r\n")
    assert line(lc) == "+ "
    lc.send("\r\n")
    assert line(lc) == "-ERR [AUTH] malformed SASL SCRAM message"
    cl = Scram(user, PASSWORD)
    lc.send("AUTH SCRAM-SHA-256 %s\r\n" % cl.first())
    assert line(lc).startswith("+ ")
    lc.send(b64(b"c=biws,p=AAAA") + "\r\n")
    assert line(lc) == WRONG
    lc.send("AUTH SCRAM-SHA-1 %s\r\n" % cl.first())
    assert line(lc) == "-ERR [AUTH] unsupported mechanism"
    quit(lc)
    lc = connect(env)
    r, _ = scram(lc, user, PASSWORD, ack=b64(b"v=yes"))
    assert r == "-ERR [AUTH] the answer to the last challenge must be empty", r
    lc.send("STAT\r\n")
    assert line(lc) == "-ERR Not authenticated"
    r, _ = scram(lc, user, PASSWORD)
    assert r.startswith("+OK"), r
    quit(lc)


def test_over_long_response_ends_the_connection(env):
    user = env.add_user("long", PASSWORD)
    lc = connect(env)
    cl = Scram(user, PASSWORD)
    lc.send("AUTH SCRAM-SHA-256 %s\r\n" % cl.first())
    assert line(lc).startswith("+ ")
    lc.send("A" * 5000 + "\r\n")
    assert line(lc) == "-ERR Line too long"
    assert lc.at_eof()
    # Within the line limit but longer than any SCRAM message.
    lc = connect(env)
    lc.send("AUTH SCRAM-SHA-256\r\n")
    assert line(lc) == "+ "
    lc.send("QUFB" * 700 + "\r\n")
    assert line(lc) == "-ERR [AUTH] malformed SASL SCRAM message"
    quit(lc)


def test_nonce_mismatch_and_tampered_proof_fail(env):
    user = env.add_user("nonce", PASSWORD)
    lc = connect(env)
    cl = Scram(user, PASSWORD)
    lc.send("AUTH SCRAM-SHA-256 %s\r\n" % cl.first())
    lc.send(cl.final(line(lc)[2:], nonce=cl.nonce + "forged") + "\r\n")
    assert line(lc) == WRONG
    r, _ = scram(lc, user, PASSWORD, tamper=True)
    assert r == WRONG, r
    quit(lc)


def test_channel_binding_flag_misuse_fails(env):
    user = env.add_user("cbind", PASSWORD)
    cases = [
        dict(cbind=b"y,,"),
        dict(cbind=b"p=tls-exporter,,", cb_data=os.urandom(32)),
        dict(mech="SCRAM-SHA-256-PLUS", cbind=b"p=tls-exporter,,", cb_data=os.urandom(32)),
        dict(mech="SCRAM-SHA-256-PLUS", cbind=b"n,,"),
    ]
    for kw in cases:
        lc = connect(env)
        r, _ = scram(lc, user, PASSWORD, **kw)
        assert r.startswith("-ERR"), (kw, r)
        quit(lc)


def test_user_without_scram_material_and_disabled_user(env):
    noscram = env.add_user("noscram", PASSWORD)
    sql(env, "UPDATE users SET scram_salt = NULL, scram_iterations = NULL, "
        "scram_stored_key = NULL, scram_server_key = NULL WHERE address = ?", noscram)
    disabled = env.add_user("disabled", PASSWORD)
    sql(env, "UPDATE users SET disabled = 1 WHERE address = ?", disabled)
    for user in (noscram, disabled):
        lc = connect(env)
        r, sf = scram(lc, user, PASSWORD)
        assert sf is not None and r == WRONG, (user, r)
        quit(lc)
    assert plain_reply(env, noscram, PASSWORD).startswith("+OK")
    assert plain_reply(env, disabled, PASSWORD) == WRONG


# --------------------------------------------------------------------------- certificates


def test_certificate_and_password_user(make_server):
    srv = make_server(listeners=[
        {"protocol": "pop3", "tls": "implicit", "client_certificate": "optional"},
        {"protocol": "pop3", "tls": "starttls"},
    ], extra_yaml=CHANNEL_BINDING)
    env = Pop3Env(srv)
    alice = env.add_user("alice", PASSWORD)  # the test client certificate's address
    bob = env.add_user("bob", PASSWORD)
    r = subprocess.run([harness.tool("sealctl"), "-c", env.config, "user", "require-cert",
                        alice, "on"], capture_output=True)
    assert r.returncode == 0, r.stderr
    lc = connect(env)
    r, _ = scram(lc, alice, PASSWORD)
    assert r == plain_reply(env, alice, PASSWORD), r
    assert "client certificate" in r, r
    quit(lc)
    ctx = env.ssl_context()
    ctx.load_cert_chain(env.srv.certs.client, env.srv.certs.client_key)
    lc = connect(env, ctx=ctx)
    r, _ = scram(lc, alice, PASSWORD)
    assert r.startswith("+OK"), r
    quit(lc)
    lc = connect(env, ctx=ctx)
    r, _ = scram(lc, bob, PASSWORD)
    assert r.startswith("-ERR") and r == plain_reply(env, bob, PASSWORD, ctx=ctx), r
    quit(lc)


def test_without_channel_binding_plus_is_neither_offered_nor_accepted(make_server):
    env = Pop3Env(make_server())
    user = env.add_user("alice", PASSWORD)
    p = poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=env.ssl_context(), timeout=30)
    assert p.capa()["SASL"] == ["PLAIN", "SCRAM-SHA-256"]
    p.quit()
    lc = connect(env)
    cl = Scram(user, PASSWORD, b"p=tls-exporter,,")
    lc.send("AUTH SCRAM-SHA-256-PLUS %s\r\n" % cl.first())
    assert line(lc) == "-ERR [AUTH] unsupported mechanism"
    r, _ = scram(lc, user, PASSWORD, cbind=b"y,,")
    assert r.startswith("+OK"), r
    quit(lc)
