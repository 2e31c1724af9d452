"""Gateway listeners (docs/gateway.md): TLS in front of a plaintext legacy server, here the
small Python backend of gateway_backend.py on a free loopback port.

- Bytes are relayed exactly both ways (SHA-256 compared), a 50 MB message included.
- STARTTLS listeners answer the exchange themselves (only STARTTLS/STLS offered, IMAP says
  LOGINDISABLED), discard what was pipelined after STARTTLS (smtp, imap, pop3), drop the
  backend's greeting, and work with smtplib, imaplib and poplib.
- client_certificate: required refuses a client without a certificate and one whose
  certificate is revoked; a live relayed session is closed when its certificate is revoked
  and the CRL reloaded.
- A backend that stops reading does not make the gateway buffer: 200 MB sent at it leave
  the gateway's RSS bounded (skipped under ASan, whose quarantine keeps freed memory).
- proxy_protocol: v2 headers parse with the right addresses and TLVs.
- Half-close passes through both ways; the idle timeout ends a silent session; an
  unreachable backend gets the protocol's goodbye and counts in the metrics; SIGTERM
  closes a relay stalled by back-pressure at once.
- --check refuses a non-loopback backend not in relay.legacy_gateways, with file:line.
"""
import hashlib
import http.client
import imaplib
import os
import poplib
import re
import select
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import harness
from gateway_backend import GREETINGS, Backend

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout)


