"""The built-in CA end to end: sealctl makes the CA, the server certificate and a user's
client certificate; sealmaild runs with tls.client_ca and tls.crl from it. A client with the
issued certificate gets in on a `client_certificate: required` IMAP listener; one without a
certificate does not; after `sealctl cert revoke` and SIGHUP the revoked certificate does
not either. Python's ssl is the client."""
import os
import re
import signal
import socket
import ssl
import subprocess

import pytest

import harness

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout,
           ConnectionAbortedError)
USER = "alice@" + harness.DOMAIN


def sealctl(srv, *args, stdin=None):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       input=stdin, capture_output=True, text=True, timeout=60,
                       env=harness.server_env())
    return r.returncode, r.stdout, r.stderr


def ok(srv, *args, stdin=None):
    rc, out, err = sealctl(srv, *args, stdin=stdin)
    assert rc == 0, "sealctl %s: exit %d: %s" % (" ".join(args), rc, err)
    assert not harness.sanitizer_reports(err), err
    return out


@pytest.fixture
def ca_server(make_server):
    """A sealmaild whose certificates all come from `sealctl cert`."""
    srv = make_server(start=False, listeners=[("imap", "implicit", "required"),
                                              ("imap", "implicit", "none")])
    # The harness config names its own client CA, which exists: sealctl can load it.
    ok(srv, "cert", "init-ca", "--name", "IT Client CA", "--days", "30")
    ca_dir = srv.ca_dir
    ok(srv, "cert", "server", srv.hostname, "--ip", "127.0.0.1", "--out",
       os.path.join(srv.dir, "certs"))
    srv.tls = {"client_ca": os.path.join(ca_dir, "ca.crt"),
               "crl": os.path.join(ca_dir, "crl.pem")}
    srv.write_config()
    ok(srv, "user", "add", USER, "--password-stdin", stdin="pw\n")
    out = ok(srv, "cert", "issue", USER, "--out", os.path.join(srv.dir, "issued"),
             "--p12-password-stdin", stdin="p12 secret\n")
    srv.serial = re.search(r"serial\s+([0-9a-f]+)", out).group(1)
    srv.client_crt = os.path.join(srv.dir, "issued", USER + ".crt")
    srv.client_key = os.path.join(srv.dir, "issued", USER + ".key")
    srv.ca_crt = os.path.join(ca_dir, "ca.crt")
    srv.start()
    return srv


def _ctx(srv, with_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(srv.ca_crt)  # the server certificate is sealctl's too
    ctx.check_hostname = True
    if with_cert:
        ctx.load_cert_chain(srv.client_crt, srv.client_key)
    return ctx


def _greeting(srv, with_cert):
    """The greeting on the required listener; raises when refused (in TLS 1.3 the refusal
    shows on the first read)."""
    lc = harness.tls_client(srv.port_for("imap", "implicit", "required"), _ctx(srv, with_cert))
    try:
        line = lc.readline()
        if not line:
            raise EOFError("connection closed before the greeting")
        return line
    finally:
        lc.close()


def test_issued_certificate_admitted_none_refused_revoked_refused(ca_server):
    srv = ca_server
    line = _greeting(srv, True)
    assert line.startswith(b"* ") and not line.startswith(b"* BYE"), line

    since = srv.log_size()
    with pytest.raises(REFUSED):
        line = _greeting(srv, False)
        raise AssertionError("greeted a client without a certificate: %r" % line)
    srv.wait_log(r"event=tls_failed", since=since)

    out = ok(srv, "cert", "revoke", USER)
    assert srv.serial in out and "SIGHUP" in out, out
    crl = subprocess.run(["certtool", "--crl-info", "--infile",
                          os.path.join(srv.ca_dir, "crl.pem")],
                         capture_output=True, text=True, check=True).stdout
    assert srv.serial in crl.lower(), crl

    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reloaded", since=since)
    since = srv.log_size()
    with pytest.raises(REFUSED):
        line = _greeting(srv, True)
        raise AssertionError("greeted a client with a revoked certificate: %r" % line)
    srv.wait_log(r"event=tls_failed", since=since)


def test_cert_list_shows_both_kinds(ca_server):
    out = ok(ca_server, "cert", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["SERIAL", "ADDRESS", "NOT-AFTER", "STATUS", "KIND"], out
    rows = [l.split() for l in lines[1:]]
    assert [ca_server.serial, USER] == rows[[r[0] for r in rows].index(ca_server.serial)][:2]
    assert any(r[1] == ca_server.hostname and r[3] == "valid" and r[4] == "server"
               for r in rows), out
