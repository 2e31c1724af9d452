"""docs/certificates.md and the quick-start demo agree: every example works against the demo.

deploy/quickstart.sh prepares a demo in a temporary folder (SEALMAIL_DEMO_SETUP_ONLY=1, the
build under test, a free port base on 127.0.0.1), sealmaild runs on its config, then:

- every connection hint quickstart.sh prints is run as printed (openssl s_client, gnutls-cli,
  curl with the password and with the certificate, swaks);
- every fenced code block of docs/certificates.md, read from the document at test time, is
  classified and checked: shell commands (sealctl, curl, openssl, swaks, gnutls-cli, cat,
  chmod, mkdir, cp, mv) are run; configuration snippets are merged into the demo config and
  must pass `sealmaild --check`; .muttrc snippets are read back with `neomutt -Q`, a message
  is sent with them and the IMAP folder must greet the certificate with `* PREAUTH`; log
  lines must have the level, event and fields (in order) of what sealmaild logs; systemd
  commands must name unit files that exist in deploy/ and pass `systemd-analyze verify`.
  A block that fits no class fails the test.

Only what cannot be the same on a test machine is changed, by SUBSTITUTIONS below (applied
in that order); what cannot run here is listed in SKIPPED_BY_DESIGN, each a pytest skip.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid

import pytest
import yaml

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
DOC = os.path.join(SRC, "docs", "certificates.md")
QUICKSTART = os.path.join(SRC, "deploy", "quickstart.sh")

DEMO_HOST = "mail.example.test"   # quickstart.sh's HOST
DEMO_USER = "demo@example.test"   # quickstart.sh's USER_ADDR

# What the examples say -> what runs here, and why. {demo} is the demo folder (holding
# sealmail.yaml, ca/, certs/, client/, data/), {out} a fresh folder per example, {home} the
# HOME of the clients, {base} the port base given to quickstart.sh.
SUBSTITUTIONS = [
    ("/etc/sealmail/sealmail.yaml", "{demo}/sealmail.yaml", "the demo's config"),
    ("-c FILE", "-c {demo}/sealmail.yaml", "the demo's config"),
    ("/etc/sealmail/ca", "{demo}/ca", "ca_dir of the demo"),
    ("/etc/sealmail/certs", "{demo}/certs", "tls.client_ca, tls.crl, server cert of the demo"),
    ("/etc/sealmail/relay", "{demo}/relay", "where a peer server's certificate goes"),
    ("/var/lib/sealmail", "{demo}/data", "data_dir of the demo"),
    ("/tmp/alice", "{out}", "a fresh output folder per example"),
    ("alice@corp.example", DEMO_USER, "the demo's user (certificate file names too)"),
    ("bob@corp.example", DEMO_USER, "the demo has one user"),
    ("mail.corp.example", DEMO_HOST, "the demo's host name (curl: --connect-to 127.0.0.1; "
                                     "neomutt, which cannot be told: 127.0.0.1, which the "
                                     "server certificate names too)"),
    ("~", "{home}", "HOME is a fresh folder (shell: by HOME=; .muttrc: as is, with HOME=)"),
    ("port P and 10000+P (P = 25, 110, 143, 465, 587, 993, 995)", "{base}+P",
     "the demo's ports: quickstart.sh puts service P on base+P"),
]
# Added around the examples, never changing what they do:
# - the demo CA is trusted the way the machine's trust store would trust a public CA:
#   CURL_CA_BUNDLE for curl, certificate_file / ssl_ca_certificates_file for neomutt;
# - curl gets -sS --max-time 20 and --connect-to DEMO_HOST:P:127.0.0.1:base+P;
# - neomutt's batch send gets record="", copy=no and no caches (no folders to write);
# - `-T message.eml` reads a message the test writes into the example's folder.
SKIPPED_BY_DESIGN = [
    (r"^systemctl ", "changes the machine's services (the unit files are verified instead)"),
    (r"^cp deploy/\S+ .*/etc/systemd/system/",
     "installs into /etc/systemd/system (the unit files are checked and verified instead)"),
]

DEMO_PORTS = (25, 110, 143, 465, 587, 993, 995)
TIMEOUT = 20


# --------------------------------------------------------------------------- the document

def fenced_blocks(path=DOC):
    """[(index, section, lead-in line, language, text)] of every fenced code block."""
    blocks, section, last = [], "", ""
    lines = open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(`{3,})\s*(\S*)\s*$", line)
        if m:
            fence, lang, body = m.group(1), m.group(2), []
            i += 1
            while i < len(lines) and not lines[i].startswith(fence):
                body.append(lines[i])
                i += 1
            blocks.append((len(blocks), section, last, lang, "\n".join(body) + "\n"))
        elif line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.strip():
            last = line.strip()
        i += 1
    return blocks


SHELL_WORDS = ("sealctl", "curl", "openssl", "swaks", "gnutls-cli", "cat", "chmod", "mkdir",
               "cp", "mv", "systemctl")


def commands(text):
    """Shell commands of a block: continuation lines joined, comment lines dropped."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out


