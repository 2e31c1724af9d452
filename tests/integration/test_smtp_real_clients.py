"""Real mail clients sending through sealmaild's submission listeners, as users set them up.

- msmtp, swaks and nodemailer with a client certificate AND a password, on an implicit-TLS listener
  with `certificate_login: preauth`: the certificate logs the session in, and the clients
  still send AUTH, which must succeed for the certificate's own user.
- neomutt and msmtp with their defaults (a password, no certificate), on the default
  configuration (auth.channel_binding off: neomutt would otherwise pick
  SCRAM-SHA-256-PLUS, which it cannot bind).
- The curl commands of docs/certificates.md, read from the document and run as printed
  (only host, port, file paths and the CA to trust are adapted).
- The rules around AUTH on a certificate session with smtplib: AUTH as another user is
  535 5.7.8 (logged and throttled), a second AUTH after a successful one is 503.

Every sent message is then looked for in the recipient's INBOX. A test whose client binary
is missing is skipped (deploy/install-deps.sh installs them).
"""
import json
import os
import re
import shlex
import shutil
import smtplib
import subprocess
import time
import uuid

import pytest

import harness
from smtp_env import SmtpEnv
from test_certs_clients import ALICE, BOB, PASSWORD, CaEnv, b64

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, "..", "..", "docs", "certificates.md")

LISTENERS = [
    {"protocol": "submission", "tls": "implicit", "client_certificate": "optional",
     "certificate_login": "preauth"},
    {"protocol": "submission", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "imap", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "pop3", "tls": "implicit", "client_certificate": "optional"},
    {"protocol": "imap", "tls": "implicit", "client_certificate": "required",
     "certificate_login": "preauth"},
]
SUB_PREAUTH, SUB_OPTIONAL, IMAP_OPTIONAL, POP3_OPTIONAL, IMAP_PREAUTH = range(5)


def need(binary):
    if shutil.which(binary) is None:
        pytest.skip("%s is not installed (deploy/install-deps.sh installs it)" % binary)


@pytest.fixture
def env(make_server):
    return CaEnv(make_server, listeners=LISTENERS)


def marker():
    return "sealmail-" + uuid.uuid4().hex[:12]


def message(subject, sender=ALICE, rcpt=BOB):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: Tue, 03 Dec 2024 10:00:00 +0000\r\n"
            "Message-ID: <%s@client.example>\r\n\r\nsent by a real client\r\n"
            % (sender, rcpt, subject, subject)).encode()


def wait_delivered(env, rcpt, subject, timeout=10):
    store = SmtpEnv(env.srv)
    deadline = time.monotonic() + timeout
    while True:
        if any(("Subject: " + subject).encode() in body for body in store.inbox(rcpt)):
            return
        if time.monotonic() > deadline:
            pytest.fail("no message with Subject %s in %s's INBOX" % (subject, rcpt))
        time.sleep(0.1)


