"""The relay against stub SMTP peers in Python (issue 8, "Done means" 2 and 4): a peer that
offers no STARTTLS, one that fails the handshake, one whose certificate names another host,
and a REQUIRETLS message to a peer that does not advertise REQUIRETLS. The message stays
queued with the reason in `sealctl queue list` (or, for REQUIRETLS, is bounced) and the peer
never sees MAIL, RCPT or DATA; once a proper peer answers on the route, `sealctl queue
flush` makes the next attempt deliver."""
import re
import time

import pytest

from test_relay_env import StubPeer, leaf, message, route_mtas, wait_for


@pytest.fixture
def mta(certs, sealmaild_bin, tmp_path_factory):
    yield from route_mtas(certs, tmp_path_factory, {"retry_initial": 1, "retry_max": 2}, ca_on_every_route=False)


def peer_cert(certs):
    return leaf(certs, "stub-good", "peer.test", dns=["peer.test"], ip=["127.0.0.1"],
                server=True)


def wait_error(m, stub, conns, pattern, timeout=10):
    """Waits for attempt number conns at the stub and for its error in `queue list`."""
    stub.wait_connections(conns, timeout)

    def shown():
        out = m.queue_list()
        return out if re.search(pattern, out) else None
    try:
        out = wait_for(shown, timeout, "queue list to show %r" % pattern)
    except AssertionError as e:
        raise AssertionError("%s\nqueue:\n%s\nstub: %r\nlog tail:\n%s"
                             % (e, m.queue_list(), stub.commands, m.log()[-4000:]))
    assert "to=<rcpt@peer.test>" in out, out
    return out


def test_no_downgrade_then_delivery(certs, mta):
    stub = StubPeer("plain")
    try:
        m = mta([{"domain": "peer.test", "port": stub.port}])
        alice = m.add_user("alice")
        msg = message(alice, "rcpt@peer.test")
        m.submit(alice, ["rcpt@peer.test"], msg)

        # (a) no STARTTLS offered
        wait_error(m, stub, 1, r'error="peer offers no STARTTLS"')
        # (b) STARTTLS offered, the connection closes instead of the handshake
        stub.mode = "badtls"
        m.flush()
        out = wait_error(m, stub, 2, r'error="[^"]*during TLS handshake"')
        assert "status=pending" in out, out
        # (c) a certificate from the right CA for another name
        stub.cert, stub.key = leaf(certs, "stub-wrong", "wrong.example",
                                   dns=["wrong.example"], server=True)
        stub.mode = "tls"
        m.flush()
        wait_error(m, stub, 3, r'error="certificate verification failed[^"]*"')
        assert stub.handshakes == 0 or all(not c.startswith("TLS:") for c in stub.commands), \
            stub.commands
        assert stub.envelope_seen() == [], stub.commands
        assert stub.messages == []
        # (d) the proper peer: the next attempt delivers
        stub.cert, stub.key = peer_cert(certs)
        m.flush()
        m.wait_queue_empty(timeout=10)
        assert len(stub.messages) == 1, stub.commands
        mail, rcpts, data = stub.messages[0]
        assert mail.startswith("MAIL FROM:<%s>" % alice), mail
        assert rcpts == ["RCPT TO:<rcpt@peer.test>"] or \
            rcpts[0].startswith("RCPT TO:<rcpt@peer.test>"), rcpts
        assert data.endswith(msg), data[-200:]
        assert data.startswith(b"Received: "), data[:200]
        # Nothing of the envelope went in clear, ever.
        assert all(c.startswith("TLS:") for c in stub.envelope_seen()), stub.commands
    finally:
        stub.close()


