"""SELECT reuses the snapshot of an unchanged mailbox (server/imap/imap_snapshot.c), and
never one the mailbox has moved past: whichever session or process changed it (SMTP
delivery, APPEND, STORE, EXPUNGE, MOVE, and store_tool writing to the database beside the
server, which the server is not told about), the next SELECT shows the change."""
import os
import re
import subprocess
import tempfile

import pytest

import harness
from imap_env import ImapEnv, cmd, simple_message


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def select(env, user, mailbox="INBOX", verb="SELECT"):
    """Logs in, selects, fetches every message's UID and FLAGS, logs out: (SELECT's
    untagged lines as bytes, {uid: flags})."""
    lc = env.raw(user)
    r = b"".join(cmd(lc, "s", "%s %s" % (verb, mailbox)))
    assert re.search(rb"\ns OK", b"\n" + r), r
    f = b"".join(cmd(lc, "f", "UID FETCH 1:* (FLAGS)"))
    flags = {int(m.group(1)): m.group(2).decode()
             for m in re.finditer(rb"UID (\d+) FLAGS \(([^)]*)\)", f)}
    flags2 = {int(m.group(2)): m.group(1).decode()
              for m in re.finditer(rb"FLAGS \(([^)]*)\) UID (\d+)", f)}
    flags.update(flags2)
    cmd(lc, "l", "LOGOUT")
    lc.close()
    return r, flags


def exists(r):
    m = re.search(rb"\* (\d+) EXISTS", r)
    assert m, r
    return int(m.group(1))


def code(r, name):
    m = re.search(rb"\[" + name.encode() + rb" (\d+)\]", r)
    return int(m.group(1)) if m else None


def fill(env, user, n):
    m = env.imaps(user)
    for i in range(n):
        m.append("INBOX", None, None, simple_message("m%d" % i))
    m.logout()


def store_tool(env, *args):
    db = os.path.join(env.srv.dir, "data", "mail.db")
    return subprocess.run([harness.tool("store_tool"), db] + list(args), capture_output=True,
                          check=True).stdout


def test_unchanged_mailbox_selects_the_same(env):
    user = env.add_user("reuse-same")
    fill(env, user, 5)
    first = select(env, user)
    # The first SELECT takes the new messages as \Recent; later ones see none.
    assert b"* 5 RECENT\r\n" in first[0], first
    assert all("\\Recent" in f for f in first[1].values()), first
    second = select(env, user)
    assert b"* 0 RECENT\r\n" in second[0], second
    for _ in range(2):
        again = select(env, user)
        assert again == second
    assert exists(second[0]) == 5


def test_smtp_delivery_after_logout_is_seen(env):
    user = env.add_user("reuse-smtp")
    env.require_smtp_auth()
    fill(env, user, 3)
    r, _ = select(env, user)
    assert exists(r) == 3
    env.submit(user, user, simple_message("by smtp", to=user))
    r2, flags = select(env, user)
    assert exists(r2) == 4, r2
    assert code(r2, "HIGHESTMODSEQ") > code(r, "HIGHESTMODSEQ")
    assert code(r2, "UIDNEXT") == max(flags) + 1


def test_flags_stored_by_another_session_are_seen(env):
    user = env.add_user("reuse-flags")
    fill(env, user, 3)
    r, flags = select(env, user)
    assert code(r, "UNSEEN") == 1
    a = env.raw(user)
    cmd(a, "s", "SELECT INBOX")
    r = b"".join(cmd(a, "t", "STORE 1:2 +FLAGS (\\Seen $Work)"))
    assert b"$Work" in r, r
    cmd(a, "l", "LOGOUT")
    a.close()
    r, flags = select(env, user)
    uids = sorted(flags)
    assert "\\Seen" in flags[uids[0]] and "$Work" in flags[uids[1]], flags
    assert "\\Seen" not in flags[uids[2]], flags
    assert code(r, "UNSEEN") == 3, r


def test_flags_stored_while_the_snapshot_is_held_are_seen(env):
    """A still holds the snapshot a later SELECT could take; B changes flags (A's copy is
    its own after its NOOP, the shared one is not reused for the new state)."""
    user = env.add_user("reuse-held")
    fill(env, user, 2)
    a = env.raw(user)
    cmd(a, "s", "SELECT INBOX")
    b = env.raw(user)
    cmd(b, "s", "SELECT INBOX")
    cmd(b, "t", "STORE 2 +FLAGS (\\Flagged)")
    cmd(b, "l", "LOGOUT")
    b.close()
    r, flags = select(env, user)
    assert "\\Flagged" in flags[max(flags)], flags
    r = b"".join(cmd(a, "n", "NOOP"))
    assert b"\\Flagged" in r, r
    cmd(a, "l", "LOGOUT")
    a.close()


def test_expunge_and_move_by_another_session_are_seen(env):
    user = env.add_user("reuse-expunge")
    fill(env, user, 4)
    r, flags = select(env, user)
    uids = sorted(flags)
    m = env.imaps(user)
    m.create("Archive")
    m.select("INBOX")
    m.uid("STORE", str(uids[0]), "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.uid("MOVE", str(uids[1]), "Archive")
    m.logout()
    r, flags = select(env, user)
    assert exists(r) == 2 and sorted(flags) == uids[2:], (r, flags)
    r, flags = select(env, user, "Archive", "EXAMINE")
    assert exists(r) == 1, r


def test_changes_by_another_process_are_seen(env):
    """store_tool writes to the database beside the server: no notification reaches the
    server, only the mailbox's HIGHESTMODSEQ tells."""
    user = env.add_user("reuse-process")
    fill(env, user, 2)
    r, flags = select(env, user)
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(simple_message("out of process", to=user))
        path = f.name
    try:
        store_tool(env, "deliver", user, path)
    finally:
        os.unlink(path)
    r2, flags2 = select(env, user)
    assert exists(r2) == 3, r2
    store_tool(env, "expunge", user, str(min(flags2)))
    r3, flags3 = select(env, user)
    assert exists(r3) == 2 and min(flags2) not in flags3, (r3, flags3)
    assert code(r3, "HIGHESTMODSEQ") > code(r2, "HIGHESTMODSEQ") > code(r, "HIGHESTMODSEQ")


def test_examine_then_select_after_a_change_in_between(env):
    """EXAMINE and SELECT share snapshots; a change between them is still seen, also with
    the session's own change made while another session had the same snapshot."""
    user = env.add_user("reuse-examine")
    fill(env, user, 3)
    lc = env.raw(user)
    r = b"".join(cmd(lc, "e", "EXAMINE INBOX"))
    assert exists(r) == 3
    r = b"".join(cmd(lc, "s", "SELECT INBOX"))
    assert exists(r) == 3
    cmd(lc, "t", "STORE 3 +FLAGS.SILENT (\\Deleted)")
    cmd(lc, "x", "EXPUNGE")
    r = b"".join(cmd(lc, "e2", "EXAMINE INBOX"))
    assert exists(r) == 2, r
    cmd(lc, "l", "LOGOUT")
    lc.close()
    r, flags = select(env, user)
    assert exists(r) == 2 and len(flags) == 2, (r, flags)