def classify(lang, text):
    first = commands(text)[0] if commands(text) else ""
    if re.match(r"^(info|warn|error) (session=\S+ )?event=", first):
        return "log"
    if first.startswith("set "):
        return "muttrc"
    if lang in ("yaml", "yml"):
        return "config"
    if first.split()[0] in SHELL_WORDS if first else False:
        return "shell"
    return None


def skipped_reason(cmd):
    for rx, why in SKIPPED_BY_DESIGN:
        if re.search(rx, cmd):
            return why
    return None


def examples():
    """One pytest parameter per example: a block, and each skipped-by-design command alone."""
    out = []
    for idx, section, lead, lang, text in fenced_blocks():
        kind = classify(lang, text)
        first = (commands(text) or [""])[0]
        name = "%02d-%s-%s" % (idx, kind or "unclassified",
                               re.sub(r"[^A-Za-z0-9]+", "-", first)[:40].strip("-"))
        if kind == "shell":
            runnable = [c for c in commands(text) if not skipped_reason(c)]
            for j, c in enumerate(commands(text)):
                if skipped_reason(c):
                    out.append(pytest.param(("skip", c, skipped_reason(c)),
                                            id="%02d.%d-skipped-%s" % (idx, j, c.split()[0])))
            if not runnable:
                # Still check what the skipped commands name (unit files).
                out.append(pytest.param(("systemd", section, text), id=name + "-units"))
                continue
        out.append(pytest.param((kind, section, text, lead), id=name))
    return out


# --------------------------------------------------------------------------- the demo

def free_base(tries=50):
    """A port base in 20000..59000 whose seven demo ports are free on 127.0.0.1 now."""
    import random
    rnd = random.Random()
    for _ in range(tries):
        base = rnd.randrange(20, 60) * 1000
        socks = []
        try:
            for p in DEMO_PORTS:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port base in %d tries" % tries)


