"""Encryption at rest (docs/encryption.md): with a key configured, nothing under data_dir
(mail.db, its WAL and -shm, spool files of large messages in transit, anything else) holds
a message's words, its recipient or its subject; plain sqlite3 cannot read mail.db; a
modified page is an integrity error, never other data; a wrong or missing key stops
sealmaild before it changes anything; sealctl converts, rekeys, backs up and restores."""
import hashlib
import os
import re
import smtplib
import subprocess
import time

import pytest

import harness
from imap_env import PASSWORD, ImapEnv, simple_message

SPOOL_MIN = 256 * 1024  # SMTP_TXN_MEM_MAX: larger messages go through the spool


def make_key(path):
    with open(path, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(path, 0o400)
    return path


def enc_yaml(key):
    return "encryption:\n  key_file: %s\n" % key


def sealctl(srv, *args, check=True, env=None):
    e = harness.server_env()
    e.update(env or {})
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       capture_output=True, text=True, timeout=120, env=e)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert not harness.sanitizer_reports(r.stderr), r.stderr
    return r


def data_dir(srv):
    return os.path.join(srv.dir, "data")


def files_under(d):
    for root, _, names in os.walk(d):
        for n in names:
            yield os.path.join(root, n)


def leaks(d, needles):
    """[(file, needle)] for every needle found in any file under d."""
    found = []
    for p in files_under(d):
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue  # removed meanwhile (a spool file)
        for n in needles:
            if n in data:
                found.append((p, n))
    return found


def snapshot(d):
    """{path: (sha256, mtime_ns, mode)} of every file under d."""
    out = {}
    for p in files_under(d):
        st = os.stat(p)
        with open(p, "rb") as f:
            out[p] = (hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


def reenv(env):
    """The ImapEnv of env's server after a restart (new ports), knowing the same users."""
    fresh = ImapEnv(env.srv)
    fresh.users = dict(env.users)
    return fresh


def search(env, user, word):
    m = env.imaps(user, timeout=60)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "TEXT", word)
    assert typ == "OK", data
    m.logout()
    return data[0].split()


def bodies(env, user):
    """{seq: (ok, body or error)} of every message of INBOX."""
    m = env.imaps(user, timeout=60)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "ALL")
    out = {}
    for n in data[0].split():
        try:
            typ, got = m.fetch(n, "(BODY.PEEK[])")
        except Exception as e:  # noqa: BLE001 - an error is one possible answer
            out[n] = (False, repr(e))
            m = env.imaps(user, timeout=60)
            m.select("INBOX", readonly=True)
            continue
        if typ != "OK":
            out[n] = (False, got)
            continue
        out[n] = (True, b"".join(p[1] for p in got if isinstance(p, tuple)))
    m.logout()
    return out


def spooled_submit(env, user, rcpt, msg, spool_dir, needles):
    """Submits msg (larger than SPOOL_MIN), pausing once the spool file holds most of it to
    check that file for needles. Returns the leaks found in the spool while in transit."""
    s = smtplib.SMTP_SSL("127.0.0.1", env.srv.port("submission", "implicit"),
                         context=env.ctx(), timeout=60)
    try:
        s.login(user, env.users[user])
        s.mail(user)
        s.rcpt(rcpt)
        code, _ = s.docmd("DATA")
        assert code == 354
        head = msg[:len(msg) - 1024]
        s.send(head)
        deadline = time.monotonic() + 60
        found = None
        while found is None:
            for p in files_under(spool_dir):
                try:
                    if os.path.getsize(p) >= SPOOL_MIN:
                        found = p
                except OSError:
                    pass
            assert time.monotonic() < deadline, "no spool file appeared"
            time.sleep(0.05)
        in_transit = leaks(spool_dir, needles)
        s.send(msg[len(msg) - 1024:] + b".\r\n")
        code, reply = s.getreply()
        assert code == 250, reply
    finally:
        s.quit()
    return in_transit


@pytest.fixture
def enc_server(make_server, tmp_path):
    key = make_key(str(tmp_path / "store.kek"))
    srv = make_server(extra_yaml=enc_yaml(key))
    srv.kek = key
    return srv


