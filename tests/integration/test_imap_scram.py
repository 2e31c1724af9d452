"""IMAP AUTHENTICATE SCRAM-SHA-256 (RFC 5802, 7677; RFC 9051 6.2.2, SASL-IR RFC 4959)
against the real sealmaild: imaplib's authenticate() with the SCRAM client of
scram_client.py, and raw lines where imaplib cannot say it (SASL-IR, cancels, hostile input).
The exchange is the one SMTP uses (server/auth/scram_login.c); these tests check that IMAP
speaks it right and that every refusal answers like the same refusal of PLAIN.

Each test connects from its own loopback address and uses its own accounts, so the
failed-login delays of one test do not slow another. The module's server turns
auth.channel_binding on (SCRAM-SHA-256-PLUS is offered only then)."""
import base64
import imaplib
import itertools
import os
import socket
import sqlite3
import ssl
import subprocess

import pytest

import harness
from harness import DOMAIN
from imap_env import PASSWORD, ImapEnv
from scram_client import Scram, attrs, b64

CHANNEL_BINDING = "auth:\n  channel_binding: true\n"
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
    return ImapEnv(server)


def connect(env, port=None, ctx=None, source=None):
    """A LineClient after the greeting, from a loopback address of its own."""
    source = source or "127.0.0.%d" % next(_source)
    raw = socket.create_connection(("127.0.0.1", port or env.port), timeout=30,
                                   source_address=(source, 0))
    sock = (ctx or env.ctx()).wrap_socket(raw, server_hostname="127.0.0.1")
    lc = harness.LineClient(sock, timeout=30)
    assert lc.readline().startswith(b"* OK")
    lc.source = source
    return lc


def scram(lc, tag, user, password, ir=True, mech="SCRAM-SHA-256", cbind=b"n,,", cb_data=b"",
          tamper=False, nonce=None, ack=""):
    """One AUTHENTICATE exchange; returns (the lines up to the tagged reply, server-first)."""
    cl = Scram(user, password, cbind)
    if ir:
        lc.send("%s AUTHENTICATE %s %s\r\n" % (tag, mech, cl.first()))
    else:
        lc.send("%s AUTHENTICATE %s\r\n" % (tag, mech))
        line = lc.readline()
        assert line == b"+ \r\n", line
        lc.send(cl.first() + "\r\n")
    line = lc.readline()
    if not line.startswith(b"+ "):
        return [line], None
    server_first = line[2:].strip().decode()
    lc.send(cl.final(server_first, cb_data, tamper, nonce) + "\r\n")
    line = lc.readline()
    if not line.startswith(b"+ "):
        return [line], server_first
    cl.check_server_final(line[2:].strip().decode())
    lc.send(ack + "\r\n")
    return lc.imap_tagged(tag), server_first


def tagged(lines):
    return lines[-1].decode().rstrip("\r\n")


def logged_in(lc, tag="chk"):
    lc.send("%s SELECT INBOX\r\n" % tag)
    return tagged(lc.imap_tagged(tag)).startswith(tag + " OK")


def plain_reply(env, user, password, port=None, ctx=None):
    """The tagged reply of AUTHENTICATE PLAIN, to compare SCRAM's refusals with."""
    lc = connect(env, port, ctx)
    ir = b64(b"\0" + user.encode() + b"\0" + password.encode())
    lc.send("p1 AUTHENTICATE PLAIN %s\r\n" % ir)
    r = tagged(lc.imap_tagged("p1"))
    lc.close()
    return r[len("p1 "):]


def capabilities(lc, tag="c1"):
    lc.send("%s CAPABILITY\r\n" % tag)
    lines = lc.imap_tagged(tag)
    caps = [l for l in lines if l.startswith(b"* CAPABILITY")][0]
    return caps.split()[2:]


def sql(env, statement, *args):
    con = sqlite3.connect(os.path.join(env.srv.dir, "data", "mail.db"), timeout=10)
    try:
        con.execute(statement, args)
        con.commit()
    finally:
        con.close()


# --------------------------------------------------------------------------- success


