"""GET /metrics over HTTPS: Prometheus text that prometheus_client's parser reads, whose
counters move after an SMTP submission and an IMAP login; refused (403) from an address
metrics.allow_from does not list, let in by a client certificate metrics.allow_certificates
names; the gauges of the queue, the store and the certificates are there."""
import http.client
import smtplib

import pytest
from prometheus_client.parser import text_string_to_metric_families

import harness
from harness import DOMAIN
from imap_env import PASSWORD, ImapEnv, simple_message

LISTENERS = harness.DEFAULT_LISTENERS + [("https", "implicit", "optional")]


def scrape(srv, cert=False):
    ctx = harness.client_context(srv.certs)
    if cert:
        ctx.load_cert_chain(srv.certs.client, srv.certs.client_key)
    c = http.client.HTTPSConnection("127.0.0.1", srv.port("https", "implicit"), context=ctx,
                                    timeout=20)
    c.request("GET", "/metrics", headers={"Host": "mail"})
    r = c.getresponse()
    body = r.read()
    ctype = r.getheader("Content-Type")
    c.close()
    return r.status, ctype, body.decode()


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(sm, name, **labels):
    return sm.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_parse_and_move(make_server):
    srv = make_server(listeners=LISTENERS)
    env = ImapEnv(srv)
    user = env.add_user("met1")
    status, ctype, text = scrape(srv)
    assert status == 200, text
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    before = samples(text)
    assert value(before, "sealmail_store_up") == 1
    assert ("sealmail_server_certificate_expiry_seconds", ()) in before
    assert value(before, "sealmail_queue_messages") == 0
    assert value(before, "process_resident_memory_bytes") > 1 << 20
    env.require_smtp_auth()
    env.submit(user, user, simple_message("counted", to=user))
    m = env.imaps(user)
    m.select("INBOX")
    m.logout()
    after = samples(scrape(srv)[2])
    assert value(after, "sealmail_messages_total", event="accepted") == \
        value(before, "sealmail_messages_total", event="accepted") + 1
    assert value(after, "sealmail_messages_total", event="delivered") >= 1
    assert value(after, "sealmail_logins_total", protocol="imap", mechanism="PLAIN",
                 outcome="ok") >= 1
    assert value(after, "sealmail_logins_total", protocol="submission", mechanism="PLAIN",
                 outcome="ok") >= 1
    assert value(after, "sealmail_imap_commands_total", command="SELECT") >= 1
    assert value(after, "sealmail_tls_handshakes_total", protocol="imap", outcome="ok") >= 1
    assert value(after, "sealmail_connections_total", protocol="https") >= 2
    assert value(after, "sealmail_store_commits_total") > value(before,
                                                                 "sealmail_store_commits_total")
    assert value(after, "sealmail_store_commit_seconds_count") >= 1
    assert value(after, "sealmail_connections_open", protocol="https") == 1
    # A failed login counts as one.
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s = smtplib.SMTP_SSL("127.0.0.1", srv.port("submission", "implicit"),
                             context=env.ctx(), timeout=20)
        try:
            s.login(user, "wrong")
        finally:
            s.close()
    again = samples(scrape(srv)[2])
    assert value(again, "sealmail_logins_total", protocol="submission", mechanism="PLAIN",
                 outcome="failed") >= 1


def test_metrics_refused_from_other_addresses(make_server):
    srv = make_server(listeners=LISTENERS,
                      extra_yaml="metrics:\n  allow_from: [10.0.0.0/8, 'fd00::/8']\n"
                                 "  allow_certificates: [alice@%s]\n" % DOMAIN)
    status, _, text = scrape(srv)
    assert status == 403, text
    assert "metrics.allow_from" in text
    # The certificate the configuration names is let in from anywhere.
    status, _, text = scrape(srv, cert=True)
    assert status == 200, text
    assert samples(text)
    # /healthz is not guarded.
    ctx = harness.client_context(srv.certs)
    c = http.client.HTTPSConnection("127.0.0.1", srv.port("https", "implicit"), context=ctx,
                                    timeout=20)
    c.request("GET", "/healthz", headers={"Host": "mail"})
    assert c.getresponse().status == 200


def test_bad_network_in_config_is_refused(make_server, tmp_path):
    import subprocess
    srv = make_server(start=False, listeners=LISTENERS,
                      extra_yaml="metrics:\n  allow_from: [10.0.0.0/33]\n")
    srv.write_config()
    r = subprocess.run([harness.tool("sealmaild"), "-c", srv.config_path, "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "metrics.allow_from[0]" in r.stdout + r.stderr, r.stdout + r.stderr
