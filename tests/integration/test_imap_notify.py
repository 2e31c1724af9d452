"""IMAP NOTIFY (RFC 5465) over TLS with raw lines: one session sets NOTIFY and waits for
what a second IMAP session (APPEND, STORE, EXPUNGE, CREATE, RENAME, DELETE, SUBSCRIBE) and
SMTP delivery do. Nothing here is timed: every wait is for a line, with a generous
deadline, and "nothing arrived" is shown by a reply that must come first."""
import re
import time

import pytest

from imap_env import ImapEnv, cmd, simple_message

WAIT = 30


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def wait_for(lc, pattern, timeout=WAIT):
    """Reads lines until one matches pattern; returns everything read (literals too)."""
    out = b""
    deadline = time.monotonic() + timeout
    lc.sock.settimeout(timeout)
    while time.monotonic() < deadline:
        line = lc.readline()
        out += line
        if re.search(pattern, line):
            return out
    raise AssertionError("no %r in %r" % (pattern, out))


def nothing_waiting(lc, tag="z"):
    """Proves no unsolicited line is queued: a command that ends in BAD (no updates go out
    before a BAD) must be the very next thing read."""
    lc.send("%s BOGUS\r\n" % tag)
    first = lc.readline()
    assert first.startswith(tag.encode() + b" BAD"), first


def ok(lines, tag):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return b"".join(lines)


def test_capability_lists_notify(env):
    user = env.add_user("ncap")
    lc = env.raw(user)
    r = ok(cmd(lc, "c", "CAPABILITY"), "c")
    assert re.search(rb"^\* CAPABILITY .* NOTIFY( |\r)", r, re.M), r
    lc.close()
    # Before login NOTIFY is refused like any command that needs it.
    lc = env.raw()
    r = cmd(lc, "n", "NOTIFY NONE")
    assert r[-1].startswith(b"n BAD"), r
    lc.close()


@pytest.mark.parametrize("args,want", [
    ("NOTIFY", b"BAD"),
    ("NOTIFY SET", b"BAD"),
    ("NOTIFY SET STATUS", b"BAD"),
    ("NOTIFY GET (PERSONAL NONE)", b"BAD"),
    ("NOTIFY SET (SELECTED (MessageNew))", b"BAD"),
    ("NOTIFY SET (PERSONAL (MessageExpunge))", b"BAD"),
    ("NOTIFY SET (PERSONAL (FlagChange))", b"BAD"),
    ("NOTIFY SET (SELECTED (MessageNew MessageExpunge MailboxName))", b"BAD"),
    ("NOTIFY SET (SELECTED-DELAYED (SubscriptionChange))", b"BAD"),
    ("NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))", b"BAD"),
    ("NOTIFY SET (SELECTED (MessageNew (UID NOSUCHITEM) MessageExpunge))", b"BAD"),
    ("NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED NONE)", b"BAD"),
    ("NOTIFY SET (ELSEWHERE (MailboxName))", b"BAD"),
    ("NOTIFY SET (SUBTREE () (MailboxName))", b"BAD"),
    ("NOTIFY SET ((((((((((((PERSONAL NONE))))))))))))", b"BAD"),
    ("NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))",
     b"NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange "
     b"MailboxMetadataChange ServerMetadataChange)]"),
    ("NOTIFY SET (PERSONAL (ServerMetadataChange))", b"OK"),
    ("NOTIFY SET (INBOXES (MailboxMetadataChange))", b"OK"),
    ("NOTIFY SET (SELECTED (MessageNew MessageExpunge MailboxMetadataChange))", b"BAD"),
    ("NOTIFY SET (MAILBOXES (nosuch \"no such either\") (MessageNew MessageExpunge))", b"OK"),
    ("NOTIFY SET (SUBTREE nosuch (MailboxName)) (PERSONAL NONE)", b"OK"),
    ("NOTIFY NONE", b"OK"),
])
def test_arguments(env, args, want):
    user = env.add_user("nargs")
    lc = env.raw(user)
    r = cmd(lc, "n", args)
    assert r[-1].startswith(b"n " + want), (args, r)
    lc.close()


def test_huge_mailbox_list_is_refused(env):
    user = env.add_user("nhuge")
    lc = env.raw(user)
    names = " ".join("m%d" % i for i in range(5000))
    r = cmd(lc, "n", "NOTIFY SET (MAILBOXES (%s) (MessageNew MessageExpunge))" % names)
    assert r[-1].startswith(b"n NO [LIMIT]"), r[-1]
    # The session goes on.
    assert ok(cmd(lc, "n2", "NOTIFY NONE"), "n2")
    lc.close()


