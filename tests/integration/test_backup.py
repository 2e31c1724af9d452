"""sealctl backup and restore: a backup taken while SMTP deliveries go on holds every
message acknowledged before it began; restore refuses while sealmaild runs, checks the
backup's integrity and refuses a damaged one without touching the store, and puts the store
back so that the restarted server serves it; the configuration and the client CA travel
in the same file when asked; a second sealmaild on the same data_dir is refused."""
import os
import subprocess
import threading
import time

import pytest

import harness
from imap_env import ImapEnv, simple_message


def sealctl(srv, *args, check=True):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       capture_output=True, text=True, timeout=120, env=harness.server_env())
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert not harness.sanitizer_reports(r.stderr), r.stderr
    return r


def subjects(env, user):
    m = env.imaps(user, timeout=60)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "ALL")
    got = set()
    nums = data[0].split()
    if nums:
        typ, data = m.fetch(b",".join(nums), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for part in data:
            if isinstance(part, tuple):
                got.add(part[1].decode().split(":", 1)[1].strip())
    m.logout()
    return got


def test_backup_under_load_and_restore(make_server, tmp_path):
    srv = make_server()
    env = ImapEnv(srv)
    env.require_smtp_auth()
    user = env.add_user("bk1")
    acked = []  # (time acknowledged, subject)
    stop = threading.Event()
    errors = []

    def load(k):
        i = 0
        while not stop.is_set():
            subj = "load-%d-%d" % (k, i)
            try:
                env.submit(user, user, simple_message(subj, to=user))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            acked.append((time.monotonic(), subj))
            i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    while len(acked) < 30 and not errors:
        time.sleep(0.05)
    backup = str(tmp_path / "store.backup")
    began = time.monotonic()
    out = sealctl(srv, "backup", backup).stdout
    assert "backed up the store" in out
    while len(acked) < len([a for a in acked if a[0] < began]) + 20 and not errors:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert os.stat(backup).st_mode & 0o777 == 0o600
    before = {s for t, s in acked if t < began}
    everything = {s for t, s in acked}
    assert len(everything) > len(before)

    # Refused while sealmaild runs; the store is untouched.
    r = sealctl(srv, "restore", backup, check=False)
    assert r.returncode == 1 and "stop sealmaild" in r.stderr, r.stderr
    assert subjects(env, user) >= everything

    assert srv.stop() == 0
    out = sealctl(srv, "restore", backup).stdout
    assert "integrity checked before and after" in out
    srv.start()
    env = ImapEnv(srv)  # new ports
    got = subjects(env, user)
    assert before <= got, sorted(before - got)[:5]
    assert got <= everything
    # The restored store takes mail again.
    env.submit(user, user, simple_message("after-restore", to=user))
    assert "after-restore" in subjects(env, user)


def test_damaged_backup_refused_store_unchanged(make_server, tmp_path):
    srv = make_server()
    env = ImapEnv(srv)
    user = env.add_user("bk2")
    m = env.imaps(user)
    assert m.append("INBOX", None, None, simple_message("kept"))[0] == "OK"
    m.logout()
    backup = str(tmp_path / "b")
    sealctl(srv, "backup", backup)
    with open(backup, "rb") as f:
        good = f.read()
    assert srv.stop() == 0
    # A changed byte inside a message: SQLite's own check cannot see it, the checksum does.
    i = good.find(b"just a line")
    assert i > 0
    with open(backup, "wb") as f:
        f.write(good[:i] + b"J" + good[i + 1:])
    r = sealctl(srv, "restore", backup, check=False)
    assert r.returncode == 1 and "unchanged" in r.stderr, r.stderr
    assert "checksum" in r.stderr, r.stderr
    # Broken pages: the integrity check.
    damaged = bytearray(good)
    for off in range(len(good) // 3, len(good) // 3 + 8192, 97):
        damaged[off:off + 4] = b"\xff\x00\xff\x00"
    with open(backup, "wb") as f:
        f.write(bytes(damaged))
    r = sealctl(srv, "restore", backup, check=False)
    assert r.returncode == 1 and "unchanged" in r.stderr, r.stderr
    srv.start()
    assert "kept" in subjects(ImapEnv(srv), user)


def test_config_and_ca_travel_with_the_backup(make_server, tmp_path):
    srv = make_server()
    sealctl(srv, "cert", "init-ca", "--name", "Backup CA", "--days", "30")
    ca_key = os.path.join(srv.ca_dir, "ca.key")
    with open(ca_key, "rb") as f:
        key = f.read()
    backup = str(tmp_path / "full")
    out = sealctl(srv, "backup", backup, "--with-config", "--with-ca").stdout
    assert "with the configuration" in out and "private key" in out
    assert srv.stop() == 0
    # The CA is lost; the configuration is still there.
    for name in os.listdir(srv.ca_dir):
        os.unlink(os.path.join(srv.ca_dir, name))
    out = sealctl(srv, "restore", backup, "--with-config", "--with-ca").stdout
    with open(ca_key, "rb") as f:
        assert f.read() == key
    assert os.stat(ca_key).st_mode & 0o777 == 0o600
    with open(srv.config_path + ".restored") as f, open(srv.config_path) as g:
        assert f.read() == g.read()
    # A CA that is there is never overwritten.
    r = sealctl(srv, "restore", backup, "--with-ca", check=False)
    assert r.returncode == 1 and "move it away" in r.stderr, r.stderr
    srv.start()


def test_second_daemon_on_same_data_dir_refused(make_server):
    srv = make_server()
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path],
                       capture_output=True, text=True, timeout=30, cwd=srv.dir,
                       env=harness.server_env())
    assert r.returncode != 0
    assert "event=start_failed" in r.stdout + r.stderr
    assert "in use" in r.stdout + r.stderr
