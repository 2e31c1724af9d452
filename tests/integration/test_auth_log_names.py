"""One spelling in the login log lines across SMTP, IMAP and POP3 (docs/logging.md):
mech= is an upper-case SASL mechanism name (the IMAP LOGIN and POP3 USER/PASS commands log
PLAIN, certificate logins EXTERNAL), proto= is the listener's protocol on every line of a
session, and every failure keeps `event=auth_failed ... ip=` for fail2ban."""
import imaplib
import poplib
import re

import pytest

from test_certs_clients import (ALICE, IMAP_EXT, IMAP_PREAUTH, PASSWORD, POP3_EXT, SUB_EXT,
                                SUB_PREAUTH, CaEnv)

MECHS = {"PLAIN", "LOGIN", "EXTERNAL", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}


@pytest.fixture
def env(make_server):
    return CaEnv(make_server)


def test_mech_and_proto_names_are_one_spelling(env):
    since = env.srv.log_size()
    # Passwords: IMAP LOGIN, POP3 USER/PASS, SMTP AUTH PLAIN and LOGIN; right and wrong.
    m = env.imap(IMAP_EXT)
    assert m.login(ALICE, PASSWORD)[0] == "OK"
    m.logout()
    m = env.imap(IMAP_EXT)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(ALICE, "wrong")
    m.logout()
    p = env.pop3(POP3_EXT)
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.quit()
    for mech in ("PLAIN", "LOGIN"):
        s = env.smtp(SUB_EXT)
        s.ehlo()
        s.user, s.password = ALICE, PASSWORD
        auth = s.auth_plain if mech == "PLAIN" else s.auth_login
        assert s.auth(mech, auth, initial_response_ok=False)[0] == 235
        s.quit()
    # Certificates: SASL EXTERNAL and the automatic logins of PREAUTH listeners.
    m = env.imap(IMAP_EXT, ALICE)
    assert m.authenticate("EXTERNAL", lambda _: b"")[0] == "OK"
    m.logout()
    m = env.imap(IMAP_PREAUTH, ALICE)
    m.logout()
    s = env.smtp(SUB_PREAUTH, ALICE)
    s.ehlo()
    s.quit()

    env.srv.wait_log(r"proto=submission event=auth_ok mech=EXTERNAL user=", since)
    log = env.srv.log()[since:]
    lines = re.findall(r".*event=auth_(?:ok|failed) .*", log)
    found = {(m.group(1), m.group(2), m.group(3)) for m in
             (re.search(r"proto=(\S+) event=(auth_\w+) mech=(\S+) user=\S+ ip=\S+", l)
              for l in lines)}
    assert all(f is not None for f in found), lines
    for proto, event, mech in found:
        assert mech in MECHS, (proto, mech)
    assert {("imap", "auth_ok", "PLAIN"), ("imap", "auth_failed", "PLAIN"),
            ("pop3", "auth_ok", "PLAIN"), ("submission", "auth_ok", "PLAIN"),
            ("submission", "auth_ok", "LOGIN"), ("imap", "auth_ok", "EXTERNAL")} <= found, found
    assert len(re.findall(r"proto=imap event=auth_ok mech=EXTERNAL", log)) == 2, lines
    # Every line of a submission session names it so, the TLS line included.
    assert "proto=smtp " not in log, log
    assert re.search(r"proto=submission event=tls_established", log), log