@pytest.fixture
def backends():
    made = []

    def make(*a, **kw):
        b = Backend(*a, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def gw(backend, tls="implicit", speaks=None, cert="none", **extra):
    d = {"protocol": "gateway", "tls": tls, "client_certificate": cert,
         "backend": {"host": "127.0.0.1", "port": backend.port}}
    if speaks:
        d["speaks"] = speaks
    d.update(extra)
    return d


def ctx_for(certs, cert=False, **kw):
    if cert:
        return harness.client_context(certs, cert=certs.client, key=certs.client_key, **kw)
    return harness.client_context(certs, **kw)


def read_exact(lc, n):
    """n bytes from a LineClient (its buffer first)."""
    data = bytearray(lc.buf[:n])
    lc.buf = lc.buf[n:]
    while len(data) < n:
        chunk = lc.sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return bytes(data)


def skip_greeting(lc, speaks):
    lines = [lc.readline()]
    while speaks == "smtp" and lines[-1][3:4] == b"-":
        lines.append(lc.readline())
    return lines


# --------------------------------------------------------------------------- relaying bytes

def test_bytes_exact_both_ways_50mb(make_server, certs, backends):
    be = backends("smtp")
    srv = make_server(listeners=[gw(be, speaks="smtp")],
                      limits={"message_size": 104857600})
    lc = harness.tls_client(srv.port("gateway", "implicit"), ctx_for(certs), timeout=120)
    # Implicit TLS relays from the first byte: the backend's own greeting arrives.
    assert b"".join(skip_greeting(lc, "smtp")) == GREETINGS["smtp"]
    for size in (1, 65537, 50 * 1024 * 1024):
        payload = os.urandom(size)
        lc.send(b"RECV %d\r\n" % size)
        lc.send(payload)
        assert lc.readline() == b"GOT %s\r\n" % hashlib.sha256(payload).hexdigest().encode()
        lc.send(b"SEND %d\r\n" % size)
        got = read_exact(lc, size)
        done = lc.readline()
        assert done == b"DONE %s\r\n" % hashlib.sha256(got).hexdigest().encode(), size
    lc.send("QUIT\r\n")
    assert lc.readline() == b"221 2.0.0 Bye\r\n"
    assert lc.at_eof()
    lc.close()
    m = srv.wait_log(r"event=gateway_session .*outcome=relayed reason=(\w+) "
                     r"bytes_to_backend=(\d+) bytes_to_client=(\d+) duration_ms=\d+ serial=- ")
    assert int(m.group(2)) > 50 * 1024 * 1024 and int(m.group(3)) > 50 * 1024 * 1024, m.group(0)


# --------------------------------------------------------------------------- STARTTLS

INJECTION = {
    # (what the client sends in one segment: the STARTTLS line and an injected command,
    #  the injected command as the backend would log it)
    "smtp": (b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n", b"MAIL FROM:<evil@example.org>"),
    "imap": (b"s1 STARTTLS\r\nx1 LOGIN evil secret\r\n", b"x1 LOGIN evil secret"),
    "pop3": (b"STLS\r\nUSER evil\r\n", b"USER evil"),
}


@pytest.mark.parametrize("speaks", ["smtp", "imap", "pop3"])
def test_starttls_dance_and_injection_discarded(make_server, certs, backends, speaks):
    be = backends(speaks)
    srv = make_server(listeners=[gw(be, tls="starttls", speaks=speaks)])
    lc = harness.plain_connect(srv.port("gateway", "starttls"))
    greeting = lc.readline()
    assert harness.greeting_ok(speaks, greeting), greeting
    # Before TLS: only STARTTLS is offered, nothing that logs in.
    if speaks == "smtp":
        lc.send("EHLO client.example\r\n")
        caps = b"".join(lc.smtp_reply())
        assert b"STARTTLS" in caps and b"AUTH" not in caps, caps
        lc.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
        assert lc.smtp_reply()[-1].startswith(b"530 "), "AUTH before TLS"
    elif speaks == "imap":
        assert b"LOGINDISABLED" in greeting and b"AUTH=" not in greeting, greeting
        lc.send("c1 CAPABILITY\r\n")
        caps = b"".join(lc.imap_tagged("c1"))
        assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps and b"AUTH=" not in caps
        lc.send("l1 LOGIN alice secret\r\n")
        assert lc.imap_tagged("l1")[-1].startswith(b"l1 NO"), "LOGIN before TLS"
    else:
        lc.send("CAPA\r\n")
        caps = lc.pop3_multiline()
        assert [l.strip() for l in caps[1:-1]] == [b"STLS"], caps
        lc.send("USER alice\r\n")
        assert lc.readline().startswith(b"-ERR"), "USER before TLS"
    # STARTTLS with a command pipelined after it in the same segment.
    pipelined, injected = INJECTION[speaks]
    lc.send(pipelined)
    go = lc.readline()
    assert go.startswith({"smtp": b"220 ", "imap": b"s1 OK", "pop3": b"+OK"}[speaks]), go
    harness.upgrade(lc, ctx_for(certs))
    # The first thing after the handshake is the answer to what the client sends now: the
    # backend's greeting was dropped and the injected command never reached the backend.
    if speaks == "smtp":
        lc.send("EHLO client.example\r\n")
        assert lc.smtp_reply()[0] == b"250-legacy.corp.example\r\n"
    elif speaks == "imap":
        lc.send("c2 CAPABILITY\r\n")
        r = lc.imap_tagged("c2")
        assert r[0].startswith(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN"), r
    else:
        lc.send("CAPA\r\n")
        assert lc.pop3_multiline()[1] == b"USER\r\n"
    lc.send("NOOP\r\n" if speaks != "imap" else "n1 NOOP\r\n")
    assert b"NOOP" in lc.readline()
    assert injected not in be.lines, be.lines
    assert all(b"evil" not in l for l in be.lines), be.lines
    lc.close()


def test_starttls_real_clients(make_server, certs, backends):
    smtp_be, imap_be, pop_be = backends("smtp"), backends("imap"), backends("pop3")
    srv = make_server(listeners=[gw(smtp_be, tls="starttls", speaks="smtp"),
                                 gw(imap_be, tls="starttls", speaks="imap"),
                                 gw(pop_be, tls="starttls", speaks="pop3")])
    ctx = ctx_for(certs)
    with smtplib.SMTP("127.0.0.1", srv.port("gateway", "starttls", 0), timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        s.starttls(context=ctx)
        s.ehlo("client.example")
        assert s.has_extn("auth"), s.esmtp_features  # the backend's EHLO answer
        assert s.noop()[0] == 250
    i = imaplib.IMAP4("127.0.0.1", srv.port("gateway", "starttls", 1), timeout=10)
    assert "LOGINDISABLED" in i.capabilities
    i.starttls(ssl_context=ctx)
    assert "AUTH=PLAIN" in i.capabilities and "LOGINDISABLED" not in i.capabilities
    i.logout()
    p = poplib.POP3("127.0.0.1", srv.port("gateway", "starttls", 2), timeout=10)
    assert "STLS" in p.capa() and "USER" not in p.capa()
    p.stls(context=ctx)
    assert "USER" in p.capa()
    p.quit()


# --------------------------------------------------------------------------- certificates

def test_required_certificate_and_revocation(make_server, certs, backends, tmp_path):
    be = backends("imap")
    crl = str(tmp_path / "crl.pem")
    harness.make_crl(certs, crl)
    srv = make_server(listeners=[gw(be, speaks="imap", cert="required")], tls={"crl": crl})
    port = srv.port("gateway", "implicit")
    # No certificate: refused in the handshake; the backend never hears of it.
    with pytest.raises(REFUSED):
        lc = harness.tls_client(port, ctx_for(certs))
        raise AssertionError("greeted without a certificate: %r" % lc.readline())
    assert be.connections == 0
    # A valid certificate: relayed.
    live = harness.tls_client(port, ctx_for(certs, cert=True))
    assert live.readline() == GREETINGS["imap"]
    live.send("a1 NOOP\r\n")
    assert live.readline() == b"a1 OK a1 NOOP\r\n"
    # Revoked and reloaded: the live relayed session is closed, new ones refused.
    harness.make_crl(certs, crl, revoked=[certs.client], number=2)
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"proto=gateway event=session_closed reason=certificate_revoked", since=since)
    assert live.at_eof(timeout=5)
    srv.wait_log(r"event=gateway_session .*reason=certificate_revoked "
                 r".*serial=[0-9a-f]+ subject=\"CN\S*alice\"", since=since)
    live.close()
    with pytest.raises(REFUSED):
        lc = harness.tls_client(port, ctx_for(certs, cert=True))
        lc.send("a2 NOOP\r\n")
        raise AssertionError("revoked certificate relayed: %r" % lc.readline())


# --------------------------------------------------------------------------- back-pressure

@pytest.mark.skipif(harness.sanitized(), reason="ASan's quarantine keeps freed memory in RSS")
def test_backend_not_reading_keeps_memory_bounded(make_server, certs, backends):
    be = backends("none", read=False)
    srv = make_server(listeners=[gw(be)])
    lc = harness.tls_client(srv.port("gateway", "implicit"), ctx_for(certs), timeout=10)
    assert lc.readline() == GREETINGS["none"]
    before = harness.rss_kib(srv.pid)
    block = os.urandom(1 << 20)
    sent = 0
    lc.sock.settimeout(3)
    try:
        while sent < 200 * 1024 * 1024:
            lc.sock.sendall(block)
            sent += len(block)
    except socket.timeout:
        pass  # the gateway stopped reading us: what back-pressure is for
    grown = harness.rss_kib(srv.pid) - before
    print("sent %d MiB before the stall, gateway RSS grew by %d KiB" % (sent >> 20, grown))
    assert sent < 200 * 1024 * 1024, "200 MB went into a backend that never reads"
    assert grown < 24 * 1024, "gateway RSS grew by %d KiB" % grown
    lc.close()


def test_sigterm_closes_a_stalled_relay(make_server, certs, backends):
    """A session paused by back-pressure waits for its peer, not for the store: SIGTERM
    closes it at once rather than after the stop grace."""
    be = backends("none", read=False)
    srv = make_server(listeners=[gw(be)])
    lc = harness.tls_client(srv.port("gateway", "implicit"), ctx_for(certs), timeout=10)
    assert lc.readline() == GREETINGS["none"]
    lc.sock.settimeout(2)
    block = os.urandom(1 << 20)
    try:
        for _ in range(200):
            lc.sock.sendall(block)
    except socket.timeout:
        pass
    srv.wait_log(r"event=gateway_session|event=connect")  # the session exists
    assert srv.stop() == 0
    log = srv.log()
    assert "event=stop_forced" not in log, log[-2000:]
    assert re.search(r"event=gateway_session .*reason=shutdown", log), log[-2000:]
    lc.close()


def test_client_not_reading_keeps_memory_bounded(make_server, certs, backends):
    """The other way: the backend sends 200 MB, the client reads nothing."""
    if harness.sanitized():
        pytest.skip("ASan's quarantine keeps freed memory in RSS")
    be = backends("smtp")
    srv = make_server(listeners=[gw(be, speaks="smtp")])
    lc = harness.tls_client(srv.port("gateway", "implicit"), ctx_for(certs), timeout=10)
    lc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    skip_greeting(lc, "smtp")
    before = harness.rss_kib(srv.pid)
    lc.send(b"SEND %d\r\n" % (200 * 1024 * 1024))
    # Wait until the backend's sends stall too (its thread blocks in sendall), by watching
    # the gateway's RSS settle; the bound is what is asserted.
    last, peak = -1, 0
    for _ in range(50):
        time.sleep(0.2)
        now = harness.rss_kib(srv.pid)
        peak = max(peak, now - before)
        if now == last:
            break
        last = now
    assert peak < 24 * 1024, "gateway RSS grew by %d KiB" % peak
    lc.close()


# --------------------------------------------------------------------------- PROXY v2

def test_proxy_v2_header(make_server, certs, backends):
    be = backends("smtp", proxy=True)
    srv = make_server(listeners=[gw(be, speaks="smtp", cert="optional", proxy_protocol="v2")])
    port = srv.port("gateway", "implicit")
    for with_cert in (True, False):
        lc = harness.tls_client(port, ctx_for(certs, cert=with_cert,
                                              minv=ssl.TLSVersion.TLSv1_3))
        skip_greeting(lc, "smtp")
        client_port = lc.sock.getsockname()[1]
        lc.send("NOOP\r\n")
        assert lc.readline() == b"250 NOOP\r\n"
        lc.close()
        h = be.proxy_headers[-1]
        assert h["raw"][:12] == b"\r\n\r\n\x00\r\nQUIT\n"
        assert h["command"] == 1 and h["family"] == 0x11  # PROXY, TCP over IPv4
        assert (h["src"], h["src_port"]) == ("127.0.0.1", client_port)
        assert (h["dst"], h["dst_port"]) == ("127.0.0.1", port)
        tlvs = dict(h["tlvs"])
        assert re.fullmatch(rb"[0-9a-f]+", tlvs[0x05])  # PP2_TYPE_UNIQUE_ID: the session id
        sub = h["ssl_sub"]
        assert sub[0x21] == b"TLSv1.3"  # PP2_SUBTYPE_SSL_VERSION
        assert sub[0x23].startswith(b"TLS_")  # PP2_SUBTYPE_SSL_CIPHER
        if with_cert:
            assert h["ssl_client"] == 0x07  # SSL, CERT_CONN, CERT_SESS
            assert h["ssl_verify"] == 0
            assert sub[0x22] == b"alice"  # PP2_SUBTYPE_SSL_CN
            assert tlvs[0xE0] == b"CN=alice"  # the subject
            assert re.fullmatch(rb"[0-9a-f]+", tlvs[0xE1])  # the serial
            srv.wait_log(r"event=gateway_session .*serial=%s " % tlvs[0xE1].decode())
        else:
            assert h["ssl_client"] == 0x01 and h["ssl_verify"] != 0
            assert 0x22 not in sub and 0xE0 not in tlvs
    assert not be.errors, be.errors


# --------------------------------------------------------------------------- half-close

class BioClient:
    """TLS over memory BIOs, so the test decides when close_notify goes out and can still
    read afterwards (ssl.SSLSocket cannot half-close)."""

    def __init__(self, port, ctx):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self._until(self.obj.do_handshake)
        self.buf = b""

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _until(self, fn):
        while True:
            try:
                r = fn()
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    self.inc.write_eof()
                else:
                    self.inc.write(data)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def readline(self):
        while b"\n" not in self.buf:
            try:
                chunk = self._until(lambda: self.obj.read(65536))
            except ssl.SSLZeroReturnError:
                chunk = b""
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"


def test_half_close_client_to_backend(make_server, certs, backends):
    be = backends("smtp")
    srv = make_server(listeners=[gw(be, speaks="smtp")])
    c = BioClient(srv.port("gateway", "implicit"), ctx_for(certs))
    assert c.readline().startswith(b"220-")
    assert c.readline().startswith(b"220 ")
    # The request and close_notify right after it: the backend gets the request, then EOF,
    # and its answer still reaches the client.
    c.send(b"RECV 5\r\nhello")
    c.close_notify()
    assert c.readline() == b"GOT %s\r\n" % hashlib.sha256(b"hello").hexdigest().encode()
    with pytest.raises(EOFError):
        c.readline()
    srv.wait_log(r"event=gateway_session .*reason=closed")
    assert be.eofs == 1
    c.sock.close()


def test_half_close_backend_to_client(make_server, certs, backends):
    be = backends("smtp")
    srv = make_server(listeners=[gw(be, speaks="smtp")])
    c = BioClient(srv.port("gateway", "implicit"), ctx_for(certs))
    c.readline(), c.readline()
    # QUIT: the backend answers and shuts its side; the client sees the answer and then
    # the end of the stream, and can still send.
    c.send(b"QUIT\r\n")
    assert c.readline() == b"221 2.0.0 Bye\r\n"
    with pytest.raises(EOFError):
        c.readline()
    c.send(b"AFTER THE END\r\n")
    deadline = time.monotonic() + 5
    while b"AFTER THE END" not in be.lines and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b"AFTER THE END" in be.lines, be.lines
    c.close_notify()
    srv.wait_log(r"event=gateway_session .*reason=closed")
    c.sock.close()


# --------------------------------------------------------------------------- timeouts, failures

def test_idle_timeout(make_server, certs, backends):
    be = backends("pop3")
    srv = make_server(listeners=[gw(be, speaks="pop3")],
                      limits={"gateway_idle_timeout": 1})
    lc = harness.tls_client(srv.port("gateway", "implicit"), ctx_for(certs))
    assert lc.readline() == GREETINGS["pop3"]
    srv.wait_log(r"event=gateway_session .*reason=idle_timeout", timeout=10)
    assert lc.at_eof(timeout=5)
    lc.close()


def test_backend_down_goodbye_and_metrics(make_server, certs):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()  # nothing listens there now
    srv = make_server(listeners=[
        {"protocol": "gateway", "tls": "starttls", "speaks": "smtp",
         "backend": {"host": "127.0.0.1", "port": dead_port}},
        ("https", "implicit", "none")])
    lc = harness.plain_connect(srv.port("gateway", "starttls"))
    lc.readline()
    lc.send("STARTTLS\r\n")
    assert lc.readline().startswith(b"220 ")
    harness.upgrade(lc, ctx_for(certs))
    assert lc.readline().startswith(b"421 4.4.1 ")
    lc.close()
    srv.wait_log(r"event=backend_connect_failed ")
    srv.wait_log(r"event=gateway_session .*outcome=backend_failed")
    c = http.client.HTTPSConnection("127.0.0.1", srv.port("https", "implicit"),
                                    context=ctx_for(certs), timeout=10)
    c.request("GET", "/metrics", headers={"Host": "mail"})
    text = c.getresponse().read().decode()
    c.close()
    assert re.search(r"^sealmail_gateway_backend_connect_failures_total 1$", text, re.M), text
    assert re.search(r'^sealmail_gateway_sessions_total\{outcome="backend_failed"\} 1$',
                     text, re.M), text


def test_listener_and_per_ip_limits(make_server, certs, backends):
    """max_connections and limits.connections_per_ip apply to gateway listeners as to
    every listener: past them a connection is closed at accept, before TLS."""
    be = backends("pop3")
    srv = make_server(listeners=[gw(be, speaks="pop3", max_connections=1),
                                 gw(be, speaks="pop3")],
                      limits={"connections_per_ip": 2})
    first = harness.tls_client(srv.port("gateway", "implicit", 0), ctx_for(certs))
    assert first.readline() == GREETINGS["pop3"]
    with pytest.raises(REFUSED):
        lc = harness.tls_client(srv.port("gateway", "implicit", 0), ctx_for(certs))
        raise AssertionError("over max_connections, yet relayed: %r" % lc.readline())
    srv.wait_log(r"proto=gateway event=connect .*refused=listener_full")
    second = harness.tls_client(srv.port("gateway", "implicit", 1), ctx_for(certs))
    assert second.readline() == GREETINGS["pop3"]
    with pytest.raises(REFUSED):
        lc = harness.tls_client(srv.port("gateway", "implicit", 1), ctx_for(certs))
        raise AssertionError("over connections_per_ip, yet relayed: %r" % lc.readline())
    srv.wait_log(r"proto=gateway event=connect .*refused=too_many_connections_from_ip")
    first.close()
    second.close()


# --------------------------------------------------------------------------- configuration

def _check(path):
    return subprocess.run([harness.tool("sealmaild"), "-c", path, "--check"],
                          capture_output=True, timeout=15, env=harness.server_env())


def test_check_refuses_non_loopback_backend(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path), listeners=[
        ("imap", "implicit"),
        {"protocol": "gateway", "tls": "implicit",
         "backend": {"host": "192.0.2.25", "port": 143}}])
    r = _check(srv.config_path)
    err = r.stderr.decode(errors="replace") + r.stdout.decode(errors="replace")
    assert r.returncode != 0, err
    m = re.search(r"^(\S+sealmail\.yaml):(\d+): listeners\[1\]\.backend\.host: .*192\.0\.2\.25",
                  err, re.M)
    assert m, err
    line = srv.config_text().splitlines()[int(m.group(2)) - 1]
    assert "192.0.2.25" in line, line
    # Listed in relay.legacy_gateways, it is allowed.
    srv.extra_yaml = "relay:\n  legacy_gateways: [192.0.2.25]\n"
    srv.write_config()
    r = _check(srv.config_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_check_gateway_keys(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path), listeners=[
        {"protocol": "gateway", "tls": "starttls"},
        {"protocol": "imap", "tls": "implicit", "speaks": "imap"}])
    r = _check(srv.config_path)
    err = r.stderr.decode(errors="replace") + r.stdout.decode(errors="replace")
    assert r.returncode != 0
    assert re.search(r"sealmail\.yaml:\d+: listeners\[0\]\.backend: missing", err), err
    assert re.search(r"sealmail\.yaml:\d+: listeners\[0\]\.speaks: tls: starttls needs", err), err
    assert re.search(r"sealmail\.yaml:\d+: listeners\[1\]\.speaks: only gateway", err), err
