"""The protocol front doors: before TLS on STARTTLS listeners only STARTTLS/STLS (and
greeting, capabilities, NOOP, QUIT/LOGOUT) work; after TLS unknown commands get their
protocol's error. Python's smtplib, imaplib and poplib can upgrade."""
import imaplib
import poplib
import smtplib

import pytest

import harness

MUST_STARTTLS = b"530 5.7.0 Must issue a STARTTLS command first"


@pytest.fixture
def smtp_plain(server):
    lc = harness.plain_connect(server.port("submission", "starttls"))
    greeting = lc.readline()
    assert greeting.startswith(b"220 " + server.hostname.encode() + b" ESMTP"), greeting
    yield lc
    lc.close()


@pytest.fixture
def imap_plain(server):
    lc = harness.plain_connect(server.port("imap", "starttls"))
    lc.greeting = lc.readline()
    yield lc
    lc.close()


@pytest.fixture
def pop3_plain(server):
    lc = harness.plain_connect(server.port("pop3", "starttls"))
    greeting = lc.readline()
    assert greeting.startswith(b"+OK"), greeting
    yield lc
    lc.close()


# ---------------------------------------------------------------- SMTP before TLS

def test_smtp_ehlo_lists_starttls_not_auth(smtp_plain):
    smtp_plain.send("EHLO client.example\r\n")
    r = smtp_plain.smtp_reply()
    assert r[0].startswith(b"250"), r
    exts = [l[4:].strip().upper() for l in r[1:]]
    assert b"STARTTLS" in exts, r
    assert not any(e.startswith(b"AUTH") for e in exts), r


@pytest.mark.parametrize("command", [
    "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
    "AUTH LOGIN",
    "MAIL FROM:<alice@corp.example>",
    "RCPT TO:<bob@corp.example>",
    "DATA",
])
def test_smtp_refused_before_tls(smtp_plain, command):
    smtp_plain.send("EHLO client.example\r\n")
    smtp_plain.smtp_reply()
    smtp_plain.send(command + "\r\n")
    r = smtp_plain.smtp_reply()
    assert r[-1].rstrip(b"\r\n") == MUST_STARTTLS, r


def test_smtp_noop_and_quit_before_tls(smtp_plain):
    smtp_plain.send("NOOP\r\n")
    assert smtp_plain.smtp_reply()[-1].startswith(b"250")
    smtp_plain.send("QUIT\r\n")
    assert smtp_plain.smtp_reply()[-1].startswith(b"221")
    assert smtp_plain.at_eof()


def test_smtplib_starttls(server, certs):
    with smtplib.SMTP("127.0.0.1", server.port("submission", "starttls"), timeout=5) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, _ = s.starttls(context=harness.client_context(certs))
        assert code == 220
        s.ehlo("client.example")
        assert not s.has_extn("starttls")
        assert s.noop()[0] == 250


# ---------------------------------------------------------------- IMAP before TLS

def test_imap_greeting_and_capability(imap_plain):
    g = imap_plain.greeting
    assert g.startswith(b"* OK"), g
    assert b"[CAPABILITY " in g, g
    gcaps = g.split(b"[CAPABILITY ", 1)[1].split(b"]", 1)[0].split()
    assert b"STARTTLS" in gcaps and b"LOGINDISABLED" in gcaps, g
    imap_plain.send("a CAPABILITY\r\n")
    r = imap_plain.imap_tagged("a")
    assert r[-1].startswith(b"a OK"), r
    caps = b" ".join(l for l in r if l.startswith(b"* CAPABILITY")).split()
    assert b"STARTTLS" in caps and b"LOGINDISABLED" in caps, r
    assert not any(c.startswith(b"AUTH=") for c in caps), r


@pytest.mark.parametrize("command", ["LOGIN alice secret", 'LOGIN "alice" "secret"',
                                     "AUTHENTICATE PLAIN"])
def test_imap_login_refused_before_tls(imap_plain, command):
    imap_plain.send("b %s\r\n" % command)
    r = imap_plain.imap_tagged("b")
    assert r[-1].startswith(b"b NO") or r[-1].startswith(b"b BAD"), r
    if command.startswith("LOGIN"):
        assert r[-1].startswith(b"b NO"), r


def test_imap_select_refused_before_tls(imap_plain):
    imap_plain.send("c SELECT INBOX\r\n")
    r = imap_plain.imap_tagged("c")
    assert r[-1].startswith(b"c NO") or r[-1].startswith(b"c BAD"), r


def test_imap_noop_and_logout_before_tls(imap_plain):
    harness.alive_check(imap_plain, "imap")
    imap_plain.send("d LOGOUT\r\n")
    r = imap_plain.imap_tagged("d")
    assert any(l.startswith(b"* BYE") for l in r), r
    assert r[-1].startswith(b"d OK"), r
    assert imap_plain.at_eof()