def deliver_marked(srv, marker, large=True):
    env = ImapEnv(srv)
    env.require_smtp_auth()
    user = env.add_user("enc1")
    subject = "subj-%s" % marker
    for i in range(3):
        env.submit(user, user, simple_message(subject + "-%d" % i, to=user,
                                              body="%s line %d\r\n" % (marker, i)))
    in_transit = []
    if large:
        line = ("%s %s\r\n" % (marker, "x" * 60)).encode()
        big = simple_message(subject + "-big", to=user, body="") + line * (3 * SPOOL_MIN //
                                                                            len(line))
        needles = [marker.encode(), user.encode(), subject.encode()]
        in_transit = spooled_submit(env, user, user, big, os.path.join(data_dir(srv), "spool"),
                                    needles)
    return env, user, subject, in_transit


def test_nothing_readable_under_data_dir(enc_server):
    srv = enc_server
    marker = "ZQXMARK%s" % os.urandom(4).hex()
    env, user, subject, in_transit = deliver_marked(srv, marker)
    assert in_transit == [], in_transit
    hits = search(env, user, marker)
    assert len(hits) == 4, hits
    got = bodies(env, user)
    assert all(ok and marker.encode() in b for ok, b in got.values()), got
    needles = [marker.encode(), user.encode(), subject.encode()]
    # While running: mail.db, -wal, -shm as they are.
    names = {os.path.basename(p) for p in files_under(data_dir(srv))}
    assert "mail.db-wal" in names and "store.key" in names, names
    assert leaks(data_dir(srv), needles) == []
    srv.stop()
    assert leaks(data_dir(srv), needles) == []
    r = subprocess.run(["sqlite3", os.path.join(data_dir(srv), "mail.db"),
                        "SELECT count(*) FROM sqlite_master"], capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    assert "not a database" in r.stderr or "encrypted" in r.stderr, r.stderr
    srv.start()
    assert len(search(reenv(env), user, marker)) == 4
    srv.stop()


def test_modified_page_is_an_integrity_error(enc_server):
    srv = enc_server
    marker = "FLIPMARK%s" % os.urandom(4).hex()
    env, user, _, _ = deliver_marked(srv, marker)
    before = bodies(env, user)
    assert all(ok for ok, _ in before.values())
    srv.stop()
    db = os.path.join(data_dir(srv), "mail.db")
    size = os.path.getsize(db)
    # One bit in each of a few pages spread over the file (the large message, its index).
    with open(db, "r+b") as f:
        for k in range(1, 8):
            off = size * k // 8 + 100
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x01]))
    srv.start()
    env = reenv(env)
    after = bodies(env, user)
    for n, (ok, body) in after.items():
        if ok:
            assert body == before[n][1], "message %s came back changed" % n
    failed = [n for n, (ok, _) in after.items() if not ok]
    try:
        hits = search(env, user, marker)
    except Exception:  # noqa: BLE001 - an error is the expected answer
        hits = None
    assert failed or hits is None or len(hits) != 4, "the modified pages were read as data"
    assert "event=store_integrity_error" in srv.log()
    srv.stop()