class Demo:
    def __init__(self, root):
        self.root = root
        self.dir = os.path.join(root, "demo")
        self.conf = os.path.join(self.dir, "sealmail.yaml")
        self.home = os.path.join(root, "home")
        os.makedirs(self.home)
        self.proc = None
        self.hints = ""

    def setup(self, base):
        self.base = base
        env = dict(os.environ, SEALMAIL_DEMO_SETUP_ONLY="1", SEALMAIL_DEMO_DIR=self.dir,
                   SEALMAIL_BUILD=harness.build_dir(), SEALMAIL_PORT_BASE=str(base))
        r = subprocess.run(["bash", QUICKSTART], env=env, capture_output=True, text=True,
                           timeout=60, cwd=SRC)
        assert r.returncode == 0, r.stdout + r.stderr
        self.hints = r.stdout
        self.password = open(os.path.join(self.dir, "demo-password.txt")).read().strip()
        self.ca = os.path.join(self.dir, "certs", "client-ca.crt")
        self.crt = os.path.join(self.dir, "client", DEMO_USER + ".crt")
        self.key = os.path.join(self.dir, "client", DEMO_USER + ".key")

    def start(self):
        self.log_path = os.path.join(self.root, "sealmaild.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([harness.tool("sealmaild"), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     env=harness.server_env())
        deadline = time.monotonic() + 10
        while "event=ready" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        ports = sorted(int(p) for p in re.findall(r"event=listening .* port=(\d+)", self.log()))
        assert ports == sorted(self.base + p for p in DEMO_PORTS), self.log()
        return True

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_size(self):
        return os.path.getsize(self.log_path)

    def wait_log(self, pattern, since=0, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()[since:]
            m = re.search(pattern, text)
            if m:
                return m
            assert time.monotonic() < deadline, "no log line %r; log:\n%s" % (pattern,
                                                                              text[-3000:])
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.log_file.close()
        assert rc == 0 and not harness.sanitizer_reports(self.log()), self.log()[-4000:]

    def port(self, p):
        return self.base + (p - 10000 if p > 10000 else p)

    # -- substitutions

    def subst(self, text, out="", demo=None, host=DEMO_HOST):
        """SUBSTITUTIONS applied to text; ~ (by HOME=) and the ports (below) aside."""
        d = demo or self.dir
        for old, new, _ in SUBSTITUTIONS:
            if new.startswith(("{home}", "{base}")):
                continue
            if old == "mail.corp.example":
                new = host
            text = text.replace(old, new.replace("{demo}", d).replace("{out}", out))
        return re.sub(r"(://[^/:\s]+:)(\d+)",
                      lambda m: m.group(1) + str(self.port(int(m.group(2)))), text)

    def client_env(self, **extra):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home,
             "TERM": "dumb", "LANG": "C.UTF-8", "CURL_CA_BUNDLE": self.ca}
        e.update(extra)
        return e


@pytest.fixture(scope="module")
def demo(sealmaild_bin, certs, tmp_path_factory):
    for _ in range(3):  # a port taken between the check and the start: another base
        d = Demo(str(tmp_path_factory.mktemp("docsdemo")))
        d.setup(free_base())
        if d.start():
            break
        d.proc.kill()
        d.proc.wait()
        d.log_file.close()
    else:
        pytest.fail("sealmaild did not start on the demo:\n" + d.log(), pytrace=False)
    # What an organisation brings and the demo has not: its own servers' CA (peer_ca).
    shutil.copy(certs.other_ca, os.path.join(d.dir, "certs", "servers-ca.crt"))
    yield d
    d.stop()


def run(args, cwd, env, stdin=None, shell=False):
    r = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True,
                       timeout=TIMEOUT + 10, shell=shell,
                       executable="/bin/bash" if shell else None)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace"), r.stdout


def need(binary):
    if shutil.which(binary) is None:
        pytest.fail("%s is not installed (deploy/install-deps.sh installs it)" % binary)


# --------------------------------------------------------------------------- quickstart's hints

def hint_commands(text):
    part = text[text.index("Try, in another terminal"):]
    part = part[part.index("\n") + 1:]
    part = part[:part.index("\n\n")]
    return [shlex.split(c, comments=True) for c in part.replace("\\\n", " ").splitlines()
            if c.strip()]


# What each hint reads on standard input and must print.
HINT_INPUT = {"openssl": b"a1 LOGOUT\n", "gnutls-cli": b"QUIT\r\n"}


def test_quickstart_hints_work_as_printed(demo):
    cmds = hint_commands(demo.hints)
    assert [c[0] for c in cmds] == ["openssl", "openssl", "gnutls-cli", "curl", "swaks",
                                    "curl"], demo.hints
    for args in cmds:
        need(args[0])
        since = demo.log_size()
        rc, out, stdout = run(["timeout", str(TIMEOUT)] + args, SRC, demo.client_env(),
                              stdin=HINT_INPUT.get(args[0], b""))
        assert rc == 0, (args, out)
        if args[0] == "openssl":
            if "-quiet" in args:  # our LOGOUT went through
                assert "* OK" in out and "a1 OK" in out, (args, out)
            else:  # openssl did the STARTTLS, the certificate verified
                assert "Verify return code: 0 (ok)" in out and " OK " in out, (args, out)
        elif args[0] == "gnutls-cli":
            assert "Handshake was completed" in out and "+OK" in out, (args, out)
        elif args[0] == "swaks":
            assert "235 2.7.0" in out, (args, out)
            demo.wait_log(r"proto=submission event=queued .*from=%s" % re.escape(DEMO_USER),
                          since)
        elif args[-1].startswith("imaps:"):
            assert b"INBOX" in stdout, (args, out)
        else:  # the certificate login
            demo.wait_log(r"proto=submission event=auth_ok mech=EXTERNAL user=%s"
                          % re.escape(DEMO_USER), since)
            demo.wait_log(r"proto=submission event=queued .*from=%s" % re.escape(DEMO_USER),
                          since)


