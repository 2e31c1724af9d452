"""Helpers for the POP3 integration tests: clients, users, and store_tool deliveries.

Pop3Env wraps a running server (the harness's object when conftest.py provides one, else
the small launcher below) and knows where its POP3 listeners, CA and database are.
"""
import os
import poplib
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

SRC = os.environ.get("SEALMAIL_SOURCE_ROOT",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("SEALMAIL_BUILD_ROOT", os.path.join(SRC, "build"))
DOMAIN = "corp.example"
HOSTNAME = "mail.corp.example"


def _tool(name):
    for p in (os.path.join(BUILD, name), os.path.join(BUILD, "server", name),
              os.path.join(BUILD, "cli", name), os.path.join(BUILD, "tests", name)):
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s not built under %s (set SEALMAIL_BUILD_ROOT)" % (name, BUILD))


class Launched:
    """A sealmaild of our own: CA + server certificate from openssl, ephemeral ports."""

    def __init__(self, extra_yaml=""):
        self.dir = tempfile.mkdtemp(prefix="sealmail-pop3-")
        d = self.dir
        os.makedirs(os.path.join(d, "certs"))
        os.makedirs(os.path.join(d, "data"), mode=0o700)
        self.ca = os.path.join(d, "certs", "ca.crt")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", "certs/ca.key", "-out", "certs/ca.crt", "-days", "2",
            "-subj", "/CN=Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "certs/server.key", "-out", "certs/server.csr", "-subj",
            "/CN=" + HOSTNAME)
        with open(os.path.join(d, "certs", "ext"), "w") as f:
            f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n" % HOSTNAME)
        run("openssl", "x509", "-req", "-in", "certs/server.csr", "-CA", "certs/ca.crt",
            "-CAkey", "certs/ca.key", "-CAcreateserial", "-out", "certs/server.crt", "-days",
            "2", "-extfile", "certs/ext")
        self.config = os.path.join(d, "sealmail.yaml")
        with open(self.config, "w") as f:
            f.write("hostname: %s\ndomains: [%s]\ndata_dir: data\n"
                    "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n"
                    "listeners:\n"
                    "  - { protocol: pop3, address: 127.0.0.1, port: 0, tls: implicit }\n"
                    "  - { protocol: pop3, address: 127.0.0.1, port: 0, tls: starttls }\n"
                    % (HOSTNAME, DOMAIN) + extra_yaml)
        self.log_path = os.path.join(d, "sealmaild.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([_tool("sealmaild"), "-c", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=d)
        self.ports = {}
        deadline = time.time() + 10
        while time.time() < deadline and len(self.ports) < 2:
            text = open(self.log_path, encoding="utf-8", errors="replace").read()
            for m in re.finditer(r"event=listening protocol=pop3 tls=(\w+) .*?port=(\d+)", text):
                self.ports[m.group(1)] = int(m.group(2))
            if self.proc.poll() is not None:
                raise RuntimeError("sealmaild exited:\n" + text)
            time.sleep(0.05)
        if len(self.ports) < 2:
            raise RuntimeError("no listening lines in " + self.log_path)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def log_text(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read()


class Pop3Env:
    def __init__(self, srv):
        self.srv = srv
        self.hostname = HOSTNAME
        self.ca = srv.ca
        self.pop3s_port = srv.ports["implicit"]
        self.stls_port = srv.ports["starttls"]
        self.db = os.path.join(os.path.dirname(srv.config), "data", "mail.db")
        self.config = srv.config

    def add_user(self, local, password):
        address = "%s@%s" % (local, DOMAIN)
        subprocess.run([_tool("sealctl"), "-c", self.config, "user", "add", address,
                        "--password-stdin"], input=(password + "\n").encode(), check=True,
                       capture_output=True)
        return address

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    def wait_unlocked(self, user, password, timeout=10):
        """Logs in until the maildrop lock of a dropped session is gone."""
        deadline = time.time() + timeout
        while True:
            p = pop3s(self)
            try:
                p.user(user)
                p.pass_(password)
                p.quit()
                return
            except poplib.error_proto as e:
                if b"IN-USE" not in e.args[0] or time.time() > deadline:
                    raise
                p.close()
                time.sleep(0.05)


def pop3s(env):
    return poplib.POP3_SSL(env.hostname if False else "127.0.0.1", env.pop3s_port,
                           context=_ctx_for(env), timeout=30)


def pop3_stls(env):
    p = poplib.POP3("127.0.0.1", env.stls_port, timeout=30)
    p.stls(context=_ctx_for(env))
    return p


def _ctx_for(env):
    ctx = env.ssl_context()
    # We connect to 127.0.0.1; the certificate names the server's host name.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def deliver(env, user, data):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        path = f.name
    try:
        out = subprocess.run([_tool("store_tool"), env.db, "deliver", user, path],
                             capture_output=True, check=True)
        return tuple(int(x) for x in out.stdout.split())
    finally:
        os.unlink(path)


def expunge(env, user, uid):
    subprocess.run([_tool("store_tool"), env.db, "expunge", user, str(uid)], check=True,
                   capture_output=True)


def inbox_uids(env, user):
    out = subprocess.run([_tool("store_tool"), env.db, "list", user], capture_output=True,
                         check=True)
    return [int(l.split()[0]) for l in out.stdout.decode().splitlines()]
