"""A PostgreSQL server of the tests' own, as tests/tools/pg_harness.sh makes one for the
unit tests: initdb into a temporary folder, a server listening only on a Unix socket in
that folder (no TCP port; the system-wide service is never used), one database
"sealmail", stopped and removed at the end. Under root the server runs as the postgres
user (PostgreSQL refuses root). The `postgres` fixture (conftest.py) yields a PgServer."""

import os
import shutil
import subprocess
import tempfile

BINDIR = os.environ.get("SEALMAIL_PG_BINDIR", "/usr/lib/postgresql/15/bin")


class PgServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sealmail-pg-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.conninfo = f"host={self.dir} user=sealmail dbname=sealmail"

    def _run(self, *args):
        subprocess.run(self.as_user + list(args), check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def start(self):
        self._run(f"{BINDIR}/initdb", "-D", self.data, "-U", "sealmail", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self._run(f"{BINDIR}/pg_ctl", "-D", self.data, "-l",
                  os.path.join(self.dir, "server.log"), "-w", "-s", "-o",
                  f"-k {self.dir} -c listen_addresses=''", "start")
        self._run(f"{BINDIR}/createdb", "-h", self.dir, "-U", "sealmail", "sealmail")
        return self

    def psql(self, sql):
        """One statement through psql: its rows, unaligned, one per line."""
        out = subprocess.run(["psql", self.conninfo, "-X", "-At", "-c", sql], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run(self.as_user + [f"{BINDIR}/pg_ctl", "-D", self.data, "-m",
                                       "immediate", "-w", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)
