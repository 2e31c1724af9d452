"""Manual pages: sealmaild(8), sealctl(8) and sealmail.yaml(5) render without groff warnings,
sealctl(8) documents every command `sealctl --help` lists, sealmail.yaml(5) every key of the
configuration table, and `meson install` puts them under share/man."""
import os
import re
import subprocess

import harness

MAN_DIR = os.path.join(os.environ.get("SEALMAIL_BUILD_ROOT", ""), "docs", "man")
PAGES = ["sealmaild.8", "sealctl.8", "sealmail.yaml.5"]


def render(page):
    # No hyphenation and long lines: words stay whole for the searches below.
    r = subprocess.run(["groff", "-man", "-ww", "-Tutf8", "-rHY=0", "-rLL=300n",
                        os.path.join(MAN_DIR, page)],
                       capture_output=True, timeout=60,
                       env=dict(os.environ, GROFF_NO_SGR="1"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"", (page, r.stderr.decode(errors="replace"))
    # Drop overstrike (bold/underline) so the text can be searched.
    text = re.sub(r".\x08", "", r.stdout.decode())
    return text.replace("\u2212", "-").replace("\u2010", "-")


def test_pages_render_cleanly():
    for page in PAGES:
        text = render(page)
        assert "NAME" in text and "SEE ALSO" in text, page
        assert "@DATE@" not in text and "@VERSION@" not in text


def test_sealctl_page_covers_every_command():
    r = subprocess.run([harness.tool("sealctl"), "--help"], capture_output=True, text=True,
                       timeout=30)
    usage = r.stdout + r.stderr
    commands = set(re.findall(r"sealctl -c FILE (\w+) ([\w-]+)", usage))
    assert len(commands) >= 15, usage
    text = " ".join(render("sealctl.8").split())
    for noun, verb in sorted(commands):
        assert "%s %s" % (noun, verb) in text, (noun, verb)
    for flag in re.findall(r"(--[\w-]+)", usage):
        assert flag in text, flag


def test_config_page_lists_every_key():
    with open(os.path.join(os.environ["SEALMAIL_SOURCE_ROOT"], "docs",
                           "configuration.md")) as f:
        keys = re.findall(r"^### `([^`]+)`", f.read(), re.M)
    assert len(keys) > 30
    text = render("sealmail.yaml.5")
    for k in keys:
        assert k in text, k


def test_meson_install_puts_pages_under_share_man(tmp_path):
    build = os.environ["SEALMAIL_BUILD_ROOT"]
    r = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--destdir",
                        str(tmp_path), "--quiet"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    found = {}
    for root, _, files in os.walk(tmp_path):
        for f in files:
            found[f] = os.path.join(root, f)
    for page in PAGES:
        assert page in found, sorted(found)
        sect = page.rsplit(".", 1)[1]
        assert found[page].endswith(os.path.join("share", "man", "man" + sect, page))
