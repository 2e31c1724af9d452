"""A tiny authoritative DNS server for the relay tests: UDP on 127.0.0.1, a free port, answers
built by hand from a dict (RFC 1035 4.1), so a test decides what MX, A and AAAA records a
domain has, and whether a name does not exist (NXDOMAIN), exists without records of the type
asked (NODATA), fails (SERVFAIL) or gets no answer at all. No TCP (every answer here is small),
no compression, no EDNS.

    dns = DnsStub({
        "peer.test": {"MX": [(10, "mx1.peer.test"), (20, "mx2.peer.test")]},
        "mx1.peer.test": {"A": ["127.0.0.2"]},
        "mx2.peer.test": {"A": ["127.0.0.3"], "AAAA": ["::1"]},
        "nomail.test": {"MX": [(0, ".")]},          # null MX (RFC 7505)
        "bare.test": {"A": ["127.0.0.4"]},          # no MX: the implicit MX
        "broken.test": "SERVFAIL",
        "slow.test": "SILENT",                      # never answered
    })
    dns.server  ->  "127.0.0.1:PORT" for relay.dns_servers

A name that is not a key is NXDOMAIN. dns.silent = True drops every query unanswered.
dns.queries lists (name, type) in the order they came.
"""
import ipaddress
import socket
import struct
import threading

TYPES = {"A": 1, "MX": 15, "AAAA": 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODE = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}


def encode_name(name):
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            raw = label.encode()
            assert 0 < len(raw) < 64, name
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def read_name(msg, off):
    """(name, offset after it); no compression pointers in queries."""
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels), off
        if n & 0xC0:
            raise ValueError("compressed name in a query")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


def rdata(rtype, value):
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype == "MX":
        pref, host = value
        return struct.pack("!H", pref) + encode_name(host)
    raise ValueError(rtype)


def answer(zone, query):
    """The response to one query message, or None to stay silent."""
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    if qd != 1:
        return None
    qname, off = read_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[off:off + 4])
    question = query[12:off + 4]
    key = qname.lower().rstrip(".")
    entry = zone.get(key)
    records = []
    if entry is None:
        rcode = RCODE["NXDOMAIN"]
    elif entry == "SILENT":
        return None
    elif isinstance(entry, str):
        rcode = RCODE[entry]
    else:
        rcode = RCODE["NOERROR"]
        tname = TYPE_NAMES.get(qtype)
        for value in entry.get(tname, []) if tname else []:
            data = rdata(tname, value)
            records.append(encode_name(qname) + struct.pack("!HHIH", qtype, 1, 60, len(data))
                           + data)
    # QR, the query's opcode and RD, AA, RA.
    rflags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    head = struct.pack("!HHHHHH", qid, rflags, 1, len(records), 0, 0)
    return head + question + b"".join(records)


class DnsStub:
    def __init__(self, zone):
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.silent = False
        self.queries = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = "127.0.0.1:%d" % self.port
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                qname, off = read_name(msg, 12)
                qtype = struct.unpack("!H", msg[off:off + 2])[0]
                self.queries.append((qname.lower(), TYPE_NAMES.get(qtype, qtype)))
                if self.silent:
                    continue
                resp = answer(self.zone, msg)
            except (ValueError, IndexError, struct.error):
                continue
            if resp is not None:
                try:
                    self.sock.sendto(resp, peer)
                except OSError:
                    return

    def asked(self, name, rtype):
        return (name.lower(), rtype) in self.queries

    def close(self):
        self.sock.close()
