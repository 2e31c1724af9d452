"""Peer servers are not users. On an smtp listener a user's certificate is refused (554
5.7.1, logged with its serial and subject); a sender in a local domain is accepted only
from an organisation server (a certificate without an e-mail identity whose DNS name is in
the listener's peers:, or from tls.peer_ca), 550 5.7.1 otherwise, while the null sender and
foreign senders still arrive. Certificates come from sealctl (cert issue, cert server
--peer) in the one-CA layout and from the test PKI for the tls.peer_ca layout. Delivered
mail has Return-Path: first and a Received: field that names the login or the peer."""
import email
import imaplib
import os
import re
import smtplib
import ssl
import subprocess

import pytest

import harness

D = harness.DOMAIN
BOB, DEMO, ALICE = "bob@" + D, "demo@" + D, "alice@" + D
PASSWORD = "peer test password"
PEER = harness.PEER_NAME
UNLISTED = "mx9." + D


def _sealctl(srv, *args, stdin=None):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       input=stdin, capture_output=True, text=True, timeout=60,
                       env=harness.server_env())
    assert r.returncode == 0, "sealctl %s: %s" % (" ".join(args), r.stderr)
    return r.stdout


class Org:
    """A sealmaild whose client CA is sealctl's: bob's user certificate, PEER's and
    UNLISTED's peer certificates (cert server --peer)."""

    def __init__(self, srv, tmp):
        self.srv = srv
        self.files = {}
        self.serial = {}
        for who in (BOB, DEMO, ALICE):
            _sealctl(srv, "user", "add", who, "--password-stdin", stdin=PASSWORD + "\n")
        out = _sealctl(srv, "cert", "issue", BOB, "--out", os.path.join(tmp, "bob"),
                       "--p12-password-stdin", stdin="p12 secret\n")
        self.serial[BOB] = re.search(r"serial\s+([0-9a-f]+)", out).group(1)
        self.files[BOB] = (os.path.join(tmp, "bob", BOB + ".crt"),
                           os.path.join(tmp, "bob", BOB + ".key"))
        for name in (PEER, UNLISTED):
            d = os.path.join(tmp, name)
            out = _sealctl(srv, "cert", "server", name, "--peer", "--out", d)
            self.serial[name] = re.search(r"serial\s+([0-9a-f]+)", out).group(1)
            self.files[name] = (os.path.join(d, "server.crt"), os.path.join(d, "server.key"))

    def ctx(self, who=None):
        ctx = harness.client_context(self.srv.certs)
        if who is not None:
            ctx.load_cert_chain(*self.files[who])
        return ctx


@pytest.fixture(scope="module")
def org(certs, sealmaild_bin, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("org"))
    srv = harness.Server(certs, workdir=os.path.join(tmp, "srv"), listeners=[
        {"protocol": "smtp", "tls": "starttls", "client_certificate": "required",
         "peers": [PEER, "mx7." + D]},
        {"protocol": "smtp", "tls": "implicit", "client_certificate": "optional",
         "peers": [PEER]},
        {"protocol": "submission", "tls": "implicit", "client_certificate": "optional"},
        {"protocol": "imap", "tls": "implicit"},
    ])
    pub = os.path.join(tmp, "pub")
    os.makedirs(pub)
    srv.tls = {"client_ca": os.path.join(pub, "client-ca.crt"),
               "crl": os.path.join(pub, "client-ca.crl")}
    srv.write_config()
    _sealctl(srv, "cert", "init-ca")
    o = Org(srv, tmp)
    srv.start()
    yield o
    srv.check_stopped()


def _starttls(org, who):
    s = smtplib.SMTP("127.0.0.1", org.srv.port("smtp", "starttls"), timeout=10)
    s.starttls(context=org.ctx(who))
    return s


def _fetch_all(srv, user):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imap", "implicit"),
                          ssl_context=harness.client_context(srv.certs))
    m.login(user, PASSWORD)
    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    out = []
    for n in data[0].split():
        typ, d = m.fetch(n, "(BODY.PEEK[])")
        out.append(d[0][1])
    m.logout()
    return out


def _find(srv, user, subject):
    for raw in _fetch_all(srv, user):
        if email.message_from_bytes(raw)["Subject"] == subject:
            return raw
    raise AssertionError("no message %r for %s" % (subject, user))


def _msg(sender, subject, extra=b""):
    return (extra + b"From: <" + sender.encode() + b">\r\nTo: <" + BOB.encode() +
            b">\r\nSubject: " + subject.encode() + b"\r\n\r\nhello\r\n")


