"""sealctl user disable|enable and del: a disabled user cannot log in by any means (IMAP
LOGIN, SMTP AUTH, POP3, SCRAM), the open IMAP and POP3 sessions are told and closed, mail to
the user is refused with 550 5.2.1 (or kept with auth.disabled_user_mail: keep), enable
undoes it; deleting a user closes their sessions too."""
import imaplib
import poplib
import smtplib
import subprocess
import time

import pytest

import harness
from imap_env import PASSWORD, ImapEnv, simple_message


def sealctl(srv, *args):
    r = subprocess.run([harness.tool("sealctl"), "-c", srv.config_path, *args],
                       capture_output=True, text=True, timeout=60, env=harness.server_env())
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def wait_closed(read, timeout=10):
    """Reads until the server closes; returns everything read."""
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        try:
            chunk = read()
        except (OSError, EOFError):
            break
        if not chunk:
            break
        got += chunk
    return got


def pop3(env, user):
    p = poplib.POP3_SSL("127.0.0.1", env.srv.port("pop3", "implicit"), context=env.ctx(),
                        timeout=20)
    p.user(user)
    p.pass_(PASSWORD)
    return p


@pytest.fixture
def env(make_server):
    return ImapEnv(make_server(listeners=[("imap", "implicit"), ("imap", "starttls"),
                                          ("pop3", "implicit"), ("submission", "implicit")]))


def rcpt(env, sender, to):
    s = smtplib.SMTP_SSL("127.0.0.1", env.srv.port("submission", "implicit"),
                         context=env.ctx(), timeout=20)
    s.login(sender, PASSWORD)
    s.mail(sender)
    code, msg = s.rcpt(to)
    s.quit()
    return code, msg


def test_disable_closes_sessions_and_refuses_everything(env):
    user = env.add_user("dis1")
    other = env.add_user("dis1b")
    m = env.imaps(user)
    m.select("INBOX")
    p = pop3(env, user)
    bystander = env.imaps(other)
    out = sealctl(env.srv, "user", "disable", user)
    assert "asked sealmaild" in out, out
    got = wait_closed(lambda: m.sock.recv(4096))
    assert b"* BYE Your account was disabled" in got, got
    got = wait_closed(lambda: p.sock.recv(4096))
    assert b"-ERR [AUTH] Your account was disabled" in got, got
    assert "event=session_closed reason=user_disabled" in env.srv.log()
    # Another user's session is untouched.
    assert bystander.noop()[0] == "OK"
    bystander.logout()
    # No way back in.
    with pytest.raises(imaplib.IMAP4.error):
        env.imaps(user)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s = smtplib.SMTP_SSL("127.0.0.1", env.srv.port("submission", "implicit"),
                             context=env.ctx(), timeout=20)
        try:
            s.login(user, PASSWORD)
        finally:
            s.close()
    with pytest.raises(poplib.error_proto):
        pop3(env, user)
    code, msg = rcpt(env, other, user)
    assert code == 550 and b"5.2.1" in msg, (code, msg)
    # Enabled again: everything works.
    sealctl(env.srv, "user", "enable", user)
    m2 = env.imaps(user)
    assert m2.select("INBOX")[0] == "OK"
    m2.logout()
    code, msg = rcpt(env, other, user)
    assert code == 250, (code, msg)


def test_delete_closes_sessions(env):
    user = env.add_user("dis2")
    m = env.imaps(user)
    m.select("INBOX")
    sealctl(env.srv, "user", "del", user)
    got = wait_closed(lambda: m.sock.recv(4096))
    assert b"* BYE Your account was disabled" in got, got


def test_keep_mail_for_disabled_users(make_server):
    srv = make_server(extra_yaml="auth:\n  disabled_user_mail: keep\n")
    env = ImapEnv(srv)
    user = env.add_user("dis3")
    other = env.add_user("dis3b")
    sealctl(srv, "user", "disable", user)
    env.submit(other, user, simple_message("kept while disabled", to=user))
    sealctl(srv, "user", "enable", user)
    m = env.imaps(user)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", '"kept while disabled"')
    assert data[0].split(), data
    m.logout()
