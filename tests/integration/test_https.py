"""HTTPS listeners: autoconfig, autodiscover and /healthz over real TLS, with curl and
Python's http.client, and raw requests for what a library will not send (limits,
malformed input, pipelining).

The server has the default mail listeners plus two https listeners: one without and one
requiring a client certificate.
"""
import http.client
import os
import re
import socket
import ssl
import subprocess
import xml.etree.ElementTree as ET

import pytest

import harness
from harness import DOMAIN, HOSTNAME

HTTPS_LISTENERS = harness.DEFAULT_LISTENERS + [
    ("https", "implicit", "none"),
    ("https", "implicit", "required"),
]

MS_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@pytest.fixture(scope="module")
def srv(certs, sealmaild_bin, tmp_path_factory):
    s = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("https")),
                       listeners=HTTPS_LISTENERS)
    s.start()
    yield s
    s.check_stopped()


def port(srv):
    return srv.port_for("https", "implicit", "none")


def curl(srv, path, *args, p=None, cert=False):
    """curl over TLS to HOSTNAME (resolved to 127.0.0.1): (status, headers text, body)."""
    p = p or port(srv)
    cmd = ["curl", "-sS", "--max-time", "10", "-D", "-", "-o", "-", "--cacert", srv.certs.ca,
           "--resolve", "%s:%d:127.0.0.1" % (HOSTNAME, p)]
    if cert:
        cmd += ["--cert", srv.certs.client, "--key", srv.certs.client_key]
    cmd += list(args) + ["https://%s:%d%s" % (HOSTNAME, p, path)]
    r = subprocess.run(cmd, capture_output=True, timeout=20)
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace"), b""
    out = r.stdout
    # A 100 Continue comes first when curl sent Expect: skip interim answers.
    while out.startswith(b"HTTP/1.1 1"):
        out = out.split(b"\r\n\r\n", 1)[1]
    head, body = out.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(), body


def conn(srv, cert=None):
    ctx = harness.client_context(srv.certs)
    if cert:
        ctx.load_cert_chain(srv.certs.client, srv.certs.client_key)
    return http.client.HTTPSConnection("127.0.0.1", port(srv), context=ctx, timeout=10)


def raw(srv, p=None, cert=False):
    ctx = harness.client_context(srv.certs)
    if cert:
        ctx.load_cert_chain(srv.certs.client, srv.certs.client_key)
    return harness.tls_connect(p or port(srv), ctx)


class Reader:
    """Reads HTTP/1.1 responses with Content-Length bodies off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self):
        """True when the server closes the connection (after what was already read)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False


def get_req(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, HOSTNAME, extra)).encode()


# ------------------------------------------------------------------------ autoconfig

def servers(root, element):
    out = []
    for s in root.iter(element):
        out.append((s.get("type"), s.findtext("hostname"), int(s.findtext("port")),
                    s.findtext("socketType"), s.findtext("username"),
                    [a.text for a in s.findall("authentication")]))
    return out


@pytest.mark.parametrize("path", ["/mail/config-v1.1.xml?emailaddress=alice%40corp.example",
                                  "/.well-known/autoconfig/mail/config-v1.1.xml"
                                  "?emailaddress=alice@corp.example"])
def test_autoconfig_names_the_listeners(srv, path):
    status, head, body = curl(srv, path)
    assert status == 200, head
    assert "application/xml" in head
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    assert prov.get("id") == DOMAIN
    assert [d.text for d in prov.findall("domain")] == [DOMAIN]
    incoming = servers(root, "incomingServer")
    outgoing = servers(root, "outgoingServer")
    for (_, host, _, _, user, auth) in incoming + outgoing:
        assert host == HOSTNAME
        assert user == "%EMAILADDRESS%"
        assert auth == ["password-cleartext"]
    imap = [(p, st) for (t, _, p, st, _, _) in incoming if t == "imap"]
    pop3 = [(p, st) for (t, _, p, st, _, _) in incoming if t == "pop3"]
    smtp = [(p, st) for (t, _, p, st, _, _) in outgoing]
    # Implicit TLS first, STARTTLS next, the listener requiring a certificate last.
    assert imap == [(srv.port_for("imap", "implicit", "none"), "SSL"),
                    (srv.port("imap", "starttls"), "STARTTLS"),
                    (srv.port_for("imap", "implicit", "required"), "SSL")]
    assert pop3 == [(srv.port("pop3", "implicit"), "SSL"),
                    (srv.port("pop3", "starttls"), "STARTTLS")]
    # Submission only: never the server-to-server port.
    assert smtp == [(srv.port("submission", "implicit"), "SSL"),
                    (srv.port("submission", "starttls"), "STARTTLS")]
    assert srv.port("smtp", "starttls") not in [p for p, _ in smtp]
    assert {o.get("type") for o in root.iter("outgoingServer")} == {"smtp"}