def test_capability_lists_scram_before_login_only(env):
    user = env.add_user("capa")
    lc = connect(env)
    caps = capabilities(lc)
    assert b"AUTH=PLAIN" in caps and b"AUTH=SCRAM-SHA-256" in caps, caps
    assert b"AUTH=SCRAM-SHA-256-PLUS" in caps and b"SASL-IR" in caps, caps
    r, _ = scram(lc, "a1", user, PASSWORD)
    assert tagged(r).startswith("a1 OK [CAPABILITY "), r
    assert b"AUTH=SCRAM-SHA-256" not in r[-1]
    assert not any(c.startswith(b"AUTH=") for c in capabilities(lc, "c2"))
    lc.close()


def test_imaplib_authenticate_logs_in_and_is_logged(env):
    user = env.add_user("imaplib")
    since = env.srv.log_size()
    m = env.imaps()
    cl = Scram(user, PASSWORD)
    typ, data = m.authenticate("SCRAM-SHA-256", cl.mech())
    assert typ == "OK", data
    assert m.state == "AUTH"
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    env.srv.wait_log(r"proto=imap event=auth_ok mech=SCRAM-SHA-256 user=%s ip=127\.0\.0\.1"
                     % user, since=since)


def test_sasl_ir_any_case_and_the_first_response_in_a_continuation(env):
    user = env.add_user("ir")
    lc = connect(env)
    r, _ = scram(lc, "a1", user.upper(), PASSWORD, mech="scram-sha-256")
    assert tagged(r).startswith("a1 OK"), r
    assert logged_in(lc)
    lc.close()
    lc = connect(env)
    r, _ = scram(lc, "a1", user, PASSWORD, ir=False)
    assert tagged(r).startswith("a1 OK"), r
    assert logged_in(lc)
    lc.close()


def test_secrets_are_not_logged(env):
    log = env.srv.log()
    assert PASSWORD not in log
    assert "AUTHENTICATE SCRAM" not in log and ",p=" not in log and "bj0s" not in log


# --------------------------------------------------------------------------- refusals


def test_wrong_password_and_unknown_user_answer_alike_and_are_logged(env):
    user = env.add_user("wrong")
    nobody = "nobody-imap@" + DOMAIN
    since = env.srv.log_size()
    lc = connect(env)
    wrong, sf_wrong = scram(lc, "a1", user, "not the password")
    lc.close()
    lc = connect(env)
    unknown, sf_unknown = scram(lc, "a1", nobody, PASSWORD)
    lc.close()
    assert tagged(wrong) == tagged(unknown) == "a1 NO [AUTHENTICATIONFAILED] Invalid credentials"
    assert tagged(wrong)[3:] == plain_reply(env, user, "not the password either")

    # An unknown user's server-first-message looks like a real one, with a stable salt.
    def shape(sf):
        a = attrs(sf)
        return len(a["s"]), a["i"], len(a["r"])
    assert shape(sf_wrong) == shape(sf_unknown)
    lc = connect(env)
    _, again = scram(lc, "a1", nobody, "other")
    lc.close()
    assert attrs(again)["s"] == attrs(sf_unknown)["s"]
    for who in (user, nobody):
        env.srv.wait_log(r"proto=imap event=auth_failed mech=SCRAM-SHA-256 user=%s "
                         r"ip=127\.0\.0\.\d+ reason=bad_credentials" % who, since=since)


