"""A real synchronising client: mbsync (isync) keeps a maildir and a sealmail mailbox in step
over implicit TLS, both ways: messages appended on the server reach the maildir, a flag set
in the maildir (the ",S" and "F" letters of the file name) reaches the server, and a message
written into the maildir is uploaded. mbsync reads FLAGS and PERMANENTFLAGS to decide what
it may store, and stores flags with UID STORE, so it relies on keywords being announced and
on STORE's answers. It logs in through Cyrus SASL, which picks SCRAM-SHA-256 when the
server offers it (its SCRAM plugin is in Debian's libsasl2-modules). mbsync (isync 1.4 on
Debian 12 is built with zlib) turns COMPRESS=DEFLATE (RFC 4978) on when it is offered, so
each run is also a compressed session with a real client."""
import os
import re
import shutil
import subprocess

import pytest

from imap_env import PASSWORD, ImapEnv, simple_message

MBSYNC = shutil.which("mbsync")


@pytest.fixture(scope="module")
def env(server):
    return ImapEnv(server)


def tls_keyword():
    """isync 1.5 renamed SSLType to TLSType; Debian 12 has 1.4."""
    out = subprocess.run([MBSYNC, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    return "TLSType" if m and (int(m.group(1)), int(m.group(2))) >= (1, 5) else "SSLType"


def write_rc(env, tmp_path, user):
    maildir = tmp_path / "mail"
    maildir.mkdir()
    # The test CA, and the server's own certificate beside it: mbsync 1.4 matches the host
    # name against DNS names only, never an IP address, but trusts a certificate named in
    # CertificateFile as it is. Connecting to a name would need the machine's resolver.
    bundle = tmp_path / "ca-bundle.pem"
    with open(env.ca, "rb") as ca, open(env.srv.certs.server, "rb") as leaf:
        bundle.write_bytes(ca.read() + leaf.read())
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount sealmail\n"
        "Host 127.0.0.1\n"
        "Port %d\n"
        "User %s\n"
        "PassCmd \"echo '%s'\"\n"
        "%s IMAPS\n"
        "CertificateFile %s\n"
        "\n"
        "IMAPStore far\n"
        "Account sealmail\n"
        "\n"
        "MaildirStore near\n"
        "Path %s/\n"
        "Inbox %s/INBOX\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel both\n"
        "Far :far:\n"
        "Near :near:\n"
        "Patterns INBOX\n"
        "Sync All\n"
        "Create Both\n"
        "Expunge Both\n"
        "SyncState *\n"
        % (env.port, user, PASSWORD, tls_keyword(), bundle, maildir, maildir))
    return rc, maildir / "INBOX"


def assert_keywords_announced(transcript):
    """Every keyword a FETCH showed mbsync was named by the FLAGS before it (-Dn prints
    the server's lines as they came)."""
    named = None
    fetches = 0
    for line in transcript.splitlines():
        m = re.match(r"\* FLAGS \(([^)]*)\)", line)
        if m:
            named = set(m.group(1).split())
            continue
        m = re.match(r"\* \d+ FETCH \(.*FLAGS \(([^)]*)\)", line)
        if m:
            fetches += 1
            assert named is not None, line
            for k in m.group(1).split():
                assert k.startswith("\\") or k in named, (k, named, line)
    assert fetches > 0, transcript[-3000:]


def run_mbsync(rc):
    r = subprocess.run([MBSYNC, "-c", str(rc), "-Dn", "-a"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "mbsync failed (%d):\n%s\n%s" % (r.returncode, r.stdout[-6000:],
                                                               r.stderr)
    assert_keywords_announced(r.stdout)
    return r


def maildir_files(inbox):
    out = []
    for sub in ("new", "cur"):
        d = inbox / sub
        if d.is_dir():
            out += [d / f for f in sorted(os.listdir(d))]
    return out


def server_messages(env, user):
    """{subject: set of flags} of the server's INBOX."""
    m = env.imaps(user)
    try:
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
            subj = re.search(rb"Subject: (.*?)\r\n", item[1])
            assert flags and subj, item
            out[subj.group(1).decode()] = set(flags.group(1).decode().split())
        return out
    finally:
        m.logout()


def set_maildir_flags(path, letters):
    """Moves a maildir message to cur/ with the flag letters added to its info (":2,")."""
    name = path.name
    if ":2," in name:
        base, info = name.split(":2,", 1)
    else:
        base, info = name, ""
    info = "".join(sorted(set(info) | set(letters)))
    dest = path.parent.parent / "cur" / ("%s:2,%s" % (base, info))
    os.rename(path, dest)
    return dest


def test_mbsync_both_ways(env, tmp_path):
    if MBSYNC is None:
        pytest.fail("mbsync is not installed (Debian package isync; deploy/install-deps.sh "
                    "installs it)")
    user = env.add_user("mbsync")
    m = env.imaps(user)
    for subject, flags in (("first", r"()"), ("second", r"(\Answered $Label1)")):
        typ, data = m.append("INBOX", flags, None, simple_message(subject))
        assert typ == "OK", data
    m.logout()

    rc, inbox = write_rc(env, tmp_path, user)
    since = env.srv.log_size()
    run_mbsync(rc)
    env.srv.wait_log(r"proto=imap event=auth_ok mech=SCRAM-SHA-256 user=%s " % user,
                     since=since)
    files = maildir_files(inbox)
    assert len(files) == 2, files
    subjects = {}
    for f in files:
        s = re.search(rb"Subject: (.*?)\r?\n", f.read_bytes())
        assert s, f
        subjects[s.group(1).decode()] = f
    assert set(subjects) == {"first", "second"}, subjects
    # \Answered came down as the maildir's "R".
    assert re.search(r":2,[A-Z]*R", subjects["second"].name), subjects["second"].name

    # A flag set in the maildir reaches the server; a new maildir message is uploaded.
    set_maildir_flags(subjects["first"], "FS")
    new = inbox / "new" / "1700000000.local1.mbsynctest"
    new.write_bytes(simple_message("from the maildir").replace(b"\r\n", b"\n"))
    # A second server session changes a keyword meanwhile: mbsync sees it on its next run.
    m = env.imaps(user)
    m.select("INBOX")
    typ, data = m.store("2", "+FLAGS", r"($Label2)")
    assert typ == "OK", data
    m.logout()
    run_mbsync(rc)

    got = server_messages(env, user)
    assert set(got) == {"first", "second", "from the maildir"}, got
    assert {"\\Seen", "\\Flagged"} <= got["first"], got
    assert "\\Answered" in got["second"] and "$Label1" in got["second"], got

    # In step: a third run changes nothing and still succeeds.
    run_mbsync(rc)
    assert len(maildir_files(inbox)) == 3, maildir_files(inbox)
    assert set(server_messages(env, user)) == set(got)
    # All three runs went compressed.
    assert env.srv.log().count("event=compress algorithm=deflate") >= 3, env.srv.log()[-3000:]
