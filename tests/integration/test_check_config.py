"""sealmaild --check: 0 for a good config; non-zero with `file:line: key: msg` lines for a
bad one."""
import os
import re
import subprocess

import harness


def _check(path):
    return subprocess.run([harness.tool("sealmaild"), "-c", path, "--check"],
                          capture_output=True, timeout=15, env=harness.server_env())


def test_check_good_config(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path))
    r = _check(srv.config_path)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert not harness.sanitizer_reports(r.stderr.decode(errors="replace"))


def test_check_bad_config(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path))
    text = srv.config_text()
    text = text.replace("data_dir: data\n", "data_dir: data\nhostnme: typo.example\n")
    text = text.replace("  key: certs/server.key\n", "  key: certs/missing.key\n")
    text += "limits:\n  connections: 70000000000000\n"
    text = text.replace('port: 0 }', 'port: 70000 }', 1)
    with open(srv.config_path, "w") as f:
        f.write(text)
    r = _check(srv.config_path)
    err = r.stderr.decode(errors="replace") + r.stdout.decode(errors="replace")
    assert r.returncode != 0, err
    assert not harness.sanitizer_reports(err), err
    lines = [l for l in err.splitlines() if l.strip()]
    rx = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<key>[A-Za-z_\[\]\.0-9()]+): \S")
    parsed = [rx.match(l) for l in lines]
    assert all(parsed), "lines not in file:line: key: msg form:\n" + err
    for m in parsed:
        assert os.path.basename(m.group("file")) == "sealmail.yaml", err
    keys = {m.group("key") for m in parsed}
    assert "hostnme" in keys, err
    assert "tls.key" in keys, err
    assert any(k.startswith("listeners[0]") for k in keys), err
    assert "limits.connections" in keys, err
    # Each line number points at the key it names.
    src = text.splitlines()
    for m in parsed:
        n = int(m.group("line"))
        assert 1 <= n <= len(src), err
        leaf = m.group("key").split(".")[-1].split("[")[0]
        assert leaf in src[n - 1], (m.group(0), src[n - 1])


def test_check_missing_tls_mode(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path))
    text = srv.config_text().replace('tls: "starttls", ', "", 1)
    with open(srv.config_path, "w") as f:
        f.write(text)
    r = _check(srv.config_path)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert re.search(r"sealmail\.yaml:\d+: listeners\[1\]", err), err


def test_running_with_bad_config_fails(certs, sealmaild_bin, tmp_path):
    srv = harness.Server(certs, workdir=str(tmp_path))
    with open(srv.config_path, "a") as f:
        f.write("bogus_key: 1\n")
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path],
                       capture_output=True, timeout=15, env=harness.server_env())
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert "bogus_key" in err, err