def test_failures_wait_like_other_failures_and_success_does_not(env):
    """The failed-login delays of auth.h (0, 250, 500, 1000, 2000 ms...): after four
    failures from an address the fifth waits 2 s, and a right password sent after it from
    the same address is answered first, because only failures wait."""
    user = env.add_user("throttle")
    source = "127.0.0.%d" % next(_source)
    for i in range(4):
        lc = connect(env, source=source)
        r, _ = scram(lc, "a1", user, "wrong %d" % i)
        assert tagged(r).startswith("a1 NO [AUTHENTICATIONFAILED]"), r
        lc.close()
    slow = connect(env, source=source)
    cl = Scram(user, "wrong again")
    slow.send("s1 AUTHENTICATE SCRAM-SHA-256 %s\r\n" % cl.first())
    line = slow.readline()
    slow.send(cl.final(line[2:].strip().decode()) + "\r\n")
    fast = connect(env, source=source)
    r, _ = scram(fast, "f1", user, PASSWORD)
    assert tagged(r).startswith("f1 OK"), r
    assert slow.buf == b""
    slow.sock.setblocking(False)
    try:
        pending = slow.sock.recv(4096)
    except (BlockingIOError, ssl.SSLWantReadError):
        pending = b""
    slow.sock.settimeout(30)
    assert pending == b"", pending  # the failure is still waiting
    assert tagged(slow.imap_tagged("s1")).startswith("s1 NO [AUTHENTICATIONFAILED]")
    slow.close()
    fast.close()


def test_cancel_at_every_step(env):
    user = env.add_user("cancel")
    lc = connect(env)
    lc.send("a1 AUTHENTICATE SCRAM-SHA-256\r\n")
    assert lc.readline() == b"+ \r\n"
    lc.send("*\r\n")
    assert tagged(lc.imap_tagged("a1")) == "a1 BAD Authentication cancelled"
    cl = Scram(user, PASSWORD)
    lc.send("a2 AUTHENTICATE SCRAM-SHA-256 %s\r\n" % cl.first())
    assert lc.readline().startswith(b"+ ")
    lc.send("*\r\n")
    assert tagged(lc.imap_tagged("a2")) == "a2 BAD Authentication cancelled"
    # After the server-final-message: the proof was right, but the client did not accept
    # the server's signature, so it is not logged in.
    r, _ = scram(lc, "a3", user, PASSWORD, ack="*")
    assert tagged(r) == "a3 BAD Authentication cancelled", r
    assert not logged_in(lc)
    r, _ = scram(lc, "a4", user, PASSWORD)
    assert tagged(r).startswith("a4 OK"), r
    lc.close()


def test_malformed_messages(env):
    user = env.add_user("malformed")
    lc = connect(env)
    for n, ir in enumerate(["!!!", "=", b64(b"n,,r=nonce-without-name"),
                            b64(b"m=ext,n=" + user.encode() + b",r=abc"),
                            b64(b"x,,n=" + user.encode()), b64(b"n,,n=a\0b,r=abc")]):
        tag = "m%d" % n
        lc.send("%s AUTHENTICATE SCRAM-SHA-256 %s\r\n" % (tag, ir))
        r = tagged(lc.imap_tagged(tag))
        assert r.startswith(tag + " BAD") or r.startswith(tag + " NO [AUTH"), (ir, r)
    # An empty first response in a continuation.
    lc.send("e1 AUTHENTICATE SCRAM-SHA-256\r\n")
    assert lc.readline() == b"+ \r\n"
    lc.send("\r\n")
    assert tagged(lc.imap_tagged("e1")).startswith("e1 BAD")
    # A client-final-message that is not one.
    cl = Scram(user, PASSWORD)
    lc.send("f1 AUTHENTICATE SCRAM-SHA-256 %s\r\n" % cl.first())
    assert lc.readline().startswith(b"+ ")
    lc.send(b64(b"c=biws,p=AAAA") + "\r\n")
    assert tagged(lc.imap_tagged("f1")) == "f1 NO [AUTHENTICATIONFAILED] Invalid credentials"
    # Mechanisms GNU SASL has but this server does not offer.
    lc.send("u1 AUTHENTICATE SCRAM-SHA-1 %s\r\n" % cl.first())
    assert tagged(lc.imap_tagged("u1")) == "u1 NO Unsupported authentication mechanism"
    lc.send("u2 AUTHENTICATE DIGEST-MD5\r\n")
    assert tagged(lc.imap_tagged("u2")) == "u2 NO Unsupported authentication mechanism"
    # A non-empty answer to the server-final-message: not logged in.
    r, _ = scram(lc, "n1", user, PASSWORD, ack=b64(b"v=yes"))
    assert tagged(r).startswith("n1 BAD"), r
    assert not logged_in(lc)
    r, _ = scram(lc, "n2", user, PASSWORD)
    assert tagged(r).startswith("n2 OK"), r
    lc.close()


