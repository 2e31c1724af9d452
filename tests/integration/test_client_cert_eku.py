"""Client certificates must be for clients: sealmaild takes a client certificate only when
its extended key usage lists clientAuth. One without any extended key usage is refused
unless tls.client_certificate_without_eku is allow; one that says serverAuth only (a server
certificate from the same CA) or anyExtendedKeyUsage only is always refused. Every refusal
is logged with its reason. The odd certificates come from certtool, signed by the test CA
the server trusts, and all name alice, so only the extended key usage differs."""
import os
import socket
import ssl
import subprocess

import pytest

import harness

REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout,
           ConnectionAbortedError)
ALICE = "alice@" + harness.DOMAIN
LISTENERS = [("imap", "implicit", "required"), ("imap", "implicit", "optional")]


def _odd(certs, name, purposes):
    """A certificate for alice from the test CA with these template lines for its purpose."""
    tmpl = 'cn = "alice"\nemail = "%s"\nsigning_key\nexpiration_days = 30\n' % ALICE
    return certs._leaf(name, tmpl + "".join(p + "\n" for p in purposes), "ca")


@pytest.fixture(scope="module")
def odd(certs):
    return {
        "none": _odd(certs, "eku-none", []),
        "server": _odd(certs, "eku-server", ["tls_www_server"]),
        "any": _odd(certs, "eku-any", ["key_purpose_oid = 2.5.29.37.0"]),
        "client": (certs.client, certs.client_key),
    }


def test_fixtures_have_the_extended_key_usage_they_claim(odd):
    def info(kind):
        return subprocess.run(["certtool", "--certificate-info", "--infile", odd[kind][0]],
                              capture_output=True, text=True, check=True).stdout
    assert "Key Purpose" not in info("none")
    assert "TLS WWW Server" in info("server") and "TLS WWW Client" not in info("server")
    assert "Any purpose" in info("any") and "TLS WWW Client" not in info("any")
    assert "TLS WWW Client" in info("client")


def _ctx(certs, pair):
    ctx = harness.client_context(certs)
    if pair is not None:
        ctx.load_cert_chain(*pair)
    return ctx


def _greeting(srv, certs, pair):
    """The greeting on the required listener; raises when refused (in TLS 1.3 the refusal
    shows on the first read)."""
    lc = harness.tls_client(srv.port_for("imap", "implicit", "required"), _ctx(certs, pair))
    try:
        line = lc.readline()
        if not line:
            raise EOFError("connection closed before the greeting")
        return line
    finally:
        lc.close()


def _admitted(srv, certs, pair):
    line = _greeting(srv, certs, pair)
    assert line.startswith(b"* OK"), line


def _refused(srv, certs, pair, reason):
    since = srv.log_size()
    with pytest.raises(REFUSED):
        line = _greeting(srv, certs, pair)
        raise AssertionError("greeted a client with %s: %r" % (pair[0], line))
    srv.wait_log(r'event=client_certificate_refused reason="%s" serial=[0-9a-f]+ '
                 r'subject="[^"]*alice' % reason, since=since)
    srv.wait_log(r'event=tls_failed .*reason="client certificate rejected: %s"' % reason,
                 since=since)


def _external_offered(srv, certs, pair):
    """Whether the optional listener offers AUTH=EXTERNAL, i.e. took the certificate."""
    lc = harness.tls_client(srv.port_for("imap", "implicit", "optional"), _ctx(certs, pair))
    try:
        assert lc.readline().startswith(b"* OK")
        lc.send(b"a CAPABILITY\r\n")
        caps = b"".join(lc.imap_tagged("a"))
        return b"AUTH=EXTERNAL" in caps
    finally:
        lc.close()


def test_default_refuses_no_eku_and_server_only(make_server, certs, odd):
    srv = make_server(listeners=LISTENERS)
    _admitted(srv, certs, odd["client"])
    _refused(srv, certs, odd["none"], "no extended key usage")
    _refused(srv, certs, odd["server"], "not for client authentication")
    _refused(srv, certs, odd["any"], "extended key usage without clientAuth")
    # On an optional listener a refused certificate counts as none: no EXTERNAL.
    assert _external_offered(srv, certs, odd["client"])
    for kind in ("none", "server", "any"):
        assert not _external_offered(srv, certs, odd[kind]), kind


def test_allow_admits_no_eku_but_never_server_only(make_server, certs, odd):
    srv = make_server(listeners=LISTENERS, tls={"client_certificate_without_eku": "allow"})
    _admitted(srv, certs, odd["client"])
    _admitted(srv, certs, odd["none"])
    assert _external_offered(srv, certs, odd["none"])
    _refused(srv, certs, odd["server"], "not for client authentication")
    _refused(srv, certs, odd["any"], "extended key usage without clientAuth")


def test_user_certificate_from_sealctl_works_with_curl(make_server, certs, tmp_path):
    """sealctl's own user certificate (clientAuth) passes, through curl as a real client."""
    srv = make_server(start=False, listeners=LISTENERS)
    pub = str(tmp_path)
    srv.tls = {"client_ca": os.path.join(pub, "client-ca.crt"),
               "crl": os.path.join(pub, "client-ca.crl")}
    srv.write_config()

    def sealctl(*args, stdin=None):
        r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                           input=stdin, capture_output=True, text=True, timeout=60,
                           env=harness.server_env())
        assert r.returncode == 0, r.stderr
        return r.stdout

    sealctl("cert", "init-ca")
    sealctl("user", "add", ALICE, "--password-stdin", stdin="pw\n")
    sealctl("cert", "issue", ALICE, "--out", os.path.join(srv.dir, "issued"),
            "--p12-password-stdin", stdin="p12 secret\n")
    srv.start()
    crt = os.path.join(srv.dir, "issued", ALICE + ".crt")
    key = os.path.join(srv.dir, "issued", ALICE + ".key")
    port = srv.port_for("imap", "implicit", "required")
    r = subprocess.run(["curl", "-sS", "--cacert", certs.ca, "--cert", crt, "--key", key,
                        "--login-options", "AUTH=EXTERNAL", "-u", ALICE + ":",
                        "imaps://127.0.0.1:%d/" % port], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout, r.stdout
    # The same CA's server certificate (serverAuth only) is no way in.
    sealctl("cert", "server", "mail.corp.example", "--out", os.path.join(srv.dir, "srvcert"))
    r = subprocess.run(["curl", "-sS", "--cacert", certs.ca,
                        "--cert", os.path.join(srv.dir, "srvcert", "server.crt"),
                        "--key", os.path.join(srv.dir, "srvcert", "server.key"),
                        "imaps://127.0.0.1:%d/" % port], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0, r.stdout
    srv.wait_log(r'event=client_certificate_refused reason="not for client authentication"')