def test_selected_pushes_between_commands(env):
    user = env.add_user("nsel")
    env.require_smtp_auth()
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "n", "NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (Subject)]) "
                   "MessageExpunge FlagChange))"), "n")
    b = env.imaps(user)
    b.append("INBOX", None, None, simple_message("pushed one"))
    got = wait_for(a, rb"^\* 1 EXISTS")
    got += wait_for(a, rb"^\* 1 FETCH \(UID 1 BODY\[HEADER\.FIELDS \(Subject\)\] \{\d+\}")
    got += wait_for(a, rb"^Subject: pushed one")
    # Fetching the header for the notification did not set \Seen.
    b.select("INBOX")
    typ, data = b.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0], data
    # Flags and expunges come the same way, without a command.
    b.store("1", "+FLAGS", r"(\Flagged)")
    wait_for(a, rb"^\* 1 FETCH \(FLAGS \(\\Flagged")
    # SMTP delivery too.
    env.submit(user, user, simple_message("by smtp", to=user))
    wait_for(a, rb"^\* 2 EXISTS")
    wait_for(a, rb"^Subject: by smtp")
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    wait_for(a, rb"^\* 1 EXPUNGE")
    wait_for(a, rb"^\* 1 EXISTS")
    wait_for(a, rb"^\* \d+ RECENT")
    nothing_waiting(a)
    r = ok(cmd(a, "f", "FETCH 1 (FLAGS)"), "f")
    assert b"\\Seen" not in r, r
    b.logout()
    a.close()


def test_selected_delayed_holds_expunges_for_a_command(env):
    user = env.add_user("ndelay")
    b = env.imaps(user)
    b.append("INBOX", None, None, simple_message("first"))
    b.append("INBOX", None, None, simple_message("second"))
    a = env.raw(user, timeout=WAIT)
    r = ok(cmd(a, "s", "SELECT INBOX"), "s")
    assert b"* 2 EXISTS" in r, r
    ok(cmd(a, "n", "NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))"), "n")
    b.select("INBOX")
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    b.append("INBOX", None, None, simple_message("third"))
    # The arrival is shown at once; the expunged message keeps its number until...
    got = wait_for(a, rb"^\* 3 EXISTS")
    assert b"EXPUNGE" not in got, got
    # ...a FETCH by sequence number still may not show it...
    r = ok(cmd(a, "f", "FETCH 1 (UID)"), "f")
    assert b"EXPUNGE" not in r, r
    # ...and NOOP does.
    r = ok(cmd(a, "o", "NOOP"), "o")
    assert b"* 1 EXPUNGE" in r, r
    b.logout()
    a.close()


def test_selected_with_qresync_says_vanished(env):
    user = env.add_user("nqres")
    b = env.imaps(user)
    b.append("INBOX", None, None, simple_message("goes away"))
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "e", "ENABLE QRESYNC"), "e")
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "n", "NOTIFY SET (SELECTED (MessageNew MessageExpunge))"), "n")
    b.select("INBOX")
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    wait_for(a, rb"^\* VANISHED 1\r")
    b.logout()
    a.close()


def test_status_for_other_mailboxes(env):
    user = env.add_user("nstatus")
    env.require_smtp_auth()
    b = env.imaps(user)
    b.create("Lists")
    a = env.raw(user, timeout=WAIT)
    r = ok(cmd(a, "n", "NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge FlagChange))"),
           "n")
    # STATUS at once for every watched mailbox, before the OK.
    assert re.search(rb'^\* STATUS "?INBOX"? \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 '
                     rb'HIGHESTMODSEQ \d+\)', r, re.M), r
    assert re.search(rb'^\* STATUS "?Lists"? \(MESSAGES 0 UIDNEXT 1 ', r, re.M), r
    b.append("Lists", None, None, simple_message("to the list"))
    wait_for(a, rb'^\* STATUS "?Lists"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 ')
    env.submit(user, user, simple_message("delivered", to=user))
    wait_for(a, rb'^\* STATUS "?INBOX"? \(MESSAGES 1 UIDNEXT 2 ')
    b.select("Lists")
    b.store("1", "+FLAGS", r"(\Seen)")
    got = wait_for(a, rb'^\* STATUS "?Lists"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 0 ')
    # A flag change that leaves UNSEEN alone still shows, in HIGHESTMODSEQ.
    before = int(re.search(rb"HIGHESTMODSEQ (\d+)", got.splitlines()[-1]).group(1))
    b.store("1", "+FLAGS", r"(\Answered)")
    got = wait_for(a, rb'^\* STATUS "?Lists"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 0 ')
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", got.splitlines()[-1]).group(1)) > before
    b.store("1", "+FLAGS", r"(\Deleted)")
    b.expunge()
    wait_for(a, rb'^\* STATUS "?Lists"? \(MESSAGES 0 UIDNEXT 2 ')
    # The selected mailbox gets no STATUS, and without a SELECTED filter it behaves as
    # without NOTIFY: nothing until a command.
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    env.submit(user, user, simple_message("second delivery", to=user))
    b.append("Lists", None, None, simple_message("witness"))
    got = wait_for(a, rb'^\* STATUS "?Lists"? \(MESSAGES 1 UIDNEXT 3 ')
    assert b"INBOX" not in got and b"EXISTS" not in got, got
    nothing_waiting(a)
    r = ok(cmd(a, "o", "NOOP"), "o")
    assert b"* 2 EXISTS" in r, r
    b.logout()
    a.close()