# --------------------------------------------------------------------------- the examples

def check_shell(demo, section, text, tmp_path):
    out = str(tmp_path / "out")
    cmds = [c for c in commands(text) if not skipped_reason(c)]
    if "/var/lib/sealmail/ca" in text:
        return check_old_ca_move(demo, text, tmp_path)
    if all(c.split()[0] in ("cat", "chmod", "mkdir", "cp", "mv") for c in cmds):
        # File commands, in the folder of the user's certificate files, HOME a fresh one.
        script = "set -euo pipefail\n" + demo.subst("\n".join(cmds), out)
        rc, o, _ = run(["bash", "-c", script], os.path.join(demo.dir, "client"),
                       demo.client_env())
        assert rc == 0, (script, o)
        return
    for cmd in cmds:
        args = shlex.split(demo.subst(cmd, out), comments=True)
        if args[0] != "sealctl":
            need(args[0])
        if args[0] == "sealctl":
            check_sealctl(demo, args, out, tmp_path)
        elif args[0] == "curl":
            check_curl(demo, args, tmp_path)
        else:
            pytest.fail("no check for %r" % cmd)


def sealctl(demo, args, stdin=None):
    return run([harness.tool("sealctl")] + args[1:], demo.dir, dict(os.environ), stdin=stdin)


