"""CVE-2011-0411: a command pipelined behind STARTTLS/STLS in the same packet must never be
executed — neither answered in plaintext nor replayed once TLS is up."""
import socket
import ssl

import pytest

import harness

CASES = {
    # protocol: (line to send before STARTTLS, the packet with STARTTLS and what follows)
    "submission": ("EHLO client.example\r\n", b"STARTTLS\r\nNOOP\r\nMAIL FROM:<x@y.example>\r\n"),
    "imap": (None, b"a STARTTLS\r\nb NOOP\r\nc CAPABILITY\r\n"),
    "pop3": (None, b"STLS\r\nCAPA\r\nNOOP\r\n"),
}


def _read_starttls_reply(lc, protocol):
    if protocol == "submission":
        r = lc.smtp_reply()
        assert r[-1].startswith(b"220"), r
    elif protocol == "imap":
        r = lc.imap_tagged("a")
        assert r[-1].startswith(b"a OK"), r
    else:
        r = [lc.readline()]
        assert r[0].startswith(b"+OK"), r
    return r


def _nothing_more(sock, timeout):
    """True if nothing arrives on sock within timeout."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return True
    except ssl.SSLWantReadError:
        return True
    if data == b"":
        raise AssertionError("the server closed the connection")
    raise AssertionError("unexpected bytes: %r" % data)


@pytest.mark.parametrize("protocol", ["submission", "imap", "pop3"])
def test_pipelined_command_after_starttls_is_not_executed(server, certs, protocol):
    setup, packet = CASES[protocol]
    lc = harness.plain_connect(server.port(protocol, "starttls"))
    try:
        assert harness.greeting_ok(protocol, lc.readline())
        if setup:
            lc.send(setup)
            lc.smtp_reply()
        lc.sock.sendall(packet)  # one send: one segment on loopback
        _read_starttls_reply(lc, protocol)
        # Nothing in plaintext after the STARTTLS reply.
        assert lc.buf == b"", "plaintext after the STARTTLS reply: %r" % lc.buf
        assert _nothing_more(lc.sock, 0.5)
        harness.upgrade(lc, harness.client_context(certs))
        # Nothing replayed over TLS.
        assert _nothing_more(lc.sock, 1.0)
        lc.sock.settimeout(5)
        # The session is in sync: our next command's reply is the first thing we get.
        if protocol == "submission":
            lc.send("EHLO client.example\r\n")
            r = lc.smtp_reply()
            assert r[0].startswith(b"250-") or r[0].startswith(b"250 " + server.hostname.encode()), r
        elif protocol == "imap":
            lc.send("d NOOP\r\n")
            r = lc.imap_tagged("d")
            assert not any(l.startswith(b"b ") or l.startswith(b"c ") for l in r), r
            assert r == [r[-1]] and r[-1].startswith(b"d OK"), r
        else:
            lc.send("CAPA\r\n")
            r = lc.pop3_multiline()
            assert r[0].startswith(b"+OK"), r
            assert b"STLS\r\n" not in r, r
            assert _nothing_more(lc.sock, 0.5)
    finally:
        lc.close()


@pytest.mark.parametrize("protocol", ["submission", "imap", "pop3"])
def test_starttls_twice_is_refused(server, certs, protocol):
    lc = harness.plain_connect(server.port(protocol, "starttls"))
    try:
        assert harness.greeting_ok(protocol, lc.readline())
        r = harness.starttls(lc, protocol)
        ctx = harness.client_context(certs)
        harness.upgrade(lc, ctx)
        if protocol == "submission":
            lc.send("EHLO client.example\r\n")
            lc.smtp_reply()
            lc.send("STARTTLS\r\n")
            r = lc.smtp_reply()
            assert r[-1][:1] == b"5", r
        elif protocol == "imap":
            lc.send("t STARTTLS\r\n")
            r = lc.imap_tagged("t")
            assert r[-1].startswith(b"t BAD") or r[-1].startswith(b"t NO"), r
        else:
            lc.send("STLS\r\n")
            line = lc.readline()
            assert line.startswith(b"-ERR"), line
        harness.alive_check(lc, protocol)
    finally:
        lc.close()