def test_message_events_alone_get_counts(env):
    user = env.add_user("nmodseq")
    b = env.imaps(user)
    b.create("Other")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "n", "NOTIFY SET (MAILBOXES Other (MessageNew MessageExpunge))"), "n")
    b.append("Other", None, None, simple_message("counted"))
    wait_for(a, rb'^\* STATUS "?Other"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)\r')
    b.logout()
    a.close()


def test_mailbox_name_and_subscription_events(env):
    user = env.add_user("nnames")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "n", "NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))"), "n")
    b = env.raw(user, timeout=WAIT)
    ok(cmd(b, "c", "CREATE Foo"), "c")
    wait_for(a, rb'^\* LIST \(\\HasNoChildren[^)]*\) "/" "?Foo"?\r')
    ok(cmd(b, "r", "RENAME Foo Bar"), "r")
    wait_for(a, rb'^\* LIST \([^)]*\) "/" "?Bar"? \("OLDNAME" \("?Foo"?\)\)\r')
    ok(cmd(b, "u", "UNSUBSCRIBE Bar"), "u")
    wait_for(a, rb'^\* LIST \(\) "/" "?Bar"?\r')
    ok(cmd(b, "v", "SUBSCRIBE Bar"), "v")
    wait_for(a, rb'^\* LIST \(\\Subscribed\) "/" "?Bar"?\r')
    ok(cmd(b, "d", "DELETE Bar"), "d")
    wait_for(a, rb'^\* LIST \(\\NonExistent\) "/" "?Bar"?\r')
    # The session's own changes are not sent back: its tagged OK said so.
    r = cmd(a, "o", "CREATE Mine")
    assert len(r) == 1 and r[0].startswith(b"o OK"), r
    nothing_waiting(a)
    # The other session did not set NOTIFY: it heard nothing of a's CREATE.
    nothing_waiting(b)
    a.close()
    b.close()


def test_subtree_filter_and_none(env):
    user = env.add_user("nsubtree")
    b = env.raw(user, timeout=WAIT)
    ok(cmd(b, "c1", "CREATE Lists/a"), "c1")
    ok(cmd(b, "c2", "CREATE Lists/b"), "c2")
    ok(cmd(b, "c3", "CREATE Elsewhere"), "c3")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "n", "NOTIFY SET (MAILBOXES Lists/b NONE) (SUBTREE Lists "
                   "(MessageNew MessageExpunge))"), "n")
    ok(cmd(b, "ap1", "APPEND Elsewhere", b"Subject: e\r\n\r\nx"), "ap1")
    ok(cmd(b, "ap2", "APPEND Lists/b", b"Subject: b\r\n\r\nx"), "ap2")
    ok(cmd(b, "ap3", "APPEND Lists/a", b"Subject: a\r\n\r\nx"), "ap3")
    got = wait_for(a, rb'^\* STATUS "?Lists/a"? \(MESSAGES 1 ')
    assert b"Elsewhere" not in got and b"Lists/b" not in got, got
    nothing_waiting(a)
    # NOTIFY NONE: nothing any more.
    ok(cmd(a, "n2", "NOTIFY NONE"), "n2")
    w = env.raw(user, timeout=WAIT)
    ok(cmd(w, "n", "NOTIFY SET (SUBTREE Lists (MessageNew MessageExpunge))"), "n")
    ok(cmd(b, "ap4", "APPEND Lists/a", b"Subject: a2\r\n\r\nx"), "ap4")
    wait_for(w, rb'^\* STATUS "?Lists/a"? \(MESSAGES 2 ')
    nothing_waiting(a)
    a.close()
    b.close()
    w.close()