def check_sealctl(demo, args, out, tmp_path):
    verb = args[3:5] if args[1] == "-c" else args[1:3]
    if verb == ["cert", "init-ca"]:
        # On the demo it must refuse (a CA is there) and leave the key alone...
        key = os.path.join(demo.dir, "ca", "ca.key")
        before = open(key, "rb").read()
        rc, o, _ = sealctl(demo, args)
        assert rc != 0 and open(key, "rb").read() == before, o
        # ...and on a copy of the demo's config without a CA it makes one.
        fresh = str(tmp_path / "fresh")
        os.makedirs(fresh + "/data")
        os.makedirs(fresh + "/certs")  # as quickstart.sh makes them
        shutil.copy(demo.conf, fresh + "/sealmail.yaml")
        args = [a.replace(demo.dir, fresh) for a in args]
        rc, o, _ = sealctl(demo, args)
        assert rc == 0, (args, o)
        assert os.stat(fresh + "/ca/ca.key").st_mode & 0o777 == 0o600
        for f in ("ca/ca.crt", "certs/client-ca.crt", "certs/client-ca.crl"):
            assert os.path.getsize(os.path.join(fresh, f)) > 0, f
        return
    since = demo.log_size()
    rc, o, stdout = sealctl(demo, args)
    assert rc == 0, (args, o)
    if verb == ["cert", "issue"]:
        addr = args[5]
        for ext in (".p12", ".crt", ".key"):
            assert os.path.isfile(os.path.join(out, addr + ext)), (ext, o)
        assert os.stat(os.path.join(out, addr + ".key")).st_mode & 0o777 == 0o600
        pw = re.search(rb"PKCS#12 password: (\S+)", stdout).group(1).decode()
        rc, o2, _ = run(["openssl", "pkcs12", "-in", os.path.join(out, addr + ".p12"),
                         "-passin", "pass:" + pw, "-nokeys"], out, dict(os.environ))
        assert rc == 0 and "BEGIN CERTIFICATE" in o2, o2
    elif verb == ["cert", "list"]:
        assert o.startswith("SERIAL "), o
        if "--expiring" not in args:  # the demo's certificates are good for a year
            assert DEMO_USER in o, o
    elif verb == ["cert", "revoke"]:
        # The server picks the CRL up without a signal; the certificate no longer logs in.
        demo.wait_log(r"event=crl_changed", since)
        deadline = time.monotonic() + 10
        while True:
            rc, o, _ = run(["curl", "-sS", "--max-time", str(TIMEOUT), "--cert", demo.crt,
                            "--key", demo.key, "--login-options", "AUTH=EXTERNAL", "-u",
                            DEMO_USER + ":", "imaps://%s/" % DEMO_HOST] + connect_to(demo),
                           demo.dir, demo.client_env())
            if rc != 0:
                break
            assert time.monotonic() < deadline, "the revoked certificate still logs in"
            time.sleep(0.2)
    elif verb == ["cert", "server"]:
        folder = args[args.index("--out") + 1]
        crt = os.path.join(folder, "server.crt")
        assert open(crt).read().count("BEGIN CERTIFICATE") == 2
        assert os.stat(os.path.join(folder, "server.key")).st_mode & 0o777 == 0o600
        rc, text, _ = run(["openssl", "x509", "-in", crt, "-noout", "-text"], folder,
                          dict(os.environ))
        assert "TLS Web Server Authentication" in text, text
        # A peer server's certificate (--peer, or --client-auth) is a TLS client too.
        peer = "--peer" in args or "--client-auth" in args
        assert ("TLS Web Client Authentication" in text) == peer, text
        if os.path.realpath(crt) == os.path.realpath(os.path.join(demo.dir, "certs",
                                                                   "server.crt")):
            # It replaced the demo's certificate: after SIGHUP the server presents it.
            since = demo.log_size()
            demo.proc.send_signal(signal.SIGHUP)
            demo.wait_log(r"event=reloaded", since)
            # A reload the CRL poll began before the new files were written may be the
            # one logged: look until the SIGHUP's own has taken effect (bounded).
            # The file is the chain: the server's certificate is its first block.
            pem = open(crt).read()
            end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
            want = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):end])
            ctx = ssl.create_default_context(cafile=demo.ca)
            deadline = time.monotonic() + 5
            while True:
                with socket.create_connection(("127.0.0.1", demo.port(993)), TIMEOUT) as raw:
                    with ctx.wrap_socket(raw, server_hostname=args[5]) as s:
                        served = s.getpeercert(binary_form=True)
                if served == want or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert served == want, "old certificate"


def check_old_ca_move(demo, text, tmp_path):
    """The move of a CA from data_dir/ca to ca_dir, on a copy of the demo in the old layout."""
    old = str(tmp_path / "old")
    shutil.copytree(demo.dir, old, ignore=shutil.ignore_patterns("client"))
    conf = os.path.join(old, "sealmail.yaml")
    cfg = re.sub(r"(?m)^ca_dir:.*\n", "", open(conf).read())
    open(conf, "w").write(cfg)
    shutil.move(os.path.join(old, "ca"), os.path.join(old, "data", "ca"))
    check = [harness.tool("sealmaild"), "-c", conf, "--check"]
    rc, o, _ = run(check, old, dict(os.environ))
    assert rc == 0 and "warning:" in o, o
    cmds = commands(text)
    rc, o, _ = run(["bash", "-c", "set -euo pipefail\n" +
                    demo.subst("\n".join(cmds), demo=old)], old, demo.client_env())
    assert rc == 0, o
    # The comment's configuration line, taken from the block.
    m = re.search(r"in sealmail\.yaml:\s*(ca_dir:.*)", text)
    assert m, text
    open(conf, "a").write(demo.subst(m.group(1), demo=old) + "\n")
    rc, o, _ = run(check, old, dict(os.environ))
    assert rc == 0 and "warning" not in o, o
    rc, o, _ = run([harness.tool("sealctl"), "-c", conf, "cert", "crl"], old,
                   dict(os.environ))
    assert rc == 0 and "warning" not in o, o


def connect_to(demo):
    out = []
    for p in DEMO_PORTS:
        out += ["--connect-to", "%s:%d:127.0.0.1:%d" % (DEMO_HOST, p, demo.port(p))]
    return out


