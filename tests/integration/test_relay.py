"""The relay against a stub SMTP peer: a peer that offers no STARTTLS never sees the
envelope, the message stays queued and `sealctl queue list` shows why."""
import socket
import subprocess
import threading
import time

import harness
from smtp_env import SmtpEnv


class StubPeer:
    """Greets, answers EHLO without STARTTLS, records every command it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.commands = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            c.sendall(b"220 stub ESMTP\r\n")
            f = c.makefile("rb")
            for line in f:
                self.commands.append(line.strip().decode(errors="replace"))
                if line.upper().startswith(b"EHLO"):
                    c.sendall(b"250-stub\r\n250 SIZE 1000000\r\n")
                elif line.upper().startswith(b"QUIT"):
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
            c.close()

    def close(self):
        self.sock.close()


def test_no_starttls_keeps_message_queued(certs, make_server):
    stub = StubPeer()
    extra = ("relay:\n  retry_initial: 1\n  retry_max: 2\n  routes:\n"
             "    - { domain: b.example, host: 127.0.0.1, port: %d, tls: verify, ca: %s }\n"
             % (stub.port, certs.ca))
    srv = make_server(extra_yaml=extra)
    env = SmtpEnv(srv)
    alice = env.add_user("alice")
    s = env.smtps(alice)
    s.sendmail(alice, ["bob@b.example"], b"Subject: hi\r\n\r\nhello\r\n")
    s.quit()
    deadline = time.time() + 15
    while time.time() < deadline and stub.connections < 2:
        time.sleep(0.2)
    assert stub.connections >= 2, srv.log()
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA", "STARTTLS"))
                   for c in stub.commands), stub.commands
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "queue", "list"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "to=<bob@b.example>" in r.stdout
    assert "peer offers no STARTTLS" in r.stdout, r.stdout
    stub.close()