def _top_received(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.findall(r"^Received: .*?(?=^\S)", head + "\nX", re.S | re.M)
    return fields


def test_user_certificate_is_refused_after_starttls(org):
    srv = org.srv
    since = srv.log_size()
    s = _starttls(org, BOB)
    code, text = s.ehlo("laptop.example")
    assert code == 554 and text.startswith(b"5.7.1 "), (code, text)
    code, text = s.docmd("MAIL", "FROM:<%s>" % BOB)
    assert code == 554, (code, text)
    assert s.docmd("QUIT")[0] == 221
    s.close()
    srv.wait_log(r"proto=smtp event=user_certificate_refused ip=127\.0\.0\.1 serial=%s "
                 r"subject=\"[^\"]*%s" % (org.serial[BOB], re.escape(BOB)), since=since)


def test_user_certificate_gets_a_554_greeting_on_implicit_tls(org):
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP_SSL("127.0.0.1", org.srv.port("smtp", "implicit"), timeout=10,
                         context=org.ctx(BOB))
    assert e.value.smtp_code == 554 and b"5.7.1" in e.value.smtp_error, e.value


def test_listed_peer_delivers_a_local_sender(org):
    s = _starttls(org, PEER)
    forged = b"Return-Path: <attacker@evil.example>\r\n"
    refused = s.sendmail(DEMO, [BOB], _msg(DEMO, "from mx2", forged))
    assert not refused
    s.quit()
    raw = _find(org.srv, BOB, "from mx2")
    assert raw.startswith(b"Return-Path: <%s>\r\nReceived: " % DEMO.encode()), raw[:300]
    assert b"attacker@evil.example" not in raw
    top = _top_received(raw)[0]
    assert "(organisation server %s)" % PEER in top, top
    assert "serial %s)" % org.serial[PEER] in top, top
    assert "with ESMTPS " in top, top
    for line in raw.split(b"\r\n"):
        assert len(line) < 200


def test_unlisted_peer_may_not_use_a_local_sender(org):
    s = _starttls(org, UNLISTED)
    s.ehlo("mx9.corp.example")
    code, text = s.docmd("MAIL", "FROM:<%s>" % DEMO)
    assert code == 550 and text.startswith(b"5.7.1 "), (code, text)
    s.rset()
    refused = s.sendmail("someone@partner.example", [BOB],
                         _msg("someone@partner.example", "from outside"))
    assert not refused
    s.quit()
    raw = _find(org.srv, BOB, "from outside")
    assert raw.startswith(b"Return-Path: <someone@partner.example>\r\n"), raw[:200]
    assert "organisation server" not in _top_received(raw)[0]


def test_no_certificate_on_an_optional_listener(org):
    s = smtplib.SMTP_SSL("127.0.0.1", org.srv.port("smtp", "implicit"), timeout=10,
                         context=org.ctx())
    s.ehlo("peer.example")
    code, text = s.docmd("MAIL", "FROM:<%s>" % DEMO)
    assert code == 550 and text.startswith(b"5.7.1 "), (code, text)
    s.rset()
    # A bounce (the null sender) still arrives.
    refused = s.sendmail("", [BOB], _msg("mailer-daemon@partner.example", "a bounce"))
    assert not refused
    s.quit()
    raw = _find(org.srv, BOB, "a bounce")
    assert raw.startswith(b"Return-Path: <>\r\nReceived: "), raw[:200]


def test_listed_peer_on_the_optional_listener(org):
    s = smtplib.SMTP_SSL("127.0.0.1", org.srv.port("smtp", "implicit"), timeout=10,
                         context=org.ctx(PEER))
    assert not s.sendmail(DEMO, [BOB], _msg(DEMO, "implicit peer"))
    s.quit()
    _find(org.srv, BOB, "implicit peer")


def test_submission_received_names_the_mechanism(org):
    s = smtplib.SMTP_SSL("127.0.0.1", org.srv.port("submission", "implicit"), timeout=10,
                         context=org.ctx())
    s.login(ALICE, PASSWORD)  # smtplib picks PLAIN
    assert not s.sendmail(ALICE, [BOB], _msg(ALICE, "by plain"))
    s.quit()
    raw = _find(org.srv, BOB, "by plain")
    assert raw.startswith(b"Return-Path: <%s>\r\n" % ALICE.encode()), raw[:200]
    top = _top_received(raw)[0]
    assert "(authenticated user %s by PLAIN)" % ALICE in top, top
    assert "client certificate" not in top, top

    # SASL EXTERNAL with bob's certificate: the mechanism, the serial and the subject.
    s = smtplib.SMTP_SSL("127.0.0.1", org.srv.port("submission", "implicit"), timeout=10,
                         context=org.ctx(BOB))
    s.ehlo("laptop.example")
    code, text = s.docmd("AUTH", "EXTERNAL =")
    assert code == 235, (code, text)
    assert not s.sendmail(BOB, [BOB], _msg(BOB, "by external"))
    s.quit()
    raw = _find(org.srv, BOB, "by external")
    assert raw.startswith(b"Return-Path: <%s>\r\n" % BOB.encode()), raw[:200]
    top = _top_received(raw)[0]
    assert "(authenticated user %s by EXTERNAL)" % BOB in top, top
    assert re.search(r'\(client certificate "[^"]*%s[^"]*" serial %s\)'
                     % (re.escape(BOB), org.serial[BOB]), top), top


def test_peer_certificate_has_both_purposes(org):
    crt = org.files[PEER][0]
    info = subprocess.run(["certtool", "-i", "--infile", crt], capture_output=True,
                          text=True, timeout=30).stdout
    assert "TLS WWW Server" in info and "TLS WWW Client" in info, info
    assert "DNSname: %s" % PEER in info, info
    assert "RFC822Name" not in info, info


# --------------------------------------------------------------------------- tls.peer_ca


@pytest.fixture(scope="module")
def peer_ca_server(certs, sealmaild_bin, tmp_path_factory):
    """tls.peer_ca is the test PKI's other CA; no peers: list, so any server certificate
    from it is an organisation server."""
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("peerca")),
                         tls={"peer_ca": certs.other_ca}, listeners=[
                             {"protocol": "smtp", "tls": "starttls",
                              "client_certificate": "required", "peers": None},
                             {"protocol": "imap", "tls": "implicit",
                              "client_certificate": "required",
                              "certificate_login": "preauth"},
                         ])
    srv.start()
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, "user", "add", ALICE,
                        "--password-stdin"], input=PASSWORD + "\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    yield srv
    srv.check_stopped()


