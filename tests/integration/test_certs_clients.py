"""Client certificates end to end with real clients (issue 7).

Everything comes from `sealctl`: the CA (`cert init-ca`), the server certificate
(`cert server`), the users (`user add`) and their certificates (`cert issue`). Clients:
curl (imaps, pop3s, smtps with --cert/--key and SASL EXTERNAL, and on PREAUTH listeners),
Python's ssl with imaplib, poplib and smtplib (EXTERNAL and PREAUTH), Node's imapflow and
nodemailer (PREAUTH: they cannot send EXTERNAL), and certtool opening the PKCS#12 file.
CaEnv is shared with test_certs_refusals.py.
"""
import base64
import imaplib
import json
import os
import poplib
import re
import shutil
import smtplib
import ssl
import subprocess

import pytest

import harness

DOMAIN = harness.DOMAIN
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
PASSWORD = "pw of the users"
P12_PASSWORD = "p12 secret"
NODE_DIR = os.path.join(os.path.dirname(__file__), "node")

# A listener set with every way in: EXTERNAL (optional certificate) and PREAUTH.
LISTENERS = [
    {"protocol": "imap", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "imap", "tls": "implicit", "client_certificate": "required",
     "certificate_login": "preauth"},
    {"protocol": "pop3", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "submission", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "submission", "tls": "implicit", "client_certificate": "optional",
     "certificate_login": "preauth"},
    {"protocol": "imap", "tls": "implicit", "client_certificate": "required"},
]


class CaEnv:
    """A started sealmaild whose PKI is sealctl's. Attributes: srv, ca_crt, ca_key, crl,
    certs (address -> dict(crt, key, p12, serial))."""

    def __init__(self, make_server, listeners=LISTENERS, extra_yaml="", users=(ALICE, BOB),
                 issue=(ALICE,), before_start=None):
        srv = make_server(start=False, listeners=listeners, extra_yaml=extra_yaml)
        self.srv = srv
        self.sealctl("cert", "init-ca", "--name", "IT Client CA", "--days", "30")
        ca_dir = srv.ca_dir
        self.ca_crt = os.path.join(ca_dir, "ca.crt")
        self.ca_key = os.path.join(ca_dir, "ca.key")
        self.crl = os.path.join(ca_dir, "crl.pem")
        self.sealctl("cert", "server", srv.hostname, "--ip", "127.0.0.1", "--out",
                     os.path.join(srv.dir, "certs"))
        srv.tls = {"client_ca": self.ca_crt, "crl": self.crl}
        srv.write_config()
        for u in users:
            self.sealctl("user", "add", u, "--password-stdin", stdin=PASSWORD + "\n")
        self.certs = {}
        for u in issue:
            self.issue(u)
        if before_start:
            before_start(self)
        srv.start()

    def sealctl(self, *args, stdin=None, check=True):
        r = subprocess.run([harness.tool("sealctl"), "-c", self.srv.config_path, *args],
                           input=stdin, capture_output=True, text=True, timeout=60,
                           env=harness.server_env())
        if check:
            assert r.returncode == 0, "sealctl %s: exit %d: %s" % (" ".join(args),
                                                                   r.returncode, r.stderr)
        assert not harness.sanitizer_reports(r.stderr), r.stderr
        return r.stdout

    def issue(self, address, *extra):
        os.makedirs(os.path.join(self.srv.dir, "issued"), exist_ok=True)
        out_dir = os.path.join(self.srv.dir, "issued", address)
        out = self.sealctl("cert", "issue", address, "--out", out_dir, "--p12-password-stdin",
                           *extra, stdin=P12_PASSWORD + "\n")
        c = {"crt": os.path.join(out_dir, address + ".crt"),
             "key": os.path.join(out_dir, address + ".key"),
             "p12": os.path.join(out_dir, address + ".p12"),
             "serial": re.search(r"serial\s+([0-9a-f]+)", out).group(1)}
        self.certs[address] = c
        return c

    def certtool_leaf(self, name, template):
        """A client certificate signed by the sealctl CA with certtool (for what sealctl
        will not make: expired, no e-mail identity, an address that is not a user)."""
        d = os.path.join(self.srv.dir, "made")
        os.makedirs(d, exist_ok=True)
        key = os.path.join(d, name + ".key")
        crt = os.path.join(d, name + ".crt")
        tmpl = os.path.join(d, name + ".tmpl")
        with open(tmpl, "w") as f:
            f.write(template)
        for args in (["--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1",
                      "--outfile", key],
                     ["--generate-certificate", "--load-privkey", key,
                      "--load-ca-certificate", self.ca_crt, "--load-ca-privkey", self.ca_key,
                      "--template", tmpl, "--outfile", crt]):
            r = subprocess.run(["certtool", *args], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        return {"crt": crt, "key": key}

    def ctx(self, who=None, cert=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca_crt)
        if who is not None:
            cert = self.certs[who]
        if cert is not None:
            ctx.load_cert_chain(cert["crt"], cert["key"])
        return ctx

    def port(self, index):
        """Port of LISTENERS-style entry number index (in listener order)."""
        l = self.srv.listeners[index]
        n = sum(1 for x in self.srv.listeners[:index]
                if (x["protocol"], x["tls"]) == (l["protocol"], l["tls"]))
        return self.srv.port(l["protocol"], l["tls"], n)

    def imap(self, index, who=None, cert=None):
        return imaplib.IMAP4_SSL("127.0.0.1", self.port(index), ssl_context=self.ctx(who, cert),
                                 timeout=30)

    def pop3(self, index, who=None, cert=None):
        return poplib.POP3_SSL("127.0.0.1", self.port(index), context=self.ctx(who, cert),
                               timeout=30)

    def smtp(self, index, who=None, cert=None):
        return smtplib.SMTP_SSL("127.0.0.1", self.port(index), context=self.ctx(who, cert),
                                timeout=30)


IMAP_EXT, IMAP_PREAUTH, POP3_EXT, SUB_EXT, SUB_PREAUTH, IMAP_REQ = range(6)


@pytest.fixture
def env(make_server):
    return CaEnv(make_server)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def curl(env, who, url, *args):
    c = env.certs[who]
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", env.ca_crt,
                        "--cert", c["crt"], "--key", c["key"], *args, url],
                       capture_output=True, text=True, timeout=30)
    return r


