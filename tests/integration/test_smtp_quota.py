"""Quota at RCPT and after DATA against the real sealmaild: RCPT refuses a full mailbox
(452 4.2.2) and a declared SIZE= that would fill it (452 4.2.2) or can never fit it
(552 5.2.2); a copy refused only after DATA while another copy is stored gets 250 and a DSN
to the sender naming that recipient (Action: failed, Status 5.2.2: it is not retried),
stored with the copies; a transaction with nothing stored gets the quota code itself. DATA
and BDAT alike. Quotas are set in the database file directly (sealctl quota set does the
same through the store)."""
import os
import re
import sqlite3
import subprocess
import time

import pytest

import harness
from smtp_env import SmtpEnv


@pytest.fixture(scope="module")
def env(server):
    e = SmtpEnv(server)
    e.alice = e.add_user("alice")
    e.bob = e.add_user("bob")
    return e


def set_quota(env, address, quota):
    con = sqlite3.connect(env.db, timeout=10)
    try:
        con.execute("UPDATE users SET quota_bytes = ? WHERE address = ?", (quota, address))
        con.commit()
    finally:
        con.close()


def used(env, address):
    con = env._db()
    try:
        return con.execute("SELECT used_bytes FROM users WHERE address = ?",
                           (address,)).fetchone()[0]
    finally:
        con.close()


def message(sender, rcpt, subject, body_bytes):
    body = b"".join(b"%s\r\n" % (b"q" * 98) for _ in range(max(1, body_bytes // 100)))
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.example>\r\n"
            b"Date: Tue, 03 Dec 2024 10:00:00 +0000\r\n\r\n" % (
                sender.encode(), rcpt.encode(), subject.encode(), os.urandom(6).hex().encode())
            + body)


def dot_data(lc, msg):
    lc.send(b"DATA\r\n")
    r = lc.smtp_reply()
    assert r[-1][:3] == b"354", r
    lc.send(msg + b".\r\n")
    return lc.smtp_reply()[-1]


def bdat(lc, msg):
    half = len(msg) // 2
    lc.send(b"BDAT %d\r\n" % half + msg[:half])
    r = lc.smtp_reply()[-1]
    assert r[:3] == b"250", r
    lc.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
    return lc.smtp_reply()[-1]


def cmd(lc, line):
    lc.send(line + "\r\n")
    return lc.smtp_reply()[-1]


def dsn_parts(dsn):
    m = re.search(rb"Content-Type: message/delivery-status\r\n\r\n(.*?)\r\n--", dsn, re.S)
    assert m, dsn
    return m.group(1)


def wait_inbox(env, address, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        box = env.inbox(address)
        if len(box) >= n or time.monotonic() > deadline:
            return box
        time.sleep(0.1)


def test_rcpt_refused_when_mailbox_full(env):
    full = env.add_user("full1")
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [full], message(env.alice, full, "first", 500))
    set_quota(env, full, used(env, full))  # exactly at quota
    lc = env.raw_login(env.alice)
    assert cmd(lc, "MAIL FROM:<%s>" % env.alice)[:3] == b"250"
    r = cmd(lc, "RCPT TO:<%s>" % full)
    assert r.startswith(b"452 4.2.2 "), r
    # The transaction goes on with the others.
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    assert cmd(lc, "RSET")[:3] == b"250"
    lc.close()


def test_rcpt_checks_declared_size(env):
    user = env.add_user("sized")
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [user], message(env.alice, user, "first", 500))
    u = used(env, user)
    set_quota(env, user, u + 1000)
    lc = env.raw_login(env.alice)
    # Larger than the whole quota: can never fit, refused for good.
    assert cmd(lc, "MAIL FROM:<%s> SIZE=%d" % (env.alice, u + 1001))[:3] == b"250"
    r = cmd(lc, "RCPT TO:<%s>" % user)
    assert r.startswith(b"552 5.2.2 "), r
    assert cmd(lc, "RSET")[:3] == b"250"
    # Would take the user over: temporary.
    assert cmd(lc, "MAIL FROM:<%s> SIZE=1001" % env.alice)[:3] == b"250"
    r = cmd(lc, "RCPT TO:<%s>" % user)
    assert r.startswith(b"452 4.2.2 "), r
    assert cmd(lc, "RSET")[:3] == b"250"
    # Fits: accepted.
    assert cmd(lc, "MAIL FROM:<%s> SIZE=1000" % env.alice)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % user)[:3] == b"250"
    assert cmd(lc, "RSET")[:3] == b"250"
    lc.close()


