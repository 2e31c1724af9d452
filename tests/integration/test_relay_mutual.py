"""Two sealmaild instances, for a.test and b.test, relaying to each other over mutual TLS
with route tls: verify: a message submitted at one arrives byte-exact, plus Return-Path:
and Received: fields, in a mailbox at the other (a 3.9 MB one too), and the receiving
side's Received: field names the sending server's client certificate. Each names the other
in its smtp listener's peers:, so the other is an organisation server there."""
import pytest

import harness

from test_relay_env import Mta, leaf, message, strip_received


@pytest.fixture
def pair(certs, sealmaild_bin, tmp_path_factory):
    started = []
    a_cert, a_key = leaf(certs, "relay-a", "mail.a.test", dns=["mail.a.test"], client=True)
    b_cert, b_key = leaf(certs, "relay-b", "mail.b.test", dns=["mail.b.test"], client=True)

    def relay(cert, key, domain, port):
        return {"certificate": cert, "key": key, "retry_initial": 1, "retry_max": 2,
                "routes": [{"domain": domain, "host": "127.0.0.1", "port": port,
                            "tls": "verify", "ca": certs.ca}]}

    # B first on port 0 (its route to A is a placeholder), then A with a route to B's smtp
    # port, then B again on the same port with its route to A's.
    bdir = str(tmp_path_factory.mktemp("mta-b"))
    b = Mta(certs, bdir, "b.test", relay=relay(b_cert, b_key, "a.test", 9),
            peers=["mail.a.test"])
    started.append(b)
    b.start()
    b_port = b.smtp_port()
    a = Mta(certs, str(tmp_path_factory.mktemp("mta-a")), "a.test",
            relay=relay(a_cert, a_key, "b.test", b_port), peers=["mail.b.test"])
    started.append(a)
    a.start()
    b.check_stopped()
    b = Mta(certs, bdir, "b.test", relay=relay(b_cert, b_key, "a.test", a.smtp_port()),
            smtp_port=b_port, peers=["mail.a.test"])
    started.append(b)
    b.start()
    yield a, b
    harness.check_all_stopped(started)


def test_mutual_tls_relay_both_ways(pair):
    a, b = pair
    alice = a.add_user("alice")
    bob = b.add_user("bob")

    msg = message(alice, bob, "a to b")
    a.submit(alice, [bob], msg)
    got = b.wait_inbox(bob, 1)[0]
    # B's final delivery: the reverse-path first; A's submission had no local recipient
    # and so wrote none.
    assert got.startswith(b"Return-Path: <%s>\r\nReceived: " % alice.encode()), got[:200]
    assert got.count(b"Return-Path:") == 1
    received, rest = strip_received(got)
    assert rest == msg
    assert len(received) >= 2, received  # A's (submission) and B's (peer smtp)
    top = received[0].decode()
    assert 'client certificate "' in top and "mail.a.test" in top, top
    assert "(organisation server mail.a.test)" in top, top
    assert "(authenticated user %s by PLAIN)" % alice in received[1].decode(), received[1]
    assert "by mail.b.test" in top, top
    a.wait_queue_empty()
    a.wait_log(r"proto=relay event=tls .*verified=yes")
    a.wait_log(r"proto=relay event=delivered .*rcpt=%s" % bob)

    # A large message (several relay chunks and write-queue refills) stays byte-exact.
    line = b"0123456789" * 7 + b"abcdef\r\n"
    big = message(alice, bob, "big") + b".leading dot\r\n" + line * 50000
    a.submit(alice, [bob], big)
    got = b.wait_inbox(bob, 2, timeout=20)[1]
    assert strip_received(got)[1] == big
    a.wait_queue_empty()

    # Local and remote recipients in one transaction: the local copy starts with A's
    # Return-Path (final delivery for carol), the copy handed to B does not carry it, and
    # B writes its own: exactly one, B's, in bob's copy.
    carol = a.add_user("carol")
    mixed = message(alice, bob, "mixed")
    a.submit(alice, [bob, carol], mixed)
    local = a.wait_inbox(carol, 1)[0]
    assert local.startswith(b"Return-Path: <%s>\r\nReceived: " % alice.encode()), local[:200]
    assert strip_received(local)[1] == mixed
    got = b.wait_inbox(bob, 3, timeout=20)[2]
    assert got.startswith(b"Return-Path: <%s>\r\nReceived: " % alice.encode()), got[:200]
    assert got.count(b"Return-Path:") == 1, got[:400]
    assert strip_received(got)[1] == mixed
    a.wait_queue_empty()

    back = message(bob, alice, "b to a")
    b.submit(bob, [alice], back)
    got = a.wait_inbox(alice, 1)[0]
    received, rest = strip_received(got)
    assert rest == back
    top = received[0].decode()
    assert 'client certificate "' in top and "mail.b.test" in top, top
    b.wait_queue_empty()
