"""A failing disk (faultvfs preloaded, tests/tools/faultvfs.c): once an fsync of the store
fails with EIO, nothing waiting for it is acknowledged, no write is attempted again (a
failed fsync may have dropped the data from the page cache, so a retry that "succeeds"
would be a lie), sealmaild says why in its log, stops taking mail and exits with 75 so that
a supervisor restarts it; after the restart every acknowledged message is there."""
import os
import re
import smtplib
import sqlite3
import subprocess
import time

import pytest

import harness
from imap_env import ImapEnv, simple_message

PASSWORD = "failing-disk-pass"


def preload(extra):
    lib = os.path.join(harness.build_dir(), "tests", "libfaultvfs.so")
    assert os.path.exists(lib), lib
    env = {"LD_PRELOAD": lib}
    if harness.sanitized():
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0"
    env.update(extra)
    return env


def subjects_in(db, address):
    c = sqlite3.connect(db, timeout=10)
    try:
        assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [r[0] for r in c.execute(
            "SELECT c.hdr_subject FROM entries e JOIN contents c ON c.id = e.content_id "
            "JOIN mailboxes m ON m.id = e.mailbox_id JOIN users u ON u.id = m.user_id "
            "WHERE u.address = ?", (address,))]
    finally:
        c.close()


@pytest.mark.parametrize("fail_after", [3, 9])
def test_fsync_eio_stops_the_server_and_loses_nothing(certs, sealmaild_bin, tmp_path_factory,
                                                       fail_after):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")))
    srv.start()
    env = ImapEnv(srv)
    sender = env.add_user("fd-sender", PASSWORD)
    rcpt = env.add_user("fd-rcpt", PASSWORD)
    srv.stop()
    srv.start(env=preload({"SEALMAIL_FAULTVFS_FAIL_SYNC_AFTER": str(fail_after)}))
    acked, refused = [], []
    ctx = env.ctx()
    deadline = time.monotonic() + 30
    i = 0
    while srv.proc.poll() is None and time.monotonic() < deadline:
        subj = "fd-%d" % i
        i += 1
        try:
            with smtplib.SMTP_SSL("127.0.0.1", srv.port("submission", "implicit"), context=ctx,
                                  timeout=10) as s:
                s.login(sender, PASSWORD)
                s.sendmail(sender, [rcpt], simple_message(subj, sender=sender))
                acked.append(subj)
        except smtplib.SMTPResponseException as e:
            assert 400 <= e.smtp_code < 500, e  # a temporary failure, never a 250 or a 5xx
            refused.append(subj)
        except (smtplib.SMTPException, OSError):
            refused.append(subj)  # the server is going away
    try:
        rc = srv.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()
        pytest.fail("sealmaild kept running after its store's fsync failed")
    log = srv.log()
    assert rc == 75, "exit code %r; log tail:\n%s" % (rc, log[-3000:])
    assert re.search(r"event=store_failed during=\w+ sqlite_rc=\d+", log), log[-3000:]
    assert re.search(r'event=stopping reason="store failed', log), log[-3000:]
    assert refused, "no delivery failed: the injected fsync error was never met"
    # After the failure no write reached the disk's fsync again (the shim counts attempts
    # and says so on stderr).
    assert "faultvfs: sync after failure" not in log
    srv.log_file.close()
    # A restart (a supervisor's) recovers from what is on disk: every 250 is there once.
    srv.start()
    got = subjects_in(os.path.join(srv.dir, "data", "mail.db"), rcpt)
    for s in acked:
        assert got.count(s) == 1, "acknowledged %s found %d times" % (s, got.count(s))
    for s in refused:
        assert got.count(s) <= 1, (s, got.count(s))
    srv.check_stopped()
