"""DSN NOTIFY beyond FAILURE (RFC 3461 6.2): a "delivered" report for a local recipient
that asked NOTIFY=SUCCESS, a "relayed" report when the next hop does not speak DSN (and
none when it does: NOTIFY goes on to it), one "delayed" report at the first deferral of a
recipient that asked NOTIFY=DELAY, and nothing for NOTIFY=NEVER or the null sender.

Reports land in the sender's INBOX (alice is local). Every wait is bounded; "nothing more"
is checked after the queue emptied and a few relay ticks (2 s each) went by."""
import re
import smtplib
import ssl
import time

import pytest

from test_relay_env import StubPeer, leaf, message, route_mtas, wait_for


@pytest.fixture
def mta(certs, sealmaild_bin, tmp_path_factory):
    yield from route_mtas(certs, tmp_path_factory, {"retry_initial": 1, "retry_max": 1})


def peer_stub(certs, dsn=False):
    cert, key = leaf(certs, "stub-good", "peer.test", dns=["peer.test"], ip=["127.0.0.1"],
                     server=True)
    stub = StubPeer("tls", cert, key)
    if dsn:
        stub.extra_caps = ["DSN"]
    return stub


def deferring(certs, mta):
    """A peer that answers every RCPT with 451, and an Mta (give_up far away) routing
    peer.test to it, with alice."""
    stub = peer_stub(certs)
    stub.rcpt_reply = "451 4.2.0 mailbox busy"
    try:
        m = mta([{"domain": "peer.test", "port": stub.port}], give_up=600)
        return stub, m, m.add_user("alice")
    except BaseException:
        stub.close()
        raise


def report_parts(dsn):
    """(header block, the message/delivery-status part) of a report, unfolded."""
    head = dsn.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    assert re.search(rb"(?im)^Content-Type: multipart/report; report-type=delivery-status",
                     head), head
    m = re.search(rb"Content-Type: message/delivery-status\r\n\r\n(.*?)\r\n--", dsn, re.S)
    assert m, dsn
    return head, m.group(1)


def actions(dsn):
    return re.findall(rb"(?m)^Action: (\S+)\r$", dsn)


def quiet(m, address, n, seconds=4.5):
    """After the queue emptied, a couple of relay ticks add nothing to address's INBOX."""
    m.wait_queue_empty(timeout=15)
    time.sleep(seconds)
    got = m.inbox(address)
    assert len(got) == n, [g[:600] for g in got]
    return got


