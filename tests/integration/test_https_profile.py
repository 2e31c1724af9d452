"""GET /mobileconfig on an https listener: 401 with a Basic challenge without credentials
or with a wrong password; with the password (HTTP Basic) or the user's verified client
certificate, the signed profile (openssl smime -verify, plistlib) with the mail account
and, when sealctl published the user's PKCS#12 (cert issue --mobileconfig), that
identity; a disabled user is refused; revoking the certificate withdraws the identity."""
import base64
import http.client
import os
import plistlib
import socket
import ssl
import subprocess

import pytest

from test_certs_clients import ALICE, BOB, PASSWORD, CaEnv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(make_server):
    listeners = [
        {"protocol": "imap", "tls": "implicit", "port": free_port()},
        {"protocol": "submission", "tls": "implicit", "port": free_port()},
        {"protocol": "https", "tls": "implicit", "client_certificate": "optional"},
    ]
    e = CaEnv(make_server, listeners=listeners, issue=())
    e.mobileconfig = os.path.join(e.srv.dir, "alice.mobileconfig")
    e.issue(ALICE, "--mobileconfig", e.mobileconfig)
    return e


def get(env, user=None, password=None, cert=None):
    ctx = env.ctx(cert=cert)
    c = http.client.HTTPSConnection("127.0.0.1", env.srv.port("https", "implicit"),
                                    context=ctx, timeout=30)
    headers = {"Host": env.srv.hostname}
    if user is not None:
        tok = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        headers["Authorization"] = "Basic " + tok
    c.request("GET", "/mobileconfig", headers=headers)
    r = c.getresponse()
    body = r.read()
    out = r.status, dict(r.getheaders()), body
    c.close()
    return out


def payloads(env, der):
    r = subprocess.run(["openssl", "smime", "-verify", "-inform", "DER", "-CAfile", env.ca_crt,
                        "-purpose", "any"], input=der, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pl = plistlib.loads(r.stdout)
    return {p["PayloadType"]: p for p in pl["PayloadContent"]}


def test_needs_a_login(env):
    status, headers, body = get(env)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Basic realm="sealmail"'), headers
    status, headers, _ = get(env, ALICE, "not the password")
    assert status == 401 and "WWW-Authenticate" in headers
    assert "proto=https event=auth_failed" in env.srv.log()


def test_password_gives_account_and_identity(env):
    status, headers, der = get(env, ALICE, PASSWORD)
    assert status == 200, der
    assert headers["Content-Type"] == "application/x-apple-aspen-config"
    assert "attachment" in headers.get("Content-Disposition", "")
    p = payloads(env, der)
    mail = p["com.apple.mail.managed"]
    assert mail["EmailAddress"] == ALICE
    assert mail["IncomingMailServerPortNumber"] == env.srv.listeners[0]["port"]
    assert mail["OutgoingMailServerPortNumber"] == env.srv.listeners[1]["port"]
    with open(env.certs[ALICE]["p12"], "rb") as f:
        assert p["com.apple.security.pkcs12"]["PayloadContent"] == f.read()


def test_certificate_alone_is_enough(env):
    status, _, der = get(env, cert=env.certs[ALICE])
    assert status == 200, der
    assert payloads(env, der)["com.apple.mail.managed"]["EmailAddress"] == ALICE


def test_user_without_identity_and_disabled_user(env):
    status, _, der = get(env, BOB, PASSWORD)
    assert status == 200, der
    p = payloads(env, der)
    assert p["com.apple.mail.managed"]["EmailAddress"] == BOB
    assert "com.apple.security.pkcs12" not in p
    env.sealctl("user", "disable", BOB)
    status, _, _ = get(env, BOB, PASSWORD)
    assert status == 401


def test_revoked_certificate_is_withdrawn(env):
    out = env.sealctl("cert", "revoke", ALICE)
    assert "withdrew" in out, out
    status, _, der = get(env, ALICE, PASSWORD)
    assert status == 200
    assert "com.apple.security.pkcs12" not in payloads(env, der)
