"""IMAP QUOTA administration (RFC 9208) against the real sealmaild with Python's imaplib:
GETQUOTA / GETQUOTAROOT with STORAGE and MESSAGE, SETQUOTA by an administrator
(auth.admins) for their own and another user's root, NO [NOPERM] for anyone else, BAD for
unknown resources and bad syntax, NO [NONEXISTENT] for a root that is no user; a MESSAGE
limit refusing APPEND and SMTP delivery; STATUS SIZE, DELETED and DELETED-STORAGE following
STORE \\Deleted and EXPUNGE (also in LIST-STATUS)."""
import re
import smtplib

import pytest

import harness
from imap_env import ImapEnv, cmd, simple_message

ADMIN = "boss"


@pytest.fixture(scope="module")
def env(certs, sealmaild_bin, tmp_path_factory):
    srv = harness.Server(certs, workdir=str(tmp_path_factory.mktemp("srv")),
                         extra_yaml="auth:\n  admins: [Boss@%s]\n" % harness.DOMAIN)
    srv.start()
    e = ImapEnv(srv)
    e.admin = e.add_user(ADMIN)
    yield e
    srv.stop()
    srv.check_stopped()


def quota_lines(data):
    """imaplib's untagged QUOTA data as {root: {resource: (usage, limit)}}."""
    out = {}
    for line in data or []:
        if line is None:
            continue
        m = re.match(rb'^"?([^"]*)"? \((.*)\)$', line)
        assert m, line
        items = m.group(2).split()
        out[m.group(1).decode()] = {items[i].decode(): (int(items[i + 1]), int(items[i + 2]))
                                    for i in range(0, len(items), 3)}
    return out


def test_capabilities(env):
    m = env.imaps(env.add_user("capa"))
    typ, data = m.capability()
    assert typ == "OK", data
    caps = data[0].decode().split()
    for c in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "QUOTASET", "STATUS=SIZE"):
        assert c in caps, caps
    m.logout()


def test_admin_sets_and_reads_own_and_other_roots(env):
    bob = env.add_user("bob")
    a = env.imaps(env.admin)
    typ, data = a.setquota('""', "(STORAGE 1024 MESSAGE 100)")
    assert typ == "OK", data
    assert quota_lines(data)[""] == {"STORAGE": (0, 1024), "MESSAGE": (0, 100)}, data
    # Another user's root, by address (any case).
    typ, data = a.setquota('"Bob@corp.example"', "(MESSAGE 5)")
    assert typ == "OK", data
    assert quota_lines(data)[bob] == {"MESSAGE": (0, 5)}, data
    typ, data = a.getquota('"%s"' % bob)
    assert typ == "OK" and quota_lines(data)[bob] == {"MESSAGE": (0, 5)}, data
    assert ("event=quota_set user=%s target=%s storage=0 messages=5" % (env.admin, bob)
            in env.srv.log()), env.srv.log()[-2000:]
    # Bob sees the limit under his own root "".
    b = env.imaps(bob)
    b.append("INBOX", None, None, simple_message("one", "x" * 3000 + "\r\n"))
    typ, data = b.getquotaroot("INBOX")
    assert typ == "OK", data
    roots, quotas = data
    assert roots[0] in (b'INBOX ""', b'"INBOX" ""'), roots
    assert quota_lines(quotas)[""] == {"MESSAGE": (1, 5)}, quotas
    # Usage shows to the administrator too; STORAGE in KiB, rounded up.
    typ, data = a.setquota('"%s"' % bob, "(STORAGE 10 MESSAGE 5)")
    assert typ == "OK", data
    assert quota_lines(data)[bob] == {"STORAGE": (4, 10), "MESSAGE": (1, 5)}, data
    # SETQUOTA replaces every limit: () leaves none, and with them the root goes.
    typ, data = a.setquota('"%s"' % bob, "()")
    assert typ == "OK" and data == [None], data
    typ, data = b.getquota('""')
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    typ, data = b.getquotaroot("INBOX")
    assert typ == "OK" and data[0] in ([b"INBOX"], [b'"INBOX"']) and data[1] == [None], data
    # A root that is no user.
    typ, data = a.getquota('"nobody@corp.example"')
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    typ, data = a.setquota('"nobody@corp.example"', "(MESSAGE 1)")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    typ, data = a.setquota('"not an address"', "(MESSAGE 1)")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    b.logout()
    a.logout()


def test_non_admin_gets_noperm_and_sees_no_other_root(env):
    u = env.add_user("plain")
    m = env.imaps(u)
    typ, data = m.setquota('""', "(MESSAGE 1000)")
    assert typ == "NO" and b"[NOPERM]" in data[0], data
    typ, data = m.setquota('"%s"' % env.admin, "(STORAGE 1)")
    assert typ == "NO" and b"[NOPERM]" in data[0], data
    typ, data = m.getquota('"%s"' % env.admin)
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    # Nothing changed for the user: still no limit, so no root.
    typ, data = m.getquota('""')
    assert typ == "NO" and b"[NONEXISTENT]" in data[0], data
    m.logout()


