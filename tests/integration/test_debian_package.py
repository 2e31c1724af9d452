"""The Debian package: `dpkg-buildpackage -us -uc -b` on a copy of the source tree builds a
.deb with the binaries where the systemd units look for them, the units, the manual pages
and the example configuration; lintian finds no error; the maintainer scripts create the
sealmail user and its folders with the right owners and modes and never delete mail."""
import os
import re
import shutil
import subprocess

import pytest

import harness

SRC = os.environ.get("SEALMAIL_SOURCE_ROOT", "")


def run(cmd, cwd=None, timeout=900):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "%s: %s\n%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    if shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None:
        pytest.fail("dpkg-dev and debhelper are not installed (deploy/install-deps.sh)")
    top = tmp_path_factory.mktemp("deb")
    tree = top / "sealmail-0.1.0"
    files = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=SRC).splitlines()
    for f in files:
        src = os.path.join(SRC, f)
        if not os.path.isfile(src) or f.startswith("tests/integration/node/node_modules/"):
            continue
        dst = tree / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=str(tree))
    debs = [p for p in os.listdir(top) if re.match(r"sealmail_[^_]+_\w+\.deb$", p)]
    assert len(debs) == 1, os.listdir(top)
    return os.path.join(top, debs[0])


@pytest.mark.skipif(harness.sanitized(), reason="the package is built once, in the normal run")
def test_contents(deb, tmp_path):
    listing = run(["dpkg-deb", "-c", deb])
    paths = {l.split()[-1].lstrip(".") for l in listing.splitlines()}
    for p in ["/usr/sbin/sealmaild", "/usr/sbin/sealctl",
              "/lib/systemd/system/sealmaild.service",
              "/lib/systemd/system/sealmail-crl.service",
              "/lib/systemd/system/sealmail-crl.timer",
              "/usr/share/man/man8/sealmaild.8.gz", "/usr/share/man/man8/sealctl.8.gz",
              "/usr/share/man/man5/sealmail.yaml.5.gz",
              "/usr/share/doc/sealmail/examples/sealmail.example.yaml"]:
        assert p in paths, (p, sorted(paths))
    # Every program a unit starts is in the package.
    root = tmp_path / "root"
    run(["dpkg-deb", "-x", deb, str(root)])
    for unit in ("sealmaild.service", "sealmail-crl.service"):
        with open(root / "lib/systemd/system" / unit) as f:
            for prog in re.findall(r"^Exec\w+=-?(/\S+)", f.read(), re.M):
                if prog.startswith("/bin/"):
                    continue
                assert os.path.exists(str(root) + prog), (unit, prog)
    # The packaged binary runs and knows its version.
    out = run([str(root / "usr/sbin/sealmaild"), "--version"])
    assert "0.1.0" in out


@pytest.mark.skipif(harness.sanitized(), reason="the package is built once, in the normal run")
def test_lintian_has_no_errors(deb):
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed (deploy/install-deps.sh)")
    r = subprocess.run(["lintian", "--no-tag-display-limit", deb], capture_output=True,
                       text=True, timeout=600)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert errors == [], r.stdout


@pytest.mark.skipif(harness.sanitized(), reason="the package is built once, in the normal run")
def test_maintainer_scripts(deb, tmp_path):
    run(["dpkg-deb", "-e", deb, str(tmp_path / "ctl")])
    with open(tmp_path / "ctl" / "postinst") as f:
        post = f.read()
    assert "adduser --system --group" in post
    assert re.search(r"install -d -o root -g sealmail -m 0750 /etc/sealmail", post)
    assert re.search(r"install -d -o sealmail -g sealmail -m 0700 /var/lib/sealmail", post)
    with open(tmp_path / "ctl" / "postrm") as f:
        postrm = f.read()
    assert "mail.db" in postrm  # purge never removes a mail database
    for s in ("postinst", "postrm"):
        run(["sh", "-n", str(tmp_path / "ctl" / s)])
