"""MX delivery (RFC 5321 5.1, RFC 7505) against a DNS stub in Python (dns_stub.py) given to
sealmaild with relay.dns_servers. Mail for a domain without a route goes to its MX hosts by
preference, each host's AAAA then A addresses, until one takes it; a host that refuses the
connection, greets with 421 or presents a certificate for another name (tls: verify checks
the MX host's name) is skipped without seeing the envelope. No MX records: the domain's own
address (implicit MX). Null MX and NXDOMAIN bounce at once (5.1.10, 5.1.2); a DNS server
that does not answer, or an MX set that loops back to this server, leaves the message queued
with the reason in `sealctl queue list`.

MX hosts all listen on one port (relay.mx_port; 25 is not ours to bind) on different
loopback addresses, 127.0.0.2 and up, which Linux routes to lo without configuration."""
import re
import socket
import time

import pytest

import harness

from dns_stub import DnsStub
from test_relay_env import Mta, StubPeer, leaf, message, wait_for

DOMAIN = "a.test"  # the sending server's; its host name is mail.a.test


class Hosts:
    """Stubs and dead addresses that share one port: start() binds them all on a port that is
    free on every address (a dead address is bound but never listens: connection refused)."""

    def __init__(self):
        self.stubs, self.held, self.port = {}, [], None

    def start(self, stubs=None, dead=(), dead6=False):
        """stubs: {address: (mode, cert, key)}; dead: addresses; dead6: also [::1]."""
        for _ in range(50):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
            made, held = {}, []
            try:
                for addr, (mode, cert, key) in (stubs or {}).items():
                    made[addr] = StubPeer(mode, cert, key, address=addr, port=port)
                for addr in dead:
                    s = socket.socket()
                    s.bind((addr, port))
                    held.append(s)
                if dead6:
                    s = socket.socket(socket.AF_INET6)
                    s.bind(("::1", port))
                    held.append(s)
            except OSError:
                for st in made.values():
                    st.close()
                for s in held:
                    s.close()
                continue
            self.stubs, self.held, self.port = made, held, port
            return self
        raise RuntimeError("no port free on every test address")

    def close(self):
        for st in self.stubs.values():
            st.close()
        for s in self.held:
            s.close()


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture
def env(certs, sealmaild_bin, tmp_path_factory):
    """make(zone, hosts) -> (mta, dns): a DNS stub serving zone and a sealmaild that asks it,
    delivering to hosts.port with the test CA as relay.mx_ca."""
    made, closers = [], []

    def make(zone, hosts, **relay):
        dns = DnsStub(zone)
        closers.append(dns)
        closers.append(hosts)
        cert, key = leaf(certs, "relay-a", "mail.a.test", dns=["mail.a.test"], client=True)
        cfg = {"certificate": cert, "key": key, "retry_initial": 1, "retry_max": 2,
               "dns_servers": [dns.server], "mx_port": hosts.port, "mx_ca": certs.ca}
        cfg.update(relay)
        m = Mta(certs, str(tmp_path_factory.mktemp("mta")), DOMAIN, relay=cfg)
        made.append(m)
        m.start()
        return m, dns

    yield make
    try:
        harness.check_all_stopped(made)
    finally:
        for c in closers:
            c.close()


def mx_cert(certs, host):
    return leaf(certs, "mx-" + host, host, dns=[host], server=True)


def queue_error(m, rcpt, pattern, timeout=15):
    """Waits for rcpt's line in `queue list` to match pattern; returns the whole listing."""
    def shown():
        out = m.queue_list()
        line = next((l for l in out.splitlines() if "to=<%s>" % rcpt in l), "")
        return out if re.search(pattern, line) else None
    try:
        return wait_for(shown, timeout, "queue list to show %r for %s" % (pattern, rcpt))
    except AssertionError as e:
        raise AssertionError("%s\nqueue:\n%s\nlog tail:\n%s"
                             % (e, m.queue_list(), m.log()[-4000:]))


