"""IMAP login, capabilities before and after TLS, and what is refused before login.

Python's imaplib against the real sealmaild (implicit TLS and STARTTLS listeners).
"""
import imaplib
import socket

import pytest

import harness
from imap_env import PASSWORD, ImapEnv, cmd, plain_b64


@pytest.fixture(scope="module")
def env(server):
    e = ImapEnv(server)
    e.add_user("alice")
    return e


def caps_of(lines):
    for l in lines:
        if b"CAPABILITY" in l:
            return l.split(b"CAPABILITY", 1)[1].strip(b" ]\r\n").split()[:]
    raise AssertionError(lines)


def test_login_imaplib(env):
    m = env.imaps()
    assert b"AUTH=PLAIN" in [c.encode() if isinstance(c, str) else c
                             for c in [x.encode() for x in m.capabilities]]
    typ, _ = m.login("alice@corp.example", PASSWORD)
    assert typ == "OK"
    typ, data = m.capability()
    caps = data[0].split()
    for c in (b"IMAP4rev1", b"IMAP4rev2", b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE",
              b"QRESYNC", b"ESEARCH", b"SPECIAL-USE", b"LITERAL+", b"NAMESPACE", b"QUOTA"):
        assert c in caps, caps
    m.logout()


def test_login_wrong_password(env):
    m = env.imaps()
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice@corp.example", "wrong")
    m.logout()


def test_authenticate_plain_sasl_ir(env):
    lc = env.raw()
    r = cmd(lc, "a1", "AUTHENTICATE PLAIN " + plain_b64("alice@corp.example"))
    assert r[-1].startswith(b"a1 OK"), r
    r = cmd(lc, "a2", "SELECT INBOX")
    assert r[-1].startswith(b"a2 OK"), r
    lc.close()


def test_authenticate_plain_continuation(env):
    m = env.imaps()
    typ, _ = m.authenticate("PLAIN", lambda _: b"\0alice@corp.example\0" + PASSWORD.encode())
    assert typ == "OK"
    m.logout()


def test_authenticate_cancel(env):
    lc = env.raw()
    lc.send("a1 AUTHENTICATE PLAIN\r\n")
    assert lc.readline().startswith(b"+")
    lc.send("*\r\n")
    r = lc.imap_tagged("a1")
    assert r[-1].startswith(b"a1 BAD"), r
    r = cmd(lc, "a2", "NOOP")
    assert r[-1].startswith(b"a2 OK"), r
    lc.close()


def test_starttls_capabilities_and_logindisabled(env):
    lc = harness.plain_connect(env.stls_port)
    greet = lc.readline()
    assert greet.startswith(b"* OK"), greet
    r = cmd(lc, "c1", "CAPABILITY")
    caps = caps_of(r)
    assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps, caps
    assert b"AUTH=PLAIN" not in caps
    r = cmd(lc, "c2", 'LOGIN alice@corp.example "%s"' % PASSWORD)
    assert r[-1].startswith(b"c2 NO"), r
    r = cmd(lc, "c3", "STARTTLS")
    assert r[-1].startswith(b"c3 OK"), r
    harness.upgrade(lc, env.ctx())
    r = cmd(lc, "c4", "CAPABILITY")
    caps = caps_of(r)
    assert b"STARTTLS" not in caps and b"LOGINDISABLED" not in caps, caps
    assert b"AUTH=PLAIN" in caps
    r = cmd(lc, "c5", 'LOGIN alice@corp.example "%s"' % PASSWORD)
    assert r[-1].startswith(b"c5 OK"), r
    lc.close()


def test_imaplib_starttls(env):
    m = imaplib.IMAP4("127.0.0.1", env.stls_port, timeout=10)
    m.starttls(ssl_context=env.ctx())
    m.login("alice@corp.example", PASSWORD)
    typ, data = m.select("INBOX")
    assert typ == "OK"
    m.logout()


@pytest.mark.parametrize("command", ["SELECT INBOX", "LIST \"\" *", "FETCH 1 FLAGS",
                                     "STATUS INBOX (MESSAGES)", "APPEND INBOX {3}",
                                     "UID FETCH 1 FLAGS", "IDLE"])
def test_commands_before_login_refused(env, command):
    lc = env.raw()
    lc.send("b1 %s\r\n" % command)
    r = lc.imap_tagged("b1")
    assert r[-1].startswith(b"b1 BAD") or r[-1].startswith(b"b1 NO"), r
    r = cmd(lc, "b2", "NOOP")
    assert r[-1].startswith(b"b2 OK"), r
    lc.close()


def test_id_and_namespace_and_enable(env):
    lc = env.raw("alice@corp.example")
    r = cmd(lc, "i1", 'ID ("name" "pytest")')
    assert any(l.startswith(b"* ID") for l in r) and r[-1].startswith(b"i1 OK"), r
    r = cmd(lc, "i2", "NAMESPACE")
    assert any(l.startswith(b'* NAMESPACE (("" "/"))') for l in r), r
    r = cmd(lc, "i3", "ENABLE CONDSTORE QRESYNC UTF8=ACCEPT")
    assert any(l.startswith(b"* ENABLED") and b"QRESYNC" in l for l in r), r
    r = cmd(lc, "i4", "LOGOUT")
    assert r[0].startswith(b"* BYE") and r[-1].startswith(b"i4 OK"), r
    lc.close()