# --------------------------------------------------------------------------- PKCS#12


def test_p12_opens_with_certtool_and_the_password(env):
    c = env.certs[ALICE]
    r = subprocess.run(["certtool", "--p12-info", "--inder", "--password", P12_PASSWORD,
                        "--infile", c["p12"]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ALICE in r.stdout + r.stderr
    assert "BEGIN CERTIFICATE" in r.stdout and "PRIVATE KEY" in r.stdout
    r = subprocess.run(["certtool", "--p12-info", "--inder", "--password", "wrong",
                        "--infile", c["p12"]], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


# --------------------------------------------------------------------------- curl


def test_curl_imaps_external_and_preauth(env):
    since = env.srv.log_size()
    url = "imaps://127.0.0.1:%d/" % env.port(IMAP_EXT)
    r = curl(env, ALICE, url, "--login-options", "AUTH=EXTERNAL", "-u", ALICE + ":")
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout, r.stdout
    env.srv.wait_log(r"proto=imap event=auth_ok mech=EXTERNAL user=%s ip=127\.0\.0\.1 "
                     r"serial=%s" % (re.escape(ALICE), env.certs[ALICE]["serial"]), since)
    # PREAUTH: no user name at all.
    r = curl(env, ALICE, "imaps://127.0.0.1:%d/" % env.port(IMAP_PREAUTH))
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout, r.stdout


def test_curl_pop3s_external(env):
    since = env.srv.log_size()
    r = curl(env, ALICE, "pop3s://127.0.0.1:%d/" % env.port(POP3_EXT), "--login-options",
             "AUTH=EXTERNAL", "-u", ALICE + ":")
    assert r.returncode == 0, r.stderr
    env.srv.wait_log(r"proto=pop3 event=auth_ok mech=EXTERNAL user=%s" % re.escape(ALICE),
                     since)


def test_curl_smtps_external_and_certificate_login(env, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: %s\r\nTo: %s\r\nSubject: curl\r\n\r\nhi\r\n"
                    % (ALICE.encode(), BOB.encode()))
    since = env.srv.log_size()
    r = curl(env, ALICE, "smtps://127.0.0.1:%d" % env.port(SUB_EXT), "--login-options",
             "AUTH=EXTERNAL", "-u", ALICE + ":", "--mail-from", ALICE, "--mail-rcpt", BOB,
             "-T", str(msg))
    assert r.returncode == 0, r.stderr
    env.srv.wait_log(r"proto=\w+ event=auth_ok mech=EXTERNAL user=%s ip=\S+ serial=%s"
                     % (re.escape(ALICE), env.certs[ALICE]["serial"]), since)
    # certificate_login: preauth: no AUTH at all.
    r = curl(env, ALICE, "smtps://127.0.0.1:%d" % env.port(SUB_PREAUTH), "--mail-from", ALICE,
             "--mail-rcpt", BOB, "-T", str(msg))
    assert r.returncode == 0, r.stderr
    # The certificate's user may not send as someone else.
    r = curl(env, ALICE, "smtps://127.0.0.1:%d" % env.port(SUB_PREAUTH), "--mail-from", BOB,
             "--mail-rcpt", BOB, "-T", str(msg))
    assert r.returncode != 0 and "553" in r.stderr, r.stderr


# --------------------------------------------------------------------------- Python


def test_imaplib_external_with_and_without_authzid(env):
    m = env.imap(IMAP_EXT, ALICE)
    assert "AUTH=EXTERNAL" in m.capabilities
    typ, _ = m.authenticate("EXTERNAL", lambda _: b"")
    assert typ == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    m = env.imap(IMAP_EXT, ALICE)
    assert m.authenticate("EXTERNAL", lambda _: ALICE.encode())[0] == "OK"
    m.logout()
    # Initial response (SASL-IR), "=" for empty.
    m = env.imap(IMAP_EXT, ALICE)
    typ, data = m._simple_command("AUTHENTICATE", "EXTERNAL", "=")
    assert typ == "OK", data
    m.logout()


def test_imaplib_external_refusals(env):
    since = env.srv.log_size()
    m = env.imap(IMAP_EXT, ALICE)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: BOB.encode())
    m.logout()
    env.srv.wait_log(r"event=auth_failed mech=EXTERNAL user=%s .*reason=authzid_mismatch"
                     % re.escape(ALICE), since)
    # Without a certificate EXTERNAL is not offered, and refused.
    m = env.imap(IMAP_EXT)
    assert "AUTH=EXTERNAL" not in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("EXTERNAL", lambda _: b"")
    m.logout()
    env.srv.wait_log(r"event=auth_failed mech=EXTERNAL .*reason=no_certificate", since)


def test_imaplib_preauth(env):
    m = env.imap(IMAP_PREAUTH, ALICE)
    assert m.state == "AUTH"
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_poplib_external(env):
    p = env.pop3(POP3_EXT, ALICE)
    assert "EXTERNAL" in p.capa()["SASL"]
    assert p._shortcmd("AUTH EXTERNAL " + b64(ALICE)).startswith(b"+OK")
    assert p.stat()[0] == 0
    p.quit()


def test_smtplib_external(env):
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    assert "EXTERNAL" in s.esmtp_features["auth"].split()
    code, _ = s.docmd("AUTH", "EXTERNAL =")
    assert code == 235
    s.sendmail(ALICE, [BOB], b"Subject: py\r\n\r\nhi\r\n")
    s.quit()
    # Without an initial response: 334, then the authzid.
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    s.auth("EXTERNAL", lambda challenge=None: ALICE, initial_response_ok=False)
    s.quit()
    # Another authzid: 535 5.7.8.
    s = env.smtp(SUB_EXT, ALICE)
    s.ehlo()
    code, text = s.docmd("AUTH", "EXTERNAL " + b64(BOB))
    assert code == 535 and text.startswith(b"5.7.8"), (code, text)
    s.quit()
    # No certificate: not offered, and refused.
    s = env.smtp(SUB_EXT)
    s.ehlo()
    assert "EXTERNAL" not in s.esmtp_features["auth"].split()
    code, _ = s.docmd("AUTH", "EXTERNAL =")
    assert code == 535
    s.quit()


def test_smtplib_certificate_login(env):
    s = env.smtp(SUB_PREAUTH, ALICE)
    s.ehlo()
    s.sendmail(ALICE, [BOB], b"Subject: preauth\r\n\r\nhi\r\n")
    with pytest.raises(smtplib.SMTPSenderRefused):
        s.sendmail(BOB, [ALICE], b"Subject: forged\r\n\r\nhi\r\n")
    s.quit()


# --------------------------------------------------------------------------- Node


def test_imapflow_and_nodemailer_with_a_certificate(env):
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    for mod in ("imapflow", "nodemailer"):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", mod)):
            pytest.skip("%s is not installed: run npm ci --prefix tests/integration/node" % mod)
    c = env.certs[ALICE]
    job = {"imap_port": env.port(IMAP_PREAUTH), "smtp_port": env.port(SUB_PREAUTH),
           "ca": env.ca_crt, "cert": c["crt"], "key": c["key"], "from": ALICE, "to": [ALICE]}
    r = subprocess.run(["node", os.path.join(NODE_DIR, "certs.js"), json.dumps(job)],
                       cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    assert out["smtp"]["response"].startswith("250"), out
    assert out["imap"]["exists"] >= 1 and "from nodemailer" in out["imap"]["subjects"], out
