"""Revocation on client_certificate: required listeners (tls.crl): a revoked certificate is
refused, SIGHUP picks up a new CRL, a TLS 1.3 session ticket from before the revocation does
not get the client back in (seen with GnuTLS 3.7), and an expired CRL fails closed."""
import os
import signal
import socket
import ssl

import pytest

import harness

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout)
IMAP_REQUIRED = [("imap", "implicit", "required"), ("imap", "implicit", "none")]


def _ctx(certs, version=ssl.TLSVersion.TLSv1_3):
    return harness.client_context(certs, minv=version, maxv=version, cert=certs.client,
                                  key=certs.client_key)


def _session(srv, certs, session=None, ctx=None):
    """Greeting from the required IMAPS listener with the valid client certificate; returns
    (greeting, ssl session, whether it was resumed). Raises if refused. Resuming needs the
    same ctx as the session's."""
    ctx = ctx or _ctx(certs)
    raw = socket.create_connection(("127.0.0.1", srv.port_for("imap", "implicit", "required")),
                                   timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    lc = harness.LineClient(s)
    try:
        line = lc.readline()
        lc.send("a NOOP\r\n")
        lc.imap_tagged("a")  # the TLS 1.3 ticket arrives with the first records
        return line, s.session, s.session_reused
    finally:
        lc.close()


def _crl_server(make_server, certs, tmp_path, **crl):
    path = str(tmp_path / "crl.pem")
    harness.make_crl(certs, path, **crl)
    return make_server(listeners=IMAP_REQUIRED, tls={"crl": path}), path


def test_revoked_certificate_refused(make_server, certs, tmp_path):
    srv, _ = _crl_server(make_server, certs, tmp_path, revoked=[certs.client])
    since = srv.log_size()
    with pytest.raises(REFUSED):
        line = _session(srv, certs)[0]
        raise AssertionError("a revoked certificate was greeted: %r" % line)
    srv.wait_log(r"event=tls_failed", since=since)


def test_unrevoked_certificate_accepted_with_crl(make_server, certs, tmp_path):
    srv, _ = _crl_server(make_server, certs, tmp_path, revoked=[certs.client_expired])
    line = _session(srv, certs)[0]
    assert line.startswith(b"* ") and not line.startswith(b"* BYE"), line


def test_sighup_new_crl_refuses_and_ticket_does_not_bypass(make_server, certs, tmp_path):
    srv, path = _crl_server(make_server, certs, tmp_path)
    ctx = _ctx(certs)
    line, session, _ = _session(srv, certs, ctx=ctx)
    assert line.startswith(b"* ") and not line.startswith(b"* BYE"), line
    # Sanity: without a revocation the ticket resumes (else the bypass check proves nothing).
    line, session, resumed = _session(srv, certs, session=session, ctx=ctx)
    assert line.startswith(b"* ") and not line.startswith(b"* BYE"), line
    ticket_resumes = resumed

    harness.make_crl(certs, path, revoked=[certs.client], number=2)
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reload(ed|_failed)", since=since)
    assert "event=reload_failed" not in srv.log()[since:], srv.log()[since:]

    with pytest.raises(REFUSED):
        line = _session(srv, certs)[0]
        raise AssertionError("revoked after SIGHUP, but greeted: %r" % line)
    print("ticket resumed before the revocation:", ticket_resumes)
    if ticket_resumes:
        with pytest.raises(REFUSED):
            line, _, resumed = _session(srv, certs, session=session, ctx=ctx)
            raise AssertionError("a TLS 1.3 ticket from before the revocation got back in "
                                 "(resumed=%s): %r" % (resumed, line))


def test_expired_crl_fails_closed(make_server, certs, tmp_path):
    """A stale CRL must not silently turn revocation off: either the server refuses to start
    (or --check fails), or it refuses certificate clients."""
    path = str(tmp_path / "crl.pem")
    harness.make_crl(certs, path, expired=True)
    try:
        srv = make_server(listeners=IMAP_REQUIRED, tls={"crl": path})
    except harness.ServerError as e:
        assert "crl" in str(e).lower(), e
        return
    with pytest.raises(REFUSED):
        line = _session(srv, certs)[0]
        raise AssertionError("expired CRL, yet a certificate client was greeted: %r" % line)
    assert os.path.exists(path)
