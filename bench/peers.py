"""Private Postfix and Dovecot instances to benchmark sealmaild against, side by side.

Both run from a temporary folder on loopback high ports with their own configuration, queue,
mail and logs; the machine's own Postfix or Dovecot (configuration, service, ports, spool) is
never touched. Each instance is found by its process tree (the master's pid and everything
below it), which is also what CPU time and memory are summed over.

  Postfix: `postfix -c DIR start` (the master detaches; its pid is in the queue's pid/master.pid),
  `postfix -c DIR stop`, then a wait until every process of the tree is gone.
  Dovecot: `dovecot -c FILE -F` as our child, SIGTERM to stop.

Installing: `apt-get install` of postfix ("No configuration": the package then writes no
/etc/postfix/main.cf and starts nothing) or dovecot-imapd with a policy-rc.d that denies every
service start during the install (the package's postinst would otherwise start the system
instance); the system service is never enabled or started.
"""
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time

CLK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# ---- processes -----------------------------------------------------------------------------

def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    name = text[text.index("(") + 1:text.rindex(")")]
    return name, text.rsplit(")", 1)[1].split()


def children_map():
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            _, f = _stat(int(p))
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(int(f[1]), []).append(int(p))
    return kids


def tree(root):
    """root and all its live descendants."""
    if root is None:
        return []
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def tree_cpu(root):
    """CPU seconds of a process tree: every live process's user+system time plus the time of
    the children it has reaped (cutime+cstime), so processes that ended during a run (Postfix
    smtpd, cleanup, ... after max_use; Dovecot's one-connection login processes) still count."""
    total = 0
    for pid in tree(root):
        try:
            _, f = _stat(pid)
        except (OSError, IndexError):
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK


def tree_mem(root):
    """(sum of VmRSS, sum of Pss, process count) over a process tree, KiB. RSS counts shared
    pages (libraries, shared mappings) once per process; PSS divides them between the
    processes that share them."""
    rss = pss = n = 0
    for pid in tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            n += 1
        except OSError:
            continue
    return rss, pss, n


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def open_path(path):
    """Makes path and its parents traversable by other users (the peers drop privileges)."""
    path = os.path.abspath(path)
    while path != "/":
        st = os.stat(path)
        os.chmod(path, stat.S_IMODE(st.st_mode) | 0o711)
        path = os.path.dirname(path)


