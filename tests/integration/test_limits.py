"""Limits: idle and handshake timeouts close silent clients; connection caps refuse the
connection over the limit and free their slot when a client leaves."""
import socket
import ssl
import time

import pytest

import harness


def _wait_closed(lc, within):
    """Reads until EOF; returns (seconds it took, lines read). Fails after `within` s."""
    start = time.monotonic()
    lines = []
    lc.sock.settimeout(within)
    while True:
        try:
            line = lc.readline()
        except (EOFError, ConnectionResetError, ssl.SSLError):
            return time.monotonic() - start, lines
        except socket.timeout:
            raise AssertionError("still open after %ss (got %r)" % (within, lines))
        lines.append(line)


@pytest.mark.parametrize("protocol,tls", [("imap", "starttls"), ("pop3", "implicit"),
                                          ("submission", "starttls")])
def test_idle_timeout_preauth(make_server, certs, protocol, tls):
    srv = make_server(limits={"idle_timeout_preauth": 1})
    port = srv.port(protocol, tls)
    if tls == "implicit":
        lc = harness.tls_client(port, harness.client_context(certs))
    else:
        lc = harness.plain_connect(port)
    try:
        assert harness.greeting_ok(protocol, lc.readline())
        took, lines = _wait_closed(lc, within=6)
        assert took >= 0.5, "closed too early (%.2fs)" % took
        if protocol == "imap" and lines:
            assert lines[0].startswith(b"* BYE"), lines
        if protocol == "submission" and lines:
            assert lines[0].startswith(b"421"), lines
    finally:
        lc.close()


def test_activity_resets_idle_timer(make_server, certs):
    srv = make_server(limits={"idle_timeout_preauth": 2})
    lc = harness.plain_connect(srv.port("imap", "starttls"))
    try:
        assert lc.readline().startswith(b"* OK")
        for _ in range(3):
            time.sleep(1)
            harness.alive_check(lc, "imap")
    finally:
        lc.close()


def test_handshake_timeout(make_server):
    srv = make_server(limits={"handshake_timeout": 1})
    s = socket.create_connection(("127.0.0.1", srv.port("imap", "implicit")), timeout=6)
    try:
        start = time.monotonic()
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < 5.5
    finally:
        s.close()


def _refused(lc, protocol):
    """True if a connection over the limit was refused: closed, or an error in place of
    the greeting (SMTP 421, IMAP * BYE, POP3 -ERR)."""
    try:
        line = lc.readline()
    except (EOFError, ConnectionResetError, ssl.SSLError):
        return True
    if protocol in ("smtp", "submission"):
        return line.startswith(b"421") or line[:1] == b"5"
    if protocol == "imap":
        return line.startswith(b"* BYE")
    return line.startswith(b"-ERR")


def test_connections_per_ip(make_server, certs):
    srv = make_server(limits={"connections_per_ip": 2})
    port = srv.port("imap", "starttls")
    a, b = harness.plain_connect(port), harness.plain_connect(port)
    try:
        assert a.readline().startswith(b"* OK")
        assert b.readline().startswith(b"* OK")
        c = harness.plain_connect(port)
        try:
            assert _refused(c, "imap")
        finally:
            c.close()
        # The cap is per address over all listeners: a TLS listener refuses too.
        with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError, OSError)):
            d = harness.tls_client(srv.port("pop3", "implicit"), harness.client_context(certs))
            try:
                line = d.readline()
                raise AssertionError("third connection greeted: %r" % line) \
                    if line.startswith(b"+OK") else EOFError()
            finally:
                d.close()
        # Still serving the first two.
        harness.alive_check(a, "imap")
    finally:
        a.close()
        b.close()
    # Slots are freed when clients leave.
    deadline = time.monotonic() + 5
    while True:
        e = harness.plain_connect(port)
        try:
            line = e.readline()
        except (EOFError, ConnectionResetError):
            line = b""
        if line.startswith(b"* OK"):
            harness.alive_check(e, "imap")
            e.close()
            break
        e.close()
        assert time.monotonic() < deadline, "slot not freed: %r" % line
        time.sleep(0.1)


def test_global_connection_cap(make_server):
    srv = make_server(limits={"connections": 3, "connections_per_ip": 100})
    ports = [srv.port("imap", "starttls"), srv.port("pop3", "starttls"),
             srv.port("submission", "starttls")]
    protos = ["imap", "pop3", "submission"]
    held = []
    try:
        for port, proto in zip(ports, protos):
            lc = harness.plain_connect(port)
            held.append(lc)
            assert harness.greeting_ok(proto, lc.readline())
        extra = harness.plain_connect(ports[0])
        try:
            assert _refused(extra, "imap")
        finally:
            extra.close()
    finally:
        for lc in held:
            lc.close()


def test_many_clients_at_once(server, certs):
    ctx = harness.client_context(certs)
    clients = []
    try:
        for _ in range(40):
            clients.append(harness.tls_client(server.port("imap", "implicit"), ctx))
        for lc in clients:
            assert lc.readline().startswith(b"* OK")
        for lc in clients:
            harness.alive_check(lc, "imap")
    finally:
        for lc in clients:
            lc.close()