@pytest.mark.parametrize("mode", ["data", "bdat"])
def test_one_copy_over_quota_after_data_gets_dsn(env, mode):
    full = env.add_user("over-" + mode)
    set_quota(env, full, 3000)
    before_alice = len(env.inbox(env.alice))
    before_bob = len(env.inbox(env.bob))
    since = env.srv.log_size()
    msg = message(env.alice, full, "too big for one", 6000)
    lc = env.raw_login(env.alice)
    # No SIZE=: RCPT cannot know; the store refuses the copy after DATA.
    assert cmd(lc, "MAIL FROM:<%s> ENVID=quota-%s" % (env.alice, mode))[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s> ORCPT=rfc822;%s" % (full, full))[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    r = dot_data(lc, msg) if mode == "data" else bdat(lc, msg)
    assert r.startswith(b"250 2.0.0 Ok: queued as"), r
    lc.close()
    assert len(env.inbox(env.bob)) == before_bob + 1
    assert env.inbox(full) == []
    # The report is in the same transaction as bob's copy: already there with the 250.
    box = env.inbox(env.alice)
    assert len(box) == before_alice + 1, box
    dsn = box[-1]
    # Delivered here: the report's final delivery, with the null reverse-path.
    assert dsn.startswith(b"Return-Path: <>\r\nFrom: "), dsn[:200]
    assert b"To: <%s>" % env.alice.encode() in dsn, dsn[:800]
    assert b"Subject: Undelivered Mail Returned to Sender" in dsn
    status = dsn_parts(dsn)
    assert b"Original-Envelope-Id: quota-%s\r\n" % mode.encode() in status, status
    assert (b"Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.2.2\r\n"
            % full.encode()) in status, status
    assert b"larger than the mailbox quota" in status, status
    assert env.bob.encode() not in status, status
    assert b"Subject: too big for one" in dsn  # the original's header
    env.srv.wait_log(r"event=rcpt_failed .*rcpt=%s status=5\.2\.2 .*report=sent via=inbox"
                     % re.escape(full), since=since)
    env.srv.wait_log(r"event=queued .*local=2 relay=0 failed=1", since=since)
    assert "delivery_target_failed" not in env.srv.log()


def test_notify_never_records_the_failure_without_dsn(env):
    full = env.add_user("over-never")
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [full], message(env.alice, full, "first", 500))
    set_quota(env, full, used(env, full) + 500)  # room for less than the next one
    before_alice = len(env.inbox(env.alice))
    since = env.srv.log_size()
    # Raw: smtplib would send SIZE= and have RCPT refuse it.
    lc = env.raw_login(env.alice)
    assert cmd(lc, "MAIL FROM:<%s>" % env.alice)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s> NOTIFY=NEVER" % full)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    r = dot_data(lc, message(env.alice, full, "never tell", 2000))
    assert r.startswith(b"250 "), r
    lc.close()
    env.srv.wait_log(r"event=rcpt_failed .*rcpt=%s status=5\.2\.2 .*report=none reason=notify"
                     % re.escape(full), since=since)
    assert len(env.inbox(env.alice)) == before_alice
    assert len(env.inbox(full)) == 1


def test_user_deleted_after_rcpt_gets_dsn(env):
    gone = env.add_user("gone")
    before_alice = len(env.inbox(env.alice))
    lc = env.raw_login(env.alice)
    assert cmd(lc, "MAIL FROM:<%s>" % env.alice)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % gone)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    r = subprocess.run([harness.tool("sealctl"), "-c", env.config, "user", "del", gone],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    del env.users[gone]
    r = dot_data(lc, message(env.alice, gone, "deleted meanwhile", 300))
    assert r.startswith(b"250 "), r
    lc.close()
    box = env.inbox(env.alice)
    assert len(box) == before_alice + 1
    status = dsn_parts(box[-1])
    assert (b"Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            % gone.encode()) in status, status


@pytest.mark.parametrize("mode", ["data", "bdat"])
def test_single_recipient_over_quota_after_data(env, mode):
    user = env.add_user("single-" + mode)
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [user], message(env.alice, user, "first", 500))
    u = used(env, user)
    set_quota(env, user, u + 1500)
    before_alice = len(env.inbox(env.alice))
    lc = env.raw_login(env.alice)
    send = dot_data if mode == "data" else bdat
    # Would fit an empty mailbox, not this one: temporary.
    assert cmd(lc, "MAIL FROM:<%s>" % env.alice)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % user)[:3] == b"250"
    r = send(lc, message(env.alice, user, "over by a bit", 1500))
    assert r.startswith(b"452 4.2.2 "), r
    # Larger than the whole quota: permanent.
    assert cmd(lc, "MAIL FROM:<%s>" % env.alice)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % user)[:3] == b"250"
    r = send(lc, message(env.alice, user, "never fits", u + 3000))
    assert r.startswith(b"552 5.2.2 "), r
    # The session goes on.
    assert cmd(lc, "NOOP")[:3] == b"250"
    lc.close()
    assert len(env.inbox(user)) == 1
    assert len(env.inbox(env.alice)) == before_alice  # the client was told: no DSN


def test_null_sender_gets_no_dsn(env, certs):
    full = env.add_user("over-null")
    set_quota(env, full, 1000)
    before_queue = len(env.queue())
    since = env.srv.log_size()
    lc = env.raw(tls="starttls", protocol="smtp", cert=certs.peer, key=certs.peer_key)
    assert cmd(lc, "MAIL FROM:<>")[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % full)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    r = dot_data(lc, message("", full, "bounce of a bounce", 3000))
    assert r.startswith(b"250 "), r
    lc.close()
    env.srv.wait_log(r"event=rcpt_failed .*rcpt=%s .*report=none reason=null_sender"
                     % re.escape(full), since=since)
    assert len(env.queue()) == before_queue


def test_remote_sender_dsn_is_queued(env, certs):
    full = env.add_user("over-remote")
    set_quota(env, full, 1000)
    since = env.srv.log_size()
    lc = env.raw(tls="starttls", protocol="smtp", cert=certs.peer, key=certs.peer_key)
    assert cmd(lc, "MAIL FROM:<someone@partner.example>")[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % full)[:3] == b"250"
    assert cmd(lc, "RCPT TO:<%s>" % env.bob)[:3] == b"250"
    r = dot_data(lc, message("someone@partner.example", full, "from afar", 3000))
    assert r.startswith(b"250 "), r
    lc.close()
    env.srv.wait_log(r"event=rcpt_failed .*rcpt=%s .*report=sent via=queue"
                     % re.escape(full), since=since)
    q = [x for x in env.queue() if x[1] == "someone@partner.example"]
    assert q, env.queue()
    sender, rcpt, body, requiretls, notify, orcpt = q[-1]
    assert sender == ""  # a report is never reported on
    assert (b"Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.2.2\r\n"
            % full.encode()) in dsn_parts(body)