def apt_install(packages):
    """apt-get install with service starts denied (policy-rc.d exiting 101) for its duration.
    Returns (ok, last lines of output)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = "/usr/sbin/policy-rc.d"
    saved = None
    if os.path.exists(policy):
        with open(policy, "rb") as f:
            saved = f.read()
    try:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# sealmail bench: no service starts during this install\nexit 101\n")
        os.chmod(policy, 0o755)
        r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                           env=env, capture_output=True)
    finally:
        if saved is None:
            os.unlink(policy)
        else:
            with open(policy, "wb") as f:
                f.write(saved)
    return r.returncode == 0, r.stdout.decode(errors="replace")[-800:] + \
        r.stderr.decode(errors="replace")[-800:]


def _nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


# ---- Dovecot -------------------------------------------------------------------------------

DOVECOT_TUNED = """\
# tuned (not defaults): one imap-login process serves many clients, idle IMAP sessions are
# handed to imap-hibernate, enough imap processes for the logins in flight
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 2000
  vsz_limit = 1G
}
service imap {
  process_limit = 12000
}
service imap-hibernate {
  client_limit = 12000
}
imap_hibernate_timeout = 5s
default_client_limit = 12000
"""


class Dovecot:
    """A private Dovecot 2.3: IMAPS on a loopback port and/or only its auth service (for
    Postfix's Dovecot SASL). Users are in a passwd-file with {PLAIN} passwords (no hashing
    per login: Dovecot's cheapest case, the counterpart of sealmaild's warm login cache).
    Everything else is Dovecot's defaults unless tuned (DOVECOT_TUNED) or max_userip is set."""

    BIN = "/usr/sbin/dovecot"

    @staticmethod
    def install():
        if os.path.exists(Dovecot.BIN) and os.path.exists("/usr/lib/dovecot/imap"):
            return True, ""
        ok, out = apt_install(["dovecot-imapd"])
        return ok and os.path.exists(Dovecot.BIN), out

    @staticmethod
    def version():
        try:
            return subprocess.run([Dovecot.BIN, "--version"], capture_output=True,
                                  text=True).stdout.split()[0]
        except (OSError, IndexError):
            return "?"

    def __init__(self, folder, cert, key, users, imap=True, auth_listener=None, tuned=False,
                 max_userip=None):
        self.dir = folder
        self.port = free_port() if imap else None
        self.proc = None
        os.makedirs(folder, exist_ok=True)
        open_path(folder)
        uid, gid = _nobody()
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        os.chown(os.path.join(folder, "home"), uid, gid)
        self.log_path = os.path.join(folder, "dovecot.log")
        with open(os.path.join(folder, "passwd"), "w") as f:
            for u, p in users:
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        shutil.copyfile(cert, os.path.join(folder, "cert.pem"))
        shutil.copyfile(key, os.path.join(folder, "key.pem"))
        os.chmod(os.path.join(folder, "key.pem"), 0o600)
        lines = [
            "base_dir = %s/run" % folder,
            "state_dir = %s/state" % folder,
            "instance_name = sealbench-dovecot",
            "log_path = %s" % self.log_path,
            "listen = 127.0.0.1",
            "protocols = %s" % ("imap" if imap else ""),
            "ssl = required",
            "ssl_cert = <%s/cert.pem" % folder,
            "ssl_key = <%s/key.pem" % folder,
            "mail_location = maildir:~/Maildir",
            "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN %s/passwd\n}" % folder,
            "userdb {\n  driver = static\n  args = uid=%d gid=%d home=%s/home/%%u\n}"
            % (uid, gid, folder),
        ]
        if max_userip is not None:
            lines.append("protocol imap {\n  mail_max_userip_connections = %d\n}" % max_userip)
        if imap:
            lines.append("service imap-login {\n  inet_listener imap {\n    port = 0\n  }\n"
                         "  inet_listener imaps {\n    port = %d\n    ssl = yes\n  }\n}"
                         % self.port)
        if auth_listener:
            lines.append("service auth {\n  unix_listener %s {\n    mode = 0660\n"
                         "    user = postfix\n    group = postfix\n  }\n}" % auth_listener)
        if tuned:
            lines.append(DOVECOT_TUNED)
        self.conf = os.path.join(folder, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([self.BIN, "-c", self.conf, "-F"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        if self.port is not None:
            if not wait_port(self.port):
                out = self.stop()
                raise RuntimeError("dovecot did not listen on 127.0.0.1:%d: %s %s"
                                   % (self.port, out, self.log_tail()))
        else:
            time.sleep(1)
            if self.proc.poll() is not None:
                out = self.stop()
                raise RuntimeError("dovecot exited: %s %s" % (out, self.log_tail()))
        return self

    def log_tail(self, n=6):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def cpu(self):
        return tree_cpu(self.pid)

    def mem(self):
        return tree_mem(self.pid)

    def stop(self):
        if self.proc is None:
            return ""
        pids = tree(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait()
        out = self.proc.stdout.read().decode(errors="replace").strip()
        self.proc.stdout.close()
        _wait_gone(pids)
        self.proc = None
        return out


def _wait_gone(pids, timeout=20):
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if os.path.exists("/proc/%d" % p) and _alive(p)]
        if left:
            time.sleep(0.1)
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---- Postfix -------------------------------------------------------------------------------

POSTFIX_MASTER = """\
# private benchmark instance: nothing chrooted (no copy of /etc files in the queue needed)
127.0.0.1:{port} inet n - n - 200 smtpd -o smtpd_tls_wrappermode=yes
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
myhostname = bench.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
# logging to a file needs the postlog service (master.cf) and the file's folder allowed
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = encrypt
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
"""

POSTFIX_MAILDIR = """\
# delivery: virtual(8) into one Maildir (a file per message, written as the
# mailbox's owner), like sealmaild's delivery into the user's mailbox
virtual_mailbox_domains = corp.example
virtual_transport = virtual
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = static:bench/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""

POSTFIX_DISCARD = """\
# delivery: discard(8) after the queue (queued durably, then dropped)
relay_domains = corp.example
relay_transport = discard
default_transport = discard
"""

POSTFIX_SASL = """\
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_tls_auth_only = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
"""

POSTFIX_NOSASL = """\
smtpd_relay_restrictions = permit_mynetworks, reject
"""


class Postfix:
    """A private Postfix instance: smtpd with implicit TLS (wrapper mode) on a loopback high
    port, the queue in a temporary folder, delivery to a Maildir (virtual) or discard.
    sasl=True: AUTH PLAIN through a private Dovecot's auth service (Dovecot SASL)."""

    @staticmethod
    def install():
        if os.path.exists("/usr/sbin/postfix"):
            return True, ""
        subprocess.run(["debconf-set-selections"], input=b"postfix postfix/main_mailer_type "
                       b"select No configuration\n", check=False)
        ok, out = apt_install(["postfix"])
        return ok and os.path.exists("/usr/sbin/postfix"), out

    @staticmethod
    def version():
        try:
            r = subprocess.run(["/usr/sbin/postconf", "-d", "-h", "mail_version"],
                               capture_output=True, text=True)
            return r.stdout.strip() or "?"
        except OSError:
            return "?"

    def __init__(self, folder, cert, key, delivery="maildir", sasl=False, extra=()):
        self.dir = folder
        self.delivery = delivery
        self.port = free_port()
        self.master = None
        for sub in ("etc", "queue", "data", "mail"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        open_path(folder)
        shutil.chown(os.path.join(folder, "data"), "postfix")
        uid, gid = _nobody()
        os.chown(os.path.join(folder, "mail"), uid, gid)
        shutil.copyfile(cert, os.path.join(folder, "cert.pem"))
        shutil.copyfile(key, os.path.join(folder, "key.pem"))
        os.chmod(os.path.join(folder, "key.pem"), 0o600)
        main = POSTFIX_MAIN.format(dir=folder, cert=os.path.join(folder, "cert.pem"),
                                   key=os.path.join(folder, "key.pem"))
        main += (POSTFIX_MAILDIR.format(dir=folder, uid=uid, gid=gid) if delivery == "maildir"
                 else POSTFIX_DISCARD)
        main += POSTFIX_SASL if sasl else POSTFIX_NOSASL
        if extra:
            main += "# not defaults: set on the command line\n" + "".join(
                "%s\n" % e.replace("=", " = ", 1) for e in extra)
        with open(os.path.join(folder, "etc", "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(folder, "etc", "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER.format(port=self.port))
        self.cmd = ["/usr/sbin/postfix", "-c", os.path.join(folder, "etc")]
        # Dovecot's auth listener goes here (smtpd is not chrooted: its cwd is the queue)
        self.auth_socket = os.path.join(folder, "queue", "private", "auth")

    def _run(self, what):
        # postfix(1) writes its errors to stderr only on a terminal; otherwise to maillog_file
        r = subprocess.run(self.cmd + [what], capture_output=True, text=True)
        return r.returncode, (r.stdout + r.stderr).strip() + " " + self.log_tail()

    def log_tail(self, n=6):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def prepare(self):
        """`postfix check` (creates the queue's subfolders with their owners)."""
        rc, out = self._run("check")
        if rc != 0:
            raise RuntimeError("postfix check failed (exit %d): %s" % (rc, out))

    def start(self):
        rc, out = self._run("start")
        if rc != 0:
            raise RuntimeError("postfix start failed (exit %d): %s" % (rc, out))
        pidfile = os.path.join(self.dir, "queue", "pid", "master.pid")
        for _ in range(100):
            try:
                with open(pidfile) as f:
                    self.master = int(f.read().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("postfix started but 127.0.0.1:%d does not answer: %s"
                               % (self.port, self.log_tail()))
        return self

    def stop(self):
        pids = tree(self.master) if self.master else []
        self._run("stop")
        _wait_gone(pids)
        self.master = None

    def cpu(self):
        return tree_cpu(self.master)

    def queued(self):
        """Messages still in the queue (not yet delivered or discarded)."""
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.dir, "queue", sub)):
                n += len(files)
        return n

    def deferred(self):
        n = 0
        for _, _, files in os.walk(os.path.join(self.dir, "queue", "deferred")):
            n += len(files)
        return n

    def delivered(self):
        """Messages in the Maildir (None for discard)."""
        if self.delivery != "maildir":
            return None
        d = os.path.join(self.dir, "mail", "bench", "new")
        try:
            return len(os.listdir(d))
        except OSError:
            return 0

    def drain(self, timeout=120):
        """Waits until the queue is empty; returns the seconds it took (None on timeout)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.queued() == 0:
                return time.monotonic() - t0
            time.sleep(0.05)
        return None
