"""SMTP submission end to end with real clients: smtplib (implicit TLS and STARTTLS, PLAIN and
LOGIN), swaks, curl and nodemailer; the stored message is read back from the database and must
be byte-identical apart from the fields the server adds (Received:, and Message-ID:/Date: when
missing)."""
import base64
import json
import os
import re
import shutil
import smtplib
import subprocess

import pytest

import harness
from smtp_env import (PASSWORD, SmtpEnv, dot_stuff, header_fields, sample_message,
                      strip_received)

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")


@pytest.fixture(scope="module")
def env(server):
    e = SmtpEnv(server)
    e.alice = e.add_user("alice")
    e.bob = e.add_user("bob")
    return e


def test_ehlo_after_tls_advertises_extensions(env):
    lc = env.raw()
    text = b"".join(env.raw().ehlo)
    for ext in (b"PIPELINING", b"SIZE", b"8BITMIME", b"SMTPUTF8", b"ENHANCEDSTATUSCODES",
                b"CHUNKING", b"DSN", b"REQUIRETLS", b"AUTH PLAIN LOGIN"):
        assert ext in text, text
    lc.close()


def test_smtplib_implicit_tls_plain_byte_identical(env):
    msg = sample_message(env.alice, env.bob)
    before = len(env.inbox(env.bob))
    with env.smtps() as s:
        s.login(env.alice, PASSWORD)  # smtplib picks PLAIN
        refused = s.sendmail(env.alice, [env.bob], msg)
        assert refused == {}
    box = env.inbox(env.bob)
    assert len(box) == before + 1
    stored = box[-1]
    assert strip_received(stored) == msg
    received = stored.split(b"\r\n\tby", 1)[0]
    assert b"(using TLSv1.3 with cipher " in stored[:600]
    assert b"(authenticated user %s by PLAIN)" % env.alice.encode() in received
    assert stored.startswith(b"Return-Path: <%s>\r\nReceived: " % env.alice.encode())
    assert re.search(rb"by mail\.corp\.example \(sealmail\) with ESMTPSA id \S+\r\n"
                     rb"\tfor <bob@corp\.example>; \w{3}, \d\d \w{3} \d{4}", stored)


def test_smtplib_starttls_login(env):
    msg = sample_message(env.alice, env.bob)
    with env.submission_starttls() as s:
        s.user, s.password = env.alice, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.sendmail(env.alice, [env.bob], msg)
    assert strip_received(env.inbox(env.bob)[-1]) == msg


def test_message_id_and_date_added_on_submission(env):
    msg = b"From: <alice@corp.example>\r\nSubject: bare\r\n\r\nhello\r\n"
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [env.bob], msg)
    stored = strip_received(env.inbox(env.bob)[-1])
    fields = header_fields(stored)
    assert fields.count(b"message-id") == 1 and fields.count(b"date") == 1, stored
    assert stored.startswith(b"From: <alice@corp.example>\r\nSubject: bare\r\nMessage-ID: <")
    assert stored.endswith(b"\r\n\r\nhello\r\n")


def test_swaks_plain(env, tmp_path):
    if not shutil.which("swaks"):
        pytest.skip("swaks not installed")
    msg = sample_message(env.alice, env.bob)
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(env.port()),
                        "--tls-on-connect", "--auth", "PLAIN", "--auth-user", env.alice,
                        "--auth-password", PASSWORD, "--from", env.alice, "--to", env.bob,
                        "--data", "@%s" % f, "--helo", "swaks.example"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    assert b"250 2.0.0 Ok: queued as" in r.stdout
    # swaks sends the file as it is (dot lines stuffed on the wire, unstuffed here) and
    # ends it with one more CRLF before the final dot.
    assert strip_received(env.inbox(env.bob)[-1]) in (msg, msg + b"\r\n")


def test_swaks_starttls_login(env):
    if not shutil.which("swaks"):
        pytest.skip("swaks not installed")
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(env.port("starttls")),
                        "--tls", "--auth", "LOGIN", "--auth-user", env.alice,
                        "--auth-password", PASSWORD, "--from", env.alice, "--to", env.bob,
                        "--header", "Subject: via swaks"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    assert b"Subject: via swaks" in env.inbox(env.bob)[-1]


def test_curl_smtps(env, tmp_path):
    msg = sample_message(env.alice, env.bob)
    f = tmp_path / "msg.eml"
    f.write_bytes(msg)
    r = subprocess.run(["curl", "-sS", "--cacert", env.ca, "smtps://127.0.0.1:%d" % env.port(),
                        "--mail-from", env.alice, "--mail-rcpt", env.bob, "--upload-file", str(f),
                        "--user", "%s:%s" % (env.alice, PASSWORD)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert strip_received(env.inbox(env.bob)[-1]) == msg


def _node(job):
    if not shutil.which("node"):
        pytest.skip("node not installed")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "nodemailer")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "send.js"), json.dumps(job)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def test_nodemailer_implicit_and_starttls(env):
    msg = sample_message(env.alice, env.bob)
    out = _node({"host": "127.0.0.1", "port": env.port(), "secure": True, "user": env.alice,
                 "pass": PASSWORD, "ca": env.ca, "from": env.alice, "to": [env.bob],
                 "raw": base64.b64encode(msg).decode()})
    assert out["ok"], out
    assert strip_received(env.inbox(env.bob)[-1]) == msg
    out = _node({"host": "127.0.0.1", "port": env.port("starttls"), "starttls": True,
                 "user": env.alice, "pass": PASSWORD, "method": "LOGIN", "ca": env.ca,
                 "from": env.alice, "to": [env.bob], "subject": "node", "text": "hi\n.\n"})
    assert out["ok"], out
    assert b"Subject: node" in env.inbox(env.bob)[-1]


