"""Runs the real sealmaild for integration tests and benchmarks.

- CertSet makes, once, a test CA and the certificates the tests need with certtool (GnuTLS):
  a server certificate (SAN 127.0.0.1, localhost and the host name), a second server
  certificate for SIGHUP rotation, and client certificates: valid, from another CA, expired;
  and peer certificates (serverAuth + clientAuth, a DNS name, no e-mail) of organisation
  servers: PEER_NAME (listed in the default smtp listener's peers:), one not listed, and
  one from the other CA (for tls.peer_ca).
- Server writes a config with every listener on 127.0.0.1 port 0, starts sealmaild, waits for
  `event=ready` and reads the ports it logged. stop() sends SIGTERM and reports the exit code
  and any sanitizer report in the server's standard error.

The build directory is $SEALMAIL_BUILD (else $SEALMAIL_BUILD_ROOT, else <source>/build).
Nothing here uses a fixed port, DNS or the machine's configuration.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTNAME = "mail.corp.example"
DOMAIN = "corp.example"
# The organisation server the default smtp listener names in peers: (CertSet.peer).
PEER_NAME = "mx2.corp.example"

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

# Every listener of the default configuration: (protocol, tls, client_certificate).
DEFAULT_LISTENERS = [
    ("submission", "implicit", "none"),
    ("submission", "starttls", "none"),
    ("smtp", "starttls", "required"),
    ("imap", "implicit", "none"),
    ("imap", "starttls", "none"),
    ("imap", "implicit", "required"),
    ("pop3", "implicit", "none"),
    ("pop3", "starttls", "none"),
]


def build_dir():
    return os.path.abspath(os.environ.get("SEALMAIL_BUILD") or
                           os.environ.get("SEALMAIL_BUILD_ROOT") or
                           os.path.join(SRC, "build"))


def tool(name):
    """Path of a built program (sealmaild, sealctl, store_tool) in the build directory."""
    b = build_dir()
    for sub in ("server", "cli", "tests", ""):
        p = os.path.join(b, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError("%s is not built under %s (set SEALMAIL_BUILD)" % (name, b))


def server_env():
    """Environment for sealmaild: sanitizer options that report instead of aborting."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def sanitizer_reports(text):
    """The lines of text that come from AddressSanitizer, LeakSanitizer or UBSan."""
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]


# --------------------------------------------------------------------------- certificates

