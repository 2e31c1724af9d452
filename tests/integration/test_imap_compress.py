"""IMAP COMPRESS=DEFLATE (RFC 4978) against the real sealmaild.

The client is Python's imaplib over TLS with a raw-deflate layer around the socket, as real
clients add it (DeflateIMAP: imaplib.IMAP4_SSL with send/read/readline overridden; zlib with
its defaults, a 32 KiB window). It logs in, turns compression on, appends a large literal,
selects, fetches big bodies, idles while a message is delivered over SMTP, and counts the
bytes on the wire to see that the server really compresses.

Hostile cases over a raw TLS socket: garbage instead of a compressed stream, a compressed
stream that ends, a decompression bomb (a 64 MiB line that compresses to about 64 KiB: it
must hit the line limit and leave the daemon's memory alone), COMPRESS twice, before login,
with another argument, and a command pipelined compressed right behind COMPRESS. Back-
pressure: pipelined FETCHes over a compressed connection that does not read hold little
memory, and are then answered whole and in order.
"""
import hashlib
import imaplib
import os
import re
import socket
import ssl
import time
import zlib

import pytest

import harness
from imap_env import ImapEnv, simple_message

imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))


class Deflate:
    """Raw DEFLATE both ways over a stream, as RFC 4978 asks (zlib defaults: 32 KiB window)."""

    def __init__(self, level=6):
        self.out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self.inf = zlib.decompressobj(-15)

    def pack(self, data):
        return self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)

    def unpack(self, data):
        return self.inf.decompress(data)


class DeflateIMAP(imaplib.IMAP4_SSL):
    """imaplib over TLS that can turn COMPRESS DEFLATE on; counts bytes on the wire."""

    def _create_socket(self, timeout):
        self.z = None
        self.zbuf = b""
        self.wire_in = 0
        self.plain_in = 0
        return super()._create_socket(timeout)

    def compress(self):
        typ, data = self._simple_command("COMPRESS", "DEFLATE")
        if typ == "OK":
            self.z = Deflate()
        return typ, data

    def send(self, data):
        self.sock.sendall(self.z.pack(data) if self.z else data)

    def _fill(self):
        # read1 takes what the buffered reader already holds before reading the socket.
        chunk = self.file.read1(65536)
        if not chunk:
            raise imaplib.IMAP4.abort("socket EOF")
        self.wire_in += len(chunk)
        plain = self.z.unpack(chunk)
        self.plain_in += len(plain)
        self.zbuf += plain

    def read(self, size):
        if not self.z:
            return super().read(size)
        while len(self.zbuf) < size:
            self._fill()
        data, self.zbuf = self.zbuf[:size], self.zbuf[size:]
        return data

    def readline(self):
        if not self.z:
            return super().readline()
        while b"\n" not in self.zbuf:
            self._fill()
        line, self.zbuf = self.zbuf.split(b"\n", 1)
        return line + b"\n"


