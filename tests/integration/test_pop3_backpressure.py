"""RETR of a large message to a client that does not read must not buffer the message."""
import socket
import ssl
import time

import pytest

import harness
from pop3_env import Pop3Env, deliver

PASSWORD = "backpressure password"


@pytest.mark.skipif(harness.sanitized(), reason="ASan's quarantine keeps freed memory in RSS")
def test_retr_to_a_client_that_does_not_read_holds_little_memory(server):
    env = Pop3Env(server)
    user = env.add_user("slow", PASSWORD)
    line = b"x" * 78 + b"\r\n"
    size = 40 * 1024 * 1024
    deliver(env, user, b"Subject: big\r\n\r\n" + line * (size // 80))
    ctx = env.ssl_context()
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.pop3s_port)),
                        server_hostname="127.0.0.1")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (user.encode(), PASSWORD.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    before = harness.rss_kib(server.pid)
    s.sendall(b"RETR 1\r\n")
    time.sleep(2)  # the server streams as far as the client lets it
    grown = harness.rss_kib(server.pid) - before
    f.close()
    s.close()
    # Without back-pressure the whole message (and its TLS records) would be queued.
    assert grown < size // 1024 // 4, "sealmaild grew by %d KiB for one stalled RETR" % grown
