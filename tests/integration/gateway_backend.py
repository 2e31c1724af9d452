"""A small plaintext mail server for the gateway tests: the "legacy server" behind a
gateway listener, on a free loopback port, one thread per connection.

It greets like the protocol it is told to speak (smtp, imap, pop3), answers EHLO,
CAPABILITY and CAPA with a login the client must never see before TLS, and has test
commands for moving bytes:
- SEND n   : sends n random bytes, then "DONE <sha256 hex>\\r\\n";
- RECV n   : reads exactly n bytes, then answers "GOT <sha256 hex>\\r\\n";
- QUIT (and IMAP "tag LOGOUT"): answers and closes.
Any other line is answered with one line naming it ("250 <line>", "+OK <line>",
"tag OK <line>", "OK <line>"). Every line received is
kept in .lines (the tests look for injected commands there).

proxy=True: every connection starts with a PROXY protocol v2 header, which is parsed
(exactly as the HAProxy specification lays it out) into .proxy_headers; a connection
without a valid one is closed.
read=False: the server greets and then never reads (a backend that stopped reading).
"""
import hashlib
import ipaddress
import os
import socket
import struct
import threading

PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

GREETINGS = {
    "smtp": b"220-legacy.corp.example ESMTP old server\r\n220 legacy ready\r\n",
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] legacy IMAP ready\r\n",
    "pop3": b"+OK legacy POP3 ready\r\n",
    "none": b"HELLO legacy\r\n",
}


def parse_tlvs(data):
    """[(type, value)] of a TLV area; raises ValueError when malformed."""
    out = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise ValueError("truncated TLV head")
        t = data[i]
        n = struct.unpack("!H", data[i + 1:i + 3])[0]
        if i + 3 + n > len(data):
            raise ValueError("TLV longer than the header")
        out.append((t, data[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def parse_proxy_v2(sock):
    """Reads and parses a PROXY v2 header from sock; returns a dict."""
    head = _recv_exact(sock, 16)
    if head[:12] != PP2_SIGNATURE:
        raise ValueError("no PROXY v2 signature: %r" % head)
    ver_cmd, fam, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
    if ver_cmd >> 4 != 2:
        raise ValueError("version %d" % (ver_cmd >> 4))
    body = _recv_exact(sock, length)
    h = {"command": ver_cmd & 0xF, "family": fam, "raw": head + body}
    if fam == 0x11:
        h["src"] = str(ipaddress.IPv4Address(body[0:4]))
        h["dst"] = str(ipaddress.IPv4Address(body[4:8]))
        h["src_port"], h["dst_port"] = struct.unpack("!HH", body[8:12])
        rest = body[12:]
    elif fam == 0x21:
        h["src"] = str(ipaddress.IPv6Address(body[0:16]))
        h["dst"] = str(ipaddress.IPv6Address(body[16:32]))
        h["src_port"], h["dst_port"] = struct.unpack("!HH", body[32:36])
        rest = body[36:]
    else:
        rest = body
    h["tlvs"] = parse_tlvs(rest)
    for t, v in h["tlvs"]:
        if t == 0x20:
            h["ssl_client"] = v[0]
            h["ssl_verify"] = struct.unpack("!I", v[1:5])[0]
            h["ssl_sub"] = dict(parse_tlvs(v[5:]))
    return h


def _recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 1 << 20))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


class Backend:
    def __init__(self, speaks="smtp", proxy=False, read=True):
        self.speaks = speaks
        self.proxy = proxy
        self.read = read
        self.lines = []
        self.proxy_headers = []
        self.errors = []
        self.connections = 0
        self.eofs = 0  # connections whose client side ended with EOF
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass

    def _serve(self, c):
        try:
            if self.proxy:
                h = parse_proxy_v2(c)
                with self.lock:
                    self.proxy_headers.append(h)
            c.sendall(GREETINGS[self.speaks])
            if not self.read:
                threading.Event().wait()  # holds the socket, never reads
                return
            self._lines(c)
        except (OSError, EOFError, ValueError) as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _lines(self, c):
        buf = b""
        while True:
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    with self.lock:
                        self.eofs += 1
                    return
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            with self.lock:
                self.lines.append(line)
            words = line.split()
            tag = b""
            if self.speaks == "imap" and len(words) > 1:
                tag, words = words[0] + b" ", words[1:]
            verb = words[0].upper() if words else b""
            if verb == b"SEND":
                n = int(words[1])
                h = hashlib.sha256()
                left = n
                while left:
                    block = os.urandom(min(left, 1 << 20))
                    h.update(block)
                    c.sendall(block)
                    left -= len(block)
                c.sendall(b"DONE " + h.hexdigest().encode() + b"\r\n")
            elif verb == b"RECV":
                n = int(words[1])
                h = hashlib.sha256()
                take = buf[:n]
                buf = buf[n:]
                h.update(take)
                left = n - len(take)
                while left:
                    chunk = c.recv(min(left, 1 << 20))
                    if not chunk:
                        return
                    h.update(chunk)
                    left -= len(chunk)
                c.sendall(b"GOT " + h.hexdigest().encode() + b"\r\n")
            elif verb in (b"QUIT", b"LOGOUT"):
                c.sendall({"smtp": b"221 2.0.0 Bye\r\n", "pop3": b"+OK Bye\r\n",
                           "imap": b"* BYE\r\n" + tag + b"OK LOGOUT done\r\n"}.get(
                               self.speaks, b"BYE\r\n"))
                c.shutdown(socket.SHUT_WR)
            elif verb == b"EHLO":
                c.sendall(b"250-legacy.corp.example\r\n250 AUTH PLAIN LOGIN\r\n")
            elif verb == b"CAPABILITY":
                c.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b"OK done\r\n")
            elif verb == b"CAPA":
                c.sendall(b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n")
            else:
                c.sendall({"smtp": b"250 ", "pop3": b"+OK "}.get(self.speaks, tag + b"OK ")
                          + line + b"\r\n")