def test_without_notify_nothing_is_unsolicited(env):
    user = env.add_user("nquiet")
    a = env.raw(user, timeout=WAIT)
    r = ok(cmd(a, "s", "SELECT INBOX"), "s")
    assert b"* 0 EXISTS" in r, r
    q = env.raw(user, timeout=WAIT)  # in the authenticated state
    w = env.raw(user, timeout=WAIT)  # the witness, with NOTIFY
    ok(cmd(w, "n", "NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))"), "n")
    b = env.raw(user, timeout=WAIT)
    ok(cmd(b, "ap", "APPEND INBOX", b"Subject: q\r\n\r\nx"), "ap")
    ok(cmd(b, "c", "CREATE Quiet"), "c")
    wait_for(w, rb'^\* STATUS "?INBOX"? \(MESSAGES 1 ')
    wait_for(w, rb'^\* LIST \([^)]*\) "/" "?Quiet"?\r')
    # By now every session has been told whatever it would be told.
    nothing_waiting(a)
    nothing_waiting(q)
    r = ok(cmd(a, "o", "NOOP"), "o")
    assert b"* 1 EXISTS" in r, r
    for lc in (a, q, w, b):
        lc.close()


def test_idle_with_notify_reports_other_mailboxes(env):
    user = env.add_user("nidle")
    b = env.imaps(user)
    b.create("Side")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "s", "SELECT INBOX"), "s")
    ok(cmd(a, "n", "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                   "(PERSONAL (MessageNew MessageExpunge))"), "n")
    a.send("i IDLE\r\n")
    assert a.readline().startswith(b"+ ")
    b.append("Side", None, None, simple_message("side"))
    wait_for(a, rb'^\* STATUS "?Side"? \(MESSAGES 1 ')
    b.append("INBOX", None, None, simple_message("main"))
    wait_for(a, rb"^\* 1 EXISTS")
    a.send("DONE\r\n")
    assert a.imap_tagged("i")[-1].startswith(b"i OK")
    b.logout()
    a.close()


def test_overflow_turns_notify_off(env):
    user = env.add_user("nflood")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "n", "NOTIFY SET (PERSONAL (SubscriptionChange))"), "n")
    # a is in the middle of a command (waiting to send its literal): nothing may go out
    # to it, so the events pile up.
    a.send("ap APPEND INBOX {12}\r\n")
    assert a.readline().startswith(b"+ ")
    b = env.raw(user, timeout=WAIT)
    n = 1100
    b.send("".join("s%d SUBSCRIBE flood%d\r\n" % (i, i) for i in range(n)))
    b.imap_tagged("s%d" % (n - 1))
    a.send("Subject: x\r\n\r\n")  # 12 bytes, then the end of the command
    r = a.imap_tagged("ap")
    assert r[-1].startswith(b"ap OK"), r
    got = wait_for(a, rb"^\* OK \[NOTIFICATIONOVERFLOW\]")
    assert got.count(b"* LIST") < 1000, len(got)
    # NOTIFY is off now.
    ok(cmd(b, "x", "SUBSCRIBE one-more"), "x")
    w = env.raw(user, timeout=WAIT)
    ok(cmd(w, "n", "NOTIFY SET (PERSONAL (SubscriptionChange))"), "n")
    ok(cmd(b, "y", "SUBSCRIBE two-more"), "y")
    wait_for(w, rb'^\* LIST \(\\Subscribed\) "/" "?two-more"?\r')
    nothing_waiting(a)
    for lc in (a, b, w):
        lc.close()


def test_pipelined_commands_and_logout_while_notifying(env):
    user = env.add_user("npipe")
    a = env.raw(user, timeout=WAIT)
    ok(cmd(a, "n", "NOTIFY SET (PERSONAL (MessageNew MessageExpunge MailboxName))"), "n")
    b = env.raw(user, timeout=WAIT)
    for i in range(20):
        # Changes and commands cross: the session's notifications, its buffered commands
        # and finally its LOGOUT all meet on resume.
        b.send("c%d CREATE pipe%d\r\nap%d APPEND INBOX {5+}\r\nx: y\r\n" % (i, i, i))
        a.send("p%d NOOP\r\n" % i)
    b.imap_tagged("ap19")
    a.send("q NOOP\r\nz LOGOUT\r\n")
    got = a.imap_tagged("z")
    assert got[-1].startswith(b"z OK"), got[-3:]
    assert b"* BYE" in b"".join(got)
    ok(cmd(b, "s", "STATUS INBOX (MESSAGES)"), "s")
    b.close()
    a.close()
