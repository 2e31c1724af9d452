"""Retries, give-up and crashes (issue 8, "Done means" 3 and 5), with a short schedule
(retry_initial 1 s, retry_max 2 s, give_up 3 s):

- to a port where nothing listens, each recipient group (one per destination) that gives
  up sends one DSN (multipart/report) to the sender's INBOX, listing its recipients;
- the bounce of a remote sender's message is relayed with the null sender, and when that
  fails too it is dropped: a bounce is never bounced;
- a kill -9 while a delivery waits for the peer's reply to the end of data loses nothing:
  after the restart the message is delivered (a duplicate is allowed, RFC 5321 6.1)."""
import re
import signal
import time

import pytest

from test_relay_env import StubPeer, free_dead_port, leaf, message, route_mtas, wait_for


@pytest.fixture
def mta(certs, sealmaild_bin, tmp_path_factory):
    yield from route_mtas(certs, tmp_path_factory, {"retry_initial": 1, "retry_max": 2, "give_up": 3})


def dsn_recipients(dsn):
    return sorted(re.findall(rb"Final-Recipient: rfc822; ?(\S+)", dsn))


def test_give_up_bounces_once_per_group_and_never_bounces_a_bounce(mta):
    dead1, dead2, dead3 = free_dead_port(), free_dead_port(), free_dead_port()
    m = mta([{"domain": "dead1.test", "port": dead1},
             {"domain": "dead2.test", "port": dead2},
             {"domain": "remote.test", "port": dead3}])
    alice = m.add_user("alice")
    foreign = m.add_foreign_user("carol@remote.test")
    rcpts = ["u1@dead1.test", "u2@dead1.test", "v@dead2.test"]
    msg = message(alice, rcpts[0], "doomed")
    m.submit(alice, rcpts, msg)
    m.submit(foreign, ["w@dead1.test"], message(foreign, "w@dead1.test", "doomed too"))

    # While it retries, the queue says why.
    wait_for(lambda: re.search(r'to=<u1@dead1.test> status=\w+ attempts=[1-9]\d* .*'
                               r'error="cannot connect to 127.0.0.1 port %d' % dead1,
                               m.queue_list()), 8, "a deferral with its error")

    dsns = m.wait_inbox(alice, 2, timeout=20)
    assert len(dsns) == 2, dsns
    groups = sorted(dsn_recipients(d) for d in dsns)
    assert groups == [[b"u1@dead1.test", b"u2@dead1.test"], [b"v@dead2.test"]], groups
    for d in dsns:
        head = d.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ")
        assert re.search(rb"(?im)^Content-Type: multipart/report; report-type=delivery-status",
                         head), head
        assert b"To: <alice@a.test>" in head
        assert b"Action: failed" in d and b"Status: 4.4.7" in d, d
        assert b"Subject: doomed" in d  # the original's header block comes back

    # carol's bounce went to the queue with the null sender, failed, and was dropped.
    m.wait_queue_empty(timeout=20)
    m.wait_log(r"proto=relay event=failed queue=\d+ rcpt=carol@remote.test")
    time.sleep(2.5)  # one more tick: nothing new appears
    assert m.queue_rows() == []
    assert m.inbox(foreign) == []
    assert len(m.inbox(alice)) == 2


def test_kill_9_during_delivery_loses_nothing(certs, mta):
    cert, key = leaf(certs, "stub-good", "peer.test", dns=["peer.test"], ip=["127.0.0.1"],
                     server=True)
    stub = StubPeer("tls", cert, key)
    stub.data_delay = 20
    try:
        m = mta([{"domain": "peer.test", "port": stub.port}], give_up=3600)
        alice = m.add_user("alice")
        msg = message(alice, "rcpt@peer.test", "survives")
        m.submit(alice, ["rcpt@peer.test"], msg)
        wait_for(lambda: stub.delaying > 0, 10, "the stub to hold back its DATA reply")
        assert "status=in-flight" in m.queue_list()
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=5)
        m.log_file.close()
        assert m.queue_rows() != [], "the queue entry vanished with the crash"
        stub.data_delay = 0
        m.start()
        wait_for(lambda: any(d.endswith(msg) for _, _, d in stub.messages), 15,
                 "the redelivery after the restart")
        m.wait_queue_empty(timeout=5)
    finally:
        stub.close()
