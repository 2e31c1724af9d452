"""Files with mail or keys are private whatever the umask sealmaild and sealctl start
with: mail.db and its -wal and -shm are 0600 (SQLite gives -wal and -shm the main file's
mode), data_dir and the CA folder 0700, the CA key 0600. A store left with 0644 files is
tightened when sealmaild opens it, and the change is logged."""
import os
import re
import stat
import subprocess

import pytest

import harness

ALICE = "alice@" + harness.DOMAIN


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _sealctl(srv, *args, stdin=None):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       input=stdin, capture_output=True, text=True, timeout=60,
                       env=harness.server_env())
    assert r.returncode == 0, "sealctl %s: %s" % (" ".join(args), r.stderr)
    assert not harness.sanitizer_reports(r.stderr), r.stderr
    return r


def _db_files(srv):
    db = os.path.join(srv.dir, "data", "mail.db")
    return [db, db + "-wal", db + "-shm"]


def test_store_files_are_0600_under_umask_022(make_server, umask_022):
    srv = make_server()  # sealmaild creates data/ and mail.db itself
    # A write through the running server's database: -wal and -shm exist while it runs.
    _sealctl(srv, "user", "add", ALICE, "--password-stdin", stdin="pw\n")
    for p in _db_files(srv):
        assert os.path.exists(p), p
        assert _mode(p) == 0o600, "%s is %o" % (p, _mode(p))
    assert _mode(os.path.join(srv.dir, "data")) == 0o700
    # Nothing under data_dir is readable by group or others (spool included).
    for root, dirs, files in os.walk(os.path.join(srv.dir, "data")):
        for name in dirs + files:
            p = os.path.join(root, name)
            assert _mode(p) & 0o077 == 0, "%s is %o" % (p, _mode(p))


def test_old_wide_store_is_tightened_and_logged(make_server, umask_022):
    srv = make_server(start=False)
    _sealctl(srv, "user", "add", ALICE, "--password-stdin", stdin="pw\n")
    db = _db_files(srv)[0]
    os.chmod(db, 0o644)
    srv.start()
    srv.wait_log(r'event=store_file_mode_fixed path="%s" old_mode=0644 new_mode=0600'
                 % db.replace(".", r"\."))
    for p in _db_files(srv):
        assert _mode(p) == 0o600, "%s is %o" % (p, _mode(p))


def test_open_data_dir_is_closed_and_logged(make_server, umask_022):
    srv = make_server(start=False)
    data = os.path.join(srv.dir, "data")
    os.makedirs(data, exist_ok=True)
    os.chmod(data, 0o755)
    srv.start()
    srv.wait_log(r'event=data_dir_mode_fixed path="%s" old_mode=0755 new_mode=0700'
                 % re.escape(data))
    assert _mode(data) == 0o700


def test_sealctl_ca_files_are_private_under_umask_022(make_server, umask_022):
    srv = make_server(start=False)
    _sealctl(srv, "cert", "init-ca")
    _sealctl(srv, "user", "add", ALICE, "--password-stdin", stdin="pw\n")
    out = os.path.join(srv.dir, "issued")
    _sealctl(srv, "cert", "issue", ALICE, "--out", out, "--p12-password-stdin",
             stdin="p12 secret\n")
    assert _mode(srv.ca_dir) == 0o700
    assert _mode(os.path.join(srv.ca_dir, "ca.key")) == 0o600
    assert _mode(out) == 0o700
    assert _mode(os.path.join(out, ALICE + ".key")) == 0o600
    assert _mode(os.path.join(out, ALICE + ".p12")) == 0o600
    for p in _db_files(srv)[:1]:
        assert _mode(p) == 0o600, "%s is %o" % (p, _mode(p))
