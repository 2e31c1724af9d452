/*
 * Live results (server/imap/imap_context.c, RFC 5267 section 4) in one session against
 * the fake conn and the mem store: what UID SEARCH and UID SORT with RETURN (UPDATE) keep,
 * the ADDTO and REMOVEFROM that the session's own changes make (STORE, FETCH, and COPY
 * into the selected mailbox for new messages), CANCELUPDATE, NOUPDATE and the end of
 * updates with the mailbox. Other sessions' changes are in the integration tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "server/imap/imap.h"
#include "server/services.h"
#include "tests/unit/support/mem_store.h"

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_tls_ready(struct conn *c);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);

static struct config cfg;
static struct cfg_listener listener;
static struct services sv;
static int64_t alice;

static void deliver(const char *subject)
{
	char msg[512];
	snprintf(msg, sizeof(msg),
	         "From: bob@corp.example\r\nTo: alice@corp.example\r\nSubject: %s\r\n\r\n"
	         "a line about %s\r\n",
	         subject, subject);
	cr_assert_eq(support_mem_deliver(sv.store, alice, msg), 0);
}

/* alice@corp.example with bravo (UID 1), delta (2) and hello (3) in her INBOX. */
static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	listener.protocol = CFG_PROTO_IMAP;
	listener.tls = CFG_TLS_IMPLICIT;
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	cr_assert_eq(support_mem_store_open(&sv.store), 0);
	alice = support_mem_user_add(sv.store, "alice@corp.example", "pw-alice");
	cr_assert_gt(alice, 0);
	deliver("bravo");
	deliver("delta");
	deliver("hello");
}

static void teardown(void)
{
	support_mem_store_close(sv.store);
	sv.store = NULL;
}

TestSuite(imap_context, .init = setup, .fini = teardown);

static const char *say(struct conn *c, const char *line)
{
	fake_conn_clear_output(c);
	fake_conn_line(c, line);
	cr_assert(support_mem_settle(c), "no store answer after %s", line);
	return fake_conn_output(c);
}

static bool has(const char *s, const char *part)
{
	return strstr(s, part) != NULL;
}

/* The reply to line has its tagged OK and holds want (NULL: no ESEARCH at all). */
static void expect(struct conn *c, const char *line, const char *want)
{
	const char *out = say(c, line);
	size_t tl = strcspn(line, " ");
	bool ok = false;
	for (const char *p = out; p != NULL && !ok;
	     p = strstr(p, "\r\n"), p = p != NULL ? p + 2 : NULL)
		ok = strncmp(p, line, tl) == 0 && strncmp(p + tl, " OK ", 4) == 0;
	cr_assert(ok, "%s: %s", line, out);
	if (want == NULL)
		cr_assert(!has(out, "* ESEARCH"), "%s: %s", line, out);
	else
		cr_assert(has(out, want), "%s: want %s in %s", line, want, out);
}

static struct conn *selected(void)
{
	struct conn *c = fake_conn_open(&imap_proto_handler, &cfg, &listener, true);
	fake_conn_set_services(c, &sv);
	fake_conn_tls_ready(c);
	expect(c, "l LOGIN alice@corp.example pw-alice", NULL);
	expect(c, "s SELECT INBOX", NULL);
	return c;
}

Test(imap_context, sort_positions_follow_changes)
{
	struct conn *c = selected();
	expect(c, "o1 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED",
	       "* ESEARCH (TAG \"o1\") UID ALL 1:3\r\n");
	/* Copies into the mailbox are new messages: bravo(1) delta(2) delta(4) hello(3). */
	expect(c, "k1 UID COPY 2 INBOX", "* ESEARCH (TAG \"o1\") UID ADDTO (3 4)\r\n");
	/* bravo(1) bravo(5) delta(2) delta(4) hello(3) hello(6): two pairs. */
	expect(c, "k2 UID COPY 1,3 INBOX", "* ESEARCH (TAG \"o1\") UID ADDTO (2 5 6 6)\r\n");
	expect(c, "t1 UID STORE 2,4 +FLAGS.SILENT (\\Deleted)",
	       "* ESEARCH (TAG \"o1\") UID REMOVEFROM (3 2,4)\r\n");
	expect(c, "t2 UID STORE 1:6 -FLAGS.SILENT (\\Deleted)",
	       "* ESEARCH (TAG \"o1\") UID ADDTO (3 2,4)\r\n");
	expect(c, "t3 UID STORE 3 +FLAGS.SILENT (\\Deleted)",
	       "* ESEARCH (TAG \"o1\") UID REMOVEFROM (5 3)\r\n");
	/* Expunging a message that already left changes nothing. */
	expect(c, "x1 EXPUNGE", NULL);
	expect(c, "o2 UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNDELETED",
	       "* ESEARCH (TAG \"o2\") UID ALL 1,5,2,4,6\r\n");
	fake_conn_free(c);
}