def test_autoconfig_without_address_names_the_domain(srv):
    status, _, body = curl(srv, "/.well-known/autoconfig/mail/config-v1.1.xml")
    assert status == 200
    assert ET.fromstring(body).find("emailProvider").get("id") == DOMAIN


@pytest.mark.parametrize("query,want", [
    ("emailaddress=not-an-address", 400),
    ("emailaddress=%3Cscript%3E%40corp.example", 400),
    ("emailaddress=a%00b%40corp.example", 400),
    ("emailaddress=bad%zz", 400),
    ("emailaddress=alice%40elsewhere.example", 404),
])
def test_autoconfig_refuses_bad_addresses(srv, query, want):
    status, _, body = curl(srv, "/mail/config-v1.1.xml?" + query)
    assert status == want
    assert b"<" not in body


def test_autoconfig_head_has_no_body(srv):
    c = conn(srv)
    c.request("HEAD", "/mail/config-v1.1.xml")
    r = c.getresponse()
    assert r.status == 200
    assert int(r.getheader("Content-Length")) > 0
    assert r.read() == b""
    c.close()


# ------------------------------------------------------------------------ autodiscover

POX = ('<?xml version="1.0" encoding="utf-8"?>\n'
       '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
       'requestschema/2006">\n  <Request>\n    <EMailAddress>%s</EMailAddress>\n'
       '    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/'
       'outlook/responseschema/2006a</AcceptableResponseSchema>\n  </Request>\n'
       '</Autodiscover>\n')


def pox_protocols(body):
    root = ET.fromstring(body)
    out = []
    for p in root.iter(MS_NS + "Protocol"):
        out.append({k: p.findtext(MS_NS + k) for k in
                    ("Type", "Server", "Port", "SSL", "Encryption", "LoginName")})
    return out


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml",
                                  "/Autodiscover/Autodiscover.xml"])
def test_autodiscover_pox(srv, path):
    addr = "Bob.Smith@corp.example"
    status, head, body = curl(srv, path, "-H", "Content-Type: text/xml",
                              "--data-binary", POX % addr)
    assert status == 200, head
    protos = pox_protocols(body)
    assert [p["Type"] for p in protos] == ["IMAP"] * 3 + ["POP3"] * 2 + ["SMTP"] * 2
    for p in protos:
        assert p["Server"] == HOSTNAME
        assert p["LoginName"] == addr
        assert p["SSL"] == "on"
    smtp = [(int(p["Port"]), p["Encryption"]) for p in protos if p["Type"] == "SMTP"]
    assert smtp == [(srv.port("submission", "implicit"), "SSL"),
                    (srv.port("submission", "starttls"), "TLS")]
    imap = [int(p["Port"]) for p in protos if p["Type"] == "IMAP"]
    assert imap[0] == srv.port_for("imap", "implicit", "none")


def test_autodiscover_get(srv):
    status, _, body = curl(srv, "/autodiscover/autodiscover.xml?emailaddress=alice%40corp.example")
    assert status == 200
    assert {p["LoginName"] for p in pox_protocols(body)} == {"alice@corp.example"}


@pytest.mark.parametrize("body,want", [
    ("<Autodiscover><Request></Request></Autodiscover>", 400),
    (POX % "a<b@corp.example", 400),
    (POX % "&lt;x&gt;@corp.example", 400),
    (POX % "alice@elsewhere.example", 404),
    ("no xml at all", 400),
])
def test_autodiscover_refuses(srv, body, want):
    status, _, out = curl(srv, "/autodiscover/autodiscover.xml", "--data-binary", body)
    assert status == want
    assert b"<" not in out


def test_autodiscover_get_needs_an_address(srv):
    status, _, _ = curl(srv, "/autodiscover/autodiscover.xml")
    assert status == 400


# ------------------------------------------------------------------------ healthz, errors

def test_healthz(srv):
    status, head, body = curl(srv, "/healthz")
    assert status == 200
    assert body == b"ok\n"
    assert "no-store" in head.lower()


def test_unknown_path_404(srv):
    status, _, _ = curl(srv, "/etc/passwd")
    assert status == 404


