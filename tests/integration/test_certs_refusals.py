"""Client certificates that must NOT get in (issue 7, "Refusals"), against a sealmaild
whose PKI is sealctl's (CaEnv from test_certs_clients.py): no certificate on a required
listener, another CA, expired, no e-mail identity, not a user, revoked (SIGHUP, and the
CRL file changing without a signal), a TLS session resumed from before the revocation, a
live certificate session closed on revocation, a password login as another user on a
certificate session, require-cert users and auth.require_client_certificate with a
password alone, and a CRL past its nextUpdate failing closed."""
import imaplib
import poplib
import re
import signal
import smtplib
import socket
import ssl
import time
import types

import pytest

import harness
from test_certs_clients import (ALICE, BOB, DOMAIN, IMAP_EXT, IMAP_PREAUTH, IMAP_REQ, PASSWORD,
                                POP3_EXT, SUB_EXT, SUB_PREAUTH, CaEnv, b64)

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout,
           ConnectionAbortedError, OSError)


@pytest.fixture
def env(make_server):
    return CaEnv(make_server)


def greeting(env, index, who=None, cert=None, session=None, ctx=None):
    """Connects, returns (greeting line, ssl socket); raises when refused (TLS 1.3 shows a
    refusal on the first read). A session to resume needs the context that made it."""
    raw = socket.create_connection(("127.0.0.1", env.port(index)), timeout=5)
    ctx = ctx or env.ctx(who, cert)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    lc = harness.LineClient(s)
    line = lc.readline()
    if not line:
        lc.close()
        raise EOFError("closed before the greeting")
    return line, s


def refused(env, index, who=None, cert=None, session=None, ctx=None):
    try:
        line, s = greeting(env, index, who, cert, session, ctx)
    except REFUSED:
        return True
    s.close()
    raise AssertionError("greeted: %r" % line)


def test_required_listener_refuses_none_other_ca_and_expired(env, certs):
    since = env.srv.log_size()
    assert refused(env, IMAP_REQ)
    env.srv.wait_log(r"event=tls_failed", since)
    other = {"crt": certs.client_other, "key": certs.client_other_key}
    assert refused(env, IMAP_REQ, cert=other)
    expired = env.certtool_leaf("expired", 'cn = "alice"\nemail = "%s"\ntls_www_client\n'
                                'signing_key\nactivation_date = "2020-01-01 00:00:00"\n'
                                'expiration_date = "2020-02-01 00:00:00"\n' % ALICE)
    assert refused(env, IMAP_REQ, cert=expired)
    # On an optional listener such certificates are simply not verified: no EXTERNAL. The
    # log says they were refused and why, not that none was sent.
    for cert, why in ((other, "unknown CA"), (expired, "expired")):
        at = env.srv.log_size()
        m = env.imap(IMAP_EXT, cert=cert)
        assert "AUTH=EXTERNAL" not in m.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            m.authenticate("EXTERNAL", lambda _: b"")
        m.logout()
        env.srv.wait_log(r"proto=imap event=tls_established .* client_cert=refused "
                         r"reason=\"%s\"" % why, at)
    m = env.imap(IMAP_EXT)
    m.logout()
    env.srv.wait_log(r"event=tls_established .* client_cert=none\n", since)
    env.srv.wait_log(r"event=auth_failed mech=EXTERNAL .*reason=no_certificate", since)


