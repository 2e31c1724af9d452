"""sealctl status (the running daemon's listeners with their bound ports, sessions per
protocol, certificate expiry; the store's users and queue; "not running" when it does not
run) and sealctl mailbox create|rename|delete as an IMAP client then sees them."""
import re
import subprocess

import harness
from imap_env import ImapEnv


def sealctl(srv, *args, ok=True):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       capture_output=True, text=True, timeout=60, env=harness.server_env())
    if ok:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert not harness.sanitizer_reports(r.stderr), r.stderr
    return r


def test_status_running_and_stopped(make_server):
    srv = make_server()
    env = ImapEnv(srv)
    user = env.add_user("st1")
    m = env.imaps(user)
    m2 = env.imaps(user)
    out = sealctl(srv, "status").stdout
    assert re.search(r"sealmaild: running, pid %d" % srv.proc.pid, out), out
    port = srv.port("imap", "implicit")
    assert re.search(r"listener imap\s+implicit\s+127\.0\.0\.1:%d " % port, out), out
    assert re.search(r"sessions imap\s+2\b", out), out
    assert "server certificate" in out and "days" in out, out
    assert "store: 1 users" in out, out
    assert "relay queue: 0 messages" in out, out
    m.logout()
    m2.logout()
    assert srv.stop() == 0
    out = sealctl(srv, "status").stdout
    assert "sealmaild: not running" in out, out
    srv.start()


def test_mailbox_create_rename_delete(server):
    env = ImapEnv(server)
    user = env.add_user("mb1")
    sealctl(server, "mailbox", "create", user, "Projects")
    r = sealctl(server, "mailbox", "create", user, "Projects/2026")
    assert "created Projects/2026" in r.stdout
    r = sealctl(server, "mailbox", "create", user, "Projects/2026", ok=False)
    assert r.returncode == 1 and "exists already" in r.stderr, r.stderr
    m = env.imaps(user)
    typ, data = m.list()
    names = b" ".join(data)
    assert b"Projects/2026" in names, data
    sealctl(server, "mailbox", "rename", user, "Projects", "Older")
    typ, data = m.list()
    names = b" ".join(data)
    assert b"Older/2026" in names and b"Projects" not in names, data
    r = sealctl(server, "mailbox", "delete", user, "Nope", ok=False)
    assert r.returncode == 1 and "no such mailbox" in r.stderr, r.stderr
    r = sealctl(server, "mailbox", "delete", user, "INBOX", ok=False)
    assert r.returncode == 1 and "not a valid name" in r.stderr, r.stderr
    r = sealctl(server, "mailbox", "create", user, "bad//name", ok=False)
    assert r.returncode == 1, r.stderr
    sealctl(server, "mailbox", "delete", user, "Older/2026")
    typ, data = m.list()
    assert b"Older/2026" not in b" ".join(data), data
    m.logout()
    r = sealctl(server, "mailbox", "create", "nobody@" + harness.DOMAIN, "X", ok=False)
    assert r.returncode == 1 and "no such user" in r.stderr, r.stderr


def test_reload_names_the_changes_it_does_not_apply(make_server):
    import signal
    import time
    srv = make_server()
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reloaded" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "event=reload_restart_needed" not in srv.log()
    srv.limits = dict(srv.limits or {}, connections=321)
    srv.write_config()
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reload_restart_needed" not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 'event=reload_restart_needed keys="limits.connections"' in srv.log(), srv.log()[-2000:]