def _peer_ca_session(srv, cert, key):
    s = smtplib.SMTP("127.0.0.1", srv.port("smtp", "starttls"), timeout=10)
    s.starttls(context=harness.client_context(srv.certs, cert=cert, key=key))
    return s


def test_peer_ca_certificate_is_an_organisation_server(peer_ca_server, certs):
    srv = peer_ca_server
    s = _peer_ca_session(srv, certs.peer_other_ca, certs.peer_other_ca_key)
    assert not s.sendmail(DEMO, [ALICE], _msg(DEMO, "via peer_ca"))
    s.quit()
    srv.wait_log(r"event=peer_server .*name=mx3\.corp\.example")


def test_peer_ca_layout_refuses_client_ca_certificates(peer_ca_server, certs):
    srv = peer_ca_server
    # A user's certificate from the client CA: refused outright.
    s = _peer_ca_session(srv, certs.client, certs.client_key)
    assert s.ehlo("x")[0] == 554
    s.close()
    # A server certificate from the client CA is no organisation server here.
    s = _peer_ca_session(srv, certs.peer, certs.peer_key)
    s.ehlo("mx2.corp.example")
    code, text = s.docmd("MAIL", "FROM:<%s>" % DEMO)
    assert code == 550 and text.startswith(b"5.7.1 "), (code, text)
    s.quit()


def test_peer_ca_never_logs_a_user_in(peer_ca_server, certs):
    """A certificate from tls.peer_ca with an e-mail address verifies, but is a server's:
    no PREAUTH for alice, and on the smtp port it is a user's certificate, refused."""
    srv = peer_ca_server
    since = srv.log_size()
    ctx = harness.client_context(certs, cert=certs.client_other, key=certs.client_other_key)
    lc = harness.tls_client(srv.port("imap", "implicit"), ctx)
    try:
        line = lc.readline()
    finally:
        lc.close()
    assert line.startswith(b"* OK"), line
    srv.wait_log(r"event=cert_no_identity .*issued by tls\.peer_ca", since=since)
    s = _peer_ca_session(srv, certs.client_other, certs.client_other_key)
    assert s.ehlo("x")[0] == 554
    s.close()


# --------------------------------------------------------------------------- --check


def _check(make_server, listeners, tls=None):
    srv = make_server(start=False, listeners=listeners, tls=tls)
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path, "--check"],
                       capture_output=True, text=True, timeout=30, env=harness.server_env())
    return srv, r


def test_check_refuses_peers_on_submission(make_server):
    srv, r = _check(make_server, [{"protocol": "submission", "tls": "implicit",
                                   "client_certificate": "optional", "peers": [PEER]}])
    assert r.returncode == 1, r
    line = [l for l in r.stderr.splitlines() if "peers" in l]
    assert line, r.stderr
    assert re.match(r"%s:\d+: listeners\[0\]\.peers: only smtp listeners take peers"
                    % re.escape(srv.config_path), line[0]), line


def test_check_refuses_a_bad_peer_name(make_server):
    srv, r = _check(make_server, [{"protocol": "smtp", "tls": "starttls",
                                   "client_certificate": "required",
                                   "peers": ["mx2.corp.example", "not a host"]}])
    assert r.returncode == 1, r
    assert re.search(r":\d+: listeners\[0\]\.peers\[1\]: 'not a host' is not a domain",
                     r.stderr), r.stderr


def test_check_and_start_warn_about_smtp_without_peers(make_server):
    listeners = [{"protocol": "smtp", "tls": "starttls", "client_certificate": "required",
                  "peers": None}]
    srv, r = _check(make_server, listeners)
    assert r.returncode == 0, r
    assert re.search(r"%s:\d+: listeners\[0\]\.peers: warning: .*local domain will be "
                     r"refused" % re.escape(srv.config_path), r.stderr), r.stderr
    srv.start()
    srv.wait_log(r"event=listener_without_peers protocol=smtp .*action=refusing_local_senders")
    # With peers: no warning.
    srv2, r = _check(make_server, [{"protocol": "smtp", "tls": "starttls",
                                    "client_certificate": "required"}])
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