def test_wrong_or_missing_key_refuses_and_changes_nothing(enc_server, tmp_path):
    srv = enc_server
    _, user, _, _ = deliver_marked(srv, "KEYMARK", large=False)
    srv.stop()
    before = snapshot(data_dir(srv))
    good = srv.extra_yaml
    wrong = make_key(str(tmp_path / "wrong.kek"))
    cases = {
        "wrong key": (enc_yaml(wrong), {}, "not the key of this store"),
        "no key": ("", {}, "no key is configured"),
        "credential missing": ("encryption:\n  credential: sealmail-kek\n", {},
                               "CREDENTIALS_DIRECTORY"),
    }
    for name, (yaml, env, msg) in cases.items():
        srv.extra_yaml = yaml
        srv.write_config()
        with pytest.raises(harness.ServerError):
            srv.start(env=env)
        assert srv.proc.returncode != 0, name
        assert msg in srv.log(), (name, srv.log())
        assert snapshot(data_dir(srv)) == before, name
        r = sealctl(srv, "user", "list", check=False)
        assert r.returncode != 0, (name, r.stdout)
        assert snapshot(data_dir(srv)) == before, name
    # The right key as a systemd credential.
    cred = tmp_path / "creds"
    cred.mkdir()
    with open(srv.kek) as f, open(cred / "sealmail-kek", "w") as g:
        g.write(f.read())
    os.chmod(cred / "sealmail-kek", 0o400)
    srv.extra_yaml = "encryption:\n  credential: sealmail-kek\n"
    srv.write_config()
    srv.start(env={"CREDENTIALS_DIRECTORY": str(cred)})
    env = ImapEnv(srv)
    env.users[user] = PASSWORD
    assert len(search(env, user, "KEYMARK")) == 3
    srv.stop()
    srv.extra_yaml = good
    srv.write_config()


def test_key_file_checks(make_server, tmp_path):
    srv = make_server(start=False)
    os.makedirs(data_dir(srv), exist_ok=True)
    inside = make_key(os.path.join(data_dir(srv), "in.kek"))
    loose = str(tmp_path / "loose.kek")
    with open(loose, "w") as f:
        f.write(os.urandom(32).hex())
    os.chmod(loose, 0o644)
    for key, msg in ((inside, "inside data_dir"), (loose, "group or others")):
        srv.extra_yaml = enc_yaml(key)
        srv.write_config()
        r = subprocess.run([harness.tool("sealmaild"), "--check", "-c", srv.config_path],
                           capture_output=True, text=True, env=harness.server_env())
        assert r.returncode != 0
        assert re.search(r"sealmail\.yaml:\d+: encryption\.key_file: ", r.stderr), r.stderr
        assert msg in r.stderr, r.stderr


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


def plain_store_with_mail(make_server, n=5):
    srv = make_server()
    env = ImapEnv(srv)
    env.require_smtp_auth()
    user = env.add_user("conv")
    want = set()
    for i in range(n):
        subj = "CONVMARK-%d" % i
        env.submit(user, user, simple_message(subj, to=user, body="CONVMARK body %d\r\n" % i))
        want.add(subj)
    srv.stop()
    return srv, env, user, want


def test_encrypt_converts_and_keeps_every_message(make_server, tmp_path):
    srv, env, user, want = plain_store_with_mail(make_server)
    key = make_key(str(tmp_path / "conv.kek"))
    # Without a key configured, the conversion refuses.
    r = sealctl(srv, "store", "encrypt", check=False)
    assert r.returncode == 1 and "no key is configured" in r.stderr, r.stderr
    srv.extra_yaml = enc_yaml(key)
    srv.write_config()
    # A key for a plaintext store: sealmaild refuses until it is converted.
    with pytest.raises(harness.ServerError):
        srv.start()
    assert "sealctl store encrypt" in srv.log()
    r = sealctl(srv, "store", "encrypt")
    assert "encrypted" in r.stdout
    r = sealctl(srv, "store", "encrypt", check=False)
    assert r.returncode == 1 and "encrypted already" in r.stderr, r.stderr
    assert leaks(data_dir(srv), [b"CONVMARK", user.encode()]) == []
    srv.start()
    env = reenv(env)
    assert subjects(env, user) == want
    assert len(search(env, user, "CONVMARK")) == len(want)
    srv.stop()


