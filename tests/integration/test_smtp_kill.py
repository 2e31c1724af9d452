"""kill -9 while clients submit: every message that got its 250 is in its mailbox after a
restart (the 250 is sent only after the store's transaction is durable). The same with the
store encrypted at rest (docs/encryption.md), read back over IMAP since sqlite3 cannot."""
import os
import signal
import smtplib
import threading
import time

import pytest

import harness
from imap_env import ImapEnv
from smtp_env import SmtpEnv


def imap_bodies(srv, env, rcpt):
    """Bodies of rcpt's INBOX over IMAP (for an encrypted store)."""
    imap = ImapEnv(srv)
    m = imap.imaps(rcpt, password=env.users[rcpt], timeout=60)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "ALL")
    out = []
    nums = data[0].split()
    if nums:
        typ, data = m.fetch(b",".join(nums), "(BODY.PEEK[])")
        out = [p[1] for p in data if isinstance(p, tuple)]
    m.logout()
    return out


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_acknowledged_messages_survive_sigkill(certs, sealmaild_bin, tmp_path_factory,
                                               encrypted):
    work = str(tmp_path_factory.mktemp("srv"))
    extra = ""
    if encrypted:
        key = os.path.join(work, "store.kek")
        with open(key, "w") as f:
            f.write(os.urandom(32).hex())
        os.chmod(key, 0o400)
        extra = "encryption:\n  key_file: %s\n" % key
    srv = harness.Server(certs, workdir=work, extra_yaml=extra)
    srv.start()
    env = SmtpEnv(srv)
    alice = env.add_user("alice")
    rcpts = [env.add_user("r%d" % i) for i in range(4)]
    acked = {r: [] for r in rcpts}
    stop = threading.Event()

    def client(n):
        rcpt = rcpts[n]
        i = 0
        while not stop.is_set():
            try:
                with env.smtps(alice) as s:
                    while not stop.is_set():
                        tag = "kill-%d-%d" % (n, i)
                        i += 1
                        s.sendmail(alice, [rcpt], ("Subject: %s\r\n\r\n%s\r\n"
                                                   % (tag, tag)).encode())
                        acked[rcpt].append(tag)  # only after the 250
            except (smtplib.SMTPException, OSError):
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(rcpts))]
    for t in threads:
        t.start()
    # Kill while messages flow: once enough have been acknowledged (a loaded machine may
    # take longer to get there; the count, not a fixed delay, decides), mid-stream.
    deadline = time.monotonic() + 60
    while sum(len(v) for v in acked.values()) <= 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    total = sum(len(v) for v in acked.values())
    assert total > 20, "too few messages were acknowledged: %d" % total
    srv.start()
    for rcpt, tags in acked.items():
        got = imap_bodies(srv, env, rcpt) if encrypted else env.inbox(rcpt)
        bodies = b"\n".join(got)
        missing = [t for t in tags if ("Subject: %s\r\n" % t).encode() not in bodies]
        assert not missing, "%s lost acknowledged messages %s" % (rcpt, missing[:5])
    srv.check_stopped()