def test_imaplib_starttls(server, certs):
    m = imaplib.IMAP4("127.0.0.1", server.port("imap", "starttls"), timeout=5)
    try:
        assert "STARTTLS" in m.capabilities and "LOGINDISABLED" in m.capabilities
        typ, _ = m.starttls(ssl_context=harness.client_context(certs))
        assert typ == "OK"
        assert "STARTTLS" not in m.capabilities
        assert "LOGINDISABLED" not in m.capabilities
        assert m.noop()[0] == "OK"
        assert m.logout()[0] == "BYE"
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


# ---------------------------------------------------------------- POP3 before TLS

def test_pop3_capa_before_tls(pop3_plain):
    pop3_plain.send("CAPA\r\n")
    r = pop3_plain.pop3_multiline()
    assert r[0].startswith(b"+OK"), r
    caps = [l.strip().upper() for l in r[1:-1]]
    assert b"STLS" in caps, r
    assert b"USER" not in caps, r
    assert not any(c.startswith(b"SASL") for c in caps), r


@pytest.mark.parametrize("command", ["USER alice", "PASS secret", "APOP alice 0123456789abcdef",
                                     "AUTH PLAIN", "STAT", "LIST", "RETR 1"])
def test_pop3_refused_before_tls(pop3_plain, command):
    pop3_plain.send(command + "\r\n")
    line = pop3_plain.readline()
    assert line.startswith(b"-ERR"), line


def test_pop3_quit_before_tls(pop3_plain):
    pop3_plain.send("QUIT\r\n")
    assert pop3_plain.readline().startswith(b"+OK")
    assert pop3_plain.at_eof()


def test_poplib_stls(server, certs):
    p = poplib.POP3("127.0.0.1", server.port("pop3", "starttls"), timeout=5)
    try:
        assert "STLS" in p.capa()
        assert p.stls(context=harness.client_context(certs)).startswith(b"+OK")
        caps = p.capa()
        assert "STLS" not in caps
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()


# ---------------------------------------------------------------- after TLS

@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_smtp_unknown_command_after_tls(server, certs, tls):
    ctx = harness.client_context(certs)
    port = server.port("submission", tls)
    lc = harness.tls_client(port, ctx) if tls == "implicit" else harness.plain_connect(port)
    try:
        assert lc.readline().startswith(b"220 ")
        if tls == "starttls":
            assert harness.starttls(lc, "submission")[-1].startswith(b"220")
            harness.upgrade(lc, ctx)
        lc.send("EHLO client.example\r\n")
        r = lc.smtp_reply()
        assert r[0].startswith(b"250"), r
        assert not any(l[4:].strip().upper() == b"STARTTLS" for l in r[1:]), r
        lc.send("XYZZY plugh\r\n")
        r = lc.smtp_reply()
        assert r[-1].startswith(b"500"), r
        harness.alive_check(lc, "submission")
    finally:
        lc.close()


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_imap_unknown_command_after_tls(server, certs, tls):
    ctx = harness.client_context(certs)
    port = server.port("imap", tls)
    lc = harness.tls_client(port, ctx) if tls == "implicit" else harness.plain_connect(port)
    try:
        greeting = lc.readline()
        assert greeting.startswith(b"* OK"), greeting
        if tls == "starttls":
            assert harness.starttls(lc, "imap")[-1].startswith(b"s1 OK")
            harness.upgrade(lc, ctx)
        else:
            assert b"STARTTLS" not in greeting and b"LOGINDISABLED" not in greeting, greeting
        lc.send("a XYZZY\r\n")
        r = lc.imap_tagged("a")
        assert r[-1].startswith(b"a BAD"), r
        lc.send("b CAPABILITY\r\n")
        r = lc.imap_tagged("b")
        caps = b" ".join(l for l in r if l.startswith(b"* CAPABILITY")).split()
        assert b"STARTTLS" not in caps and b"LOGINDISABLED" not in caps, r
        harness.alive_check(lc, "imap")
    finally:
        lc.close()


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_pop3_unknown_command_after_tls(server, certs, tls):
    ctx = harness.client_context(certs)
    port = server.port("pop3", tls)
    lc = harness.tls_client(port, ctx) if tls == "implicit" else harness.plain_connect(port)
    try:
        assert lc.readline().startswith(b"+OK")
        if tls == "starttls":
            assert harness.starttls(lc, "pop3")[0].startswith(b"+OK")
            harness.upgrade(lc, ctx)
        lc.send("XYZZY\r\n")
        line = lc.readline()
        assert line.startswith(b"-ERR"), line
        lc.send("CAPA\r\n")
        r = lc.pop3_multiline()
        assert r[0].startswith(b"+OK") and b"STLS\r\n" not in r, r
    finally:
        lc.close()