def test_no_email_identity_and_not_a_user_authenticate_nobody(env):
    anon = env.certtool_leaf("anon", 'cn = "alice@%s"\ntls_www_client\nsigning_key\n'
                             'expiration_days = 10\n' % DOMAIN)
    stranger = env.certtool_leaf("stranger", 'cn = "x"\nemail = "nobody@%s"\ntls_www_client\n'
                                 'signing_key\nexpiration_days = 10\n' % DOMAIN)
    since = env.srv.log_size()
    # The TLS part is fine (the CA signed it), the login is not. Never the CN.
    m = env.imap(IMAP_EXT, cert=anon)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: ALICE.encode())
    m.logout()
    env.srv.wait_log(r"event=auth_failed mech=EXTERNAL .*reason=no_identity", since)
    m = env.imap(IMAP_EXT, cert=stranger)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: b"")
    m.logout()
    env.srv.wait_log(r"event=auth_failed mech=EXTERNAL user=nobody@\S+ .*reason=not_a_user", since)
    s = env.smtp(SUB_EXT, cert=stranger)
    s.ehlo()
    assert s.docmd("AUTH", "EXTERNAL =")[0] == 535
    s.quit()
    # A PREAUTH listener greets them with a plain OK, not PREAUTH.
    for cert in (anon, stranger):
        line, sock = greeting(env, IMAP_PREAUTH, cert=cert)
        sock.close()
        assert line.startswith(b"* OK"), line


def _revoke(env):
    out = env.sealctl("cert", "revoke", ALICE)
    assert env.certs[ALICE]["serial"] in out


def test_revoked_after_sighup_and_resumption_refused(env):
    # A first connection, and its TLS session (ticket), from before the revocation.
    ctx = env.ctx(ALICE)
    line, s = greeting(env, IMAP_REQ, ctx=ctx)
    assert line.startswith(b"* OK"), line
    s.sendall(b"a NOOP\r\n")
    s.recv(4096)
    session = s.session
    s.close()
    assert session is not None
    line, s = greeting(env, IMAP_REQ, session=session, ctx=ctx)
    assert s.session_reused, "the test cannot prove anything if nothing resumes"
    s.close()
    _revoke(env)
    since = env.srv.log_size()
    env.srv.signal(signal.SIGHUP)
    env.srv.wait_log(r"event=reloaded what=tls_context ticket_key=rotated", since)
    assert refused(env, IMAP_REQ, ALICE)
    assert refused(env, IMAP_REQ, session=session, ctx=ctx)
    env.srv.wait_log(r"event=tls_failed", since)
    # On the optional listener the revoked certificate is not a login either.
    m = env.imap(IMAP_EXT, ALICE)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: b"")
    m.logout()


def test_revoked_without_a_signal_and_live_session_closed(env):
    m = env.imap(IMAP_EXT, ALICE)
    assert m.authenticate("EXTERNAL", lambda _: b"")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    since = env.srv.log_size()
    _revoke(env)
    # The 2 s stat poll sees the new CRL; no SIGHUP.
    env.srv.wait_log(r"event=crl_changed", since, timeout=5)
    env.srv.wait_log(r"event=session_closed reason=certificate_revoked serial=%s"
                     % env.certs[ALICE]["serial"], since, timeout=5)
    with pytest.raises((imaplib.IMAP4.abort, OSError, EOFError)):
        m.noop()
        m.noop()
    assert refused(env, IMAP_REQ, ALICE)


OTHER_USER = "client certificate on this connection belongs to another user"


def test_password_login_as_another_user_on_a_certificate_session(env):
    """The refusal says the certificate is someone else's, not that one is required."""
    since = env.srv.log_size()
    m = env.imap(IMAP_EXT, ALICE)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(BOB, PASSWORD)
    assert e.value.args[0] == (b"[AUTHENTICATIONFAILED] The " + OTHER_USER.encode())
    m.logout()
    env.srv.wait_log(r"proto=imap event=auth_failed mech=PLAIN user=%s .*"
                     r"reason=certificate_user_mismatch" % re.escape(BOB), since)
    p = env.pop3(POP3_EXT, ALICE)
    p.user(BOB)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PASSWORD)
    assert e.value.args[0] == b"-ERR [AUTH] the " + OTHER_USER.encode()
    p.quit()
    env.srv.wait_log(r"proto=pop3 event=auth_failed mech=PLAIN user=%s .*"
                     r"reason=certificate_user_mismatch" % re.escape(BOB), since)
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(BOB, PASSWORD)
    assert e.value.smtp_code == 535 and OTHER_USER.encode() in e.value.smtp_error, e.value
    s.quit()
    env.srv.wait_log(r"proto=submission event=auth_failed mech=(PLAIN|LOGIN) user=%s .*"
                     r"reason=certificate_user_mismatch" % re.escape(BOB), since)
    # A wrong password gets the same answer: it is given before any password check, so a
    # certificate holder learns nothing of another account's password.
    m = env.imap(IMAP_EXT, ALICE)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(BOB, "not the password")
    assert e.value.args[0] == (b"[AUTHENTICATIONFAILED] The " + OTHER_USER.encode())
    m.logout()
    # The certificate's own user may use a password.
    m = env.imap(IMAP_EXT, ALICE)
    assert m.login(ALICE, PASSWORD)[0] == "OK"
    m.logout()