def run(args, tmp_path, stdin=None, timeout=60, extra_env=None):
    """A client run with a HOME of its own (no user configuration leaks in), no terminal."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb",
         "LANG": "C.UTF-8"}
    e.update(extra_env or {})
    return subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=e,
                          cwd=str(tmp_path))


def auth_ok(env, since, user=ALICE):
    return env.srv.wait_log(r"proto=submission event=auth_ok mech=\S+ user=%s"
                            % re.escape(user), since)


# --------------------------------------------------------------------------- msmtp


def msmtp_config(tmp_path, env, port, cert=None):
    lines = ["defaults", "tls on", "tls_starttls off", "tls_trust_file %s" % env.ca_crt,
             "logfile -", "", "account test", "host 127.0.0.1", "port %d" % port,
             "from %s" % ALICE, "auth on", "user %s" % ALICE, "password %s" % PASSWORD]
    if cert is not None:
        lines += ["tls_cert_file %s" % cert["crt"], "tls_key_file %s" % cert["key"]]
    rc = tmp_path / "msmtprc"
    rc.write_text("\n".join(lines) + "\n")
    rc.chmod(0o600)  # msmtp refuses a readable file with a password in it
    return str(rc)


def msmtp_send(env, tmp_path, port, cert=None):
    need("msmtp")
    rc = msmtp_config(tmp_path, env, port, cert)
    subject = marker()
    since = env.srv.log_size()
    r = run(["msmtp", "-C", rc, "-a", "test", BOB], tmp_path, stdin=message(subject))
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    wait_delivered(env, BOB, subject)
    return since


def test_msmtp_with_certificate_and_password_on_preauth_listener(env, tmp_path):
    since = msmtp_send(env, tmp_path, env.port(SUB_PREAUTH), env.certs[ALICE])
    # The certificate logged the session in, and msmtp's AUTH was taken as well.
    env.srv.wait_log(r"event=auth_ok mech=EXTERNAL user=%s" % re.escape(ALICE), since)
    auth_ok(env, since)


def test_msmtp_with_password_only(env, tmp_path):
    since = msmtp_send(env, tmp_path, env.port(SUB_OPTIONAL))
    auth_ok(env, since)


# --------------------------------------------------------------------------- swaks


def swaks(env, tmp_path, port, user, password, subject, cert=True):
    need("swaks")
    args = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--tls-on-connect",
            "--tls-verify", "--tls-ca-path", env.ca_crt, "--from", ALICE, "--to", BOB,
            "--auth-user", user, "--auth-password", password,
            "--header", "Subject: " + subject, "--body", "sent by swaks", "--timeout", "30"]
    if cert:
        args += ["--tls-cert", env.certs[ALICE]["crt"], "--tls-key", env.certs[ALICE]["key"]]
    return run(args, tmp_path)


def test_swaks_with_certificate_and_password_on_preauth_listener(env, tmp_path):
    subject = marker()
    since = env.srv.log_size()
    r = swaks(env, tmp_path, env.port(SUB_PREAUTH), ALICE, PASSWORD, subject)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    assert "235 2.7.0" in out, out
    wait_delivered(env, BOB, subject)
    auth_ok(env, since)


def test_swaks_as_another_user_on_a_certificate_session_fails(env, tmp_path):
    # Bob's right password on a session that Alice's certificate logged in: 535 5.7.8,
    # saying whose certificate it is (before any password check, so it tells nothing of
    # Bob's password), logged and counted as a failure.
    since = env.srv.log_size()
    r = swaks(env, tmp_path, env.port(SUB_PREAUTH), BOB, PASSWORD, marker())
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, out
    assert "535 5.7.8 Authentication refused: the client certificate on this connection " \
        "belongs to another user" in out, out
    env.srv.wait_log(r"proto=submission event=auth_failed mech=\S+ user=%s ip=127\.0\.0\.1 "
                     r"reason=certificate_user_mismatch" % re.escape(BOB), since)


# --------------------------------------------------------------------------- nodemailer


def test_nodemailer_with_certificate_and_password_on_preauth_listener(env):
    need("node")
    node_dir = os.path.join(HERE, "node")
    if not os.path.isdir(os.path.join(node_dir, "node_modules", "nodemailer")):
        pytest.skip("nodemailer is not installed: run npm ci --prefix tests/integration/node")
    subject = marker()
    c = env.certs[ALICE]
    job = {"host": "127.0.0.1", "port": env.port(SUB_PREAUTH), "secure": True, "user": ALICE,
           "pass": PASSWORD, "ca": env.ca_crt, "cert": c["crt"], "key": c["key"],
           "from": ALICE, "to": [BOB], "subject": subject, "text": "sent by nodemailer"}
    since = env.srv.log_size()
    r = subprocess.run(["node", os.path.join(node_dir, "send.js"), json.dumps(job)],
                       cwd=node_dir, capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    wait_delivered(env, BOB, subject)
    auth_ok(env, since)


# --------------------------------------------------------------------------- neomutt


def test_neomutt_with_its_defaults(env, tmp_path):
    need("neomutt")
    subject = marker()
    muttrc = tmp_path / "muttrc"
    muttrc.write_text("\n".join([
        'set from = "%s"' % ALICE,
        'set smtp_url = "smtps://%s@127.0.0.1:%d/"' % (ALICE.replace("@", "%40"),
                                                      env.port(SUB_OPTIONAL)),
        'set smtp_pass = "%s"' % PASSWORD,
        # The GnuTLS build's file of trusted certificates (the server's CA).
        'set certificate_file = "%s"' % env.ca_crt,
        'set ssl_ca_certificates_file = "%s"' % env.ca_crt,
        'set record = ""', "set copy = no", "set use_from = yes",
        'set header_cache = ""', 'set message_cachedir = ""', "",
    ]))
    body = tmp_path / "body.txt"
    body.write_bytes(b"sent by neomutt\n")
    since = env.srv.log_size()
    with open(body, "rb") as f:
        r = run(["neomutt", "-n", "-F", str(muttrc), "-s", subject, "--", BOB], tmp_path,
                stdin=f.read())
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0, out
    wait_delivered(env, BOB, subject)
    auth_ok(env, since)


# --------------------------------------------------------------------------- curl, from the docs


def doc_curl_commands():
    """The curl commands of the "curl / scripts" block of docs/certificates.md."""
    with open(DOC) as f:
        text = f.read()
    part = text[text.index("**curl / scripts**"):]
    block = part[part.index("```") + 3:]
    block = block[:block.index("```")]
    cmds = [shlex.split(c) for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    assert len(cmds) == 3 and all(c[0] == "curl" for c in cmds), cmds
    return cmds


def adapt(cmd, env, port, tmp_path):
    """Only what differs here: the certificate files, the message file, the port (the
    host name stays, resolved to 127.0.0.1) and the CA that signed the server."""
    c = env.certs[ALICE]
    files = {ALICE + ".crt": c["crt"], ALICE + ".key": c["key"],
             "message.eml": str(tmp_path / "message.eml")}
    out = [files.get(a, a) for a in cmd]
    url = out[-1]
    m = re.match(r"^(\w+)://([^/:]+)/$", url)
    assert m, url
    out[-1] = "%s://%s:%d/" % (m.group(1), m.group(2), port)
    return out[:1] + ["-sS", "--max-time", "20", "--cacert", env.ca_crt,
                      "--resolve", "%s:%d:127.0.0.1" % (m.group(2), port)] + out[1:]


def test_curl_examples_from_the_docs(env, tmp_path):
    need("curl")
    imap, pop3, smtp = doc_curl_commands()
    subject = marker()
    (tmp_path / "message.eml").write_bytes(message(subject))
    ports = [(imap, env.port(IMAP_OPTIONAL)), (pop3, env.port(POP3_OPTIONAL)),
             (smtp, env.port(SUB_OPTIONAL)),
             # The same commands on the certificate_login: preauth listeners: the
             # certificate logged the session in, and AUTH EXTERNAL for it still works.
             (imap, env.port(IMAP_PREAUTH)), (smtp, env.port(SUB_PREAUTH))]
    since = env.srv.log_size()
    for cmd, port in ports:
        args = adapt(cmd, env, port, tmp_path)
        r = run(args, tmp_path)
        assert r.returncode == 0, (args, r.stderr.decode(errors="replace"))
        if "imaps" in args[-1]:
            assert b"INBOX" in r.stdout, r.stdout
    wait_delivered(env, BOB, subject)
    env.srv.wait_log(r"proto=submission event=auth_ok mech=EXTERNAL user=%s"
                     % re.escape(ALICE), since)


# --------------------------------------------------------------------------- AUTH rules


def test_auth_on_a_certificate_session(env):
    port = env.port(SUB_PREAUTH)

    def session():
        s = smtplib.SMTP_SSL("127.0.0.1", port, context=env.ctx(ALICE), timeout=30)
        s.ehlo()
        assert "EXTERNAL" in s.esmtp_features["auth"].split()
        return s

    # EXTERNAL with no authorization identity, or with the certificate's own.
    for ir in ("=", b64(ALICE)):
        s = session()
        assert s.docmd("AUTH", "EXTERNAL " + ir)[0] == 235
        # RFC 4954: no AUTH after a successful one.
        code, text = s.docmd("AUTH", "PLAIN " + b64("\0%s\0%s" % (ALICE, PASSWORD)))
        assert (code, text) == (503, b"5.5.1 Already authenticated"), (code, text)
        s.sendmail(ALICE, [BOB], b"Subject: external\r\n\r\nhi\r\n")
        s.quit()
    # PLAIN and LOGIN with the user's password.
    for mech in ("PLAIN", "LOGIN"):
        s = session()
        s.user, s.password = ALICE, PASSWORD
        code, _ = s.auth(mech, getattr(s, "auth_" + mech.lower()))
        assert code == 235
        s.quit()
    since = env.srv.log_size()
    # Wrong password, another authzid, another user: 535 5.7.8, and the session stays
    # logged in by the certificate (a failed AUTH changes nothing).
    s = session()
    for arg in ("PLAIN " + b64("\0%s\0wrong" % ALICE), "EXTERNAL " + b64(BOB),
                "PLAIN " + b64("\0%s\0%s" % (BOB, PASSWORD))):
        code, text = s.docmd("AUTH", arg)
        assert code == 535 and text.startswith(b"5.7.8"), (arg, code, text)
    s.sendmail(ALICE, [BOB], b"Subject: still alice\r\n\r\nhi\r\n")
    with pytest.raises(smtplib.SMTPSenderRefused):
        s.sendmail(BOB, [ALICE], b"Subject: forged\r\n\r\nhi\r\n")
    s.quit()
    log = env.srv.log()[since:]
    assert re.search(r"event=auth_failed mech=PLAIN user=%s .*reason=bad_credentials"
                     % re.escape(ALICE), log), log
    assert re.search(r"event=auth_failed mech=EXTERNAL user=%s .*reason=authzid_mismatch"
                     % re.escape(ALICE), log), log
    assert re.search(r"event=auth_failed mech=PLAIN user=%s .*reason=certificate_user_mismatch"
                     % re.escape(BOB), log), log
    # They count: the next failure from this address waits.
    s = session()
    t0 = time.monotonic()
    assert s.docmd("AUTH", "PLAIN " + b64("\0%s\0%s" % (BOB, PASSWORD)))[0] == 535
    assert time.monotonic() - t0 >= 0.25
    s.quit()
