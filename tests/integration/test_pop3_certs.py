"""POP3 with client certificates: SASL EXTERNAL, and the certificate policy on passwords."""
import base64
import poplib
import ssl

import pytest

from pop3_env import Pop3Env, deliver

PASSWORD = "cert test password"


@pytest.fixture
def cert_env(make_server):
    srv = make_server(listeners=[
        {"protocol": "pop3", "tls": "implicit", "client_certificate": "optional"},
        {"protocol": "pop3", "tls": "starttls"},
    ])
    return Pop3Env(srv)


def connect(env, with_cert=True):
    ctx = ssl.create_default_context(cafile=env.ca)
    if with_cert:
        ctx.load_cert_chain(env.srv.certs.client, env.srv.certs.client_key)
    return poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=ctx, timeout=30)


def test_sasl_external_logs_in_as_the_certificate_user(cert_env):
    user = cert_env.add_user("alice", PASSWORD)  # the test client certificate's address
    deliver(cert_env, user, b"Subject: ext\r\n\r\nbody\r\n")
    p = connect(cert_env)
    caps = p.capa()
    assert caps["SASL"] == ["PLAIN", "SCRAM-SHA-256", "EXTERNAL"]
    assert p._shortcmd("AUTH EXTERNAL =").startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()
    # With an explicit authorization identity that is the certificate's own.
    p = connect(cert_env)
    authz = base64.b64encode(user.encode()).decode()
    assert p._shortcmd("AUTH EXTERNAL " + authz).startswith(b"+OK")
    p.quit()
    # Another identity is refused.
    p = connect(cert_env)
    other = base64.b64encode(b"bob@corp.example").decode()
    with pytest.raises(poplib.error_proto) as e:
        p._shortcmd("AUTH EXTERNAL " + other)
    assert b"[AUTH]" in e.value.args[0]
    p.quit()


def test_no_external_without_a_certificate(cert_env):
    cert_env.add_user("alice", PASSWORD)
    p = connect(cert_env, with_cert=False)
    assert p.capa()["SASL"] == ["PLAIN", "SCRAM-SHA-256"]
    with pytest.raises(poplib.error_proto):
        p._shortcmd("AUTH EXTERNAL =")
    p.quit()


def test_password_login_with_another_users_certificate_is_refused(cert_env):
    cert_env.add_user("alice", PASSWORD)
    bob = cert_env.add_user("bob", PASSWORD)
    p = connect(cert_env)
    p.user(bob)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    p.quit()
