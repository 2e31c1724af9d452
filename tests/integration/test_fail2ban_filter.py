"""deploy/fail2ban/sealmail.conf matches what sealmaild really logs: a failed login (IMAP,
POP3, SMTP AUTH) and a failed TLS handshake give the client's address; a good login does
not match. fail2ban itself is not needed: its <HOST> is replaced by an address group."""
import configparser
import imaplib
import os
import re
import socket
import time

import harness
from imap_env import ImapEnv


def filter_regexes():
    path = os.path.join(os.environ["SEALMAIL_SOURCE_ROOT"], "deploy", "fail2ban",
                        "sealmail.conf")
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(path)
    lines = [l.strip() for l in cp["Definition"]["failregex"].splitlines() if l.strip()]
    assert len(lines) >= 2
    return [re.compile(l.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)")) for l in lines]


def test_filter_matches_failures_only(server):
    env = ImapEnv(server)
    user = env.add_user("f2b")
    ok = env.imaps(user)
    ok.logout()
    m = env.imaps()
    try:
        m.login(user, "wrong password")
    except imaplib.IMAP4.error:
        pass
    # A handshake that fails: plain text to an implicit-TLS port.
    s = socket.create_connection(("127.0.0.1", env.port), timeout=10)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\x00" * 64)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "event=tls_failed" not in server.log():
        time.sleep(0.1)
    regs = filter_regexes()
    hits = {"auth_failed": 0, "tls_failed": 0}
    for line in server.log().splitlines():
        found = [r.search(line) for r in regs]
        found = [f for f in found if f]
        if "event=auth_ok" in line:
            assert not found, line
        for ev in hits:
            if "event=%s" % ev in line and "ip=127.0.0.1" in line:
                assert found and found[0].group("host") == "127.0.0.1", line
                hits[ev] += 1
    assert hits["auth_failed"] >= 1 and hits["tls_failed"] >= 1, (hits, server.log()[-2000:])
