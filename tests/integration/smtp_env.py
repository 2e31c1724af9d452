"""Helpers for the SMTP integration tests: users, clients, and reading delivered mail back.

Delivered messages are read from the store's database file read-only with Python's sqlite3
module (no sealctl read command exists yet), so a test compares the exact stored bytes.
"""
import base64
import os
import smtplib
import socket
import sqlite3
import ssl
import subprocess

import harness
from harness import DOMAIN

PASSWORD = "correct horse battery staple"


class SmtpEnv:
    def __init__(self, srv):
        self.srv = srv
        self.ca = srv.certs.ca
        self.db = os.path.join(srv.dir, "data", "mail.db")
        self.config = srv.config_path
        self.users = {}

    def port(self, tls="implicit", protocol="submission"):
        return self.srv.port(protocol, tls)

    def add_user(self, local, password=PASSWORD):
        address = "%s@%s" % (local, DOMAIN)
        if address in self.users:
            return address
        r = subprocess.run([harness.tool("sealctl"), "-c", self.config, "user", "add", address,
                            "--password-stdin"], input=(password + "\n").encode(),
                           capture_output=True)
        assert r.returncode == 0 or b"exists" in r.stderr, r.stderr
        self.users[address] = password
        return address

    def ctx(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def smtps(self, user=None, password=PASSWORD, **kw):
        s = smtplib.SMTP_SSL("127.0.0.1", self.port("implicit"), context=self.ctx(), timeout=10,
                             **kw)
        if user:
            s.login(user, password)
        return s

    def submission_starttls(self, user=None, password=PASSWORD):
        s = smtplib.SMTP("127.0.0.1", self.port("starttls"), timeout=10)
        s.starttls(context=self.ctx())
        s.ehlo()
        if user:
            s.login(user, password)
        return s

    def raw(self, tls="implicit", protocol="submission", cert=None, key=None):
        """A LineClient after the greeting and EHLO (over TLS)."""
        port = self.port(tls, protocol)
        if tls == "implicit":
            lc = harness.LineClient(harness.tls_connect(port, self.ctx(cert, key)), timeout=10)
            greet = lc.smtp_reply()
        else:
            lc = harness.LineClient(socket.create_connection(("127.0.0.1", port), timeout=10),
                                    timeout=10)
            greet = lc.smtp_reply()
            lc.send("EHLO client.example\r\n")
            lc.smtp_reply()
            lc.send("STARTTLS\r\n")
            assert lc.smtp_reply()[-1].startswith(b"220")
            lc.sock = self.ctx(cert, key).wrap_socket(lc.sock, server_hostname="127.0.0.1")
        assert greet[-1].startswith(b"220"), greet
        lc.send("EHLO client.example\r\n")
        ehlo = lc.smtp_reply()
        assert ehlo[-1].startswith(b"250"), ehlo
        lc.ehlo = ehlo
        return lc

    def raw_login(self, user, password=PASSWORD, tls="implicit"):
        lc = self.raw(tls)
        ir = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        lc.send("AUTH PLAIN %s\r\n" % ir)
        r = lc.smtp_reply()
        assert r[-1].startswith(b"235"), r
        return lc

    # -- the store, read-only

    def _db(self):
        return sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)

    def inbox(self, address):
        """Bodies of the messages in address's INBOX, in UID order."""
        con = self._db()
        try:
            rows = con.execute(
                "SELECT c.body FROM entries e JOIN mailboxes m ON m.id = e.mailbox_id "
                "JOIN users u ON u.id = m.user_id JOIN contents c ON c.id = e.content_id "
                "WHERE u.address = ? AND m.name = 'INBOX' ORDER BY e.uid", (address,)).fetchall()
        finally:
            con.close()
        return [bytes(r[0]) for r in rows]

    def queue(self):
        """[(sender, recipient address, body)] of the relay queue."""
        con = self._db()
        try:
            rows = con.execute(
                "SELECT q.sender, r.address, c.body, q.requiretls, r.notify, r.orcpt "
                "FROM queue q JOIN queue_rcpts r ON r.queue_id = q.id "
                "JOIN contents c ON c.id = q.content_id ORDER BY q.id, r.id").fetchall()
        finally:
            con.close()
        return [(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]


def strip_received(body):
    """The message without the Return-Path: (final delivery only: not on queued copies)
    and Received: fields we added in front (and the Received: field's folded lines)."""
    if body.startswith(b"Return-Path: <"):
        body = body.split(b"\r\n", 1)[1]
    assert body.startswith(b"Received: "), body[:200]
    lines = body.split(b"\r\n")
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


def header_fields(body):
    head = body.split(b"\r\n\r\n", 1)[0]
    return [l.split(b":", 1)[0].lower() for l in head.split(b"\r\n") if l[:1] not in (b" ", b"\t")]


def sample_message(sender, rcpt, extra=b""):
    """A message with the awkward parts: dot lines, 8-bit text, a 998-byte line."""
    long_line = b"L" * 998
    return (b"From: <" + sender.encode() + b">\r\n"
            b"To: <" + rcpt.encode() + b">\r\n"
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
            b"Message-ID: <test-" + os.urandom(6).hex().encode() + b"@client.example>\r\n"
            b"Date: Tue, 03 Dec 2024 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac\r\n"
            b".\r\n"
            b"..two dots\r\n"
            b".leading dot\r\n"
            b" . \r\n" + long_line + b"\r\n" + extra +
            b"end\r\n")


def dot_stuff(msg):
    out = []
    for line in msg.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)
