"""The PostgreSQL the tests start for themselves (pg_env.py) is private: a server of its
own on a Unix socket in a temporary folder, no TCP port, the database the store backend's
tests use, and nothing left behind. The store backend on it is tested by the unit tests
(test_X_on_postgresql); this checks the fixture pytest tests will use."""

import os

import pg_env


def test_server_is_private_and_answers(postgres):
    assert postgres.psql("SELECT current_database()") == "sealmail"
    assert postgres.psql("SHOW listen_addresses") == ""
    assert postgres.psql("SHOW unix_socket_directories") == postgres.dir
    sock = os.path.join(postgres.dir, ".s.PGSQL.5432")
    assert os.path.exists(sock)


def test_stop_removes_everything():
    pg = pg_env.PgServer().start()
    assert pg.psql("SELECT 1") == "1"
    pg.stop()
    assert not os.path.exists(pg.dir)
