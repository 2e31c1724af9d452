"""What the IMAP benchmarks that compare sealmaild with Dovecot share: one run's folder and
certificates, sealmaild builds and a private Dovecot started in it, a mailbox filled the
same way on each, and the dated section appended to bench/RESULTS.md.

    with benchlib.Servers("sort-bench-") as sv:
        s = sv.sealmail("build")          # started (imap_bench.Sealmail): .port .cpu()
        label, d = sv.dovecot()           # dovecot-imapd installed when missing, started
        benchlib.fill(s, sv.ctx, msgs, "sealmail")
        ...
    # every server still running is stopped and the folder removed

sealmaild: the integration harness (implicit-TLS IMAP on a free loopback port, its own
folder, the bench user of imap_bench). Dovecot 2.3 with its defaults (bench/peers.py:
maildir in the run's folder, same certificate, IMAPS on a free loopback port).
"""
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from imap_bench import DovecotTarget, Sealmail  # noqa: E402
from fetch_bench import append, cpu_model  # noqa: E402
import harness  # noqa: E402
import peers  # noqa: E402


def distro():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "unknown distribution"


class Servers:
    """The servers of one run, in one temporary folder."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.certs = harness.CertSet(os.path.join(self.work, "certs"))
        self.ctx = harness.client_context(self.certs)
        self.running = []
        self.n = 0

    def sealmail(self, build, max_conns=10):
        """A sealmaild of the meson build directory build, started."""
        os.environ["SEALMAIL_BUILD"] = os.path.abspath(build)  # harness.tool()
        s = Sealmail(os.path.join(self.work, "s%d" % self.n), self.certs, max_conns)
        self.n += 1
        s.start()
        self.running.append(s)
        return s

    def dovecot(self):
        """(label, server): a private Dovecot with its defaults, started."""
        ok, out = peers.Dovecot.install()
        if not ok:
            raise RuntimeError("dovecot-imapd could not be installed: %s" % out[-300:])
        d = DovecotTarget(self.work, self.certs, False)
        d.start()
        self.running.append(d)
        return "dovecot " + peers.Dovecot.version(), d

    def stop(self, server):
        if server in self.running:
            self.running.remove(server)
            server.stop()

    def close(self):
        for s in list(self.running):
            try:
                self.stop(s)
            except Exception as e:  # noqa: BLE001  (stop the others all the same)
                print("stopping %s: %s" % (getattr(s, "label", s), e))
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def fill(server, ctx, msgs, label):
    """Appends msgs to INBOX in order (MULTIAPPEND + LITERAL+) and says how long it took."""
    t0 = time.perf_counter()
    append(server.port, ctx, msgs)
    print("%s: %d messages appended in %.1f s" % (label, len(msgs), time.perf_counter() - t0),
          flush=True)


def record(title, script, what, body):
    """Appends "## title, date" with the machine and the command line to RESULTS.md."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n## %s, %s\n\n" % (title, when))
        f.write("Machine: %s, %d cores, %s, %s; `%s`%s.\n\n" %
                (cpu_model(), os.cpu_count(), distro(), platform.platform(),
                 " ".join(["bench/" + script] + sys.argv[1:]), what))
        f.write(body)
