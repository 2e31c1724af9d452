"""SMTP AUTH SCRAM-SHA-256 (RFC 5802, 7677, 4954) against the real sealmaild, with the client
side of SCRAM in scram_client.py (smtplib has none). Python's ssl module cannot export
tls-exporter keying material, so SCRAM-SHA-256-PLUS is only checked to be offered and to
refuse a binding that does not match the TLS session (the matching case is a unit test).
The module's server turns auth.channel_binding on (PLUS is offered only then); the last
tests run one with the default, where PLUS is neither offered nor accepted."""
import base64
import os
import re
import time

import pytest

import harness
from scram_client import Scram, b64
from smtp_env import PASSWORD, SmtpEnv

CHANNEL_BINDING = "auth:\n  channel_binding: true\n"


@pytest.fixture(scope="module")
def server(certs, sealmaild_bin, tmp_path_factory):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                         extra_yaml=CHANNEL_BINDING)
    srv.start()
    yield srv
    srv.check_stopped()


@pytest.fixture(scope="module")
def env(server):
    e = SmtpEnv(server)
    e.alice = e.add_user("alice")
    return e


def code(reply):
    return int(reply[-1][:3])


def text(reply):
    return reply[-1][4:].decode().strip()


def scram_login(env, user, password, ir=True, mech="SCRAM-SHA-256", cbind=b"n,,",
                cb_data=b"", tamper=False, ack=""):
    """Runs an exchange; returns (final reply, the connection, the client, server-first)."""
    lc = env.raw()
    cl = Scram(user, password, cbind)
    if ir:
        lc.send("AUTH %s %s\r\n" % (mech, cl.first()))
    else:
        lc.send("AUTH %s\r\n" % mech)
        r = lc.smtp_reply()
        assert r[-1].rstrip() == b"334", r
        lc.send(cl.first() + "\r\n")
    r = lc.smtp_reply()
    if code(r) != 334:
        return r, lc, cl, None
    server_first = text(r)
    lc.send(cl.final(server_first, cb_data, tamper) + "\r\n")
    r = lc.smtp_reply()
    if code(r) == 334:
        cl.check_server_final(text(r))
        lc.send(ack + "\r\n")
        r = lc.smtp_reply()
    return r, lc, cl, server_first


def test_ehlo_offers_scram_and_plus(env):
    lc = env.raw()
    auth = [l for l in lc.ehlo if b"AUTH " in l][0]
    mechs = auth[4:].split()
    assert b"SCRAM-SHA-256" in mechs and b"SCRAM-SHA-256-PLUS" in mechs, auth
    lc.close()


def test_right_password_with_initial_response(env):
    since = env.srv.log_size()
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD)
    assert code(r) == 235, r
    lc.send("MAIL FROM:<%s>\r\n" % env.alice)
    assert code(lc.smtp_reply()) == 250
    lc.close()
    env.srv.wait_log(r"event=auth_ok mech=SCRAM-SHA-256 user=alice@\S+ ip=127\.0\.0\.1",
                     since=since)


def test_right_password_without_initial_response_and_any_case(env):
    r, lc, _, _ = scram_login(env, env.alice.upper(), PASSWORD, ir=False, mech="scram-sha-256")
    assert code(r) == 235, r
    lc.close()


def test_secrets_are_not_logged(env):
    log = env.srv.log()
    assert PASSWORD not in log
    assert "SCRAM-SHA-256 bj" not in log and ",p=" not in log


def test_cancel_and_bad_messages(env):
    lc = env.raw()
    lc.send("AUTH SCRAM-SHA-256\r\n")
    assert lc.smtp_reply()[-1].rstrip() == b"334"
    lc.send("*\r\n")
    assert code(lc.smtp_reply()) == 501
    lc.send("AUTH SCRAM-SHA-256 %s\r\n" % b64(b"n,,r=nonce-without-name"))
    assert code(lc.smtp_reply()) == 501
    lc.send("AUTH SCRAM-SHA-256 !!!\r\n")
    assert code(lc.smtp_reply()) == 501
    # Not in our allowlist, though GNU SASL has it.
    lc.send("AUTH SCRAM-SHA-1 %s\r\n" % Scram(env.alice, PASSWORD).first())
    assert code(lc.smtp_reply()) == 504
    lc.send("AUTH DIGEST-MD5\r\n")
    assert code(lc.smtp_reply()) == 504
    lc.close()