@pytest.mark.parametrize("point", ["header", "copy", "checked", "wal", "renamed"])
def test_encrypt_killed_at_each_step_leaves_a_usable_store(make_server, tmp_path, point):
    srv, env, user, want = plain_store_with_mail(make_server, n=3)
    key = make_key(str(tmp_path / "conv.kek"))
    srv.extra_yaml = enc_yaml(key)
    srv.write_config()
    r = sealctl(srv, "store", "encrypt", check=False, env={"SEALMAIL_TEST_CRASH_AT": point})
    assert r.returncode == -9, (point, r.returncode, r.stderr)
    # Either the old store (plaintext, no key) or the new one (with the key) opens whole.
    try:
        srv.start()
        encrypted = True
    except harness.ServerError:
        assert "sealctl store encrypt" in srv.log(), srv.log()
        srv.extra_yaml = ""
        srv.write_config()
        srv.start()
        encrypted = False
    assert subjects(reenv(env), user) == want, point
    srv.stop()
    assert encrypted == (point == "renamed"), point
    # And the conversion, run again, completes.
    srv.extra_yaml = enc_yaml(key)
    srv.write_config()
    r = sealctl(srv, "store", "encrypt", check=False)
    assert r.returncode == 0 or "encrypted already" in r.stderr, r.stderr
    srv.start()
    assert subjects(reenv(env), user) == want, point
    srv.stop()
    assert leaks(data_dir(srv), [b"CONVMARK"]) == []


def test_rekey_and_the_old_key_stops_working(enc_server, tmp_path):
    srv = enc_server
    env, user, _, _ = deliver_marked(srv, "REKEYMARK", large=False)
    new = str(tmp_path / "new.kek")
    r = sealctl(srv, "store", "genkey", new)
    assert os.stat(new).st_mode & 0o777 == 0o400
    r = sealctl(srv, "store", "genkey", new, check=False)
    assert r.returncode == 1
    srv.stop()
    r = sealctl(srv, "store", "rekey", "--new-key-file", new)
    assert "sealctl:" not in r.stderr, r.stderr
    # The old key no longer opens the store...
    with pytest.raises(harness.ServerError):
        srv.start()
    assert "not the key of this store" in srv.log()
    # ...the new one does, with every message.
    srv.extra_yaml = enc_yaml(new)
    srv.write_config()
    srv.start()
    assert len(search(reenv(env), user, "REKEYMARK")) == 3
    srv.stop()


def test_backup_of_an_encrypted_store_is_encrypted_and_restores_with_the_key(
        enc_server, make_server, tmp_path):
    srv = enc_server
    env, user, subject, _ = deliver_marked(srv, "BACKUPMARK")
    backup = str(tmp_path / "store.backup")
    sealctl(srv, "backup", backup, "--with-config")
    assert os.path.exists(backup + ".key")
    needles = [b"BACKUPMARK", user.encode(), subject.encode()]
    for p in (backup, backup + ".key"):
        with open(p, "rb") as f:
            data = f.read()
        assert not [n for n in needles if n in data], p
    r = subprocess.run(["sqlite3", backup, "SELECT count(*) FROM sqlite_master"],
                       capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    srv.stop()

    # Into a new server: without the key it is refused and nothing is restored (sealctl's
    # audit record of the attempt may make an empty store)...
    other = make_server(start=False)
    os.makedirs(data_dir(other), exist_ok=True)
    restored = [os.path.join(data_dir(other), n) for n in ("mail.db.restore", "store.key.new")]
    r = sealctl(other, "restore", backup, check=False)
    assert r.returncode == 1 and "encrypted" in r.stderr, r.stderr
    assert not any(map(os.path.exists, restored))
    assert not os.path.exists(os.path.join(data_dir(other), "store.key"))
    # ...a wrong key too...
    wrong = make_key(str(tmp_path / "wrong.kek"))
    other.extra_yaml = enc_yaml(wrong)
    other.write_config()
    r = sealctl(other, "restore", backup, check=False)
    assert r.returncode == 1 and "not the key" in r.stderr, r.stderr
    assert not any(map(os.path.exists, restored))
    # ...with the key it restores, encrypted, with every message.
    other.extra_yaml = enc_yaml(srv.kek)
    other.write_config()
    sealctl(other, "restore", backup)
    assert os.path.exists(os.path.join(data_dir(other), "store.key"))
    other.start()
    oenv = ImapEnv(other)
    oenv.users = dict(env.users)
    assert len(search(oenv, user, "BACKUPMARK")) == 4
    other.stop()
    assert leaks(data_dir(other), needles) == []
