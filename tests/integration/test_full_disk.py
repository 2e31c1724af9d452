"""A full disk, on a small file system the test makes (a 24 MB tmpfs; skipped where mounting
is not allowed): SMTP answers 452 and IMAP APPEND and COPY NO [UNAVAILABLE], with nothing
half-written; logins, reads, flag changes and EXPUNGE keep working; the reserve file is
given up for them and event=disk_full is logged; once there is room again mail is taken and
the reserve comes back."""
import base64
import os
import re
import smtplib
import sqlite3
import subprocess
import time

import pytest

import harness
from imap_env import ImapEnv, simple_message

PASSWORD = "full-disk-pass"


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode().strip())
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def big_message(subject, size=100_000):
    body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return simple_message(subject, body=body.decode())


def send(srv, ctx, sender, rcpt, msg):
    """The SMTP reply code of one submission: 250, or the refusal's."""
    try:
        with smtplib.SMTP_SSL("127.0.0.1", srv.port("submission", "implicit"), context=ctx,
                              timeout=20) as s:
            s.login(sender, PASSWORD)
            s.sendmail(sender, [rcpt], msg)
            return 250
    except smtplib.SMTPResponseException as e:
        return e.smtp_code


def test_full_disk_keeps_the_store_usable(certs, sealmaild_bin, small_fs):
    srv = harness.Server(certs, workdir=small_fs)
    srv.start()
    env = ImapEnv(srv)
    sender = env.add_user("full-sender", PASSWORD)
    rcpt = env.add_user("full-rcpt", PASSWORD)
    ctx = env.ctx()
    reserve = os.path.join(small_fs, "data", "reserve")
    assert os.path.exists(reserve), "no reserve file was made on a roomy disk"
    m = env.imaps(rcpt, PASSWORD)
    assert m.create("Keep")[0] == "OK"
    # Fill the file system but a few messages' worth.
    filler = os.path.join(small_fs, "filler")
    st = os.statvfs(small_fs)
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 1_500_000))
    acked, refused = 0, None
    for i in range(200):
        code = send(srv, ctx, sender, rcpt, big_message("fill-%d" % i))
        if code == 250:
            acked += 1
            continue
        refused = code
        break
    assert refused == 452, "expected 452 once the disk is full, got %r" % refused
    log = srv.log()
    assert re.search(r"event=disk_full dir=\S+ free_bytes=\d+", log), log[-2000:]
    assert "event=disk_reserve_released reason=full" in log, log[-2000:]
    assert not os.path.exists(reserve)
    # Reading and changing flags keep working; adding mail does not.
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) == acked, (typ, data, acked)
    if acked:
        typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"fill-0" in data[0][1], data
        typ, data = m.copy("1", "Keep")
        assert typ == "NO" and b"UNAVAILABLE" in data[0], (typ, data)
        assert m.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
    typ, data = m.append("INBOX", None, None, big_message("appended"))
    assert typ == "NO" and b"UNAVAILABLE" in data[0], (typ, data)
    # Nothing half-written.
    db = sqlite3.connect(os.path.join(small_fs, "data", "mail.db"), timeout=10)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT count(*) FROM contents WHERE length(body) <> size").fetchone()[0] == 0
    db.close()
    # EXPUNGE frees room even now.
    if acked:
        assert m.store("1:*", "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert m.expunge()[0] == "OK"
    m.logout()
    # Room again: mail is taken and the reserve is made again.
    os.unlink(filler)
    deadline = time.monotonic() + 20
    while True:
        code = send(srv, ctx, sender, rcpt, big_message("after"))
        if code == 250:
            break
        assert time.monotonic() < deadline, "mail not taken again after space returned: %r" % code
        time.sleep(0.5)
    assert os.path.exists(reserve)
    assert "event=disk_space_back" in srv.log()
    srv.check_stopped()