def test_only_an_empty_answer_to_the_server_final_message_logs_in(env):
    # RFC 4954 4: the client acknowledges the server-final-message with an empty line;
    # "*" cancels, anything else is refused. Either way the session is not logged in.
    for ack in ("*", b64(b"v=yes")):
        r, lc, _, _ = scram_login(env, env.alice, PASSWORD, ack=ack)
        assert code(r) == 501, (ack, r)
        lc.send("MAIL FROM:<%s>\r\n" % env.alice)
        assert code(lc.smtp_reply()) == 530
        lc.close()


def test_failures_answer_alike_are_logged_and_throttled(env):
    since = env.srv.log_size()
    wrong, lc1, _, sf_wrong = scram_login(env, env.alice, "not the password")
    lc1.close()
    unknown, lc2, _, sf_unknown = scram_login(env, "nobody@" + env.alice.split("@")[1],
                                              PASSWORD)
    lc2.close()
    assert code(wrong) == 535 and wrong == unknown, (wrong, unknown)

    # An unknown user's server-first-message looks like a real one, with a stable salt.
    def shape(sf):
        attrs = dict(kv.split("=", 1) for kv in base64.b64decode(sf).decode().split(","))
        return len(attrs["s"]), attrs["i"], len(attrs["r"])
    assert shape(sf_wrong) == shape(sf_unknown)
    _, lc3, cl3, _ = scram_login(env, "nobody@" + env.alice.split("@")[1], PASSWORD)
    lc3.close()
    salt_again = cl3.salt
    _, lc4, cl4, _ = scram_login(env, "nobody@" + env.alice.split("@")[1], "other")
    lc4.close()
    assert salt_again == cl4.salt

    log = env.srv.log()
    fails = re.findall(r"event=auth_failed mech=SCRAM-SHA-256 user=(\S+) ip=127\.0\.0\.1", log)
    assert env.alice in fails and "nobody@" + env.alice.split("@")[1] in fails, fails

    # The failures count, but only failures wait: the right password answers at once,
    # the next wrong one from this address waits.
    t0 = time.monotonic()
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD)
    assert code(r) == 235, r
    assert time.monotonic() - t0 < 1.0
    lc.close()
    t0 = time.monotonic()
    r, lc, _, _ = scram_login(env, env.alice, "still not the password")
    assert code(r) == 535, r
    assert time.monotonic() - t0 >= 0.25
    lc.close()


def test_tampered_proof_fails(env):
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD, tamper=True)
    assert code(r) == 535, r
    lc.close()


def test_plus_with_a_binding_of_another_session_fails(env):
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD, mech="SCRAM-SHA-256-PLUS",
                              cbind=b"p=tls-exporter,,", cb_data=os.urandom(32))
    assert code(r) == 535, r
    lc.close()


def test_downgrade_y_flag_refused_where_plus_is_offered(env):
    # "y": the client could bind but believes the server cannot. We offered PLUS, so
    # someone stripped it: refused.
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD, cbind=b"y,,")
    assert code(r) == 535, r
    lc.close()


# --------------------------------------------------------------------------- the default


@pytest.fixture
def env_default(make_server):
    e = SmtpEnv(make_server())
    e.alice = e.add_user("alice")
    return e


def test_without_channel_binding_plus_is_neither_offered_nor_accepted(env_default):
    env = env_default
    lc = env.raw()
    auth = [l for l in lc.ehlo if b"AUTH " in l][0]
    mechs = auth[4:].split()
    assert b"SCRAM-SHA-256" in mechs and b"SCRAM-SHA-256-PLUS" not in mechs, auth
    lc.close()
    # Asked for anyway, with or without an initial response: an unknown mechanism.
    r, lc, _, _ = scram_login(env, env.alice, PASSWORD, mech="SCRAM-SHA-256-PLUS",
                              cbind=b"p=tls-exporter,,", cb_data=os.urandom(32))
    assert code(r) == 504 and text(r).startswith("5.5.4"), r
    lc.send("AUTH scram-sha-256-plus\r\n")
    r = lc.smtp_reply()
    assert code(r) == 504 and text(r).startswith("5.5.4"), r
    lc.close()
    # The plain mechanism still works, also for a client that could bind ("y": it saw no
    # PLUS, which is the truth here, not a downgrade).
    for cbind in (b"n,,", b"y,,"):
        r, lc, _, _ = scram_login(env, env.alice, PASSWORD, cbind=cbind)
        assert code(r) == 235, (cbind, r)
        lc.close()