def test_pipelined_transactions(env):
    lc = env.raw_login(env.alice)
    m1 = sample_message(env.alice, env.bob, b"first\r\n")
    m2 = sample_message(env.alice, env.bob, b"second\r\n")
    before = len(env.inbox(env.bob))
    # Everything in one write: the server must answer in order and never mix the bodies.
    lc.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<nobody@corp.example>\r\nDATA\r\n"
            % (env.alice.encode(), env.bob.encode()) + dot_stuff(m1) + b".\r\n" +
            b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (env.alice.encode(),
                                                             env.bob.encode()) +
            dot_stuff(m2) + b".\r\nNOOP\r\n")
    codes = [lc.smtp_reply()[-1][:3] for _ in range(9)]
    assert codes == [b"250", b"250", b"550", b"354", b"250", b"250", b"250", b"354", b"250"], \
        codes
    assert lc.smtp_reply()[-1][:3] == b"250"  # NOOP
    box = env.inbox(env.bob)
    assert [strip_received(b) for b in box[before:]] == [m1, m2]
    lc.send("QUIT\r\n")
    lc.close()


def test_bdat_chunks(env):
    lc = env.raw_login(env.alice)
    msg = sample_message(env.alice, env.bob)
    a, b = msg[:100], msg[100:]
    lc.send(b"MAIL FROM:<%s> BODY=8BITMIME\r\nRCPT TO:<%s>\r\n" % (env.alice.encode(),
                                                                  env.bob.encode()))
    assert lc.smtp_reply()[-1][:3] == b"250"
    assert lc.smtp_reply()[-1][:3] == b"250"
    lc.send(b"BDAT %d\r\n" % len(a) + a)
    assert lc.smtp_reply()[-1][:3] == b"250"
    lc.send(b"BDAT %d LAST\r\n" % len(b) + b)
    r = lc.smtp_reply()[-1]
    assert r.startswith(b"250 2.0.0 Ok: queued as"), r
    assert strip_received(env.inbox(env.bob)[-1]) == msg  # not dot-stuffed: as sent
    # BDAT 0 LAST after a chunk, pipelined with the next transaction.
    lc.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d\r\n" % (
        env.alice.encode(), env.bob.encode(), len(msg)) + msg + b"BDAT 0 LAST\r\n")
    codes = [lc.smtp_reply()[-1][:3] for _ in range(4)]
    assert codes == [b"250"] * 4, codes
    assert strip_received(env.inbox(env.bob)[-1]) == msg
    lc.close()


def test_relay_from_authenticated_user_is_queued(env):
    msg = sample_message(env.alice, "carol@partner.example")
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, ["carol@partner.example", env.bob], msg,
                   rcpt_options=["NOTIFY=FAILURE,DELAY",
                                 "ORCPT=rfc822;carol+40partner.example"])
    q = [x for x in env.queue() if x[1] == "carol@partner.example"]
    assert q, env.queue()
    sender, rcpt, body, requiretls, notify, orcpt = q[-1]
    assert sender == env.alice
    assert notify == "FAILURE,DELAY" and orcpt == "rfc822;carol+40partner.example"
    assert strip_received(body) == msg
    # the local copy is the same content, stored once
    assert env.inbox(env.bob)[-1] == body


def test_utf8_addresses_with_smtputf8(env):
    rcpt = "j\u00f6rg@b\u00fccher.example".encode()
    lc = env.raw_login(env.alice)
    msg = b"Subject: utf8\r\n\r\n\xc3\xa4\r\n"
    lc.send(b"MAIL FROM:<alice@corp.example>\r\nRCPT TO:<" + rcpt + b">\r\n")
    assert [lc.smtp_reply()[-1][:9] for _ in range(2)] == [b"250 2.1.0", b"553 5.6.7"]
    lc.send(b"RSET\r\nMAIL FROM:<alice@corp.example> SMTPUTF8\r\nRCPT TO:<" + rcpt +
            b">\r\nDATA\r\n" + msg + b".\r\n")
    codes = [lc.smtp_reply()[-1][:3] for _ in range(5)]
    assert codes == [b"250", b"250", b"250", b"354", b"250"], codes
    q = [x for x in env.queue() if x[1].encode() == rcpt]
    assert q and b"with UTF8SMTPSA" in q[-1][2]
    assert strip_received(q[-1][2]).startswith(b"Subject: utf8\r\nMessage-ID: <")
    lc.close()
