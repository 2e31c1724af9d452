"""The access audit (docs/audit.md), driven by real clients against the running daemon and
read back with `sealctl audit show`: IMAP content reads, flag changes, expunges, copies and
moves, APPEND, mailbox create/rename/delete, logins (with the client certificate's serial),
failed logins and logouts; POP3 RETR, TOP and DELE; SMTP submissions; sealctl's own
changes. `sealctl audit verify` passes on the untouched chain and names the record when one
is edited or removed with sqlite3."""
import imaplib
import json
import os
import poplib
import shutil
import sqlite3
import ssl
import subprocess
import time

import pytest

import harness
from imap_env import DOMAIN, PASSWORD, ImapEnv, simple_message


def sealctl(srv, *args, check=True):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       capture_output=True, text=True, timeout=60, env=harness.server_env())
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def records(srv, *filters):
    out = sealctl(srv, "audit", "show", "--json", *filters).stdout
    return json.loads(out)


def wait_records(srv, pred, *filters, timeout=15):
    """The audit (filtered) once pred(records) holds: records reach the store within a
    flush interval of the daemon's."""
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        got = records(srv, *filters)
        if pred(got):
            return got
        time.sleep(0.2)
    raise AssertionError("audit never matched: %s" % json.dumps(got, indent=1))


def actions(recs):
    return [r["action"] for r in recs]


def has(recs, **want):
    return any(all(r.get(k) == v for k, v in want.items()) for r in recs)


@pytest.fixture
def env(make_server):
    return ImapEnv(make_server(listeners=[("imap", "implicit", "optional"),
                                          ("imap", "starttls"), ("pop3", "implicit"),
                                          ("submission", "implicit")]))


