"""Helpers for the POP3 integration tests: clients, users, and store_tool deliveries.

Pop3Env wraps a running harness.Server (conftest.py's `server` / `make_server`) and knows
where its POP3 listeners, CA and database are.
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

import harness
from harness import DOMAIN, HOSTNAME

_tool = harness.tool


class Pop3Env:
    def __init__(self, srv):
        self.srv = srv
        self.hostname = HOSTNAME
        self.ca = srv.certs.ca
        self.pop3s_port = srv.port("pop3", "implicit")
        self.stls_port = srv.port("pop3", "starttls")
        self.db = os.path.join(srv.dir, "data", "mail.db")
        self.config = srv.config_path

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
    return poplib.POP3_SSL("127.0.0.1", env.pop3s_port, context=_ctx_for(env), timeout=30)


def pop3_stls(env):
    p = poplib.POP3("127.0.0.1", env.stls_port, timeout=30)
    p.stls(context=_ctx_for(env))
    return p


def _ctx_for(env):
    # The test server certificate names 127.0.0.1 too: verify it fully.
    return env.ssl_context()


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