def test_falls_back_along_mx_hosts_and_their_addresses(certs, env):
    """The preferred host's two addresses refuse the connection and the next host greets with
    421: the message waits, with every address tried named in the last error. Once the
    second host works, the next attempt delivers there."""
    v6 = ipv6_loopback()
    cert, key = mx_cert(certs, "mx2.peer.test")
    hosts = Hosts().start(stubs={"127.0.0.3": ("tls", cert, key)},
                          dead=["127.0.0.2", "127.0.0.4"], dead6=v6)
    good = hosts.stubs["127.0.0.3"]
    good.greeting = "421 4.3.2 mx2 is busy"
    mx2 = {"A": ["127.0.0.3"]}
    if v6:
        mx2["AAAA"] = ["::1"]  # tried first, refused
    m, dns = env({"peer.test": {"MX": [(20, "mx2.peer.test"), (10, "mx1.peer.test")]},
                  "mx1.peer.test": {"A": ["127.0.0.2", "127.0.0.4"]},
                  "mx2.peer.test": mx2}, hosts)
    alice = m.add_user("alice")
    msg = message(alice, "rcpt@peer.test")
    m.submit(alice, ["rcpt@peer.test"], msg)

    out = queue_error(m, "rcpt@peer.test", r"status=pending .*all failed")
    line = next(l for l in out.splitlines() if "to=<rcpt@peer.test>" in l)
    want = ["mx1.peer.test [127.0.0.2]: cannot connect", "mx1.peer.test [127.0.0.4]: cannot connect",
            "mx2.peer.test [127.0.0.3]: greeting: 421 4.3.2 mx2 is busy"]
    if v6:
        want.insert(2, "mx2.peer.test [::1]: cannot connect")
    positions = [line.find(w) for w in want]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), line
    assert good.connections >= 1 and good.commands == [], good.commands
    m.wait_log(r"proto=relay event=hop_failed queue=\d+ host=mx1.peer.test address=127.0.0.2 "
               r"port=%d hop=1/%d .* next=mx1.peer.test" % (hosts.port, 4 if v6 else 3))

    good.greeting = "220 mx2.peer.test ESMTP"
    m.flush()
    wait_for(lambda: good.messages, 15, "the delivery to mx2")
    mail, rcpts, data = good.messages[0]
    assert mail.startswith("MAIL FROM:<%s>" % alice), mail
    assert data.endswith(msg)
    assert all(c.startswith("TLS:") for c in good.envelope_seen()), good.commands
    m.wait_queue_empty(timeout=10)
    assert dns.asked("peer.test", "MX") and dns.asked("mx2.peer.test", "A")


def test_wrong_certificate_on_the_best_mx_falls_back_before_the_envelope(certs, env):
    wrong, wrong_key = leaf(certs, "stub-wrong", "wrong.example", dns=["wrong.example"],
                            server=True)
    cert, key = mx_cert(certs, "mx2.peer.test")
    hosts = Hosts().start(stubs={"127.0.0.2": ("tls", wrong, wrong_key),
                                 "127.0.0.3": ("tls", cert, key)})
    bad, good = hosts.stubs["127.0.0.2"], hosts.stubs["127.0.0.3"]
    m, _ = env({"peer.test": {"MX": [(10, "mx1.peer.test"), (20, "mx2.peer.test")]},
                "mx1.peer.test": {"A": ["127.0.0.2"]},
                "mx2.peer.test": {"A": ["127.0.0.3"]}}, hosts)
    alice = m.add_user("alice")
    msg = message(alice, "rcpt@peer.test")
    m.submit(alice, ["rcpt@peer.test"], msg)
    wait_for(lambda: good.messages, 15, "the delivery to mx2")
    assert good.messages[0][2].endswith(msg)
    m.wait_queue_empty(timeout=10)
    # mx1 got as far as STARTTLS, then the handshake failed on its certificate.
    assert bad.connections >= 1
    assert [c.split(" ")[0].upper() for c in bad.commands] == ["EHLO", "STARTTLS"], bad.commands
    assert bad.envelope_seen() == [] and bad.messages == []
    m.wait_log(r"event=hop_failed queue=\d+ host=mx1.peer.test address=127.0.0.2 .*"
               r"error=\"certificate verification failed[^\"]*\" next=mx2.peer.test")
    m.wait_log(r"event=tls queue=\d+ host=mx2.peer.test .*verified=yes")


def test_no_mx_records_means_the_domain_itself(certs, env):
    cert, key = mx_cert(certs, "bare.test")
    hosts = Hosts().start(stubs={"127.0.0.2": ("tls", cert, key)})
    stub = hosts.stubs["127.0.0.2"]
    m, dns = env({"bare.test": {"A": ["127.0.0.2"]}}, hosts)
    alice = m.add_user("alice")
    msg = message(alice, "rcpt@bare.test")
    m.submit(alice, ["rcpt@bare.test"], msg)
    wait_for(lambda: stub.messages, 15, "the delivery to bare.test's own address")
    assert stub.messages[0][2].endswith(msg)
    m.wait_queue_empty(timeout=10)
    assert dns.asked("bare.test", "MX") and dns.asked("bare.test", "A"), dns.queries


def wait_dsn(m, alice):
    dsn = m.wait_inbox(alice, 1, timeout=15)[0]
    m.wait_queue_empty(timeout=10)
    head = dsn.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    assert re.search(rb"(?im)^Content-Type: multipart/report;.*report-type=\"?delivery-status",
                     head), head
    assert b"Action: failed" in dsn, dsn
    return dsn


def test_null_mx_bounces_at_once(certs, env):
    cert, key = mx_cert(certs, "nomail.test")
    hosts = Hosts().start(stubs={"127.0.0.2": ("tls", cert, key)})
    stub = hosts.stubs["127.0.0.2"]
    # The A record is there to be ignored: a null MX says "no mail", whatever else exists.
    m, dns = env({"nomail.test": {"MX": [(0, ".")], "A": ["127.0.0.2"]}}, hosts)
    alice = m.add_user("alice")
    m.submit(alice, ["someone@nomail.test"], message(alice, "someone@nomail.test"))
    dsn = wait_dsn(m, alice)
    assert b"Final-Recipient: rfc822; someone@nomail.test" in dsn, dsn
    assert b"Status: 5.1.10" in dsn, dsn
    assert b"null MX" in dsn, dsn
    assert stub.connections == 0
    assert [q for q in dns.queries if q[0] == "nomail.test"] == [("nomail.test", "MX")], \
        dns.queries


