"""Hostile SMTP input against the real sealmaild: commands out of order, SMTP smuggling, sending
as someone else, open relay attempts, over-long lines, recipient floods and oversize messages;
after each, the server still serves another client."""
import base64
import socket
import ssl

import pytest

import harness
from smtp_env import PASSWORD, SmtpEnv, sample_message, strip_received


@pytest.fixture(scope="module")
def env(certs, sealmaild_bin, tmp_path_factory):
    s = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                       limits={"recipients": 5, "message_size": 400000})
    s.start()
    e = SmtpEnv(s)
    e.alice = e.add_user("alice")
    e.bob = e.add_user("bob")
    yield e
    s.check_stopped()


def still_serving(env):
    """Another client can still submit a message."""
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [env.bob], b"Subject: alive\r\n\r\nok\r\n")


def codes(lc, n):
    return [lc.smtp_reply()[-1][:3].decode() for _ in range(n)]


@pytest.mark.parametrize("command,code", [
    ("MAIL FROM:<alice@corp.example>", "530"),
    ("RCPT TO:<bob@corp.example>", "530"),
    ("DATA", "530"),
    ("BDAT 10 LAST", "530"),
])
def test_commands_before_auth(env, command, code):
    lc = env.raw()
    lc.send(command + "\r\n")
    assert lc.smtp_reply()[-1][:3].decode() == code
    lc.send("NOOP\r\n")
    assert lc.smtp_reply()[-1][:3] == b"250"
    lc.close()


def test_cannot_send_as_another_user(env):
    lc = env.raw_login(env.alice)
    lc.send("MAIL FROM:<bob@corp.example>\r\n")
    r = lc.smtp_reply()[-1]
    assert r.startswith(b"553 5.7.1"), r
    lc.send("MAIL FROM:<>\r\n")
    assert lc.smtp_reply()[-1].startswith(b"553 5.7.1")
    lc.send("MAIL FROM:<ALICE@Corp.Example>\r\n")
    assert lc.smtp_reply()[-1].startswith(b"250")
    lc.close()


def test_unknown_local_recipient(env):
    lc = env.raw_login(env.alice)
    lc.send("MAIL FROM:<alice@corp.example>\r\nRCPT TO:<nobody@corp.example>\r\n")
    assert codes(lc, 2) == ["250", "550"]
    lc.close()


def test_no_relay_on_smtp_listener(env, certs):
    lc = env.raw(tls="starttls", protocol="smtp", cert=certs.peer, key=certs.peer_key)
    lc.send("AUTH PLAIN %s\r\n" % base64.b64encode(b"\0alice@corp.example\0" +
                                                     PASSWORD.encode()).decode())
    assert lc.smtp_reply()[-1][:1] == b"5"
    lc.send("MAIL FROM:<someone@elsewhere.example>\r\nRCPT TO:<victim@partner.example>\r\n"
            "RCPT TO:<bob@corp.example>\r\n")
    assert codes(lc, 3) == ["250", "550", "250"]
    lc.send("DATA\r\n")
    assert lc.smtp_reply()[-1][:3] == b"354"
    lc.send("Subject: from a peer\r\n\r\nhi\r\n.\r\n")
    assert lc.smtp_reply()[-1][:3] == b"250"
    stored = env.inbox(env.bob)[-1]
    assert b"(client certificate " in stored and b"with ESMTPS " in stored
    lc.close()


def test_no_relay_without_auth_on_submission(env):
    lc = env.raw()
    lc.send("MAIL FROM:<x@elsewhere.example>\r\n")
    assert lc.smtp_reply()[-1].startswith(b"530")
    lc.close()


SMUGGLE = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r\n.\r",
    b"\r\n.\n",
]


@pytest.mark.parametrize("sep", SMUGGLE, ids=["LF.LF", "LF.CRLF", "CR.CR", "CRLF.CR",
                                              "CRLF.LF"])
def test_smuggling_never_splits(env, sep):
    before = len(env.inbox(env.bob))
    lc = env.raw_login(env.alice)
    lc.send(b"MAIL FROM:<alice@corp.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n")
    assert codes(lc, 3) == ["250", "250", "354"]
    lc.send(b"Subject: outer\r\n\r\nouter" + sep +
            b"MAIL FROM:<alice@corp.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
    r = lc.smtp_reply()
    assert r[-1].startswith(b"550 5.6.0"), r
    # exactly one reply: the next thing is the answer to NOOP
    lc.send(b"NOOP\r\n")
    assert lc.smtp_reply()[-1].startswith(b"250")
    assert len(env.inbox(env.bob)) == before
    lc.close()
    still_serving(env)


def test_bare_lf_in_headers_refused(env):
    before = len(env.inbox(env.bob))
    lc = env.raw_login(env.alice)
    lc.send(b"MAIL FROM:<alice@corp.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n")
    codes(lc, 3)
    lc.send(b"Subject: a\nBcc: x\r\n\r\nbody\r\n.\r\n")
    assert lc.smtp_reply()[-1].startswith(b"550 5.6.0")
    assert len(env.inbox(env.bob)) == before
    lc.close()


def test_recipient_flood(env):
    lc = env.raw_login(env.alice)
    lc.send(b"MAIL FROM:<alice@corp.example>\r\n" +
            b"".join(b"RCPT TO:<r%d@partner.example>\r\n" % i for i in range(7)))
    got = codes(lc, 8)
    assert got == ["250"] * 6 + ["452"] * 2, got
    lc.close()
    still_serving(env)


def test_oversize_declared_and_actual(env):
    lc = env.raw_login(env.alice)
    lc.send("MAIL FROM:<alice@corp.example> SIZE=500000\r\n")
    r = lc.smtp_reply()[-1]
    assert r.startswith(b"552 5.3.4"), r
    lc.send(b"MAIL FROM:<alice@corp.example>\r\nRCPT TO:<bob@corp.example>\r\nDATA\r\n")
    assert codes(lc, 3) == ["250", "250", "354"]
    line = b"x" * 998 + b"\r\n"
    lc.send(b"Subject: big\r\n\r\n" + line * 450 + b".\r\n")
    r = lc.smtp_reply()[-1]
    assert r.startswith(b"552 5.3.4"), r
    lc.send("NOOP\r\n")
    assert lc.smtp_reply()[-1].startswith(b"250")
    lc.close()
    still_serving(env)


def test_overlong_command_line(env):
    lc = env.raw_login(env.alice)
    try:
        lc.send(b"MAIL FROM:<" + b"a" * 100000 + b"@corp.example>\r\n")
    except (OSError, ssl.SSLError):
        pass  # the server may close before the client has written everything
    try:
        r = lc.smtp_reply()[-1]
        assert r.startswith(b"500 5.5.6"), r
        assert lc.at_eof() or lc.smtp_reply()[-1].startswith(b"421")
    except (EOFError, ConnectionResetError, ssl.SSLError):
        pass  # closed with our unread bytes in its buffer: the kernel reset the connection
    lc.close()
    still_serving(env)


def test_large_message_spooled_byte_identical(env):
    """Bigger than the in-memory part: goes through the spool file."""
    msg = sample_message(env.alice, env.bob, (b"y" * 900 + b"\r\n") * 300)
    with env.smtps(env.alice) as s:
        s.sendmail(env.alice, [env.bob], msg)
    assert strip_received(env.inbox(env.bob)[-1]) == msg
