"""The CRL over time, on client_certificate: required listeners of every protocol: an older
CRL (lower number) is refused on reload and after a restart, so a revocation stays in
force; a CRL near its nextUpdate is warned about; one that goes stale while certificate
sessions are open closes them with a goodbye that says so; a revocation closes them with a
goodbye that says that (IMAP, POP3, SMTP)."""
import re
import signal
import socket
import ssl
import time

import pytest

import harness

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout)
LISTENERS = [("imap", "implicit", "required"), ("pop3", "implicit", "required"),
             ("submission", "implicit", "required")]
GREETING = {"imap": b"* OK", "pop3": b"+OK", "submission": b"220 "}
STALE = {
    "imap": b"* BYE [UNAVAILABLE] Client certificates cannot be checked: the revocation list "
            b"is out of date\r\n",
    "pop3": b"-ERR [SYS/TEMP] Client certificates cannot be checked: the revocation list is "
            b"out of date\r\n",
    "submission": b"421 4.7.0 %s Client certificates cannot be checked: the revocation list "
                  b"is out of date\r\n",
}
REVOKED = {
    "imap": b"* BYE Your client certificate was revoked\r\n",
    "pop3": b"-ERR [AUTH] Your client certificate was revoked\r\n",
    "submission": b"421 4.7.0 %s Your client certificate was revoked\r\n",
}


def _open(srv, certs, proto):
    """A greeted session with the valid client certificate on the required listener."""
    ctx = harness.client_context(certs, cert=certs.client, key=certs.client_key)
    s = harness.tls_connect(srv.port_for(proto, "implicit", "required"), ctx)
    lc = harness.LineClient(s)
    line = lc.readline()
    assert line.startswith(GREETING[proto]), line
    return lc


def _expect_goodbye(lc, text, srv):
    if b"%s" in text:
        text = text % srv.hostname.encode()
    assert lc.readline() == text
    assert lc.at_eof(timeout=5)
    lc.close()


def _refused(srv, certs, proto="imap"):
    try:
        lc = _open(srv, certs, proto)
    except REFUSED:
        return True
    lc.close()
    return False


def _server(make_server, certs, tmp_path, **crl):
    path = str(tmp_path / "crl.pem")
    harness.make_crl(certs, path, **crl)
    return make_server(listeners=LISTENERS, tls={"crl": path}), path


def test_older_crl_is_refused_and_the_revocation_stays(make_server, certs, tmp_path):
    srv, path = _server(make_server, certs, tmp_path, number=5)
    assert not _refused(srv, certs)
    harness.make_crl(certs, path, revoked=[certs.client], number=6)
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reloaded", since)
    assert _refused(srv, certs)

    # An older CRL (lower number, without the revocation) written over it: the file-change
    # reload refuses it, and so does SIGHUP; the revocation holds.
    time.sleep(1.1)  # a later mtime and thisUpdate: only the number says it is older
    harness.make_crl(certs, path, number=5)
    since = srv.log_size()
    srv.wait_log(r"event=crl_changed", since, timeout=6)
    srv.wait_log(r"event=crl_refused crl=\S+ reason=older_than_loaded number=5 "
                        r"this_update=\S+Z loaded_number=6 loaded_this_update=\S+Z "
                        r"action=kept_old_context", since)
    assert path in srv.log()[since:]
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"(?s)crl_refused.*event=crl_refused", since)
    assert "event=reloaded" not in srv.log()[since:]
    assert _refused(srv, certs)

    # A restart with the older CRL still in place: certificates are refused, not trusted.
    srv.stop()
    srv.start()  # a new log
    since = 0
    srv.wait_log(r"event=crl_refused crl=\S+ reason=older_than_accepted number=5 "
                 r"this_update=\S+ accepted_number=6 ", since)
    assert _refused(srv, certs)
    srv.wait_log(r"event=tls_failed .*reason=\"client certificate rejected: CRL rolled back\"",
                 since)

    # A newer CRL (number 7, no revocation) is taken again.
    since = srv.log_size()
    harness.make_crl(certs, path, number=7)
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reloaded", since)
    assert not _refused(srv, certs)


def test_crl_near_next_update_is_warned_about(make_server, certs, tmp_path):
    srv, path = _server(make_server, certs, tmp_path,
                        next_update=time.time() + 3 * 86400 + 600)
    srv.wait_log(r"warn event=crl_expiring days_left=3 crl=%s next_update=\S+Z "
                 r"fix=\"run sealctl cert crl\"" % re.escape(path))
    # A fresh one (30 days) is not warned about after the reload.
    harness.make_crl(certs, path, number=2, next_update=time.time() + 30 * 86400)
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reloaded", since)
    time.sleep(0.5)
    assert "crl_expiring" not in srv.log()[since:]


def test_crl_going_stale_closes_certificate_sessions(make_server, certs, tmp_path):
    srv, path = _server(make_server, certs, tmp_path, next_update=time.time() + 6)
    sessions = {p: _open(srv, certs, p) for p in ("imap", "pop3", "submission")}
    for proto, lc in sessions.items():
        lc.sock.settimeout(15)
        _expect_goodbye(lc, STALE[proto], srv)
    srv.wait_log(r"event=crl_expired crl=%s action=refusing_client_certificates"
                 % re.escape(path))
    srv.wait_log(r"proto=pop3 event=session_closed reason=crl_expired serial=\S+ ip=")
    assert _refused(srv, certs, "pop3")


def test_revocation_goodbye_in_every_protocol(make_server, certs, tmp_path):
    srv, path = _server(make_server, certs, tmp_path)
    sessions = {p: _open(srv, certs, p) for p in ("imap", "pop3", "submission")}
    since = srv.log_size()
    harness.make_crl(certs, path, revoked=[certs.client], number=2)
    for proto, lc in sessions.items():
        lc.sock.settimeout(10)
        _expect_goodbye(lc, REVOKED[proto], srv)
    srv.wait_log(r"proto=submission event=session_closed reason=certificate_revoked", since)