def test_over_long_responses(env):
    user = env.add_user("long")
    lc = connect(env)
    lc.send("l1 AUTHENTICATE SCRAM-SHA-256\r\n")
    assert lc.readline() == b"+ \r\n"
    lc.send("A" * 5000 + "\r\n")
    assert tagged(lc.imap_tagged("l1")).startswith("l1 BAD [TOOBIG]")
    # Within the line limit but longer than any SCRAM message.
    lc.send("l2 AUTHENTICATE SCRAM-SHA-256\r\n")
    assert lc.readline() == b"+ \r\n"
    lc.send("QUFB" * 700 + "\r\n")
    assert tagged(lc.imap_tagged("l2")).startswith("l2 BAD")
    cl = Scram(user, PASSWORD)
    lc.send("l3 AUTHENTICATE SCRAM-SHA-256 %s\r\n" % cl.first())
    assert lc.readline().startswith(b"+ ")
    lc.send("A" * 5000 + "\r\n")
    assert tagged(lc.imap_tagged("l3")).startswith("l3 BAD [TOOBIG]")
    # The session goes on.
    r, _ = scram(lc, "l4", user, PASSWORD)
    assert tagged(r).startswith("l4 OK"), r
    lc.close()


def test_nonce_mismatch_fails(env):
    user = env.add_user("nonce")
    lc = connect(env)
    cl = Scram(user, PASSWORD)
    lc.send("a1 AUTHENTICATE SCRAM-SHA-256 %s\r\n" % cl.first())
    sf = lc.readline()[2:].strip().decode()
    lc.send(cl.final(sf, nonce=cl.nonce + "forged") + "\r\n")
    assert tagged(lc.imap_tagged("a1")) == "a1 NO [AUTHENTICATIONFAILED] Invalid credentials"
    r, _ = scram(lc, "a2", user, PASSWORD, tamper=True)
    assert tagged(r) == "a2 NO [AUTHENTICATIONFAILED] Invalid credentials"
    lc.close()


def test_channel_binding_flag_misuse_fails(env):
    user = env.add_user("cbind")
    cases = [
        # "y": could bind, believes the server cannot; PLUS is offered: a downgrade.
        dict(cbind=b"y,,"),
        # A binding asked for under the mechanism without one.
        dict(cbind=b"p=tls-exporter,,", cb_data=os.urandom(32)),
        # PLUS with the binding of another session.
        dict(mech="SCRAM-SHA-256-PLUS", cbind=b"p=tls-exporter,,", cb_data=os.urandom(32)),
        # PLUS without asking for a binding.
        dict(mech="SCRAM-SHA-256-PLUS", cbind=b"n,,"),
        # A binding type the server does not have.
        dict(mech="SCRAM-SHA-256-PLUS", cbind=b"p=tls-unique,,", cb_data=os.urandom(12)),
    ]
    for i, kw in enumerate(cases):
        lc = connect(env)
        r, _ = scram(lc, "a1", user, PASSWORD, **kw)
        assert not tagged(r).startswith("a1 OK"), (kw, r)
        assert not logged_in(lc)
        lc.close()


def test_user_without_scram_material_fails_like_a_wrong_password(env):
    user = env.add_user("noscram")
    sql(env, "UPDATE users SET scram_salt = NULL, scram_iterations = NULL, "
        "scram_stored_key = NULL, scram_server_key = NULL WHERE address = ?", user)
    lc = connect(env)
    r, sf = scram(lc, "a1", user, PASSWORD)
    assert sf is not None  # a server-first-message like anyone's
    assert tagged(r) == "a1 NO [AUTHENTICATIONFAILED] Invalid credentials"
    lc.close()
    assert plain_reply(env, user, PASSWORD).startswith("OK")