def test_require_cert_user_needs_the_certificate_too(env):
    env.sealctl("user", "require-cert", ALICE, "on")
    m = env.imap(IMAP_EXT)
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(ALICE, PASSWORD)
    assert b"certificate" in e.value.args[0]
    m.logout()
    s = env.smtp(SUB_EXT)
    s.ehlo()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s.login(ALICE, PASSWORD)
    s.quit()
    # Certificate AND password: the password login on the certificate session works;
    # EXTERNAL (the certificate alone) does not.
    m = env.imap(IMAP_EXT, ALICE)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: b"")
    assert m.login(ALICE, PASSWORD)[0] == "OK"
    m.logout()
    # Others are unaffected.
    m = env.imap(IMAP_EXT)
    assert m.login(BOB, PASSWORD)[0] == "OK"
    m.logout()


def test_require_client_certificate_for_everyone(make_server):
    env = CaEnv(make_server, extra_yaml="auth:\n  require_client_certificate: true\n",
                issue=(ALICE, BOB))
    for who in (ALICE, BOB):
        m = env.imap(IMAP_EXT)
        with pytest.raises(imaplib.IMAP4.error):
            m.login(who, PASSWORD)
        m.logout()
    m = env.imap(IMAP_EXT, BOB)
    assert "AUTH=EXTERNAL" not in m.capabilities
    assert m.login(BOB, PASSWORD)[0] == "OK"
    m.logout()
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    assert "EXTERNAL" not in s.esmtp_features["auth"].split()
    assert s.docmd("AUTH", "EXTERNAL =")[0] == 535
    s.login(ALICE, PASSWORD)
    s.quit()


def test_crl_past_next_update_fails_closed(env):
    since = env.srv.log_size()
    ca = types.SimpleNamespace(ca=env.ca_crt, ca_key=env.ca_key)
    # A current CRL that lapses two seconds later (one dated in the past would be refused
    # as older than the loaded one, see test_crl_lifecycle.py).
    harness.make_crl(ca, env.crl, number=1000, next_update=time.time() + 2)
    env.srv.wait_log(r"event=crl_expired", since, timeout=8)
    assert refused(env, IMAP_REQ, ALICE)
    assert refused(env, IMAP_PREAUTH, ALICE)
    m = env.imap(IMAP_EXT, ALICE)
    assert "AUTH=EXTERNAL" not in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: b"")
    m.logout()
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    assert s.docmd("AUTH", "EXTERNAL " + b64(ALICE))[0] == 535
    s.quit()


def test_preauth_respects_require_cert(env):
    env.sealctl("user", "require-cert", ALICE, "on")
    try:
        m = env.imap(IMAP_PREAUTH, ALICE)
        state = m.state
        m.logout()
        assert state == "NONAUTH"
        # SMTP submission: the certificate alone is no login either; AUTH is still needed.
        s = env.smtp(SUB_PREAUTH, ALICE)
        s.ehlo()
        code, _ = s.docmd("MAIL", "FROM:<%s>" % ALICE)
        assert code == 530, code
        s.login(ALICE, PASSWORD)
        code, _ = s.docmd("MAIL", "FROM:<%s>" % ALICE)
        assert code == 250, code
        s.quit()
    finally:
        env.sealctl("user", "require-cert", ALICE, "off")
