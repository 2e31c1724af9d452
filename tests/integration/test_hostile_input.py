"""Hostile transcripts before login: over-long lines, NUL bytes, bare LF. The server answers
with an error, never executes a mangled command, and keeps serving other connections."""
import socket
import ssl

import pytest

import harness

PROTOCOLS = ["submission", "imap", "pop3"]


def _open(server, certs, protocol, tls):
    port = server.port(protocol, tls)
    if tls == "implicit":
        lc = harness.tls_client(port, harness.client_context(certs))
    else:
        lc = harness.plain_connect(port)
    assert harness.greeting_ok(protocol, lc.readline())
    return lc


def _is_error(protocol, line):
    if protocol == "submission":
        return line[:1] == b"5" or line.startswith(b"421 ")
    if protocol == "imap":
        return line.startswith(b"* BAD") or line.startswith(b"* BYE") or \
            b" BAD" in line[:16] or line.startswith(b"* NO")
    return line.startswith(b"-ERR")


def _send_tolerant(lc, data):
    try:
        lc.send(data)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_overlong_line_before_login(server, certs, protocol, tls):
    lc = _open(server, certs, protocol, tls)
    try:
        # 8 KiB: four times the default line_length_preauth (2048), small enough that a
        # server closing right after its error has read it all (no RST eating the reply).
        prefix = {"submission": "HELO ", "imap": "a LOGIN ", "pop3": "USER "}[protocol]
        _send_tolerant(lc, prefix + "A" * 8192 + "\r\n")
        line = lc.readline()
        assert _is_error(protocol, line), line
        # Either the connection is closed (perhaps after a goodbye line), or it still works.
        if not lc.at_eof(timeout=0.5, allow_data=True):
            harness.alive_check(lc, protocol)
    finally:
        lc.close()
    # Other (new) connections are served.
    other = _open(server, certs, protocol, tls)
    try:
        harness.alive_check(other, protocol)
    finally:
        other.close()


def test_overlong_line_does_not_block_concurrent_client(server, certs):
    bystander = _open(server, certs, "imap", "implicit")
    attacker = _open(server, certs, "imap", "starttls")
    try:
        # Endless line, never terminated: the server must not buffer it or stall others.
        for _ in range(64):
            _send_tolerant(attacker, "A" * 16384)
        harness.alive_check(bystander, "imap")
    finally:
        attacker.close()
        bystander.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nul_in_command_is_an_error(server, certs, protocol):
    lc = _open(server, certs, protocol, "starttls")
    try:
        cmd = {"submission": b"NO\x00OP\r\n", "imap": b"a NO\x00OP\r\n",
               "pop3": b"CA\x00PA\r\n"}[protocol]
        _send_tolerant(lc, cmd)
        line = lc.readline()
        assert _is_error(protocol, line), line
        if not lc.at_eof(timeout=0.5, allow_data=True):
            harness.alive_check(lc, protocol)
    finally:
        lc.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bare_lf_keeps_the_session_in_sync(server, certs, protocol):
    """A bare LF either ends the line or is refused, but a command split by a bare LF is
    never run as the joined command, and the session stays in sync."""
    lc = _open(server, certs, protocol, "starttls")
    try:
        if protocol == "submission":
            lc.send(b"NO\nOP\r\nQUIT\r\n")
            replies = []
            while True:
                r = lc.smtp_reply()
                if r[-1].startswith(b"221"):
                    break
                replies.append(r)
            assert replies and all(r[-1][:1] == b"5" for r in replies), replies
            assert lc.at_eof()
        elif protocol == "imap":
            lc.send(b"a NO\nOP\r\nc NOOP\r\n")
            r = lc.imap_tagged("c")
            assert not any(l.startswith(b"a OK") for l in r), r
            assert any(l.startswith(b"a BAD") or l.startswith(b"* BAD") for l in r), r
            assert r[-1].startswith(b"c OK"), r
        else:
            lc.send(b"CA\nPA\r\nQUIT\r\n")
            lines = []
            while True:
                line = lc.readline()
                if line.startswith(b"+OK"):
                    break
                lines.append(line)
            assert lines and all(l.startswith(b"-ERR") for l in lines), lines
            # That +OK answered QUIT (CAPA would be followed by its list).
            assert lc.at_eof(), "a split CA\\nPA was run as CAPA"
    finally:
        lc.close()


def test_garbage_instead_of_client_hello(server, certs):
    s = socket.create_connection(("127.0.0.1", server.port("imap", "implicit")), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = s.recv(4096)
        assert not data.startswith(b"* OK"), data
    except ConnectionResetError:
        pass
    finally:
        s.close()
    lc = _open(server, certs, "imap", "implicit")
    harness.alive_check(lc, "imap")
    lc.close()
