"""Helpers for the IMAP integration tests: users, imaplib clients, raw transcripts.

ImapEnv wraps a running harness.Server (conftest.py's `server` / `make_server`): its IMAP
listeners (implicit TLS and STARTTLS), its CA, its config (for sealctl) and its submission
port (for deliveries over SMTP).
"""
import base64
import imaplib
import os
import re
import smtplib
import socket
import ssl
import subprocess

import harness
from harness import DOMAIN

PASSWORD = "correct horse battery staple"

# A multipart message with everything BODYSTRUCTURE and ENVELOPE have to get right:
# encoded words, an attachment, a nested message/rfc822 with its own multipart.
MULTIPART = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.org>\r\n"
    b"To: Alice <alice@corp.example>, bob@corp.example\r\n"
    b"Cc: carol@example.net\r\n"
    b"Subject: =?utf-8?q?Quartalsbericht_f=C3=BCr_Q3?=\r\n"
    b"Date: Tue, 03 Dec 2024 10:00:00 +0100\r\n"
    b"Message-ID: <mp-1@example.org>\r\n"
    b"In-Reply-To: <prev@example.org>\r\n"
    b"X-Custom: zebra giraffe\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Hallo Welt, der Bericht ist angeh\xc3\xa4ngt. pineapple\r\n"
    b"--outer\r\n"
    b"Content-Type: application/pdf; name=\"q3.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"q3.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.com\r\n"
    b"To: alice@corp.example\r\n"
    b"Subject: inner message\r\n"
    b"Date: Mon, 02 Dec 2024 09:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"inner plain text\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=us-ascii\r\n"
    b"\r\n"
    b"<p>inner html</p>\r\n"
    b"--inner--\r\n"
    b"\r\n"
    b"--outer--\r\n")


def simple_message(subject="hello", body="just a line\r\n", sender="sender@example.org",
                   to="alice@corp.example", date="Wed, 04 Dec 2024 12:00:00 +0000",
                   extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: <%s@example.org>\r\n%s\r\n%s"
            % (sender, to, subject, date, os.urandom(6).hex(), extra, body)).encode()


class ImapEnv:
    def __init__(self, srv):
        self.srv = srv
        self.ca = srv.certs.ca
        self.config = srv.config_path
        self.port = srv.port("imap", "implicit")
        self.stls_port = srv.port("imap", "starttls")
        self.users = {}

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

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def imaps(self, user=None, password=PASSWORD, timeout=20):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=self.ctx(), timeout=timeout)
        if user:
            m.login(user, password)
        return m

    def raw(self, user=None, password=PASSWORD, timeout=10):
        """A LineClient over implicit TLS after the greeting (and LOGIN when user)."""
        lc = harness.LineClient(harness.tls_connect(self.port, self.ctx(), timeout), timeout)
        greet = lc.readline()
        assert greet.startswith(b"* OK"), greet
        if user:
            lc.send('L1 LOGIN "%s" "%s"\r\n' % (user, password))
            r = lc.imap_tagged("L1")
            assert r[-1].startswith(b"L1 OK"), r
        return lc

    def require_smtp_auth(self):
        """Fails the test when the submission listener does not offer AUTH: a test that
        delivers through it must never pass by not running."""
        s = smtplib.SMTP_SSL("127.0.0.1", self.srv.port("submission", "implicit"),
                             context=self.ctx(), timeout=20)
        try:
            s.ehlo()
            assert s.has_extn("auth"), "the submission listener offers no AUTH"
            # No probe login: a failed one would delay this IP's later failures (the
            # server's authentication throttle).
        finally:
            s.quit()

    def submit(self, user, rcpt, data, password=PASSWORD):
        """Sends a message over SMTP submission (implicit TLS) as user."""
        s = smtplib.SMTP_SSL("127.0.0.1", self.srv.port("submission", "implicit"),
                             context=self.ctx(), timeout=20)
        try:
            s.login(user, password)
            s.sendmail(user, [rcpt], data)
        finally:
            s.quit()


def cmd(lc, tag, line, literal=None):
    """Sends one command (with an optional synchronising literal) and returns its lines."""
    if literal is None:
        lc.send("%s %s\r\n" % (tag, line))
        return lc.imap_tagged(tag)
    lc.send("%s %s {%d}\r\n" % (tag, line, len(literal)))
    cont = lc.readline()
    if not cont.startswith(b"+"):
        return [cont]
    lc.send(literal + b"\r\n")
    return lc.imap_tagged(tag)


def fetch_literal(lines_or_bytes):
    """The bytes of the first {N} literal in a raw response."""
    data = b"".join(lines_or_bytes) if isinstance(lines_or_bytes, list) else lines_or_bytes
    m = re.search(rb"\{(\d+)\}\r\n", data)
    assert m, data[:400]
    n = int(m.group(1))
    return data[m.end():m.end() + n]


def read_response(lc, tag):
    """Lines up to the tagged reply, reading literals whole (for FETCH of binary bodies)."""
    out = b""
    t = tag.encode() + b" "
    while True:
        line = lc.readline()
        out += line
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            n = int(m.group(1))
            while len(lc.buf) < n:
                chunk = lc.sock.recv(65536)
                if not chunk:
                    raise EOFError
                lc.buf += chunk
            out += lc.buf[:n]
            lc.buf = lc.buf[n:]
            continue
        if line.startswith(t):
            return out


def plain_b64(user, password=PASSWORD):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