def check_curl(demo, args, tmp_path):
    cwd = os.path.join(demo.dir, "client")
    subject = "docs-" + uuid.uuid4().hex[:10]
    if "-T" in args:
        name = args[args.index("-T") + 1]
        open(os.path.join(cwd, name), "w").write(
            "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nfrom the docs\r\n"
            % (DEMO_USER, DEMO_USER, subject))
    since = demo.log_size()
    full = args[:1] + ["-sS", "--max-time", str(TIMEOUT)] + connect_to(demo) + args[1:]
    rc, o, stdout = run(full, cwd, demo.client_env())
    assert rc == 0, (full, o)
    url = args[-1]
    if url.startswith("imaps:"):
        assert b"INBOX" in stdout, o
    if "--login-options" in args:
        demo.wait_log(r"event=auth_ok mech=EXTERNAL user=%s" % re.escape(DEMO_USER), since)
    if "-T" in args:
        demo.wait_log(r"proto=submission event=queued .*from=%s" % re.escape(DEMO_USER),
                      since)


def deep_merge(base, snippet):
    for k, v in snippet.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def check_config(demo, text, tmp_path):
    demo_text = demo.subst(text)
    snippet = yaml.safe_load(demo_text)
    assert isinstance(snippet, dict), text
    cfg = deep_merge(yaml.safe_load(open(demo.conf)), snippet)
    path = os.path.join(demo.dir, "docs-%s.yaml" % uuid.uuid4().hex[:8])
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    try:
        rc, o, _ = run([harness.tool("sealmaild"), "-c", path, "--check"], demo.dir,
                       dict(os.environ))
    finally:
        os.unlink(path)
    assert rc == 0 and "configuration ok" in o, (demo_text, o)


def check_muttrc(demo, text, tmp_path):
    need("neomutt")
    # .muttrc as printed, with the demo's names; neomutt cannot resolve the host name to
    # 127.0.0.1, so it gets the address (which the server certificate names too).
    rc_text = demo.subst(text, host="127.0.0.1")
    muttrc = os.path.join(demo.home, ".muttrc")
    open(muttrc, "w").write(rc_text)
    sets = re.findall(r"(?m)^set (\w+)\s*=\s*(\S+)\s*$", rc_text)
    assert sets, text
    env = demo.client_env()
    for var, value in sets:
        rc, o, _ = run(["neomutt", "-n", "-F", muttrc, "-Q", var], demo.home, env)
        assert rc == 0 and o.strip() == 'set %s = "%s"' % (var, value), (var, o)
    values = dict(sets)
    for var in ("ssl_client_cert",):
        if var in values:
            assert os.path.isfile(values[var].replace("~", demo.home)), values[var]
    if "folder" in values:
        # Pointed at the preauth IMAP listener, the certificate logs the session in.
        m = re.match(r"imaps://([^:/]+):(\d+)/", values["folder"])
        ctx = ssl.create_default_context(cafile=demo.ca)
        ctx.load_cert_chain(values["ssl_client_cert"].replace("~", demo.home))
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=m.group(1)) as s:
                assert s.recv(4096).startswith(b"* PREAUTH"), values["folder"]
    if "smtp_url" in values:
        wrapper = os.path.join(str(tmp_path), "muttrc")
        open(wrapper, "w").write(
            'set certificate_file = "%s"\nset ssl_ca_certificates_file = "%s"\n'
            'set record = ""\nset copy = no\nset header_cache = ""\n'
            'set message_cachedir = ""\nsource %s\n' % (demo.ca, demo.ca, muttrc))
        subject = "docs-" + uuid.uuid4().hex[:10]
        since = demo.log_size()
        rc, o, _ = run(["neomutt", "-n", "-F", wrapper, "-s", subject, "--", DEMO_USER],
                       demo.home, env, stdin=b"sent by neomutt from the docs\n")
        assert rc == 0, o
        demo.wait_log(r"proto=submission event=auth_ok mech=EXTERNAL user=%s"
                      % re.escape(DEMO_USER), since)
        demo.wait_log(r"proto=submission event=queued .*from=%s" % re.escape(DEMO_USER),
                      since)