def test_requiretls_to_peer_without_it_bounces(certs, mta):
    cert, key = peer_cert(certs)
    stub = StubPeer("tls", cert, key, requiretls=False)
    try:
        m = mta([{"domain": "peer.test", "port": stub.port}])
        alice = m.add_user("alice")
        msg = message(alice, "rcpt@peer.test", "must be tls")
        m.submit(alice, ["rcpt@peer.test"], msg, mail_options=["REQUIRETLS"])
        dsn = m.wait_inbox(alice, 1, timeout=10)[0]
        m.wait_queue_empty(timeout=5)
        assert stub.handshakes >= 1, stub.commands  # it did talk TLS to the peer ...
        assert stub.envelope_seen() == [], stub.commands  # ... and sent no envelope
        assert stub.messages == []
        head = dsn.split(b"\r\n\r\n", 1)[0]
        assert re.search(rb"(?im)^Content-Type: multipart/report;.*report-type=\"?delivery-"
                         rb"status", head.replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")), head
        assert b"Final-Recipient: rfc822; rcpt@peer.test" in dsn, dsn
        assert b"Action: failed" in dsn
        assert b"Status: 5.7.30" in dsn, dsn  # RFC 8689 5: REQUIRETLS support required
        assert b"REQUIRETLS" in dsn

        # The same with a peer that advertises REQUIRETLS: delivered, REQUIRETLS passed on.
        stub.requiretls = True
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test"),
                 mail_options=["REQUIRETLS"])
        wait_for(lambda: stub.messages, 10, "delivery to a REQUIRETLS peer")
        assert stub.messages[0][0].upper().endswith("REQUIRETLS"), stub.messages[0][0]
        m.wait_queue_empty(timeout=5)
    finally:
        stub.close()


def test_dsn_parameters_pass_to_a_dsn_peer(certs, mta):
    cert, key = peer_cert(certs)
    stub = StubPeer("tls", cert, key)
    stub.extra_caps = ["DSN"]
    try:
        m = mta([{"domain": "peer.test", "port": stub.port}])
        alice = m.add_user("alice")
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test"),
                 mail_options=["RET=HDRS", "ENVID=env+2Bid1"],
                 rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;Rcpt@peer.test"])
        wait_for(lambda: stub.messages, 10, "the delivery")
        mail, rcpts, _ = stub.messages[0]
        assert "RET=HDRS" in mail and "ENVID=env+2Bid1" in mail, mail
        assert "NOTIFY=FAILURE,DELAY" in rcpts[0] and "ORCPT=rfc822;Rcpt@peer.test" in rcpts[0], \
            rcpts
        m.wait_queue_empty(timeout=5)
    finally:
        stub.close()


def test_plaintext_route_to_loopback_is_allowed_and_logged(certs, mta):
    stub = StubPeer("plain")
    try:
        m = mta([{"domain": "peer.test", "port": stub.port, "tls": "none"}])
        m.wait_log(r"proto=relay event=plaintext_route domain=peer.test .*allowed=yes")
        alice = m.add_user("alice")
        msg = message(alice, "rcpt@peer.test")
        m.submit(alice, ["rcpt@peer.test"], msg)
        wait_for(lambda: stub.messages, 10, "the plaintext delivery")
        assert stub.messages[0][2].endswith(msg)
        assert not any(c.upper().startswith("STARTTLS") for c in stub.commands)
        m.wait_log(r"proto=relay event=plaintext_delivery queue=\d+ host=127.0.0.1")
        m.wait_queue_empty(timeout=5)
    finally:
        stub.close()


def test_encrypt_route_skips_verification_but_not_for_requiretls(certs, mta):
    cert, key = leaf(certs, "stub-wrong", "wrong.example", dns=["wrong.example"], server=True)
    stub = StubPeer("tls", cert, key, requiretls=True)
    try:
        m = mta([{"domain": "peer.test", "port": stub.port, "tls": "encrypt"}])
        alice = m.add_user("alice")
        msg = message(alice, "rcpt@peer.test")
        m.submit(alice, ["rcpt@peer.test"], msg)
        wait_for(lambda: stub.messages, 10, "the delivery over unverified TLS")
        assert stub.messages[0][2].endswith(msg)
        assert all(c.startswith("TLS:") for c in stub.envelope_seen()), stub.commands
        m.wait_log(r"proto=relay event=tls .*verified=no")
        # REQUIRETLS needs verified TLS (RFC 8689 4.2.1): bounced, never sent.
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "strict"),
                 mail_options=["REQUIRETLS"])
        dsn = m.wait_inbox(alice, 1, timeout=10)[0]
        assert b"Status: 5.7.30" in dsn, dsn
        assert len(stub.messages) == 1
        m.wait_queue_empty(timeout=5)
    finally:
        stub.close()
