"""Failed-login throttling against the real sealmaild: only failure replies wait.

After a run of wrong passwords from an address, a right password from that address (the
same account or another) is answered at once, while guesses keep getting slower, also on
new connections and also when the guesser drops each connection instead of waiting for
the answer. Unknown users and wrong passwords get the same reply after the same delay.
Each test starts its own server, so the counts start at zero. The server's schedule: the
first failure answers at once, then 250 ms doubling per failure (4 s for the 6th, 8 s
for the 7th), at most 4 checks pending per address that has failures.
"""
import base64
import socket
import threading
import time

import pytest

import harness
from harness import DOMAIN
from imap_env import PASSWORD, ImapEnv

WRONG = "not the password"
FAST = 1.0  # a right password after failures: answered within this (specified bound),
# plus what a right password costs on this machine without any failure (env.cost: the
# password hash under a sanitizer or a loaded CI machine is not the throttle's doing)
SLOW = 2.0  # the 6th and 7th failures wait 4 s and 8 s: at least this


@pytest.fixture
def env(make_server):
    e = ImapEnv(make_server())
    e.alice = e.add_user("alice")
    e.bob = e.add_user("bob")
    e.carol = e.add_user("carol")
    e.nobody = "nobody@" + DOMAIN
    e.cost = 0.0
    dave = e.add_user("dave")
    costs = sorted(imap_login(e, dave, PASSWORD, "127.0.0.9")[2] for _ in range(3))
    e.cost = costs[-1]  # the first is not in the login cache, like the ones measured
    return e


def connect(env, port, source="127.0.0.1"):
    """A TLS LineClient to port, from a chosen loopback address."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30,
                                   source_address=(source, 0))
    sock = env.ctx().wrap_socket(raw, server_hostname="127.0.0.1")
    return harness.LineClient(sock, timeout=30)


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


# ---- per protocol: one login attempt on a fresh connection -> (ok, reply, seconds)

def imap_login(env, user, password, source="127.0.0.1"):
    lc = connect(env, env.port, source)
    assert lc.readline().startswith(b"* OK")

    def go():
        lc.send('a1 LOGIN "%s" "%s"\r\n' % (user, password))
        return lc.imap_tagged("a1")[-1]
    r, dt = timed(go)
    lc.close()
    return r.startswith(b"a1 OK"), r, dt


def pop3_login(env, user, password, source="127.0.0.1"):
    lc = connect(env, env.srv.port("pop3", "implicit"), source)
    assert lc.readline().startswith(b"+OK")
    lc.send("USER %s\r\n" % user)
    assert lc.readline().startswith(b"+OK")

    def go():
        lc.send("PASS %s\r\n" % password)
        return lc.readline()
    r, dt = timed(go)
    if r.startswith(b"+OK"):
        lc.send("QUIT\r\n")
        lc.readline()
    lc.close()
    return r.startswith(b"+OK"), r, dt


def smtp_login(env, user, password, source="127.0.0.1"):
    lc = connect(env, env.srv.port("submission", "implicit"), source)
    assert lc.smtp_reply()[-1].startswith(b"220")
    lc.send("EHLO client.example\r\n")
    assert lc.smtp_reply()[-1].startswith(b"250")
    ir = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()

    def go():
        lc.send("AUTH PLAIN %s\r\n" % ir)
        return lc.smtp_reply()[-1]
    r, dt = timed(go)
    lc.close()
    return r.startswith(b"235"), r, dt


LOGINS = {"imap": imap_login, "pop3": pop3_login, "smtp": smtp_login}


@pytest.mark.parametrize("proto", ["imap", "pop3", "smtp"])
def test_right_passwords_answer_at_once_after_failures(env, proto):
    login = LOGINS[proto]
    replies = []
    for _ in range(5):
        ok, r, _ = login(env, env.alice, WRONG)
        assert not ok, r
        replies.append(r)
    # A colleague behind the same address, and alice herself, are not held up.
    ok, r, dt = login(env, env.bob, PASSWORD)
    assert ok and dt < FAST + env.cost, (r, dt)
    # The address still counts its failures: the next guess (an unknown user this
    # time) waits, and gets the wrong password's reply word for word.
    ok, r, dt = login(env, env.nobody, PASSWORD)
    assert not ok and dt >= SLOW, (r, dt)
    assert r == replies[-1], (r, replies[-1])
    ok, r, dt = login(env, env.alice, PASSWORD)
    assert ok and dt < FAST + env.cost, (r, dt)
    # Alice's success forgave her own typos; bob's one typo now answers at once.
    ok, r, dt = login(env, env.bob, WRONG)
    assert not ok and dt < FAST + env.cost, (r, dt)
    log = env.srv.log()
    assert log.count("event=auth_failed") >= 7, log


def test_imap_guessing_stays_slow_and_unknown_users_wait_alike(env):
    """Two guessers from two addresses in parallel, each on a new connection per guess:
    one at alice's password, one at a user that does not exist. Same replies, same
    delays, and the 6th and 7th guesses are slow."""
    runs = {}

    def guess(source, user):
        runs[source] = [imap_login(env, user, WRONG, source) for _ in range(7)]

    threads = [threading.Thread(target=guess, args=("127.0.0.2", env.alice)),
               threading.Thread(target=guess, args=("127.0.0.3", env.nobody))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wrong, unknown = runs["127.0.0.2"], runs["127.0.0.3"]
    for i, (a, b) in enumerate(zip(wrong, unknown)):
        assert not a[0] and not b[0], (a, b)
        assert a[1] == b[1], (i, a[1], b[1])
        assert abs(a[2] - b[2]) < 0.2 + 0.1 * max(a[2], b[2]), (i, a[2], b[2])
    for i in (5, 6):
        assert wrong[i][2] >= SLOW and unknown[i][2] >= SLOW, (i, wrong[i], unknown[i])
    # The first one answers at once: a single typo costs nothing.
    assert wrong[0][2] < FAST + env.cost and unknown[0][2] < FAST + env.cost, (wrong[0], unknown[0])


def test_imap_dropping_connections_does_not_bypass_the_delay(env):
    """A guesser that does not wait for the (delayed) failure reply but hangs up once no
    quick success came: its pending failures still hold the address's check slots, so
    its next guess waits. An account that logged in from the address since its last
    failure there (bob) is not held up by them."""
    for _ in range(5):
        ok, r, _ = imap_login(env, env.alice, WRONG)
        assert not ok, r
    ok, r, dt = imap_login(env, env.bob, PASSWORD)
    assert ok and dt < FAST + env.cost, (r, dt)

    def drop():
        lc = connect(env, env.port)
        assert lc.readline().startswith(b"* OK")
        lc.send('d1 LOGIN "%s" "%s"\r\n' % (env.alice, WRONG))
        time.sleep(0.7)  # the check is over; no success came
        lc.close()

    threads = [threading.Thread(target=drop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok, r, dt = imap_login(env, env.bob, PASSWORD)
    assert ok and dt < FAST + env.cost, (r, dt)
    ok, r, dt = imap_login(env, env.alice, WRONG)
    assert not ok and dt >= SLOW, (r, dt)
    log = env.srv.log()
    assert log.count("reason=bad_credentials") >= 10, log