class RawZ:
    """A raw TLS IMAP client whose compression the test controls byte by byte."""

    def __init__(self, env, timeout=30):
        self.sock = harness.tls_connect(env.port, env.ctx(), timeout)
        self.sock.settimeout(timeout)
        self.z = None
        self.buf = b""
        assert self.readline().startswith(b"* OK")

    def login(self, user):
        self.send(b'L1 LOGIN "%s" "%s"\r\n' % (user.encode(), PASSWORD.encode()))
        assert self.tagged("L1")[-1].startswith(b"L1 OK")

    def send(self, data):
        self.sock.sendall(self.z.pack(data) if self.z else data)

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += self.z.unpack(chunk) if self.z else chunk

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def tagged(self, tag):
        lines = []
        while True:
            lines.append(self.readline())
            if lines[-1].startswith(tag.encode() + b" "):
                return lines

    def response(self, tag):
        """Everything up to the tagged reply, literals read whole."""
        out = b""
        while True:
            line = self.readline()
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                out += self.read_exact(int(m.group(1)))
                continue
            if line.startswith(tag.encode() + b" "):
                return out

    def compress(self, tag="Z1"):
        self.send(b"%s COMPRESS DEFLATE\r\n" % tag.encode())
        r = self.tagged(tag)
        assert r[-1].startswith(tag.encode() + b" OK"), r
        assert not self.buf, "nothing may follow the OK uncompressed"
        self.z = Deflate()

    def closed(self, timeout=10):
        """True when the server closes (after any goodbye) within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            except socket.timeout:
                return False
            if not data:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


PASSWORD = "correct horse battery staple"
USER = "zip@corp.example"


def text_message(i, size):
    head = ("From: Zed <zed@example.org>\r\nTo: %s\r\nSubject: report %d\r\n"
            "Message-ID: <z%d@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" % (USER, i, i)).encode()
    words = b"the quarterly figures meeting notes build failed on main travel plans".split()
    lines, n, k = [], len(head), i
    while n < size:
        line = b" ".join(words[(k + j) % len(words)] for j in range(11)) + b" %d\r\n" % k
        lines.append(line)
        n += len(line)
        k += 1
    return head + b"".join(lines)


def random_message(i, size):
    """Mostly incompressible (base64 of random bytes): for back-pressure."""
    head = ("From: r@example.org\r\nTo: %s\r\nSubject: random %d\r\n\r\n" % (USER, i)).encode()
    import base64
    body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return head + body


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("zip")
    e.add_user("zbp")
    return e


def test_compressed_session_login_append_select_fetch(env):
    m = DeflateIMAP("127.0.0.1", env.port, ssl_context=env.ctx(), timeout=60)
    m.login(USER, PASSWORD)
    typ, caps = m.capability()
    assert b"COMPRESS=DEFLATE" in caps[0].split(), caps
    typ, data = m.compress()
    assert typ == "OK", data
    typ, caps = m.capability()
    assert typ == "OK" and b"COMPRESS" not in caps[0], caps

    # A large literal upstream (the client compresses it), then big bodies downstream.
    big = text_message(0, 3 * 1024 * 1024)
    typ, data = m.append("INBOX", None, None, big)
    assert typ == "OK", data
    msgs = [big] + [text_message(i, 200 * 1024) for i in range(1, 16)]
    for msg in msgs[1:]:
        typ, data = m.append("INBOX", None, None, msg)
        assert typ == "OK", data
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) == len(msgs), data
    wire0, plain0 = m.wire_in, m.plain_in
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data[-1:]
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert len(bodies) == len(msgs)
    assert [hashlib.sha256(b).hexdigest() for b in bodies] == \
        [hashlib.sha256(b).hexdigest() for b in msgs]
    wire, plain = m.wire_in - wire0, m.plain_in - plain0
    assert plain > sum(len(b) for b in msgs)
    # Text like this deflates to well under half (what the bench measures in detail).
    assert wire < plain // 3, (wire, plain)
    typ, data = m.logout()
    assert typ == "BYE", data


def test_idle_sees_a_delivery_while_compressed(env):
    env.require_smtp_auth()
    m = DeflateIMAP("127.0.0.1", env.port, ssl_context=env.ctx(), timeout=30)
    m.login(USER, PASSWORD)
    assert m.compress()[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK"
    count = int(data[0])
    m.send(b"I1 IDLE\r\n")
    assert m.readline().startswith(b"+ ")
    env.submit(USER, USER, simple_message(subject="while idling", to=USER))
    line = m.readline()
    while not line.endswith(b" EXISTS\r\n"):
        line = m.readline()
    assert line == b"* %d EXISTS\r\n" % (count + 1), line
    m.send(b"DONE\r\n")
    line = m.readline()
    while not line.startswith(b"I1 "):
        line = m.readline()
    assert line.startswith(b"I1 OK"), line
    typ, data = m.fetch(str(count + 1), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"while idling" in data[0][1], data
    m.logout()


def test_compress_twice_before_login_and_unknown(env):
    c = RawZ(env)
    c.send(b"a COMPRESS DEFLATE\r\n")
    assert c.tagged("a")[-1].startswith(b"a BAD"), "not before login"
    c.login(USER)
    c.send(b"b COMPRESS LZW\r\n")
    assert c.tagged("b")[-1].startswith(b"b BAD")
    c.send(b"b2 COMPRESS\r\n")
    assert c.tagged("b2")[-1].startswith(b"b2 BAD")
    c.compress("c")
    c.send(b"d COMPRESS DEFLATE\r\n")
    assert c.tagged("d")[-1] == b"d NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n"
    c.send(b"e NOOP\r\n")
    assert c.tagged("e")[-1].startswith(b"e OK")
    c.send(b"f LOGOUT\r\n")
    r = c.tagged("f")
    assert r[0].startswith(b"* BYE") and r[-1].startswith(b"f OK"), r
    c.close()


def test_command_pipelined_compressed_behind_compress(env):
    """RFC 4978 says the client waits for the OK; one that does not, and sends its next
    command compressed in the same packet, is understood: the bytes after the COMPRESS
    line are already compressed."""
    c = RawZ(env)
    c.login(USER)
    z = Deflate()
    c.send_raw(b"c COMPRESS DEFLATE\r\n" + z.pack(b"d NOOP\r\n") + z.pack(b"e CAPABILITY\r\n"))
    assert c.readline() == b"c OK DEFLATE active\r\n"
    c.z = z
    assert c.tagged("d")[-1].startswith(b"d OK")
    r = c.tagged("e")
    assert r[-1].startswith(b"e OK") and b"IMAP4rev1" in r[0], r
    c.close()


def log_since(env, size):
    return env.srv.log()[size:]


def test_garbage_instead_of_deflate_closes_cleanly(env):
    c = RawZ(env)
    c.login(USER)
    c.compress()
    size = env.srv.log_size()
    # Block type 3 is reserved: not DEFLATE from the first byte.
    c.send_raw(b"\xff" * 64 + b"x NOOP\r\n")
    assert c.closed(), "the server must hang up on a corrupt stream"
    c.close()
    env.srv.wait_log(r"event=compress_error .*reason=bad_data", since=size)
    # Plain IMAP where compressed bytes belong.
    c = RawZ(env)
    c.login(USER)
    c.compress()
    c.send_raw(b"y NOOP\r\n" * 50)
    assert c.closed()
    c.close()
    assert env.srv.alive()
    c = RawZ(env)
    c.login(USER)
    c.close()


def test_a_stream_that_ends_closes(env):
    c = RawZ(env)
    c.login(USER)
    c.compress()
    fin = zlib.compressobj(6, zlib.DEFLATED, -15)
    c.send_raw(fin.compress(b"n NOOP\r\n") + fin.flush(zlib.Z_FINISH))
    assert c.tagged("n")[-1].startswith(b"n OK"), "what came before the end counts"
    assert c.closed()
    c.close()
    assert env.srv.alive()


def test_decompression_bomb_hits_the_line_limit(env):
    c = RawZ(env, timeout=60)
    c.login(USER)
    c.compress()
    before = harness.rss_kib(env.srv.pid)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    wire = bomb.compress(b"b1 NOOP ")
    chunk = b"A" * (1 << 20)
    for _ in range(64):
        wire += bomb.compress(chunk)
    wire += bomb.compress(b"\r\nb2 NOOP\r\n") + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(wire) < 128 * 1024, len(wire)  # 64 MiB that costs the client 64 KiB
    c.z = Deflate()
    c.send_raw(wire)
    r = c.tagged("b2")
    assert b"* BAD [TOOBIG] Line too long\r\n" in r, r
    assert r[-1].startswith(b"b2 OK"), r
    grown = harness.rss_kib(env.srv.pid) - before
    # Under ASan freed memory stays in RSS (its quarantine): the bound means nothing there.
    if not harness.sanitized():
        assert grown < 8 * 1024, "sealmaild grew by %d KiB inflating the bomb" % grown
    c.close()


def populate_random(env, user, n, size):
    c = RawZ(env, timeout=120)
    c.login(user)
    c.compress()
    msgs = [random_message(i, size) for i in range(n)]
    for start in range(0, n, 10):
        data = b"ap APPEND INBOX"
        for m in msgs[start:start + 10]:
            data += b" {%d+}\r\n" % len(m) + m
        c.send(data + b"\r\n")
        assert c.tagged("ap")[-1].startswith(b"ap OK")
    c.close()
    return msgs


def test_backpressure_on_compressed_output(env):
    """Pipelined FETCHes over a compressed connection that does not read: the daemon holds
    little (it counts compressed bytes queued), then answers everything in order."""
    user = "zbp@corp.example"
    msgs = populate_random(env, user, 16, 1024 * 1024)
    want = hashlib.sha256(b"".join(msgs)).hexdigest()
    c = RawZ(env, timeout=120)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    c.login(user)
    c.compress()
    c.send(b"s SELECT INBOX\r\n")
    assert c.tagged("s")[-1].startswith(b"s OK")
    before = harness.rss_kib(env.srv.pid)
    c.send(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(6)) + b"z NOOP\r\n")
    peak = before
    for _ in range(12):  # the server goes as far as the client lets it
        time.sleep(0.25)
        peak = max(peak, harness.rss_kib(env.srv.pid))
    grown = peak - before
    print("6 stalled compressed FETCH 1:* of 16 MiB: RSS %d -> peak %d KiB" % (before, peak))
    if not harness.sanitized():  # ASan's quarantine keeps freed memory in RSS
        assert grown < 32 * 1024, "sealmaild grew by %d KiB" % grown
    for i in range(6):
        out = c.response("f%d" % i)
        bodies, pos = [], 0
        for m in re.finditer(rb"\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n", out):
            if m.start() < pos:
                continue
            size = int(m.group(2))
            bodies.append(out[m.end():m.end() + size])
            pos = m.end() + size
        assert len(bodies) == len(msgs), (i, len(bodies))
        assert hashlib.sha256(b"".join(bodies)).hexdigest() == want, i
    assert c.tagged("z")[-1].startswith(b"z OK")
    c.close()