def test_wrong_method_405(srv):
    status, head, _ = curl(srv, "/healthz", "-X", "DELETE")
    assert status == 405
    assert re.search(r"(?im)^Allow: GET, HEAD\r?$", head), head
    status, head, _ = curl(srv, "/mail/config-v1.1.xml", "--data-binary", "x")
    assert status == 405
    c = conn(srv)
    c.request("PUT", "/autodiscover/autodiscover.xml", body=b"x")
    r = c.getresponse()
    assert r.status == 405
    assert r.getheader("Allow") == "GET, HEAD, POST"
    r.read()
    # A 405 leaves the connection usable.
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    c.close()


def test_oversized_header_431_closes(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(get_req("/healthz", "X-Big: %s\r\n" % ("a" * 9000)))
    status, headers, _ = r.response()
    assert status == 431
    assert headers.get("connection") == "close"
    assert r.closed()
    s.close()


def test_too_many_headers_431(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(get_req("/healthz", "".join("X-H%d: v\r\n" % i for i in range(70))))
    status, headers, _ = r.response()
    assert status == 431
    assert r.closed()
    s.close()


def test_long_url_414(srv):
    status, _, _ = curl(srv, "/healthz?" + "a" * 3000)
    assert status == 414
    s = raw(srv)
    r = Reader(s)
    s.sendall(get_req("/" + "x" * 2100))
    status, headers, _ = r.response()
    assert status == 414
    assert headers.get("connection") == "close"
    assert r.closed()
    s.close()


def test_body_too_big_413(srv, tmp_path):
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 20000)
    status, head, _ = curl(srv, "/autodiscover/autodiscover.xml", "--data-binary",
                           "@" + str(big))
    assert status == 413
    assert re.search(r"(?im)^Connection: close\r?$", head)
    # Chunked: no Content-Length to refuse up front, so it is refused as it grows.
    s = raw(srv)
    r = Reader(s)
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n" +
              (b"1000\r\n" + b"y" * 4096 + b"\r\n") * 3 + b"0\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 413
    assert r.closed()
    s.close()


@pytest.mark.parametrize("req,want", [
    (b"GARBAGE\r\n\r\n", 501),  # no method of HTTP's: Not Implemented
    (b"GET /healthz FOO/1.1\r\n\r\n", 400),
    (b"GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
])
def test_malformed_request_400_and_closed(srv, req, want):
    s = raw(srv)
    r = Reader(s)
    s.sendall(req)
    status, headers, _ = r.response()
    assert status == want
    assert headers.get("connection") == "close"
    assert r.closed()
    s.close()


def test_missing_host_400_keeps_connection(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n" + get_req("/healthz"))
    assert r.response()[0] == 400
    assert r.response()[0] == 200
    s.close()


# ------------------------------------------------------------------------ connections

def test_keep_alive_two_requests_one_connection(srv):
    c = conn(srv)
    c.request("GET", "/healthz")
    r1 = c.getresponse()
    assert r1.status == 200 and r1.read() == b"ok\n"
    sock = c.sock
    c.request("GET", "/mail/config-v1.1.xml?emailaddress=alice%40corp.example")
    r2 = c.getresponse()
    assert r2.status == 200
    ET.fromstring(r2.read())
    assert c.sock is sock  # the same connection
    c.close()
    n = len(re.findall(r"event=request .*path=\"/healthz\"", srv.log()))
    assert n >= 1


def test_pipelined_requests_answered_in_order(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(get_req("/healthz") + get_req("/nope") +
              get_req("/mail/config-v1.1.xml") + get_req("/healthz"))
    got = [r.response()[0] for _ in range(4)]
    assert got == [200, 404, 200, 200]
    s.close()


def test_http10_closes(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    status, headers, body = r.response()
    assert status == 200 and body == b"ok\n"
    assert headers.get("connection") == "close"
    assert r.closed()
    s.close()


def test_http10_keep_alive(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, _ = r.response()
    assert status == 200 and headers.get("connection") == "keep-alive"
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    assert r.response()[0] == 200
    assert r.closed()
    s.close()


def test_connection_close_honoured(srv):
    s = raw(srv)
    r = Reader(s)
    s.sendall(get_req("/healthz", "Connection: close\r\n") + get_req("/healthz"))
    status, headers, _ = r.response()
    assert status == 200 and headers.get("connection") == "close"
    assert r.closed()
    assert r.buf == b""  # the second request was not answered
    s.close()


def test_expect_100_continue(srv):
    s = raw(srv)
    r = Reader(s)
    body = (POX % "alice@corp.example").encode()
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert r.response()[0] == 100
    s.sendall(body)
    status, _, out = r.response()
    assert status == 200 and b"alice@corp.example" in out
    s.close()


def test_client_certificate_required(srv):
    p = srv.port_for("https", "implicit", "required")
    status, err, _ = curl(srv, "/healthz", p=p)
    assert status is None, err  # the handshake (or first read) fails without one
    before = srv.log_size()
    status, _, body = curl(srv, "/healthz", p=p, cert=True)
    assert status == 200 and body == b"ok\n"
    m = srv.wait_log(r"event=request [^\n]*client_cert=(\S+)", since=before)
    assert m.group(1) != "-"


def test_access_log_has_no_query_values(srv):
    before = srv.log_size()
    status, _, _ = curl(srv, "/mail/config-v1.1.xml?emailaddress=secret.person%40corp.example"
                             "&password=hunter2")
    assert status == 200
    m = srv.wait_log(r"proto=https event=request [^\n]*", since=before)
    line = m.group(0)
    assert 'method=GET path="/mail/config-v1.1.xml"' in line
    assert "query=emailaddress,password" in line
    assert "status=200" in line and re.search(r"bytes=\d+ duration_ms=\d+", line)
    assert "secret" not in srv.log() and "hunter2" not in srv.log()


def test_per_ip_limit_applies(certs, make_server):
    srv = make_server(listeners=[("https", "implicit", "none")],
                      limits={"connections_per_ip": 2})
    p = srv.port("https")
    a, b = raw(srv, p=p), raw(srv, p=p)
    Reader(a).sock.sendall(get_req("/healthz"))
    assert Reader(a).response()[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, EOFError)):
        c = raw(srv, p=p)
        c.sendall(get_req("/healthz"))
        Reader(c).response()
    a.close()
    b.close()


# ------------------------------------------------------------------------ sealctl, --check

def test_sealctl_dns_records(certs, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path), listeners=[
        {"protocol": "imap", "tls": "implicit", "port": 993},
        {"protocol": "imap", "tls": "starttls", "port": 143},
        {"protocol": "submission", "tls": "implicit", "port": 465},
        {"protocol": "submission", "tls": "starttls", "port": 587},
        {"protocol": "smtp", "tls": "starttls", "port": 25},
        {"protocol": "https", "tls": "implicit", "port": 443},
    ])
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "dns", "records",
                        "--domain", DOMAIN], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    recs = [l.split() for l in r.stdout.splitlines() if l and not l.startswith(";")]
    want = {
        ("_imaps._tcp.%s." % DOMAIN, "SRV", "0", "1", "993", HOSTNAME + "."),
        ("_imap._tcp.%s." % DOMAIN, "SRV", "10", "1", "143", HOSTNAME + "."),
        ("_submissions._tcp.%s." % DOMAIN, "SRV", "0", "1", "465", HOSTNAME + "."),
        ("_submission._tcp.%s." % DOMAIN, "SRV", "10", "1", "587", HOSTNAME + "."),
        # No POP3 listener: the service is said to be unavailable (RFC 6186).
        ("_pop3s._tcp.%s." % DOMAIN, "SRV", "0", "0", "0", "."),
        ("_pop3._tcp.%s." % DOMAIN, "SRV", "0", "0", "0", "."),
        ("autoconfig.%s." % DOMAIN, "CNAME", HOSTNAME + "."),
        ("autodiscover.%s." % DOMAIN, "CNAME", HOSTNAME + "."),
        ("_autodiscover._tcp.%s." % DOMAIN, "SRV", "0", "1", "443", HOSTNAME + "."),
    }
    got = {tuple([x[0]] + x[3:]) for x in recs}
    assert got == want, r.stdout
    assert all(x[1] == "3600" and x[2] == "IN" for x in recs)
    assert not any("25 " + HOSTNAME in l for l in r.stdout.splitlines())
    bad = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "dns", "records",
                          "--domain", "other.example"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("sealctl: ")


def test_check_refuses_https_starttls(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path),
                         listeners=harness.DEFAULT_LISTENERS[:1] + [("https", "starttls")])
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path, "--check"],
                       capture_output=True, text=True, timeout=15, env=harness.server_env())
    assert r.returncode == 1
    lines = (r.stdout + r.stderr).splitlines()
    m = [re.match(r"^(.+):(\d+): (listeners\[1\]\.tls): (.*)$", l) for l in lines]
    m = [x for x in m if x]
    assert len(m) == 1, lines
    n = int(m[0].group(2))
    assert "https" in srv.config_text().splitlines()[n - 1]
    assert "implicit" in m[0].group(4)
    assert not harness.sanitizer_reports(r.stderr)