def _certtool(*args, cwd):
    r = subprocess.run(["certtool", *args], cwd=cwd, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("certtool %s failed:\n%s" % (" ".join(args),
                                                         r.stderr.decode(errors="replace")))
    return r.stdout


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class CertSet:
    """A test PKI in one folder. Attribute names are file paths."""

    def __init__(self, folder, hostname=HOSTNAME):
        self.dir = folder
        self.hostname = hostname
        os.makedirs(folder, exist_ok=True)
        self.ca, self.ca_key = self._ca("ca", "Sealmail Test CA")
        self.other_ca, self.other_ca_key = self._ca("other-ca", "Some Other CA")
        server_tmpl = ('cn = "%s"\ndns_name = "%s"\ndns_name = "localhost"\n'
                       'ip_address = "127.0.0.1"\ntls_www_server\nsigning_key\n'
                       'encryption_key\nexpiration_days = 30\n' % (hostname, hostname))
        self.server, self.server_key = self._leaf("server", server_tmpl, "ca")
        self.server2, self.server2_key = self._leaf("server2", server_tmpl, "ca")
        client_tmpl = ('cn = "alice"\nemail = "alice@%s"\ntls_www_client\nsigning_key\n'
                       'expiration_days = 30\n' % DOMAIN)
        self.client, self.client_key = self._leaf("client", client_tmpl, "ca")
        self.client_other, self.client_other_key = self._leaf("client-other", client_tmpl,
                                                              "other-ca")
        expired_tmpl = ('cn = "alice"\nemail = "alice@%s"\ntls_www_client\nsigning_key\n'
                        'activation_date = "2020-01-01 00:00:00"\n'
                        'expiration_date = "2020-02-01 00:00:00"\n' % DOMAIN)
        self.client_expired, self.client_expired_key = self._leaf("client-expired",
                                                                  expired_tmpl, "ca")
        self.peer, self.peer_key = self._leaf("peer", self._peer_tmpl(PEER_NAME), "ca")
        self.peer_unlisted, self.peer_unlisted_key = self._leaf(
            "peer-unlisted", self._peer_tmpl("mx9.corp.example"), "ca")
        self.peer_other_ca, self.peer_other_ca_key = self._leaf(
            "peer-other-ca", self._peer_tmpl("mx3.corp.example"), "other-ca")

    @staticmethod
    def _peer_tmpl(name):
        return ('cn = "%s"\ndns_name = "%s"\ntls_www_server\ntls_www_client\nsigning_key\n'
                'encryption_key\nexpiration_days = 30\n' % (name, name))

    def _key(self, name):
        path = os.path.join(self.dir, name + ".key")
        _certtool("--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1",
                  "--outfile", path, cwd=self.dir)
        return path

    def _ca(self, name, cn):
        key = self._key(name)
        tmpl = os.path.join(self.dir, name + ".tmpl")
        _write(tmpl, 'cn = "%s"\nca\ncert_signing_key\ncrl_signing_key\n'
                     'expiration_days = 30\n' % cn)
        crt = os.path.join(self.dir, name + ".crt")
        _certtool("--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                  "--outfile", crt, cwd=self.dir)
        return crt, key

    def _leaf(self, name, template, ca):
        key = self._key(name)
        tmpl = os.path.join(self.dir, name + ".tmpl")
        _write(tmpl, template)
        crt = os.path.join(self.dir, name + ".crt")
        _certtool("--generate-certificate", "--load-privkey", key,
                  "--load-ca-certificate", os.path.join(self.dir, ca + ".crt"),
                  "--load-ca-privkey", os.path.join(self.dir, ca + ".key"),
                  "--template", tmpl, "--outfile", crt, cwd=self.dir)
        return crt, key


def _crl_date(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def make_crl(certs, out, revoked=(), expired=False, number=1, this_update=None,
             next_update=None):
    """Writes a CRL from the test CA to out: revoked is a list of certificate paths; expired
    makes one whose nextUpdate is in the past; this_update/next_update (Unix times) set the
    dates exactly (next_update alone: thisUpdate is now)."""
    folder = os.path.dirname(os.path.abspath(out))
    tmpl = out + ".tmpl"
    if next_update is not None:
        _write(tmpl, 'crl_this_update_date = "%s"\ncrl_next_update_date = "%s"\n'
                     'crl_number = %d\n' % (_crl_date(this_update or time.time()),
                                            _crl_date(next_update), number))
    elif expired:
        _write(tmpl, 'crl_this_update_date = "2020-01-01 00:00:00"\n'
                     'crl_next_update_date = "2020-02-01 00:00:00"\ncrl_number = %d\n' % number)
    else:
        _write(tmpl, "crl_next_update = 7\ncrl_number = %d\n" % number)
    args = ["--generate-crl", "--load-ca-privkey", certs.ca_key,
            "--load-ca-certificate", certs.ca, "--template", tmpl]
    if revoked:
        bundle = out + ".revoked.pem"
        with open(bundle, "w") as f:
            for path in revoked:
                with open(path) as c:
                    f.write(c.read())
        args += ["--load-certificate", bundle]
    tmp = out + ".new"
    _certtool(*args, "--outfile", tmp, cwd=folder)
    os.replace(tmp, out)
    return out


def fingerprint_pem(path):
    """SHA-256 of the first certificate in a PEM file (its DER form)."""
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------- clients

def client_context(certs, minv=None, maxv=None, cert=None, key=None, verify=True):
    """A TLS client context that trusts the test CA (connect to 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(certs.ca)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if minv is not None:
        ctx.minimum_version = minv
    if maxv is not None:
        ctx.maximum_version = maxv
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_connect(port, ctx, timeout=5, server_hostname="127.0.0.1"):
    """A connected, handshaken TLS socket to 127.0.0.1:port."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


class LineClient:
    """Reads CRLF lines from a (TLS or plain) socket with a deadline on every read."""

    def __init__(self, sock, timeout=5):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def smtp_reply(self):
        """All lines of one SMTP reply: [b'250-...', b'250 ...']."""
        lines = [self.readline()]
        while len(lines[-1]) >= 4 and lines[-1][3:4] == b"-":
            lines.append(self.readline())
        return lines

    def imap_tagged(self, tag):
        """Lines up to and including the tagged response for tag."""
        lines = []
        t = tag.encode() + b" "
        while True:
            line = self.readline()
            lines.append(line)
            if line.startswith(t):
                return lines

    def pop3_multiline(self):
        lines = [self.readline()]
        if not lines[0].startswith(b"+OK"):
            return lines
        while lines[-1].rstrip(b"\r\n") != b".":
            lines.append(self.readline())
        return lines

    def at_eof(self, timeout=2, allow_data=False):
        """True when the peer closed (orderly or reset) within timeout. With allow_data,
        bytes before the close (a goodbye line) are read and dropped; without, any byte
        means False."""
        if self.buf and not allow_data:
            return False
        self.buf = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            except socket.timeout:
                return False
            if data == b"":
                return True
            if not allow_data:
                return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- the server

def _q(s):
    return json.dumps(str(s))  # a JSON string is a valid YAML double-quoted scalar


class ServerError(RuntimeError):
    pass


class Server:
    """One sealmaild process with its own folder, config, certificates and data.

    listeners: list of dicts (protocol, tls, client_certificate, other keys) or tuples as in
    DEFAULT_LISTENERS. tls: extra keys under tls (e.g. {"min_version": "1.3"}). limits: keys
    under limits. extra_yaml: text appended to the config. ca_dir (attribute) is where
    sealctl keeps its CA, <dir>/ca, outside data_dir; None leaves ca_dir out of the config.
    """

    def __init__(self, certs, workdir=None, listeners=None, tls=None, limits=None,
                 extra_yaml="", hostname=HOSTNAME):
        self.certs = certs
        self.dir = workdir or tempfile.mkdtemp(prefix="sealmail-it-")
        self.hostname = hostname
        self.listeners = [self._listener(l) for l in (listeners or DEFAULT_LISTENERS)]
        self.tls = {"client_ca": certs.ca}
        self.tls.update(tls or {})
        self.limits = dict(limits or {})
        self.extra_yaml = extra_yaml
        self.ca_dir = os.path.join(self.dir, "ca")
        self.proc = None
        self.ports = {}  # (protocol, tls, index) -> port
        self.returncode = None
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        self.cert_path = os.path.join(self.dir, "certs", "server.crt")
        self.key_path = os.path.join(self.dir, "certs", "server.key")
        shutil.copyfile(certs.server, self.cert_path)
        shutil.copyfile(certs.server_key, self.key_path)
        os.chmod(self.key_path, 0o600)
        self.config_path = os.path.join(self.dir, "sealmail.yaml")
        self.log_path = os.path.join(self.dir, "sealmaild.log")
        self.write_config()

    @staticmethod
    def _listener(l):
        if isinstance(l, dict):
            d = dict(l)
        else:
            d = {"protocol": l[0], "tls": l[1]}
            if len(l) > 2:
                d["client_certificate"] = l[2]
        d.setdefault("client_certificate", "none")
        # smtp listeners that ask for certificates know the test organisation server;
        # "peers": None leaves the key out.
        if d["protocol"] == "smtp" and d["client_certificate"] != "none":
            d.setdefault("peers", [PEER_NAME])
        if d.get("peers", ()) is None:
            del d["peers"]
        d.setdefault("address", "127.0.0.1")
        d.setdefault("port", 0)
        return d

    def config_text(self):
        out = ["hostname: %s" % self.hostname, "domains: [%s]" % DOMAIN, "data_dir: data"]
        if self.ca_dir is not None:
            out.append("ca_dir: %s" % _q(self.ca_dir))
        out += ["tls:", "  certificate: certs/server.crt", "  key: certs/server.key"]
        for k, v in self.tls.items():
            out.append("  %s: %s" % (k, _q(v)))
        out.append("listeners:")
        def value(k, v):
            if k == "port" or isinstance(v, int):
                return str(v)
            if isinstance(v, list):
                return "[" + ", ".join(_q(x) for x in v) + "]"
            if isinstance(v, dict):  # a mapping inside a listener (gateway backend:)
                return "{ " + ", ".join("%s: %s" % (a, value(a, b)) for a, b in v.items()) + " }"
            return _q(v)

        for l in self.listeners:
            out.append("  - { " + ", ".join(
                "%s: %s" % (k, value(k, v)) for k, v in l.items()) + " }")
        if self.limits:
            out.append("limits:")
            for k, v in self.limits.items():
                out.append("  %s: %s" % (k, v))
        text = "\n".join(out) + "\n"
        if self.extra_yaml:
            text += self.extra_yaml.rstrip("\n") + "\n"
        return text

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())

    # -- lifecycle

    def start(self, timeout=10, env=None):
        """Starts sealmaild (env: extra environment variables, e.g. LD_PRELOAD).

        A listener given a port of its own (a test that needs to know ports before the
        start, picked free with bind(0)) can find it taken meanwhile by another test's
        connection; then the ports are picked again and the start is tried again, at most
        three times."""
        for attempt in range(3):
            try:
                return self._start_once(timeout, env)
            except ServerError as e:
                fixed = [l for l in self.listeners if l.get("port")]
                if "address already in use" not in str(e) or not fixed or attempt == 2:
                    raise
                self.log_file.close()
                for l in fixed:
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", 0))
                        l["port"] = s.getsockname()[1]
                self.write_config()

    def _start_once(self, timeout, env):
        self.log_file = open(self.log_path, "wb")
        penv = server_env()
        penv.update(env or {})
        self.proc = subprocess.Popen([tool("sealmaild"), "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     env=penv)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if re.search(r"\bevent=ready\b", text):
                break
            if self.proc.poll() is not None:
                raise ServerError("sealmaild exited with %s before event=ready; its stderr:\n%s"
                                  % (self.proc.returncode, text))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise ServerError("sealmaild did not log event=ready within %ss; its stderr:\n%s"
                                  % (timeout, text))
            time.sleep(0.02)
        self._read_ports(text)
        return self

    def _read_ports(self, text):
        seen = []
        for m in re.finditer(r"event=listening protocol=(\w+) tls=(\w+) address=\S+ port=(\d+)"
                             r"(?: client_cert=(\w+))?", text):
            seen.append([m.group(1), m.group(2), m.group(4), int(m.group(3))])
        counts = {}
        for l in self.listeners:
            key = (l["protocol"], l["tls"])
            idx = counts.get(key, 0)
            counts[key] = idx + 1
            for s in seen:
                if s[0] == l["protocol"] and s[1] == l["tls"] and \
                        s[2] in (None, l["client_certificate"]):
                    self.ports[(key[0], key[1], idx)] = s[3]
                    seen.remove(s)
                    break
            else:
                raise ServerError("no event=listening line for listener %r; stderr:\n%s"
                                  % (l, text))

    def port(self, protocol, tls="implicit", index=0):
        return self.ports[(protocol, tls, index)]

    def port_for(self, protocol, tls, client_certificate):
        """The port of the first listener with this protocol, TLS mode and certificate mode."""
        counts = {}
        for l in self.listeners:
            key = (l["protocol"], l["tls"])
            idx = counts.get(key, 0)
            counts[key] = idx + 1
            if key == (protocol, tls) and l["client_certificate"] == client_certificate:
                return self.ports[(protocol, tls, idx)]
        raise KeyError((protocol, tls, client_certificate))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def wait_log(self, pattern, since=0, timeout=5):
        """Waits until the log after byte offset since matches pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", errors="replace")
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %ss; log since offset:\n%s"
                                     % (pattern, timeout, text[-4000:]))
            if not self.alive():
                raise AssertionError("sealmaild died waiting for %r; log:\n%s"
                                     % (pattern, text[-4000:]))
            time.sleep(0.02)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = None
        else:
            self.returncode = self.proc.returncode
        self.log_file.close()
        return self.returncode

    def problems(self):
        """What is wrong with how the server ended: list of strings, empty when fine."""
        out = []
        if self.returncode != 0:
            out.append("sealmaild exit code %r after SIGTERM (expected 0 within 10 s)"
                       % (self.returncode,))
        reps = sanitizer_reports(self.log())
        if reps:
            out.append("sanitizer reports in sealmaild's stderr: %s" % "; ".join(reps[:5]))
        if "event=loop_close_failed" in self.log():
            out.append("uv_loop_close() failed at shutdown (event=loop_close_failed)")
        return out

    def check_stopped(self):
        self.stop()
        problems = self.problems()
        if problems:
            tail = self.log()[-6000:]
            raise AssertionError("\n".join(problems) + "\n--- sealmaild stderr (tail) ---\n"
                                 + tail)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def sanitized():
    """True when the sealmaild under test is an ASan build (its quarantine keeps freed
    memory in RSS, so RSS bounds do not hold there)."""
    try:
        with open(tool("sealmaild"), "rb") as f:
            return b"__asan_init" in f.read()
    except FileNotFoundError:
        return False


def rss_kib(pid):
    """VmRSS of a process in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


# --------------------------------------------------------------------------- protocol helpers

def plain_connect(port, timeout=5):
    """A plaintext LineClient to 127.0.0.1:port (for STARTTLS listeners)."""
    return LineClient(socket.create_connection(("127.0.0.1", port), timeout=timeout), timeout)


def tls_client(port, ctx, timeout=5):
    """A LineClient over implicit TLS."""
    return LineClient(tls_connect(port, ctx, timeout), timeout)


def upgrade(lc, ctx, server_hostname="127.0.0.1"):
    """Starts TLS on a LineClient after the server's STARTTLS/STLS reply."""
    assert lc.buf == b"", "bytes after the STARTTLS reply, before the handshake: %r" % lc.buf
    lc.sock = ctx.wrap_socket(lc.sock, server_hostname=server_hostname)
    return lc


def starttls(lc, protocol):
    """Sends the protocol's STARTTLS (after the greeting has been read); returns the reply."""
    if protocol in ("smtp", "submission"):
        lc.send("EHLO client.example\r\n")
        lc.smtp_reply()
        lc.send("STARTTLS\r\n")
        return lc.smtp_reply()
    if protocol == "imap":
        lc.send("s1 STARTTLS\r\n")
        return lc.imap_tagged("s1")
    lc.send("STLS\r\n")
    return [lc.readline()]


def alive_check(lc, protocol):
    """One harmless command; asserts its success reply (NOOP, or CAPA for POP3)."""
    if protocol in ("smtp", "submission"):
        lc.send("NOOP\r\n")
        r = lc.smtp_reply()
        assert r[-1].startswith(b"250"), r
    elif protocol == "imap":
        lc.send("z9 NOOP\r\n")
        r = lc.imap_tagged("z9")
        assert r[-1].startswith(b"z9 OK"), r
    else:
        lc.send("CAPA\r\n")
        r = lc.pop3_multiline()
        assert r[0].startswith(b"+OK"), r


def greeting_ok(protocol, line):
    if protocol in ("smtp", "submission"):
        return line.startswith(b"220 ")
    if protocol == "imap":
        return line.startswith(b"* OK")
    return line.startswith(b"+OK")


def client_hello(version, extensions=True):
    """A raw ClientHello record offering exactly one legacy version, e.g. (3, 1) = TLS 1.0.

    Lets a test check that the *server* refuses old versions, whatever the local client
    libraries would still agree to send."""
    import struct
    suites = [0xc02b, 0xc02f, 0xc009, 0xc013, 0xc00a, 0xc014, 0x009c, 0x002f, 0x0035,
              0x000a, 0x00ff]
    body = bytes(version) + os.urandom(32) + b"\x00"
    body += struct.pack("!H", 2 * len(suites)) + b"".join(struct.pack("!H", s) for s in suites)
    body += b"\x01\x00"
    if extensions:
        exts = b""
        groups = struct.pack("!HHH", 4, 0x0017, 0x001d)
        exts += struct.pack("!HH", 0x000a, len(groups)) + groups
        exts += struct.pack("!HHBB", 0x000b, 2, 1, 0)
        if version >= (3, 3):
            algs = struct.pack("!HHHHH", 8, 0x0403, 0x0804, 0x0401, 0x0503)
            exts += struct.pack("!HH", 0x000d, len(algs)) + algs
        body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16" + bytes((3, 1 if version > (3, 0) else 0)) + struct.pack("!H", len(hs)) + hs


def probe_version(port, version, timeout=5):
    """Sends a raw ClientHello; returns ('server_hello', (maj, min)), ('alert', desc),
    ('closed', None) or ('timeout', None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(client_hello(version, extensions=version > (3, 0)))
        data = b""
        while len(data) < 11:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                return ("timeout", None)
            except ConnectionResetError:
                return ("closed", None)
            if not chunk:
                break
            data += chunk
        if len(data) >= 7 and data[0] == 0x15:
            return ("alert", data[6])
        if len(data) >= 11 and data[0] == 0x16 and data[5] == 0x02:
            return ("server_hello", (data[9], data[10]))
        if not data:
            return ("closed", None)
        return ("other", data[:16])
    finally:
        s.close()


def check_all_stopped(servers):
    """The end of a fixture that started servers: checks every one that was started stopped
    cleanly (no sanitizer report, exit 0), and fails the test with all their errors."""
    import pytest
    errors = []
    for srv in servers:
        if srv.proc is None:
            continue
        try:
            srv.check_stopped()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)