Test(imap_context, search_header_keys_read_only_new_mail)
{
	struct conn *c = selected();
	expect(c, "h1 UID SEARCH RETURN (UPDATE) OR SUBJECT hello BODY delta",
	       "* ESEARCH (TAG \"h1\") UID ALL 2:3\r\n");
	expect(c, "k1 UID COPY 3 INBOX", "* ESEARCH (TAG \"h1\") UID ADDTO (0 4)\r\n");
	expect(c, "k2 UID COPY 1 INBOX", NULL);
	expect(c, "k3 UID COPY 2 INBOX", "* ESEARCH (TAG \"h1\") UID ADDTO (0 6)\r\n");
	expect(c, "h2 UID SEARCH RETURN (UPDATE COUNT) UNSEEN NOT SUBJECT hello",
	       "* ESEARCH (TAG \"h2\") UID COUNT 4\r\n");
	expect(c, "f1 UID FETCH 1:2 (BODY[TEXT])", "* ESEARCH (TAG \"h2\") UID REMOVEFROM (0 1:2)");
	expect(c, "t1 UID STORE 1:6 -FLAGS.SILENT (\\Seen)",
	       "* ESEARCH (TAG \"h2\") UID ADDTO (0 1:2)");
	/* The save date is kept like a header: a copy has its own, of today. */
	expect(c, "d1 UID SEARCH RETURN (UPDATE) SAVEDSINCE 1-Jan-2000",
	       "* ESEARCH (TAG \"d1\") UID ALL 1:6\r\n");
	expect(c, "d2 UID SEARCH RETURN (UPDATE) SAVEDBEFORE 1-Jan-2000",
	       "* ESEARCH (TAG \"d2\") UID\r\n");
	const char *out = say(c, "k4 UID COPY 1 INBOX");
	cr_assert(has(out, "* ESEARCH (TAG \"d1\") UID ADDTO (0 7)\r\n"), "%s", out);
	cr_assert(!has(out, "(TAG \"d2\")"), "%s", out);
	out = say(c, "t2 UID STORE 4 +FLAGS.SILENT (\\Seen)");
	cr_assert(!has(out, "* ESEARCH"), "%s", out);
	fake_conn_free(c);
}

Test(imap_context, cancel_refuse_and_leave)
{
	struct conn *c = selected();
	expect(c, "u1 UID SEARCH RETURN (UPDATE) FLAGGED", "* ESEARCH (TAG \"u1\") UID\r\n");
	const char *out = say(c, "u1 UID SEARCH RETURN (UPDATE) SEEN");
	cr_assert(has(out, "u1 BAD "), "%s", out);
	out = say(c, "c1 CANCELUPDATE u1");
	cr_assert(has(out, "c1 BAD "), "%s", out);
	out = say(c, "c2 CANCELUPDATE");
	cr_assert(has(out, "c2 BAD "), "%s", out);
	out = say(c, "c3 CANCELUPDATE \"u1\" \"nope\"");
	cr_assert(has(out, "c3 NO "), "%s", out);
	expect(c, "t1 UID STORE 1 +FLAGS (\\Flagged)", "* ESEARCH (TAG \"u1\") UID ADDTO (0 1)");
	expect(c, "c4 CANCELUPDATE \"u1\"", NULL);
	expect(c, "t2 UID STORE 1 -FLAGS (\\Flagged)", NULL);
	/* Refused, answered all the same. */
	out = say(c, "r1 SEARCH RETURN (UPDATE) ALL");
	cr_assert(has(out, "* ESEARCH (TAG \"r1\") ALL 1:3\r\n* NO [NOUPDATE \"r1\"] "), "%s", out);
	cr_assert(has(out, "r1 OK "), "%s", out);
	out = say(c, "r2 UID SEARCH RETURN (UPDATE) UID 1:*");
	cr_assert(has(out, "* NO [NOUPDATE \"r2\"] "), "%s", out);
	out = say(c, "r3 UID SEARCH RETURN (SAVE UPDATE) ALL");
	cr_assert(has(out, "* NO [NOUPDATE \"r3\"] ") && has(out, "r3 OK "), "%s", out);
	/* The sixteen allowed, then NOUPDATE. */
	for (int i = 0; i < 16; i++) {
		char line[64];
		snprintf(line, sizeof(line), "k%d UID SEARCH RETURN (UPDATE) ALL", i);
		out = say(c, line);
		cr_assert(!has(out, "NOUPDATE"), "%s", out);
	}
	out = say(c, "k16 UID SORT RETURN (UPDATE) (DATE) UTF-8 ALL");
	cr_assert(has(out, "* NO [NOUPDATE \"k16\"] ") && has(out, "k16 OK "), "%s", out);
	/* Leaving the mailbox ends them all. */
	expect(c, "s2 SELECT INBOX", NULL);
	expect(c, "t3 UID STORE 1 +FLAGS (\\Flagged)", NULL);
	out = say(c, "c5 CANCELUPDATE \"k1\"");
	cr_assert(has(out, "c5 NO "), "%s", out);
	fake_conn_free(c);
}