@pytest.mark.parametrize("line", [
    'SETQUOTA "" (STORAGE)',
    'SETQUOTA "" (FOO 10)',
    'SETQUOTA "" (STORAGE 10 STORAGE 20)',
    'SETQUOTA "" (MESSAGE -1)',
    'SETQUOTA "" (MESSAGE 1x)',
    'SETQUOTA "" (MESSAGE 9223372036854775808)',
    'SETQUOTA "" MESSAGE 10',
    'SETQUOTA ""',
    'SETQUOTA',
    'GETQUOTA',
    'GETQUOTAROOT',
])
def test_bad_syntax_is_bad_for_everyone(env, line):
    for who in (env.admin, env.add_user("syntax")):
        lc = env.raw(who)
        r = cmd(lc, "b1", line)
        assert r[-1].startswith(b"b1 BAD"), (who, line, r)
        lc.close()


def test_limit_of_zero_is_refused(env):
    lc = env.raw(env.admin)
    r = cmd(lc, "z1", 'SETQUOTA "" (MESSAGE 0)')
    assert r[-1].startswith(b"z1 NO [CANNOT]"), r
    lc.close()


def test_message_limit_refuses_append_and_smtp_delivery(env):
    user = env.add_user("counted")
    a = env.imaps(env.admin)
    typ, data = a.setquota('"%s"' % user, "(MESSAGE 2)")
    assert typ == "OK", data
    m = env.imaps(user)
    for i in range(2):
        typ, data = m.append("INBOX", None, None, simple_message("m%d" % i))
        assert typ == "OK", data
    typ, data = m.append("INBOX", None, None, simple_message("third"))
    assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
    # MULTIAPPEND of two when one would fit: none is stored.
    typ, data = a.setquota('"%s"' % user, "(MESSAGE 3)")
    assert typ == "OK", data
    lc = env.raw(user)
    one = simple_message("x")
    lc.send(b"a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(one), one, len(one), one))
    r = lc.imap_tagged("a2")
    assert r[-1].startswith(b"a2 NO [OVERQUOTA]"), r
    # COPY that would pass the limit.
    cmd(lc, "s", "SELECT INBOX")
    r = cmd(lc, "c1", "COPY 1:2 Archive")
    assert r[-1].startswith(b"c1 NO [OVERQUOTA]"), r
    lc.close()
    # SMTP: the recipient at its limit is refused at RCPT with 452 4.2.2.
    typ, data = a.setquota('"%s"' % user, "(MESSAGE 2)")
    assert typ == "OK", data
    sender = env.add_user("sender")
    env.require_smtp_auth()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
        env.submit(sender, user, simple_message("by smtp", to=user))
    code, msg = ei.value.recipients[user]
    assert code == 452 and msg.startswith(b"4.2.2"), ei.value.recipients
    # Raised by one: delivery works again.
    typ, data = a.setquota('"%s"' % user, "(MESSAGE 3)")
    assert typ == "OK", data
    env.submit(sender, user, simple_message("by smtp", to=user))
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert typ == "OK" and b"MESSAGES 3" in data[0], data
    typ, data = m.getquotaroot("INBOX")
    assert quota_lines(data[1])[""] == {"MESSAGE": (3, 3)}, data
    m.logout()
    a.logout()


def status(m, mailbox="INBOX"):
    typ, data = m.status(mailbox, "(MESSAGES SIZE DELETED DELETED-STORAGE)")
    assert typ == "OK", data
    items = re.search(rb"\((.*)\)", data[0]).group(1).split()
    return {items[i].decode(): int(items[i + 1]) for i in range(0, len(items), 2)}


def test_status_size_and_deleted_follow_store_and_expunge(env):
    m = env.imaps(env.add_user("statuser"))
    msgs = [simple_message("s%d" % i, "y" * (1500 * (i + 1)) + "\r\n") for i in range(3)]
    for msg in msgs:
        m.append("INBOX", None, None, msg)
    sizes = [len(x) for x in msgs]
    assert status(m) == {"MESSAGES": 3, "SIZE": sum(sizes), "DELETED": 0,
                         "DELETED-STORAGE": 0}
    m.select("INBOX")
    m.store("1:2", "+FLAGS", r"(\Deleted)")
    assert status(m) == {"MESSAGES": 3, "SIZE": sum(sizes), "DELETED": 2,
                         "DELETED-STORAGE": (sizes[0] + sizes[1] + 1023) // 1024}
    # Setting it again changes nothing; removing it from one drops it.
    m.store("1", "+FLAGS", r"(\Deleted \Seen)")
    m.store("2", "-FLAGS", r"(\Deleted)")
    assert status(m)["DELETED"] == 1
    # LIST-STATUS reports the same.
    typ, data = m.list('""', 'INBOX RETURN (STATUS (DELETED SIZE))')
    assert typ == "OK", data
    typ, st = m.response("STATUS")  # imaplib keeps the untagged STATUS apart
    assert st[-1] is not None, st
    assert b"DELETED 1" in st[-1] and b"SIZE %d" % sum(sizes) in st[-1], st
    m.expunge()
    assert status(m) == {"MESSAGES": 2, "SIZE": sizes[1] + sizes[2], "DELETED": 0,
                         "DELETED-STORAGE": 0}
    # APPEND with \Deleted counts at once; MOVE carries it to the other mailbox.
    m.append("INBOX", r"(\Deleted)", None, simple_message("flagged"))
    assert status(m)["DELETED"] == 1
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "DELETED")
    uid = data[0].split()[0].decode()
    typ, data = m.uid("MOVE", uid, "Trash")
    assert typ == "OK", data
    assert status(m)["DELETED"] == 0
    assert status(m, "Trash")["DELETED"] == 1
    m.logout()
