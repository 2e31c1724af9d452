"""The client CA's key is out of sealmaild's reach: sealctl keeps it in ca_dir and writes
only the CA certificate (tls.client_ca) and the CRL (tls.crl) where the server reads them.
The server, traced with strace from its first system call through a certificate login and
a reload, never opens, stats or lists the key or its folder, in the new layout and in the
old one (the CA still in data_dir/ca, which sealctl keeps using with a warning). With the
key unreadable it starts and admits a user's certificate."""
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

import harness

ALICE = "alice@" + harness.DOMAIN
REFUSED = (ssl.SSLError, ConnectionResetError, BrokenPipeError, EOFError, socket.timeout,
           ConnectionAbortedError)


def _sealctl(srv, *args, stdin=None):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       input=stdin, capture_output=True, text=True, timeout=60,
                       env=harness.server_env())
    assert r.returncode == 0, "sealctl %s: %s" % (" ".join(args), r.stderr)
    assert not harness.sanitizer_reports(r.stderr), r.stderr
    return r


def _setup(make_server, tmp_path, legacy):
    srv = make_server(start=False, listeners=[("imap", "implicit", "required")])
    if legacy:
        srv.ca_dir = None  # an older configuration: no ca_dir
    pub = str(tmp_path / "pub")
    os.makedirs(pub)
    srv.tls = {"client_ca": os.path.join(pub, "client-ca.crt"),
               "crl": os.path.join(pub, "client-ca.crl")}
    srv.write_config()
    ca_dir = srv.ca_dir
    if legacy:
        # As an older sealctl left it: the CA inside data_dir.
        ca_dir = os.path.join(srv.dir, "data", "ca")
        os.makedirs(ca_dir, mode=0o700)
        new = make_server(start=False)  # borrow a second config to make the CA there
        new.ca_dir = ca_dir
        new.write_config()
        _sealctl(new, "cert", "init-ca")
        os.replace(os.path.join(new.ca_dir, "ca.crt"), os.path.join(ca_dir, "ca.crt"))
        _sealctl(srv, "cert", "crl")  # publishes the certificate, writes the CRL
    else:
        out = _sealctl(srv, "cert", "init-ca").stdout
        assert "client-ca.crt" in out, out
    assert open(srv.tls["client_ca"]).read() == open(os.path.join(ca_dir, "ca.crt")).read()
    _sealctl(srv, "user", "add", ALICE, "--password-stdin", stdin="pw\n")
    r = _sealctl(srv, "cert", "issue", ALICE, "--out", str(tmp_path / "issued"),
                 "--p12-password-stdin", stdin="p12 secret\n")
    warned = "warning:" in r.stderr and "ca_dir: /etc/sealmail/ca" in r.stderr
    assert warned == legacy, r.stderr
    if legacy:
        assert len(r.stderr.splitlines()) == 1, r.stderr
    return srv, ca_dir


def _greeting(srv, tmp_path):
    ctx = harness.client_context(srv.certs)
    ctx.load_cert_chain(str(tmp_path / "issued" / (ALICE + ".crt")),
                        str(tmp_path / "issued" / (ALICE + ".key")))
    lc = harness.tls_client(srv.port_for("imap", "implicit", "required"), ctx)
    try:
        return lc.readline()
    finally:
        lc.close()


@pytest.mark.parametrize("legacy", [False, True], ids=["ca_dir", "old_data_dir_ca"])
def test_daemon_never_touches_the_ca_key(make_server, tmp_path, legacy):
    srv, ca_dir = _setup(make_server, tmp_path, legacy)
    key = os.path.join(ca_dir, "ca.key")
    os.chmod(key, 0)
    os.chmod(ca_dir, 0)

    trace = str(tmp_path / "trace")
    env = harness.server_env()
    # LeakSanitizer cannot run under ptrace; the other tests check leaks.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    log = srv.log_file = open(srv.log_path, "wb")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=%file,%desc", "-o", trace,
                               harness.tool("sealmaild"), "-c", srv.config_path],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              cwd=srv.dir, env=env)
    srv.proc = tracer  # the harness waits on it and checks its exit
    pid = None
    try:
        srv.wait_log(r"\bevent=ready\b", timeout=20)
        srv._read_ports(srv.log())
        with open(trace) as f:
            pid = int(f.readline().split()[0])  # sealmaild's own pid: strace blocks signals
        line = _greeting(srv, tmp_path)
        assert line.startswith(b"* OK"), line
        since = srv.log_size()
        os.kill(pid, signal.SIGHUP)
        srv.wait_log(r"event=reloaded", since=since)
        line = _greeting(srv, tmp_path)
        assert line.startswith(b"* OK"), line
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            rc = tracer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            tracer.kill()
            rc = tracer.wait()
        os.chmod(ca_dir, 0o700)
        os.chmod(key, 0o600)
    assert rc == 0, srv.log()
    text = open(trace).read()
    assert "sealmail.yaml" in text and "client-ca.crt" in text  # the trace does see files
    touched = [l for l in text.splitlines() if ca_dir in l or "ca.key" in l]
    assert not touched, "sealmaild reached the CA:\n" + "\n".join(touched[:10])


def test_check_warns_about_the_old_layout(make_server, tmp_path):
    srv, ca_dir = _setup(make_server, tmp_path, legacy=True)
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path, "--check"],
                       capture_output=True, text=True, timeout=30, env=harness.server_env())
    assert r.returncode == 0, r.stderr
    assert re.search(r"warning: the client CA's key is in %s, inside data_dir" %
                     re.escape(ca_dir), r.stderr), r.stderr
    assert "ca_dir: /etc/sealmail/ca" in r.stderr, r.stderr
    # The new layout: no warning.
    srv2, _ = _setup(make_server, tmp_path / "new", legacy=False)
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv2.config_path, "--check"],
                       capture_output=True, text=True, timeout=30, env=harness.server_env())
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
