"""Node's imapflow (npm) against the real sealmaild: login, list, mailboxOpen, append, fetch,
flags, search, move and IDLE woken by another client's APPEND (node/imap.js does the work).
imapflow turns COMPRESS=DEFLATE (RFC 4978) on when it is offered: all of it runs compressed.

Needs `npm ci --prefix tests/integration/node` first; skipped with that hint otherwise."""
import json
import os
import shutil
import subprocess

import pytest

from imap_env import PASSWORD, ImapEnv

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def test_imapflow_session(env):
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "imapflow")):
        pytest.skip("imapflow is not installed: run npm ci --prefix tests/integration/node")
    user = env.add_user("flow")
    e = dict(os.environ, IMAP_PORT=str(env.port), IMAP_CA=env.ca, IMAP_USER=user,
             IMAP_PASS=PASSWORD)
    r = subprocess.run(["node", os.path.join(NODE_DIR, "imap.js")], env=e, cwd=NODE_DIR,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = json.loads(r.stdout)
    assert "IDLE" in out["capabilities"] and "QRESYNC" in out["capabilities"], out
    paths = {m["path"]: m["specialUse"] for m in out["list"]}
    assert paths.get("Sent") == "\\Sent" and "INBOX" in paths, out["list"]
    assert out["append"]["uid"] == 1
    assert out["open"]["exists"] == 1
    f = out["fetch"][0]
    assert f["sourceEqual"] and f["subject"] == "from imapflow", f
    assert f["from"] == "node@example.org" and f["type"] == "text/plain", f
    assert set(f["flags"]) == {"\\Seen", "$Node"}, f
    assert f["internalDate"] == "2021-03-04T05:06:07.000Z", f
    assert out["part1"].startswith("hello from node"), out["part1"]
    assert out["flags"] == ["\\Flagged", "\\Seen"], out["flags"]
    assert out["search"] == [1] and out["searchBody"] == [1], out
    assert out["idleExists"] == out["idleBefore"] + 1, out
    assert out["move"]["destination"] == "FlowDest" and out["move"]["uidMap"] == [[1, 1]], out
    assert out["status"]["messages"] == 1, out
    assert "event=compress algorithm=deflate" in env.srv.log(), env.srv.log()[-3000:]