def test_unknown_domain_bounces_at_once(certs, env):
    hosts = Hosts().start(dead=["127.0.0.2"])
    m, dns = env({"peer.test": {"MX": [(10, "mx.peer.test")]}}, hosts)
    alice = m.add_user("alice")
    m.submit(alice, ["someone@nowhere.test"], message(alice, "someone@nowhere.test"))
    dsn = wait_dsn(m, alice)
    assert b"Final-Recipient: rfc822; someone@nowhere.test" in dsn, dsn
    assert b"Status: 5.1.2" in dsn, dsn
    assert b"nowhere.test not found" in dsn, dsn
    assert dns.asked("nowhere.test", "MX")


def test_silent_dns_server_defers_with_a_clear_error(certs, env):
    cert, key = mx_cert(certs, "mx.peer.test")
    hosts = Hosts().start(stubs={"127.0.0.2": ("tls", cert, key)})
    stub = hosts.stubs["127.0.0.2"]
    m, dns = env({"peer.test": {"MX": [(10, "mx.peer.test")]},
                  "mx.peer.test": {"A": ["127.0.0.2"]}}, hosts)
    dns.silent = True
    alice = m.add_user("alice")
    m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test"))
    started = time.monotonic()
    out = queue_error(m, "rcpt@peer.test",
                      r'status=pending .*error="DNS lookup of the MX records of peer.test '
                      r'failed: timeout"', timeout=20)
    # Two tries, 2 s then 4 s (relay_dns.h), plus up to one tick.
    assert time.monotonic() - started < 15, out
    assert dns.asked("peer.test", "MX")
    assert stub.connections == 0
    assert m.inbox(alice) == []
    # The server answers again: the next attempt delivers.
    dns.silent = False
    m.flush()
    wait_for(lambda: stub.messages, 15, "the delivery once DNS answers")
    m.wait_queue_empty(timeout=10)


def test_our_own_name_among_the_mx_hosts(certs, env):
    """RFC 5321 5.1: hosts preferred to us are tried, the others (us included) never; when we
    are the best MX the message waits, and says it would loop."""
    cert, key = mx_cert(certs, "mx1.peer.test")
    hosts = Hosts().start(stubs={"127.0.0.2": ("tls", cert, key),
                                 "127.0.0.3": ("tls", *mx_cert(certs, "mx3.peer.test"))})
    best, worse = hosts.stubs["127.0.0.2"], hosts.stubs["127.0.0.3"]
    m, _ = env({"loop.test": {"MX": [(20, "mail.a.test"), (10, "mx1.peer.test"),
                                     (30, "mx3.peer.test")]},
                "loop2.test": {"MX": [(10, "MAIL.a.test."), (20, "mx3.peer.test")]},
                "mx1.peer.test": {"A": ["127.0.0.2"]},
                "mx3.peer.test": {"A": ["127.0.0.3"]},
                "mail.a.test": {"A": ["127.0.0.1"]}}, hosts)
    alice = m.add_user("alice")
    best.greeting = "421 4.3.2 busy"  # the only better host fails: still never mx3
    m.submit(alice, ["x@loop.test"], message(alice, "x@loop.test"))
    m.submit(alice, ["y@loop2.test"], message(alice, "y@loop2.test"))
    queue_error(m, "y@loop2.test",
                r'status=pending .*error="mail for loop2.test loops back to myself')
    queue_error(m, "x@loop.test", r'status=pending .*error="greeting: 421 4.3.2 busy"')
    best.greeting = "220 mx1.peer.test ESMTP"
    m.flush()
    wait_for(lambda: best.messages, 15, "the delivery to the host preferred to us")
    assert best.messages[0][1][0].startswith("RCPT TO:<x@loop.test>")
    time.sleep(2.5)  # another tick: loop2.test still waits, mx3 still unused
    assert worse.connections == 0, worse.commands
    assert "to=<y@loop2.test> status=pending" in m.queue_list()


def test_sigterm_while_a_lookup_waits(certs, env):
    """c-ares queries in flight are cancelled at shutdown: SIGTERM exits 0 at once with every
    handle closed, and the message is still queued for the next start."""
    hosts = Hosts().start(dead=["127.0.0.2"])
    m, dns = env({"peer.test": "SILENT"}, hosts)
    alice = m.add_user("alice")
    m.submit(alice, ["rcpt@peer.test"], message(alice, "rcpt@peer.test"))
    wait_for(lambda: dns.asked("peer.test", "MX"), 10, "the MX query")
    started = time.monotonic()
    assert m.stop() == 0, m.log()[-3000:]
    assert time.monotonic() - started < 2, "SIGTERM waited for the DNS timeout"
    assert m.problems() == [], m.problems()
    assert [r[2] for r in m.queue_rows()] == ["rcpt@peer.test"]
