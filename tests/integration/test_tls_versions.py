"""TLS versions on implicit-TLS listeners: 1.3 and 1.2 succeed, SSLv3/1.0/1.1 are refused
by the server, and min_version "1.3" refuses 1.2."""
import shutil
import ssl
import subprocess

import pytest

import harness
from harness import probe_version

IMPLICIT = [("submission", b"220 "), ("imap", b"* OK"), ("pop3", b"+OK")]


@pytest.mark.parametrize("protocol,greeting", IMPLICIT)
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2],
                         ids=["tls1.3", "tls1.2"])
def test_python_ssl_handshake(server, certs, protocol, greeting, version):
    ctx = harness.client_context(certs, minv=version, maxv=version)
    lc = harness.tls_client(server.port(protocol, "implicit"), ctx)
    try:
        assert lc.sock.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3",
                                     ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        line = lc.readline()
        assert line.startswith(greeting), line
        if protocol == "submission":
            assert line.startswith(b"220 " + server.hostname.encode() + b" ESMTP"), line
        harness.alive_check(lc, protocol)
    finally:
        lc.close()


@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-cli not installed")
@pytest.mark.parametrize("vers", ["TLS1.3", "TLS1.2"])
def test_gnutls_cli_handshake(server, certs, vers):
    port = server.port("imap", "implicit")
    r = subprocess.run(["gnutls-cli", "--x509cafile", certs.ca, "--port", str(port), "--crlf",
                        "--priority", "NORMAL:-VERS-ALL:+VERS-" + vers, "127.0.0.1"],
                       input=b"a LOGOUT\n", capture_output=True, timeout=15)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert "- Description: (%s-" % vers in out, out
    assert "* OK" in out, out
    assert "* BYE" in out, out


@pytest.mark.parametrize("flag,name", [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_openssl_s_client_handshake(server, certs, flag, name):
    port = server.port("pop3", "implicit")
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, flag,
                        "-CAfile", certs.ca, "-verify_return_error", "-brief", "-crlf",
                        "-ign_eof"],
                       input=b"QUIT\n", capture_output=True, timeout=15)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert "Protocol version: " + name in out, out
    assert "Verification: OK" in out, out
    assert "+OK" in out, out


def test_raw_tls12_hello_is_answered(server):
    # The probe itself works: a TLS 1.2 ClientHello gets a ServerHello.
    assert probe_version(server.port("imap", "implicit"), (3, 3)) == ("server_hello", (3, 3))


@pytest.mark.parametrize("version", [(3, 0), (3, 1), (3, 2)], ids=["ssl3", "tls1.0", "tls1.1"])
@pytest.mark.parametrize("protocol", ["submission", "imap", "pop3"])
def test_old_versions_refused_by_server(server, protocol, version):
    kind, detail = probe_version(server.port(protocol, "implicit"), version)
    assert kind != "server_hello", "server agreed to %r" % (detail,)
    assert kind in ("alert", "closed"), (kind, detail)
    if kind == "alert":
        # protocol_version (70) or handshake_failure (40) / insufficient_security (71)
        assert detail in (70, 40, 71), detail


def test_openssl_tls11_refused_by_server(server, certs):
    port = server.port("imap", "implicit")
    since = server.log_size()
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_1",
                        "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", certs.ca],
                       input=b"", capture_output=True, timeout=15)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode != 0, out
    assert "Cipher is (NONE)" in out, out  # no session was established
    # The client sent its hello and the server refused it (not the client refusing).
    assert "alert protocol version" in out, out
    server.wait_log(r"event=tls_failed", since=since)


@pytest.mark.skipif(shutil.which("gnutls-cli") is None, reason="gnutls-cli not installed")
def test_gnutls_cli_tls11_refused_by_server(server, certs):
    port = server.port("pop3", "implicit")
    since = server.log_size()
    r = subprocess.run(["gnutls-cli", "--x509cafile", certs.ca, "--port", str(port),
                        "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.1", "127.0.0.1"],
                       input=b"", capture_output=True, timeout=15)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert r.returncode != 0, out
    assert "Handshake was completed" not in out, out
    # The server answered the TLS 1.1 hello with a protocol_version alert (70).
    assert "Received alert [70]" in out or "Handshake failed" in out, out
    server.wait_log(r"event=tls_failed", since=since)


def test_min_version_13_refuses_12(make_server, certs):
    srv = make_server(tls={"min_version": "1.3"})
    port = srv.port("imap", "implicit")
    ctx12 = harness.client_context(certs, maxv=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionResetError, EOFError)):
        s = harness.tls_connect(port, ctx12)
        lc = harness.LineClient(s)
        lc.readline()
    assert probe_version(port, (3, 3))[0] != "server_hello"
    ctx13 = harness.client_context(certs, minv=ssl.TLSVersion.TLSv1_3)
    lc = harness.tls_client(port, ctx13)
    try:
        assert lc.sock.version() == "TLSv1.3"
        assert lc.readline().startswith(b"* OK")
    finally:
        lc.close()
