"""pytest fixtures that run the real sealmaild (see harness.py).

- certs: the test PKI, made once per session.
- server: a sealmaild with the default listeners, one per test module.
- make_server(**kw): a sealmaild with a custom config (tls=, limits=, listeners=,
  extra_yaml=), started; stopped at the end of the test.
Every server is stopped with SIGTERM at teardown; the test errors if the exit code is not 0
within 10 s or if the server's stderr holds a sanitizer report.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return harness.CertSet(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="session")
def sealmaild_bin():
    try:
        return harness.tool("sealmaild")
    except FileNotFoundError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def server(certs, sealmaild_bin, tmp_path_factory):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")))
    srv.start()
    yield srv
    srv.check_stopped()


@pytest.fixture
def make_server(certs, sealmaild_bin, tmp_path_factory):
    started = []

    def make(start=True, **kw):
        srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")), **kw)
        started.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    harness.check_all_stopped(started)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL of the tests' own (pg_env.py), shared by the session."""
    import pg_env
    if not os.path.exists(os.path.join(pg_env.BINDIR, "initdb")):
        pytest.skip("no PostgreSQL binaries (apt-get install postgresql)")
    pg = pg_env.PgServer().start()
    try:
        yield pg
    finally:
        pg.stop()
