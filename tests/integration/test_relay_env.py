"""Helpers for the relay integration tests (test_relay*.py): a sealmaild for one domain of
its own with relay routes, certificates for peers, stub SMTP peers, and read-only views of
the store.

Everything listens on 127.0.0.1 port 0; a route's port is known because the target (a
sealmaild or a stub) is started first.
"""
import base64
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import threading
import time

import harness

PASSWORD = "relay test password"


# --------------------------------------------------------------------------- certificates

def leaf(certs, name, cn, dns=(), ip=(), client=False, server=False):
    """A certificate from the test CA (cached in the PKI folder): (crt, key) paths."""
    crt = os.path.join(certs.dir, name + ".crt")
    key = os.path.join(certs.dir, name + ".key")
    if os.path.exists(crt):
        return crt, key
    lines = ['cn = "%s"' % cn]
    lines += ['dns_name = "%s"' % d for d in dns]
    lines += ['ip_address = "%s"' % a for a in ip]
    if client:
        lines.append("tls_www_client")
    if server:
        lines.append("tls_www_server")
    lines += ["signing_key", "encryption_key", "expiration_days = 30"]
    return certs._leaf(name, "\n".join(lines) + "\n", "ca")


# --------------------------------------------------------------------------- sealmaild

class Mta(harness.Server):
    # A user in a domain the server does not serve can only be made with a second config
    # (sealctl refuses addresses outside domains:); see add_foreign_user.

    """A sealmaild for one domain: submission (implicit TLS, AUTH), smtp (STARTTLS, client
    certificate required, for peers; peers: the host names of the organisation's servers,
    default harness.PEER_NAME), IMAP; relay settings from relay (a dict: routes is a list
    of dicts, other keys are scalars)."""

    def __init__(self, certs, workdir, domain, relay=None, smtp_port=0, peers=None):
        self.domain = domain
        self.relay = relay or {}
        listeners = [
            {"protocol": "submission", "tls": "implicit"},
            {"protocol": "smtp", "tls": "starttls", "client_certificate": "required",
             "port": smtp_port, "peers": list(peers or [harness.PEER_NAME])},
            {"protocol": "imap", "tls": "implicit"},
        ]
        super().__init__(certs, workdir=workdir, listeners=listeners,
                         hostname="mail." + domain)

    def config_text(self):
        text = super().config_text().replace("domains: [%s]" % harness.DOMAIN,
                                             "domains: [%s]" % self.domain)
        if not self.relay:
            return text
        out = ["relay:"]
        for k, v in self.relay.items():
            if k == "routes":
                out.append("  routes:")
                for r in v:
                    out.append("    - { " + ", ".join("%s: %s" % (rk, harness._q(rv))
                                                      if rk != "port" else "port: %d" % rv
                                                      for rk, rv in r.items()) + " }")
            elif isinstance(v, str):
                out.append("  %s: %s" % (k, harness._q(v)))
            else:
                out.append("  %s: %s" % (k, v))
        return text + "\n".join(out) + "\n"

    def smtp_port(self):
        return self.port("smtp", "starttls")

    def sealctl(self, *args, stdin=None):
        r = subprocess.run([harness.tool("sealctl"), "-c", self.config_path, *args],
                           input=stdin, capture_output=True, text=True, timeout=20)
        return r

    def add_user(self, local):
        address = "%s@%s" % (local, self.domain)
        r = self.sealctl("user", "add", address, "--password-stdin", stdin=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
        return address

    def add_foreign_user(self, address):
        """A user whose domain is not one of the server's: the server sees its mail as
        coming from a remote sender (so its bounces are relayed, with the null sender)."""
        alt = os.path.join(self.dir, "sealctl-foreign.yaml")
        domain = address.rsplit("@", 1)[1]
        with open(alt, "w") as f:
            f.write(self.config_text().replace("domains: [%s]" % self.domain,
                                               "domains: [%s, %s]" % (self.domain, domain)))
        r = subprocess.run([harness.tool("sealctl"), "-c", alt, "user", "add", address,
                            "--password-stdin"], input=PASSWORD + "\n", capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return address

    def submit(self, user, rcpts, msg, mail_options=(), rcpt_options=()):
        """Sends msg over submission (implicit TLS, AUTH PLAIN) with smtplib."""
        import smtplib
        ctx = ssl.create_default_context(cafile=self.certs.ca)
        s = smtplib.SMTP_SSL("127.0.0.1", self.port("submission", "implicit"), context=ctx,
                             timeout=10)
        try:
            s.login(user, PASSWORD)
            refused = s.sendmail(user, rcpts, msg, mail_options=list(mail_options),
                                 rcpt_options=list(rcpt_options))
            assert not refused, refused
        finally:
            try:
                s.quit()
            except Exception:
                pass

    def queue_list(self):
        r = self.sealctl("queue", "list")
        assert r.returncode == 0, r.stderr
        return r.stdout

    def flush(self):
        r = self.sealctl("queue", "flush")
        assert r.returncode == 0, r.stderr

    # -- the store, read-only

    def _db(self):
        path = os.path.join(self.dir, "data", "mail.db")
        return sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)

    def inbox(self, address):
        con = self._db()
        try:
            rows = con.execute(
                "SELECT c.body FROM entries e JOIN mailboxes m ON m.id = e.mailbox_id "
                "JOIN users u ON u.id = m.user_id JOIN contents c ON c.id = e.content_id "
                "WHERE u.address = ? AND m.name = 'INBOX' ORDER BY e.uid",
                (address,)).fetchall()
        finally:
            con.close()
        return [bytes(r[0]) for r in rows]

    def queue_rows(self):
        """[(queue id, sender, recipient, status, attempts, last_error)]"""
        con = self._db()
        try:
            return con.execute(
                "SELECT q.id, q.sender, r.address, r.status, r.attempts, r.last_error "
                "FROM queue q JOIN queue_rcpts r ON r.queue_id = q.id "
                "ORDER BY q.id, r.id").fetchall()
        finally:
            con.close()

    def wait_inbox(self, address, n=1, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            got = self.inbox(address)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("%d message(s) in %s's INBOX after %ss, wanted %d; "
                                     "queue:\n%s\nlog tail:\n%s"
                                     % (len(got), address, timeout, n, self.queue_list(),
                                        self.log()[-3000:]))
            time.sleep(0.1)

    def wait_queue_empty(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.queue_rows():
            if time.monotonic() > deadline:
                raise AssertionError("queue not empty after %ss:\n%s\nlog tail:\n%s"
                                     % (timeout, self.queue_list(), self.log()[-3000:]))
            time.sleep(0.1)


def strip_received(body):
    """(the Received: fields at the top, the rest of the message); a Return-Path: above them
    (final delivery) is left out of both."""
    lines = body.split(b"\r\n")
    fields = []
    i = 1 if lines and lines[0].startswith(b"Return-Path: <") else 0
    while i < len(lines) and lines[i].startswith(b"Received: "):
        f = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            f += b"\r\n" + lines[i]
            i += 1
        fields.append(f)
    return fields, b"\r\n".join(lines[i:])


def message(sender, rcpt, subject="relay test"):
    """A message with dot lines, 8-bit text and a long line, so byte-exactness means
    something."""
    return (b"From: <" + sender.encode() + b">\r\n"
            b"To: <" + rcpt.encode() + b">\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Message-ID: <" + os.urandom(8).hex().encode() + b"@relay.test>\r\n"
            b"Date: Tue, 03 Dec 2024 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"Gr\xc3\xbc\xc3\x9fe \xe2\x82\xac\r\n"
            b".\r\n"
            b"..two dots\r\n"
            b". dot space\r\n"
            + b"L" * 990 + b"\r\n"
            b"\r\n"
            b"end\r\n")


def route_mtas(certs, tmp_path_factory, defaults, ca_on_every_route=True):
    """The body of an `mta` fixture: yields make(routes, **relay), which starts an Mta for
    a.test whose relay has the settings defaults, then relay, and routes (each to
    127.0.0.1, tls verify against the test CA unless the route says otherwise; the CA only
    on verify routes unless ca_on_every_route). Every Mta must have stopped cleanly."""
    made = []

    def make(routes, **relay):
        cert, key = leaf(certs, "relay-a", "mail.a.test", dns=["mail.a.test"], client=True)
        cfg = dict({"certificate": cert, "key": key}, **defaults)
        cfg.update(relay)
        cfg["routes"] = [dict({"host": "127.0.0.1", "tls": "verify", "ca": certs.ca}, **r)
                         for r in routes]
        for r in cfg["routes"]:
            if r["tls"] != "verify" and not ca_on_every_route:
                del r["ca"]
        m = Mta(certs, str(tmp_path_factory.mktemp("mta")), "a.test", relay=cfg)
        made.append(m)
        m.start()
        return m

    yield make
    harness.check_all_stopped(made)


# --------------------------------------------------------------------------- stub peers

class StubPeer:
    """An SMTP peer on 127.0.0.1:port whose behaviour is self.mode, changeable at any time:

    - "plain": offers no STARTTLS (accepts everything in plaintext);
    - "badtls": offers STARTTLS, answers 220, then closes without a handshake;
    - "tls": a proper STARTTLS peer with certificate self.cert/self.key; advertises
      REQUIRETLS when self.requiretls; accepts every message (after self.data_delay seconds
      before the reply to the end of data).

    self.greeting is its first line; one that does not start with 220 ("421 busy") is all
    it says before it closes. It listens on address:port (127.0.0.1, a free port by
    default; MX tests give several stubs one port on different loopback addresses).

    Records every command line (self.commands, with "TLS:" in front of those over TLS),
    connections and received messages (self.messages: (mail, [rcpts], data))."""

    def __init__(self, mode="plain", cert=None, key=None, requiretls=False,
                 address="127.0.0.1", port=0):
        self.mode = mode
        self.greeting = "220 stub.test ESMTP"
        self.cert, self.key = cert, key
        self.requiretls = requiretls
        self.extra_caps = []  # more EHLO keywords after TLS (e.g. "DSN")
        self.rcpt_reply = "250 2.1.5 ok"  # e.g. "451 4.2.0 busy" to defer every recipient
        self.data_delay = 0.0
        self.delaying = 0  # end-of-data replies being held back right now
        self.commands = []
        self.messages = []
        self.connections = 0
        self.handshakes = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        try:
            self.sock.bind((address, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def envelope_seen(self):
        return [c for c in self.commands
                if re.match(r"^(TLS:)?(MAIL|RCPT|DATA|BDAT)", c.upper())]

    def _serve(self, c):
        c.settimeout(30)
        mode = self.mode
        try:
            self._session(c, mode)
        except (OSError, ssl.SSLError, EOFError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _session(self, c, mode):
        lc = harness.LineClient(c, timeout=30)
        greeting = self.greeting
        lc.send(greeting + "\r\n")
        if not greeting.startswith("220"):
            return
        tls = False
        mail, rcpts = None, []
        while True:
            line = lc.readline()
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            self.commands.append(("TLS:" if tls else "") + cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["stub.test", "PIPELINING", "SIZE 10000000", "8BITMIME"]
                if mode != "plain" and not tls:
                    caps.append("STARTTLS")
                if tls and self.requiretls:
                    caps.append("REQUIRETLS")
                if tls or mode == "plain":
                    caps += self.extra_caps
                lc.send("".join("250-%s\r\n" % x for x in caps[:-1]) + "250 %s\r\n" % caps[-1])
            elif verb == "STARTTLS" and mode != "plain" and not tls:
                lc.send("220 2.0.0 go ahead\r\n")
                if mode == "badtls":
                    return
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.cert, self.key)
                lc.sock = ctx.wrap_socket(lc.sock, server_side=True)
                lc.buf = b""
                tls = True
                with self.lock:
                    self.handshakes += 1
            elif verb == "MAIL":
                mail, rcpts = cmd, []
                lc.send("250 2.1.0 ok\r\n")
            elif verb == "RCPT":
                reply = self.rcpt_reply
                if reply.startswith("2"):
                    rcpts.append(cmd)
                lc.send(reply + "\r\n")
            elif verb == "DATA" and not rcpts:
                lc.send("554 5.5.1 no valid recipients\r\n")
            elif verb == "DATA":
                lc.send("354 go on\r\n")
                data = b""
                while True:
                    l = lc.readline()
                    if l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b".") else l
                delay = self.data_delay
                if delay:
                    with self.lock:
                        self.delaying += 1
                    time.sleep(delay)
                    with self.lock:
                        self.delaying -= 1
                self.messages.append((mail, rcpts, data))
                lc.send("250 2.0.0 queued\r\n")
            elif verb == "QUIT":
                lc.send("221 bye\r\n")
                return
            else:
                lc.send("250 ok\r\n")

    def wait_connections(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while self.connections < n:
            if time.monotonic() > deadline:
                raise AssertionError("stub saw %d connection(s), wanted %d"
                                     % (self.connections, n))
            time.sleep(0.05)

    def close(self):
        self.closed = True
        self.sock.close()


def free_dead_port():
    """A loopback port where nothing listens (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.1)


def plain_auth(user):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + PASSWORD.encode()).decode()
