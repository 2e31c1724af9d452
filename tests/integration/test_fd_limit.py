"""Open-file limit: sealmaild raises its soft RLIMIT_NOFILE to the hard limit at start and
warns when limits.connections (plus what the daemon needs itself) cannot fit; `--check`
warns against the hard limit in the `file:line: key: what` form, exit code still 0."""
import re
import resource
import subprocess

import pytest

import harness

# A soft limit as low as a login shell's, under a hard limit that still allows more.
LOW_SOFT = 256
LOW_HARD = 4096


def _limits(soft, hard):
    """preexec_fn for the child: set its own limits (lowering needs no privilege)."""
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return apply


def _usable_hard():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= LOW_SOFT:
        pytest.skip("hard open-file limit %d leaves nothing to raise to" % hard)
    return LOW_HARD if hard == resource.RLIM_INFINITY else min(hard, LOW_HARD)


def _proc_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line in /proc/%d/limits" % pid)


def _start_limited(srv, soft, hard, timeout=10):
    """Server.start() with the child's limits set before exec (the harness has no hook)."""
    srv.log_file = open(srv.log_path, "wb")
    srv.proc = subprocess.Popen([harness.tool("sealmaild"), "-c", srv.config_path],
                                stdin=subprocess.DEVNULL, stdout=srv.log_file,
                                stderr=subprocess.STDOUT, cwd=srv.dir,
                                env=harness.server_env(), preexec_fn=_limits(soft, hard))
    srv.wait_log(r"\bevent=ready\b", timeout=timeout)
    srv._read_ports(srv.log())
    return srv


def test_soft_limit_raised_to_hard(make_server):
    hard = _usable_hard()
    srv = make_server(start=False, limits={"connections": 100})
    _start_limited(srv, LOW_SOFT, hard)
    assert _proc_nofile(srv.pid) == (hard, hard), srv.log()
    assert re.search(r"event=open_files_raised from=%d to=%d\b" % (LOW_SOFT, hard), srv.log())
    assert "event=open_files_low" not in srv.log(), srv.log()
    # Still serving after the change.
    lc = harness.plain_connect(srv.port("imap", "starttls"))
    try:
        assert lc.readline().startswith(b"* OK")
    finally:
        lc.close()


def test_warns_when_connections_exceed_hard_limit(make_server):
    hard = _usable_hard()
    srv = make_server(start=False, limits={"connections": hard * 2})
    _start_limited(srv, LOW_SOFT, hard)
    assert _proc_nofile(srv.pid) == (hard, hard), srv.log()
    m = re.search(r"event=open_files_low limit=(\d+) needed=(\d+) connections=(\d+) "
                  r"config=(\S+):(\d+)", srv.log())
    assert m, srv.log()
    assert int(m.group(1)) == hard and int(m.group(2)) > hard * 2, m.group(0)
    line = int(m.group(5))
    with open(srv.config_path) as f:
        assert "connections" in f.read().splitlines()[line - 1], m.group(0)


def _check(path, soft, hard):
    return subprocess.run([harness.tool("sealmaild"), "-c", path, "--check"],
                          capture_output=True, timeout=15, env=harness.server_env(),
                          preexec_fn=_limits(soft, hard))


def test_check_warns_above_hard_limit(certs, sealmaild_bin, tmp_path):
    hard = _usable_hard()
    srv = harness.Server(certs, workdir=str(tmp_path), limits={"connections": hard + 1})
    r = _check(srv.config_path, LOW_SOFT, hard)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert b"configuration ok" in r.stdout, r.stdout
    assert not harness.sanitizer_reports(err), err
    m = re.search(r"^(?P<file>[^:\n]+):(?P<line>\d+): limits\.connections: warning: .*"
                  r"hard limit of %d\b" % hard, err, re.M)
    assert m, err
    assert m.group("file") == srv.config_path, err
    src = srv.config_text().splitlines()
    assert "connections:" in src[int(m.group("line")) - 1], (m.group(0), src)


def test_check_quiet_when_connections_fit(certs, sealmaild_bin, tmp_path):
    hard = _usable_hard()
    srv = harness.Server(certs, workdir=str(tmp_path), limits={"connections": 100})
    r = _check(srv.config_path, LOW_SOFT, hard)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert "limits.connections" not in err, err
