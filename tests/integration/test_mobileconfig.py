"""Apple configuration profiles from `sealctl cert issue ADDRESS --mobileconfig FILE`: CMS
SignedData that verifies with the server certificate's CA (openssl smime -verify), a plist
(plistlib) with the mail account (IMAP and submission over TLS, the configured host name
and ports) and the identity payload: the legacy PKCS#12 that opens with the given password
and holds the user's certificate. The password itself is never in the profile."""
import os
import plistlib
import socket
import subprocess

import pytest

import harness
from test_certs_clients import ALICE, P12_PASSWORD, CaEnv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(make_server):
    listeners = [
        {"protocol": "imap", "tls": "starttls", "port": free_port()},
        {"protocol": "imap", "tls": "implicit", "port": free_port()},
        {"protocol": "submission", "tls": "implicit", "port": free_port()},
    ]
    return CaEnv(make_server, listeners=listeners, issue=())


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, (args, r.stderr.decode(errors="replace"))
    return r.stdout


def test_profile_signed_with_account_and_identity(env):
    path = os.path.join(env.srv.dir, "alice.mobileconfig")
    c = env.issue(ALICE, "--mobileconfig", path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path, "rb") as f:
        der = f.read()
    assert P12_PASSWORD.encode() not in der
    # The server certificate was issued by the test CA (sealctl cert server).
    xml = openssl("smime", "-verify", "-inform", "DER", "-CAfile", env.ca_crt,
                  "-purpose", "any", data=der)
    pl = plistlib.loads(xml)
    assert pl["PayloadType"] == "Configuration"
    assert pl["PayloadVersion"] == 1
    kinds = {p["PayloadType"]: p for p in pl["PayloadContent"]}
    mail = kinds["com.apple.mail.managed"]
    assert mail["EmailAddress"] == ALICE
    assert mail["IncomingMailServerHostName"] == env.srv.hostname
    imap_implicit = env.srv.listeners[1]["port"]
    assert mail["IncomingMailServerPortNumber"] == imap_implicit
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerPortNumber"] == env.srv.listeners[2]["port"]
    assert mail["OutgoingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == ALICE
    uuids = [p["PayloadUUID"] for p in pl["PayloadContent"]] + [pl["PayloadUUID"]]
    assert len(set(uuids)) == 3
    ident = kinds["com.apple.security.pkcs12"]
    assert "Password" not in ident
    p12 = ident["PayloadContent"]
    with open(c["p12"], "rb") as f:
        assert p12 == f.read()
    pem = openssl("pkcs12", "-nokeys", "-clcerts", "-passin", "pass:" + P12_PASSWORD,
                  data=p12)
    with open(c["crt"]) as f:
        crt = f.read()
    body = lambda s: "".join(s.split("-----BEGIN CERTIFICATE-----")[1]
                             .split("-----END CERTIFICATE-----")[0].split())
    assert body(pem.decode()) == body(crt)
    # The wrong password does not open it.
    r = subprocess.run(["openssl", "pkcs12", "-nokeys", "-passin", "pass:wrong"], input=p12,
                       capture_output=True, timeout=60)
    assert r.returncode != 0


def test_profile_tampered_does_not_verify(env):
    path = os.path.join(env.srv.dir, "bob.mobileconfig")
    env.sealctl("user", "add", "carol@" + harness.DOMAIN, "--password-stdin",
                stdin="pw pw pw\n")
    env.issue("carol@" + harness.DOMAIN, "--mobileconfig", path)
    with open(path, "rb") as f:
        der = bytearray(f.read())
    i = der.find(b"EmailTypeIMAP")
    assert i > 0
    der[i] ^= 0x20
    r = subprocess.run(["openssl", "smime", "-verify", "-inform", "DER", "-CAfile",
                        env.ca_crt, "-purpose", "any"], input=bytes(der), capture_output=True,
                       timeout=60)
    assert r.returncode != 0


def test_profile_needs_an_imap_listener(make_server):
    e = CaEnv(make_server, listeners=[{"protocol": "submission", "tls": "implicit",
                                       "port": free_port()}], issue=())
    out_dir = os.path.join(e.srv.dir, "issued")
    r = subprocess.run([harness.tool("sealctl"), "-c", e.srv.config_path, "cert", "issue",
                        ALICE, "--out", out_dir, "--mobileconfig",
                        os.path.join(e.srv.dir, "x.mobileconfig"), "--p12-password-stdin"],
                       input="pw pw pw\n", capture_output=True, text=True, timeout=60,
                       env=harness.server_env())
    assert r.returncode != 0
    assert "imap listener" in r.stderr, r.stderr