def test_disabled_user_fails_like_a_wrong_password(env):
    user = env.add_user("disabled")
    sql(env, "UPDATE users SET disabled = 1 WHERE address = ?", user)
    lc = connect(env)
    r, sf = scram(lc, "a1", user, PASSWORD)
    assert sf is not None
    assert tagged(r) == "a1 NO [AUTHENTICATIONFAILED] Invalid credentials"
    lc.close()
    assert plain_reply(env, user, PASSWORD) == "NO [AUTHENTICATIONFAILED] Invalid credentials"


def test_certificate_and_password_user(env):
    """A user whose flag demands a client certificate AND a password: SCRAM follows the
    rule PLAIN follows (login.h step 4), with the same replies."""
    alice = env.add_user("alice")  # the test client certificate's address
    bob = env.add_user("bob")
    r = subprocess.run([harness.tool("sealctl"), "-c", env.config, "user", "require-cert",
                        alice, "on"], capture_output=True)
    assert r.returncode == 0, r.stderr
    lc = connect(env)
    r, _ = scram(lc, "a1", alice, PASSWORD)
    assert tagged(r)[3:] == plain_reply(env, alice, PASSWORD), r
    assert "client certificate" in tagged(r), r
    lc.close()
    cert_port = env.srv.port_for("imap", "implicit", "required")
    ctx = env.ctx()
    ctx.load_cert_chain(env.srv.certs.client, env.srv.certs.client_key)
    lc = connect(env, cert_port, ctx)
    r, _ = scram(lc, "a1", alice, PASSWORD)
    assert tagged(r).startswith("a1 OK"), r
    lc.close()
    # Alice's certificate, bob's password: refused as with PLAIN.
    lc = connect(env, cert_port, ctx)
    r, _ = scram(lc, "a1", bob, PASSWORD)
    assert tagged(r)[3:] == plain_reply(env, bob, PASSWORD, cert_port, ctx), r
    assert tagged(r).startswith("a1 NO"), r
    lc.close()


# --------------------------------------------------------------------------- a real client


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"])
def test_gnu_sasl_client_logs_in(env, mech):
    """GNU SASL's gsasl (Debian package gsasl) over STARTTLS: SCRAM-SHA-256, and -PLUS with
    the tls-exporter binding of its own TLS session, which Python cannot produce. For the
    plain mechanism it is told not to bind: without --no-cb gsasl 2.2.0 gives up before its
    first message (also against a server that offers no -PLUS)."""
    user = env.add_user("gsasl")
    since = env.srv.log_size()
    args = ["gsasl", "--client", "--imap", "--connect=127.0.0.1:%d" % env.stls_port,
            "--starttls", "--x509-ca-file=" + env.ca, "--hostname=127.0.0.1",
            "-a", user, "-p", PASSWORD, "--mechanism", mech]
    if not mech.endswith("-PLUS"):
        args.append("--no-cb")
    r = subprocess.run(args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert b"OK [CAPABILITY" in r.stdout, r.stdout
    env.srv.wait_log(r"proto=imap event=auth_ok mech=%s user=%s " % (mech, user), since=since)


# --------------------------------------------------------------------------- the default


def test_without_channel_binding_plus_is_neither_offered_nor_accepted(make_server):
    env = ImapEnv(make_server())
    user = env.add_user("alice")
    lc = connect(env)
    caps = capabilities(lc)
    assert b"AUTH=SCRAM-SHA-256" in caps and b"AUTH=SCRAM-SHA-256-PLUS" not in caps, caps
    cl = Scram(user, PASSWORD, b"p=tls-exporter,,")
    lc.send("a1 AUTHENTICATE SCRAM-SHA-256-PLUS %s\r\n" % cl.first())
    assert tagged(lc.imap_tagged("a1")) == "a1 NO Unsupported authentication mechanism"
    # "y" is the truth here (no PLUS offered), not a downgrade.
    r, _ = scram(lc, "a2", user, PASSWORD, cbind=b"y,,")
    assert tagged(r).startswith("a2 OK"), r
    lc.close()