def test_imap_reads_and_changes_are_recorded(env):
    user = env.add_user("aud1")
    env.require_smtp_auth()
    for i in range(3):
        env.submit(user, user, simple_message(subject="audit %d" % i))
    m = env.imaps(user)
    m.select("INBOX")
    # Flags, sizes and dates alone are not content: no record.
    assert m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE)")[0] == "OK"
    assert m.uid("FETCH", "1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)")[0] == "OK"
    assert m.fetch("3", "(BODY[])")[0] == "OK"
    assert m.uid("STORE", "2", "+FLAGS", r"(\Flagged)")[0] == "OK"
    assert m.create("Projects")[0] == "OK"
    assert m.uid("COPY", "1", "Projects")[0] == "OK"
    assert m.uid("MOVE", "3", "Projects")[0] == "OK"
    assert m.uid("STORE", "1", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    assert m.rename("Projects", "Old")[0] == "OK"
    assert m.append("Old", None, None, simple_message(subject="appended"))[0] == "OK"
    assert m.delete("Old")[0] == "OK"
    m.logout()

    recs = wait_records(env.srv, lambda r: has(r, action="logout", proto="imap"), "--user",
                        user)
    acts = actions(r for r in recs if r["proto"] == "imap")
    assert acts == ["login", "fetch", "fetch", "flags", "mailbox_create", "copy", "move",
                    "flags", "expunge", "mailbox_rename", "append", "mailbox_delete",
                    "logout"], acts
    assert has(recs, action="fetch", mailbox="INBOX", uids="1:2", proto="imap", ip="127.0.0.1",
               detail="(BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)"), recs
    assert has(recs, action="fetch", mailbox="INBOX", uids="3", detail="(BODY[])"), recs
    assert has(recs, action="flags", mailbox="INBOX", uids="2", detail=r"+FLAGS (\Flagged)")
    assert has(recs, action="copy", mailbox="INBOX", uids="1", detail="to=Projects"), recs
    assert has(recs, action="move", mailbox="INBOX", uids="3", detail="to=Projects"), recs
    assert has(recs, action="expunge", mailbox="INBOX", uids="1", detail="EXPUNGE"), recs
    assert has(recs, action="mailbox_rename", mailbox="Projects", detail="to=Old"), recs
    assert has(recs, action="mailbox_delete", mailbox="Old"), recs
    append = [r for r in recs if r["action"] == "append"][0]
    assert append["mailbox"] == "Old" and append["detail"].startswith("messages=1 bytes="), append
    login = [r for r in recs if r["action"] == "login" and r["proto"] == "imap"][0]
    assert login["detail"].startswith("mech=PLAIN"), login
    assert login["session"], login
    # Every record of this session carries its session id.
    sessions = {r["session"] for r in recs if r["proto"] == "imap"}
    assert len(sessions) == 1, sessions
    submit = [r for r in recs if r["action"] == "submit"][0]
    assert submit["proto"] == "submission", submit
    assert "from=<%s>" % user in submit["detail"] and "to=<%s>" % user in submit["detail"]

    # --mailbox and the text form.
    inbox = records(env.srv, "--mailbox", "INBOX", "--user", user)
    assert inbox and all(r["mailbox"] == "INBOX" for r in inbox), inbox
    text = sealctl(env.srv, "audit", "show", "--user", user).stdout
    assert "action=fetch mailbox=INBOX uids=3 detail=(BODY[])" in text, text
    assert "sealctl audit verify" not in text
    out = sealctl(env.srv, "audit", "verify").stdout
    assert out.startswith("audit chain intact:"), out
    # The daemon logs the head: an anchor outside the database.
    logged = env.srv.wait_log(r"event=audit_head seq=(\d+) hash=([0-9a-f]{64})")
    assert sealctl(env.srv, "audit", "verify", "--anchor",
                   "%s:%s" % logged.groups()).returncode == 0


def test_failed_login_and_certificate_serial(env):
    alice = env.add_user("alice")
    with pytest.raises(imaplib.IMAP4.error):
        env.imaps(alice, password="wrong password")
    ctx = harness.client_context(env.srv.certs, cert=env.srv.certs.client,
                                 key=env.srv.certs.client_key)
    m = imaplib.IMAP4_SSL("127.0.0.1", env.srv.port("imap", "implicit"), ssl_context=ctx,
                          timeout=20)
    m.login(alice, PASSWORD)
    m.logout()
    serial = ssl._ssl._test_decode_cert(env.srv.certs.client)["serialNumber"].lower()
    recs = wait_records(env.srv, lambda r: "logout" in actions(r), "--user", alice)
    failed = [r for r in recs if r["action"] == "login_failed"]
    assert failed and "reason=bad_credentials" in failed[0]["detail"], recs
    ok = [r for r in recs if r["action"] == "login"]
    assert ok, recs
    cert = ok[-1]["detail"].split("cert=")[-1]
    assert cert.lstrip("0") == serial.lstrip("0"), (ok[-1], serial)
    logout = [r for r in recs if r["action"] == "logout"][-1]
    assert logout["detail"].startswith("duration_ms="), logout


def test_pop3_retr_top_and_dele(env):
    user = env.add_user("aud2")
    env.require_smtp_auth()
    env.submit(user, user, simple_message(subject="one"))
    env.submit(user, user, simple_message(subject="two"))
    p = poplib.POP3_SSL("127.0.0.1", env.srv.port("pop3", "implicit"), context=env.ctx(),
                        timeout=20)
    p.user(user)
    p.pass_(PASSWORD)
    p.retr(1)
    p.top(2, 0)
    p.dele(1)
    p.quit()
    recs = wait_records(env.srv, lambda r: has(r, action="logout", proto="pop3"), "--user",
                        user)
    assert has(recs, action="retr", proto="pop3", mailbox="INBOX", uids="1"), recs
    assert has(recs, action="top", proto="pop3", uids="2", detail="lines=0"), recs
    assert has(recs, action="expunge", proto="pop3", uids="1", detail="DELE"), recs


def test_sealctl_changes_are_recorded(env):
    user = env.add_user("aud3")
    sealctl(env.srv, "user", "disable", user)
    sealctl(env.srv, "user", "enable", user)
    sealctl(env.srv, "mailbox", "create", user, "Projects")
    r = sealctl(env.srv, "mailbox", "delete", user, "Nope", check=False)
    assert r.returncode != 0
    sealctl(env.srv, "user", "list")  # only looks: not recorded
    recs = records(env.srv, "--limit", "1000")
    admin = [r for r in recs if r["proto"] == "sealctl"]
    details = [r["detail"] for r in admin]
    assert "user add %s --password-stdin" % user in details, details
    assert "user disable %s" % user in details, details
    assert "user enable %s" % user in details, details
    assert "mailbox create %s Projects" % user in details, details
    assert any(d.startswith("mailbox delete %s Nope (failed" % user) for d in details), details
    assert not any(d.startswith("user list") for d in details), details
    assert all(r["actor"].startswith("sealctl:") and r["action"] == "admin" for r in admin)
    # Reading the audit is itself recorded (the officer's access shows).
    again = records(env.srv)
    assert any(r["detail"].startswith("audit show") for r in again), again[-3:]
    # The time filters: nothing before 2001, everything since then.
    assert records(env.srv, "--until", "2001-01-01") == []
    assert len(records(env.srv, "--since", "2001-01-01T00:00")) >= len(recs)
    r = sealctl(env.srv, "audit", "show", "--since", "yesterday", check=False)
    assert r.returncode == 2 and "TIME" in r.stderr, r.stderr


def _db(srv):
    return os.path.join(srv.dir, "data", "mail.db")


def test_tampering_is_named(env):
    user = env.add_user("aud4")
    m = env.imaps(user)
    m.select("INBOX")
    m.logout()
    wait_records(env.srv, lambda r: "logout" in actions(r), "--user", user)
    verified = sealctl(env.srv, "audit", "verify").stdout
    head = verified.strip().splitlines()[-1].split()[1]
    assert sealctl(env.srv, "audit", "verify", "--anchor", head).returncode == 0
    recs = records(env.srv, "--user", user)
    login = [r for r in recs if r["action"] == "login"][0]
    db = _db(env.srv)
    # The table refuses edits and removals outright...
    r = subprocess.run(["sqlite3", db, "UPDATE audit SET actor = 'x' WHERE seq = %d"
                        % login["seq"]], capture_output=True, text=True)
    assert r.returncode != 0 and "cannot be changed" in r.stderr, r
    r = subprocess.run(["sqlite3", db, "DELETE FROM audit WHERE seq = %d" % login["seq"]],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "retention" in r.stderr, r
    # ...and someone who drops the guard and edits a record is found out, by record.
    r = subprocess.run(["sqlite3", db, "DROP TRIGGER audit_append_only; UPDATE audit SET "
                        "ip = '203.0.113.9' WHERE seq = %d" % login["seq"]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = sealctl(env.srv, "audit", "verify", check=False)
    assert r.returncode == 1, r.stdout
    assert ("BROKEN at record %d:" % login["seq"]) in r.stdout, r.stdout
    assert "changed" in r.stdout, r.stdout


def test_removed_record_is_named(env):
    user = env.add_user("aud5")
    env.imaps(user).logout()
    recs = wait_records(env.srv, lambda r: "logout" in actions(r), "--user", user)
    victim = recs[0]["seq"]
    r = subprocess.run(["sqlite3", _db(env.srv), "DROP TRIGGER audit_retention_only; "
                        "DELETE FROM audit WHERE seq = %d" % victim],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = sealctl(env.srv, "audit", "verify", check=False)
    assert r.returncode == 1 and ("BROKEN at record %d:" % victim) in r.stdout, r.stdout
    assert "missing" in r.stdout, r.stdout


def test_audit_disabled_records_nothing_new(make_server):
    env = ImapEnv(make_server(listeners=[("imap", "implicit"), ("imap", "starttls")],
                              extra_yaml="audit:\n  enabled: false\n"))
    user = env.add_user("aud6")
    m = env.imaps(user)
    m.select("INBOX")
    m.logout()
    time.sleep(1)
    assert records(env.srv, "--user", user) == []
    assert sealctl(env.srv, "audit", "verify").returncode == 0
