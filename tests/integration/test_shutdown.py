"""SIGTERM with connections open (idle, mid-handshake, after STARTTLS, in a command): the
server stops accepting, closes them, and exits 0 (checked by the fixture's teardown)."""
import signal
import socket
import time

import harness


def test_sigterm_with_open_connections(make_server, certs):
    srv = make_server()
    ctx = harness.client_context(certs)
    clients = []
    imap = harness.tls_client(srv.port("imap", "implicit"), ctx)
    assert imap.readline().startswith(b"* OK")
    clients.append(imap)
    smtp = harness.plain_connect(srv.port("submission", "starttls"))
    assert smtp.readline().startswith(b"220")
    harness.starttls(smtp, "submission")
    harness.upgrade(smtp, ctx)
    clients.append(smtp)
    pop = harness.plain_connect(srv.port("pop3", "starttls"))
    assert pop.readline().startswith(b"+OK")
    pop.send("CAP")  # half a command
    clients.append(pop)
    raw = socket.create_connection(("127.0.0.1", srv.port("imap", "implicit")), timeout=5)
    raw.sendall(harness.client_hello((3, 3))[:20])  # half a ClientHello
    try:
        srv.signal(signal.SIGTERM)
        start = time.monotonic()
        rc = srv.proc.wait(timeout=10)
        assert rc == 0, srv.log()[-3000:]
        assert time.monotonic() - start < 10
        # Every client sees the end of its connection.
        for lc in clients:
            assert lc.at_eof(timeout=2, allow_data=True)
        for port in (srv.port("imap", "implicit"), srv.port("pop3", "starttls")):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.close()
                raise AssertionError("port %d still accepts after exit" % port)
            except ConnectionRefusedError:
                pass
    finally:
        raw.close()
        for lc in clients:
            lc.close()


def test_sigterm_idle_server(make_server):
    srv = make_server()
    assert srv.stop() == 0, srv.log()[-3000:]
    assert "event=stopped" in srv.log() or "event=stopping" in srv.log(), srv.log()[-2000:]
