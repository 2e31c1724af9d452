"""Listeners with client_certificate: required refuse clients without a valid certificate
(none, unknown CA, expired) and accept one signed by tls.client_ca."""
import socket
import ssl

import pytest

import harness

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout)


def _imap_required_session(server, ctx):
    """Connects to the required IMAPS listener; returns the greeting line (raises if refused).

    In TLS 1.3 the client finishes its handshake before the server checks its certificate,
    so a refusal shows up on the first read."""
    port = server.port_for("imap", "implicit", "required")
    lc = harness.tls_client(port, ctx)
    try:
        line = lc.readline()
        return line
    finally:
        lc.close()


def _ctx(certs, which, version):
    cert, key = {
        "none": (None, None),
        "valid": (certs.client, certs.client_key),
        "peer": (certs.peer, certs.peer_key),
        "other_ca": (certs.client_other, certs.client_other_key),
        "expired": (certs.client_expired, certs.client_expired_key),
    }[which]
    return harness.client_context(certs, minv=version, maxv=version, cert=cert, key=key)


VERSIONS = pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                                   ids=["tls1.3", "tls1.2"])


@VERSIONS
@pytest.mark.parametrize("which", ["none", "other_ca", "expired"])
def test_required_imap_refuses(server, certs, which, version):
    since = server.log_size()
    with pytest.raises(REFUSED):
        line = _imap_required_session(server, _ctx(certs, which, version))
        raise AssertionError("server greeted a client with certificate=%s: %r" % (which, line))
    server.wait_log(r"event=tls_failed", since=since)


@VERSIONS
def test_required_imap_accepts_valid(server, certs, version):
    line = _imap_required_session(server, _ctx(certs, "valid", version))
    assert line.startswith(b"* "), line
    assert not line.startswith(b"* BYE"), line


def test_required_listener_does_not_affect_others(server, certs):
    # The implicit IMAP listener without client_certificate takes clients without one.
    lc = harness.tls_client(server.port_for("imap", "implicit", "none"),
                            harness.client_context(certs))
    try:
        assert lc.readline().startswith(b"* OK")
    finally:
        lc.close()


def _smtp_required(server, certs, which):
    port = server.port_for("smtp", "starttls", "required")
    lc = harness.plain_connect(port)
    try:
        assert lc.readline().startswith(b"220 ")
        r = harness.starttls(lc, "smtp")
        assert r[-1].startswith(b"220 "), r
        harness.upgrade(lc, _ctx(certs, which, None))
        lc.send("EHLO peer.example\r\n")
        return lc.smtp_reply()
    finally:
        lc.close()


@pytest.mark.parametrize("which", ["none", "other_ca", "expired"])
def test_required_smtp_starttls_refuses(server, certs, which):
    with pytest.raises(REFUSED):
        r = _smtp_required(server, certs, which)
        raise AssertionError("EHLO answered after STARTTLS with certificate=%s: %r" % (which, r))


def test_required_smtp_starttls_accepts_valid(server, certs):
    # A valid certificate on the smtp port is an organisation server's; a user's
    # verifies too but is refused there (test_smtp_peers.py).
    r = _smtp_required(server, certs, "peer")
    assert r[0].startswith(b"250"), r
    r = _smtp_required(server, certs, "valid")
    assert r[0].startswith(b"554 5.7.1"), r