def test_delivered_report_for_local_notify_success(certs, mta):
    m = mta([])
    alice = m.add_user("alice")
    bob = m.add_user("bob")
    m.submit(alice, [bob], message(alice, bob, "hello bob"), mail_options=["ENVID=env-77"],
             rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob@a.test"])
    dsn = m.wait_inbox(alice, 1, timeout=10)[0]
    assert dsn.startswith(b"Return-Path: <>\r\n"), dsn[:200]  # delivered here: final
    assert len(m.inbox(bob)) == 1
    head, status = report_parts(dsn)
    assert b"To: <alice@a.test>" in head, head
    assert b"Subject: Successful Mail Delivery Report" in head, head
    assert b"Original-Envelope-Id: env-77\r\n" in status, status
    assert (b"Original-Recipient: rfc822;Bob@a.test\r\nFinal-Recipient: rfc822; bob@a.test\r\n"
            b"Action: delivered\r\nStatus: 2.0.0\r\n") in status, status
    assert actions(dsn) == [b"delivered"]
    # No RET: the original's header block only.
    assert b"Content-Type: text/rfc822-headers" in dsn and b"Subject: hello bob" in dsn, dsn
    assert b"..two dots" not in dsn

    # RET=FULL: the whole message comes back.
    m.submit(alice, [bob], message(alice, bob, "full one"), mail_options=["RET=FULL"],
             rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    dsns = m.wait_inbox(alice, 2, timeout=10)
    assert b"Content-Type: message/rfc822" in dsns[1] and b"..two dots" in dsns[1], dsns[1]

    # (d) NOTIFY=NEVER, NOTIFY=FAILURE and no NOTIFY at all: delivered, no report.
    m.submit(alice, [bob], message(alice, bob, "never"), rcpt_options=["NOTIFY=NEVER"])
    m.submit(alice, [bob], message(alice, bob, "failure only"), rcpt_options=["NOTIFY=FAILURE"])
    m.submit(alice, [bob], message(alice, bob, "plain"))
    m.wait_inbox(bob, 5, timeout=10)
    quiet(m, alice, 2, seconds=2.5)


def test_null_sender_gets_no_report(certs, mta):
    m = mta([])
    bob = m.add_user("bob")
    cert, key = leaf(certs, "client-peer", "mail.other.test", dns=["mail.other.test"],
                     client=True)
    ctx = ssl.create_default_context(cafile=certs.ca)
    ctx.load_cert_chain(cert, key)
    s = smtplib.SMTP("127.0.0.1", m.smtp_port(), timeout=10)
    try:
        s.starttls(context=ctx)
        refused = s.sendmail("", [bob], message("", bob, "from nobody"),
                             rcpt_options=["NOTIFY=SUCCESS"])
        assert not refused, refused
    finally:
        s.quit()
    m.wait_inbox(bob, 1, timeout=10)
    m.wait_log(r"proto=smtp event=queued .*from= size=")
    time.sleep(2.5)
    assert len(m.inbox(bob)) == 1
    assert m.queue_rows() == []
    assert "event=dsn_" not in m.log()


def test_relayed_report_only_when_the_peer_lacks_dsn(certs, mta):
    plain, dsn_peer = peer_stub(certs), peer_stub(certs, dsn=True)
    try:
        m = mta([{"domain": "peer.test", "port": plain.port},
                 {"domain": "dsnpeer.test", "port": dsn_peer.port}])
        alice = m.add_user("alice")
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "to plain"),
                 mail_options=["ENVID=e1"],
                 rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Rcpt@peer.test"])
        wait_for(lambda: plain.messages, 10, "the delivery to the peer without DSN")
        # We did not pass NOTIFY to a peer that did not offer DSN.
        assert "NOTIFY" not in plain.messages[0][1][0], plain.messages
        dsn = m.wait_inbox(alice, 1, timeout=10)[0]
        assert dsn.startswith(b"Return-Path: <>\r\n"), dsn[:200]
        head, status = report_parts(dsn)
        assert b"Subject: Successful Mail Relay Report" in head, head
        assert (b"Original-Recipient: rfc822;Rcpt@peer.test\r\n"
                b"Final-Recipient: rfc822; rcpt@peer.test\r\n"
                b"Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; 127.0.0.1\r\n"
                b"Diagnostic-Code: smtp; 250 2.0.0 queued") in status, status
        assert b"Original-Envelope-Id: e1\r\n" in status
        assert actions(dsn) == [b"relayed"]
        assert b"Content-Type: text/rfc822-headers" in dsn and b"Subject: to plain" in dsn

        # A DSN peer gets NOTIFY and ORCPT and reports itself: nothing from us.
        m.submit(alice, ["rcpt@dsnpeer.test"], message(alice, "rcpt@dsnpeer.test", "to dsn"),
                 rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;rcpt@dsnpeer.test"])
        wait_for(lambda: dsn_peer.messages, 10, "the delivery to the DSN peer")
        rcpt = dsn_peer.messages[0][1][0]
        assert "NOTIFY=SUCCESS,FAILURE" in rcpt and "ORCPT=rfc822;rcpt@dsnpeer.test" in rcpt, \
            rcpt
        # (d) NOTIFY=NEVER to the peer without DSN: delivered, no report either.
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "never"),
                 rcpt_options=["NOTIFY=NEVER"])
        wait_for(lambda: len(plain.messages) == 2, 10, "the second delivery to the peer")
        quiet(m, alice, 1)
    finally:
        plain.close()
        dsn_peer.close()


def test_one_delayed_report_then_nothing(certs, mta):
    stub, m, alice = deferring(certs, mta)
    try:
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "slow one"),
                 rcpt_options=["NOTIFY=DELAY,FAILURE"])
        # Several deferred attempts (retry every second or so, ticks of 2 s).
        stub.wait_connections(3, timeout=20)
        wait_for(lambda: re.search(r"attempts=[3-9]", m.queue_list()), 10, "three attempts")
        got = m.inbox(alice)
        assert len(got) == 1, [g[:600] for g in got]
        head, status = report_parts(got[0])
        assert b"Subject: Delayed Mail (still being retried)" in head, head
        assert (b"Final-Recipient: rfc822; rcpt@peer.test\r\nAction: delayed\r\n"
                b"Status: 4.2.0\r\nRemote-MTA: dns; 127.0.0.1\r\n"
                b"Diagnostic-Code: smtp; 451 4.2.0 mailbox busy\r\n") in status, status
        assert re.search(rb"Will-Retry-Until: \w{3}, \d\d \w{3} \d{4} [\d:]{8} \+0000\r\n",
                         status), status
        assert b"still trying to deliver it" in got[0]
        assert stub.messages == []

        # The peer takes it now: delivered, and no report (NOTIFY has no SUCCESS).
        stub.rcpt_reply = "250 2.1.5 ok"
        m.flush()
        wait_for(lambda: stub.messages, 10, "the delivery once the peer accepts")
        quiet(m, alice, 1)
    finally:
        stub.close()


def test_no_delayed_report_without_notify_delay(certs, mta):
    stub, m, alice = deferring(certs, mta)
    try:
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "no notify"))
        m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test", "failure only"),
                 rcpt_options=["NOTIFY=FAILURE"])
        stub.wait_connections(4, timeout=20)
        wait_for(lambda: len(re.findall(r"attempts=[2-9]", m.queue_list())) >= 2, 10,
                 "two attempts each")
        assert m.inbox(alice) == []
    finally:
        stub.close()
