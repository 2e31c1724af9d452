"""SIGHUP: a new server certificate is served to new connections while old connections
stay up; a broken certificate keeps the old one and the server logs why."""
import hashlib
import os
import shutil
import signal

import harness


def _replace(src, dst):
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _peer_fingerprint(server, certs):
    lc = harness.tls_client(server.port("imap", "implicit"), harness.client_context(certs))
    try:
        der = lc.sock.getpeercert(binary_form=True)
        assert lc.readline().startswith(b"* OK")
        return hashlib.sha256(der).hexdigest()
    finally:
        lc.close()


def test_sighup_serves_new_certificate_and_keeps_old_connections(make_server, certs):
    srv = make_server()
    old_fp = harness.fingerprint_pem(certs.server)
    new_fp = harness.fingerprint_pem(certs.server2)
    assert old_fp != new_fp
    assert _peer_fingerprint(srv, certs) == old_fp

    ctx = harness.client_context(certs)
    imap = harness.tls_client(srv.port("imap", "implicit"), ctx)
    smtp = harness.tls_client(srv.port("submission", "implicit"), ctx)
    pop = harness.plain_connect(srv.port("pop3", "starttls"))
    try:
        assert imap.readline().startswith(b"* OK")
        assert smtp.readline().startswith(b"220 ")
        assert pop.readline().startswith(b"+OK")
        assert harness.starttls(pop, "pop3")[0].startswith(b"+OK")
        harness.upgrade(pop, ctx)

        _replace(certs.server2_key, srv.key_path)
        _replace(certs.server2, srv.cert_path)
        since = srv.log_size()
        srv.signal(signal.SIGHUP)
        srv.wait_log(r"event=reloaded\b", since=since)

        assert _peer_fingerprint(srv, certs) == new_fp
        # Connections opened before the reload still work.
        harness.alive_check(imap, "imap")
        harness.alive_check(smtp, "submission")
        harness.alive_check(pop, "pop3")
    finally:
        imap.close()
        smtp.close()
        pop.close()


def test_sighup_with_broken_certificate_keeps_old(make_server, certs):
    srv = make_server()
    old_fp = harness.fingerprint_pem(certs.server)
    ctx = harness.client_context(certs)
    before = harness.tls_client(srv.port("imap", "implicit"), ctx)
    try:
        assert before.readline().startswith(b"* OK")
        with open(srv.cert_path, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                    "-----END CERTIFICATE-----\n")
        since = srv.log_size()
        srv.signal(signal.SIGHUP)
        m = srv.wait_log(r"event=reload_failed[^\n]*", since=since)
        assert "reason=" in m.group(0), m.group(0)
        assert srv.alive()
        assert _peer_fingerprint(srv, certs) == old_fp
        harness.alive_check(before, "imap")
    finally:
        before.close()


def test_sighup_with_mismatched_key_keeps_old(make_server, certs):
    srv = make_server()
    old_fp = harness.fingerprint_pem(certs.server)
    _replace(certs.server2_key, srv.key_path)  # key of server2, certificate of server
    since = srv.log_size()
    srv.signal(signal.SIGHUP)
    srv.wait_log(r"event=reload_failed", since=since)
    assert _peer_fingerprint(srv, certs) == old_fp