def log_fields(line):
    """(level, [keys in order], {key: value}) of a log line (timestamp dropped)."""
    line = re.sub(r"^\d{4}-\d\d-\d\dT\S+Z ", "", line.strip())
    level, rest = line.split(" ", 1)
    pairs = re.findall(r'(\w+)=("[^"]*"|\S*)', rest)
    return level, [k for k, _ in pairs], dict(pairs)


def check_log(demo, text, tmp_path):
    for line in commands(text):
        level, keys, values = log_fields(demo.subst(line))
        event = values["event"]
        since = demo.log_size()
        if event == "crl_expiring":
            # A CRL that expires in days_left days makes the server say so at once.
            rc, o, _ = sealctl(demo, ["sealctl", "-c", demo.conf, "cert", "crl", "--days",
                                      str(int(values["days_left"]) + 1)])
            assert rc == 0, o
            demo.wait_log(r"event=crl_expiring", since)
        m = re.search(r"(?m)^.* event=%s .*$" % re.escape(event),
                      demo.log()[since if event == "crl_expiring" else 0:])
        assert m, "sealmaild never logged event=%s" % event
        got_level, got_keys, got = log_fields(m.group(0))
        assert (got_level, got_keys) == (level, keys), (line, m.group(0))
        for k in ("event", "crl", "fix"):
            if k in values:
                assert got[k] == values[k], (k, line, m.group(0))
        if event == "crl_expiring":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", values["next_update"])
        if event == "crl_expiring":  # put the usual 30 days back
            assert sealctl(demo, ["sealctl", "-c", demo.conf, "cert", "crl"])[0] == 0


def check_systemd_units(text):
    units = re.findall(r"deploy/(\S+\.(?:service|timer))", text)
    named = re.findall(r"(sealmail\S*\.(?:service|timer))", text)
    assert units or named, text
    for u in set(units) | set(named):
        assert os.path.isfile(os.path.join(SRC, "deploy", u)), u
    if shutil.which("systemd-analyze") is None:
        return
    paths = [os.path.join(SRC, "deploy", u) for u in sorted(set(units) | set(named))]
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths, capture_output=True,
                       text=True, timeout=TIMEOUT)
    # The binaries are not installed here and systemd may not be running: only complaints
    # about the unit files themselves count.
    bad = [l for l in r.stderr.splitlines()
           if "sealmail" in l and not re.search(r"is not executable|No such file|"
                                                  r"Failed to |Command .* not", l)]
    assert not bad, r.stderr


@pytest.mark.parametrize("example", examples())
def test_doc_example(demo, example, tmp_path):
    kind = example[0]
    if kind == "skip":
        pytest.skip("skipped by design: %s: %s" % (example[1], example[2]))
    if kind == "systemd":
        return check_systemd_units(example[2])
    _, section, text, lead = example
    if kind is None:
        pytest.fail("a code block of docs/certificates.md (section %r) that this test does "
                    "not know how to check:\n%s" % (section, text))
    if kind == "shell":
        if any(skipped_reason(c) for c in commands(text)):
            check_systemd_units(text)
        check_shell(demo, section, text, tmp_path)
    elif kind == "config":
        check_config(demo, text, tmp_path)
    elif kind == "muttrc":
        check_muttrc(demo, text, tmp_path)
    elif kind == "log":
        check_log(demo, text, tmp_path)


def test_every_block_is_an_example():
    """Counts: every fenced block is checked, and what is skipped is skipped by design."""
    blocks = fenced_blocks()
    kinds = [classify(lang, text) for _, _, _, lang, text in blocks]
    assert None not in kinds, [b for b, k in zip(blocks, kinds) if k is None]
    skipped = [c for _, _, _, _, t in blocks for c in commands(t) if skipped_reason(c)]
    print("%d blocks (%s), %d commands skipped by design" % (
        len(blocks), ", ".join("%d %s" % (kinds.count(k), k) for k in sorted(set(kinds))),
        len(skipped)))
    assert len(blocks) >= 10
