/*
 * The IMAP session (imap_proto_handler, server/imap/imap_session.c) against the fake conn:
 * commands before and after TLS, tags, limits and hostile lines, and a login, SELECT and
 * FETCH that reach the store. Replies are checked by their RFC-visible part (tag, status,
 * response code) so the engine can reword its human-readable texts. The store is the real
 * one on the mem backend (tests/unit/support/mem_store.h); logins go through
 * pop3_fakes.c's auth_login, which asks it.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "server/imap/imap.h"
#include "server/services.h"
#include "tests/unit/support/mem_store.h"

/* tests/unit/support/conn_fake.c */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line_n(struct conn *c, const char *line, size_t len);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_too_long(struct conn *c);
void fake_conn_tls_ready(struct conn *c);
void fake_conn_timeout(struct conn *c);
void fake_conn_shutdown(struct conn *c);
void fake_conn_goodbye(struct conn *c, enum conn_goodbye why);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
unsigned fake_conn_start_tls_calls(const struct conn *c);
bool fake_conn_compressed(const struct conn *c, size_t *at_r);
bool fake_conn_closed(const struct conn *c);
const char *fake_conn_close_reason(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);

#define ALICE_MSG                                                                                  \
	"From: bob@corp.example\r\nTo: alice@corp.example\r\nSubject: hello\r\n\r\n"               \
	"Hello Alice, the report is ready.\r\n"

static struct config cfg;
static struct cfg_listener listener;
static struct services sv;
static int64_t alice;

/* A mem store with alice@corp.example (password pw-alice) and one message in her INBOX. */
static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	listener.protocol = CFG_PROTO_IMAP;
	listener.tls = CFG_TLS_STARTTLS;
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	cr_assert_eq(support_mem_store_open(&sv.store), 0);
	alice = support_mem_user_add(sv.store, "alice@corp.example", "pw-alice");
	cr_assert_gt(alice, 0);
	cr_assert_eq(support_mem_deliver(sv.store, alice, ALICE_MSG), 0);
}

static void teardown(void)
{
	support_mem_store_close(sv.store);
	sv.store = NULL;
}

TestSuite(imap, .init = setup, .fini = teardown);

/* One line and every store call it starts, answered. */
static void say(struct conn *c, const char *line)
{
	fake_conn_line(c, line);
	cr_assert(support_mem_settle(c), "no store answer after %s", line);
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct conn *open_session(bool tls)
{
	struct conn *c = fake_conn_open(&imap_proto_handler, &cfg, &listener, false);
	fake_conn_set_services(c, &sv);
	const char *g = fake_conn_output(c);
	cr_assert(starts_with(g, "* OK [CAPABILITY IMAP4rev1 "), "%s", g);
	cr_assert(strstr(g, " STARTTLS") != NULL && strstr(g, " LOGINDISABLED") != NULL, "%s", g);
	if (tls) {
		fake_conn_line(c, "t0 STARTTLS");
		cr_assert_eq(fake_conn_start_tls_calls(c), 1);
		fake_conn_tls_ready(c);
	}
	fake_conn_clear_output(c);
	return c;
}

struct row {
	bool tls;
	const char *in;
	const char *prefix; /* the reply starts with this */
	bool closed;
};

static const struct row rows[] = {
    /* Before TLS. */
    {false, "a1 CAPABILITY", "* CAPABILITY IMAP4rev1 ", false},
    {false, "a1 capability", "* CAPABILITY IMAP4rev1 ", false},
    {false, "a1 NOOP", "a1 OK ", false},
    {false, "a1 nOoP", "a1 OK ", false},
    {false, "a1 LOGOUT", "* BYE ", true},
    {false, "a1 STARTTLS", "a1 OK Begin TLS negotiation now\r\n", false},
    {false, "a1 LOGIN bob secret", "a1 NO [PRIVACYREQUIRED] ", false},
    {false, "a1 AUTHENTICATE PLAIN", "a1 NO [PRIVACYREQUIRED] ", false},
    {false, "a1 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=", "a1 NO [PRIVACYREQUIRED] ", false},
    {false, "a1 SELECT INBOX", "a1 BAD ", false},
    {false, "a1 LIST \"\" *", "a1 BAD ", false},
    {false, "a1 FOO", "a1 BAD ", false},
    {false, "+ NOOP", "* BAD ", false},
    {false, "* NOOP", "* BAD ", false},
    {false, "\"a1\" NOOP", "* BAD ", false},
    {false, "% NOOP", "* BAD ", false},
    {false, "a1", "a1 BAD ", false},
    {false, "", "* BAD ", false},
    /* After STARTTLS and the handshake. */
    {true, "a1 CAPABILITY", "* CAPABILITY IMAP4rev1 ", false},
    {true, "a1 STARTTLS", "a1 BAD ", false},
    {true, "a1 NOOP", "a1 OK ", false},
    {true, "a1 LOGOUT", "* BYE ", true},
    {true, "a1 LOGIN bob wrong", "a1 NO ", false},
    {true, "a1 SELECT INBOX", "a1 BAD ", false},
    {true, "a1 FETCH 1 FLAGS", "a1 BAD ", false},
    {true, "a1 UID FETCH 1 FLAGS", "a1 BAD ", false},
    {true, "a1 EXPUNGE", "a1 BAD ", false},
    {true, "a1 FOO", "a1 BAD ", false},
    /* The refusals word the first that applies: unknown, then state, then TLS. */
    {false, "a1 SELECT INBOX", "a1 BAD Log in first\r\n", false},
    {false, "a1 ID NIL", "a1 BAD [PRIVACYREQUIRED] Start TLS first\r\n", false},
    {false, "a1 UID FETCH 1 FLAGS", "a1 BAD Unknown command\r\n", false},
    {true, "a1 STARTTLS", "a1 BAD TLS is already active\r\n", false},
    {true, "a1 UID FETCH 1 FLAGS", "a1 BAD Unknown command\r\n", false},
    {true, "a1 CLOSE", "a1 BAD Log in first\r\n", false},
    /* The same lookup decides before a literal's continuation. */
    {false, "a1 LOGIN {3}", "a1 BAD [PRIVACYREQUIRED] Start TLS first\r\n", false},
    {false, "a1 SELECT {5}", "a1 BAD Log in first\r\n", false},
    {false, "a1 FOO {5}", "a1 BAD Unknown command\r\n", false},
    {true, "a1 UID FETCH {5}", "a1 BAD Unknown command\r\n", false},
    {true, "a1 CREATE {5}", "a1 BAD Log in first\r\n", false},
    {true, "a1 LOGIN {3}", "+ ", false},
    {true, "a1 STARTTLS {3}", "a1 BAD TLS is already active\r\n", false},
};

/* Criterion may run each case in a fresh process (addresses differ under ASLR): the
 * parameters are indices into the static table, never pointers. */
static size_t indices[sizeof(rows) / sizeof(rows[0])];

ParameterizedTestParameters(imap, row)
{
	size_t n = sizeof(rows) / sizeof(rows[0]);
	for (size_t i = 0; i < n; i++)
		indices[i] = i;
	return cr_make_param_array(size_t, indices, n);
}

ParameterizedTest(size_t *i, imap, row)
{
	const struct row *r = &rows[*i];
	struct conn *c = open_session(r->tls);
	say(c, r->in);
	const char *out = fake_conn_output(c);
	cr_expect(starts_with(out, r->prefix), "in: %s\nout: %s", r->in, out);
	cr_expect(strlen(out) >= 2 && strcmp(out + strlen(out) - 2, "\r\n") == 0, "in: %s", r->in);
	cr_expect_eq(fake_conn_closed(c), r->closed, "in: %s", r->in);
	fake_conn_free(c);
}

Test(imap, capabilities_before_and_after_tls)
{
	struct conn *c = open_session(false);
	fake_conn_line(c, "a1 CAPABILITY");
	const char *out = fake_conn_output(c);
	cr_assert(strstr(out, " IMAP4rev2") && strstr(out, " STARTTLS") &&
	              strstr(out, " LOGINDISABLED"),
	          "%s", out);
	cr_assert(strstr(out, "AUTH=") == NULL, "%s", out);
	cr_assert(strstr(out, "\r\na1 OK ") != NULL, "%s", out);
	fake_conn_line(c, "a2 STARTTLS");
	fake_conn_tls_ready(c);
	fake_conn_clear_output(c);
	fake_conn_line(c, "a3 CAPABILITY");
	out = fake_conn_output(c);
	cr_assert(strstr(out, " AUTH=PLAIN") && strstr(out, " SASL-IR"), "%s", out);
	cr_assert(strstr(out, "STARTTLS") == NULL && strstr(out, "LOGINDISABLED") == NULL, "%s",
	          out);
	fake_conn_free(c);
}

Test(imap, implicit_tls_greeting)
{
	listener.tls = CFG_TLS_IMPLICIT;
	struct conn *c = fake_conn_open(&imap_proto_handler, &cfg, &listener, true);
	const char *g = fake_conn_output(c);
	cr_assert(starts_with(g, "* OK [CAPABILITY IMAP4rev1 "), "%s", g);
	cr_assert(strstr(g, "AUTH=PLAIN") != NULL, "%s", g);
	cr_assert(strstr(g, "STARTTLS") == NULL && strstr(g, "LOGINDISABLED") == NULL, "%s", g);
	fake_conn_free(c);
}

Test(imap, tag_of_64_is_fine_65_and_1000_are_not)
{
	char line[1100];
	struct conn *c = open_session(false);

	memset(line, 'a', 64);
	memcpy(line + 64, " NOOP", 6);
	fake_conn_line(c, line);
	cr_assert(starts_with(fake_conn_output(c), "aaaa"), "%s", fake_conn_output(c));
	cr_assert(strstr(fake_conn_output(c), " OK ") != NULL);
	fake_conn_clear_output(c);
	memset(line, 'a', 1000);
	memcpy(line + 1000, " NOOP", 6);
	fake_conn_line(c, line);
	cr_assert(starts_with(fake_conn_output(c), "* BAD "), "%s", fake_conn_output(c));
	fake_conn_free(c);
}

Test(imap, nul_in_command_line_is_refused)
{
	struct conn *c = open_session(true);
	fake_conn_line_n(c, "a1 NO\0OP", 8);
	cr_assert(strstr(fake_conn_output(c), " BAD ") != NULL, "%s", fake_conn_output(c));
	cr_assert(strstr(fake_conn_output(c), " OK ") == NULL, "%s", fake_conn_output(c));
	fake_conn_free(c);
}

Test(imap, error_limit_says_bye)
{
	cfg.limits.errors = 3;
	struct conn *c = open_session(false);
	fake_conn_line(c, "a1 FOO");
	fake_conn_line(c, "a2 BAR");
	cr_assert(!fake_conn_closed(c));
	fake_conn_line(c, "a3 BAZ");
	cr_assert(strstr(fake_conn_output(c), "* BYE ") != NULL, "%s", fake_conn_output(c));
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(imap, command_limit_before_login_says_bye)
{
	cfg.limits.commands = 2;
	struct conn *c = open_session(false);
	fake_conn_line(c, "a1 NOOP");
	fake_conn_line(c, "a2 NOOP");
	cr_assert(!fake_conn_closed(c));
	fake_conn_line(c, "a3 NOOP");
	cr_assert(strstr(fake_conn_output(c), "* BYE ") != NULL, "%s", fake_conn_output(c));
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(imap, line_too_long_is_refused_untagged)
{
	struct conn *c = open_session(false);
	fake_conn_too_long(c);
	cr_assert(starts_with(fake_conn_output(c), "* BAD "), "%s", fake_conn_output(c));
	fake_conn_free(c);
}

Test(imap, timeout_and_shutdown_say_bye)
{
	struct conn *c = open_session(false);
	fake_conn_timeout(c);
	cr_assert(starts_with(fake_conn_output(c), "* BYE "), "%s", fake_conn_output(c));
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_shutdown(c);
	cr_assert_str_eq(fake_conn_output(c), "* BYE Server shutting down\r\n");
	fake_conn_free(c);
}

Test(imap, certificate_goodbyes_say_why)
{
	struct conn *c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_REVOKED);
	cr_assert_str_eq(fake_conn_output(c), "* BYE Your client certificate was revoked\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CRL_STALE);
	cr_assert_str_eq(fake_conn_output(c),
	                 "* BYE [UNAVAILABLE] Client certificates cannot be checked: the "
	                 "revocation list is out of date\r\n");
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_INVALID);
	cr_assert_str_eq(fake_conn_output(c),
	                 "* BYE Your client certificate is no longer valid\r\n");
	fake_conn_free(c);
}

/* The session itself ignores lines between STARTTLS and the handshake (the real
 * conn also discards them). */
Test(imap, pipelined_after_starttls_is_never_executed)
{
	struct conn *c = open_session(false);
	fake_conn_line(c, "a1 STARTTLS");
	fake_conn_line(c, "a2 LOGOUT");
	fake_conn_line(c, "a3 LOGIN bob secret");
	cr_assert_str_eq(fake_conn_output(c), "a1 OK Begin TLS negotiation now\r\n");
	cr_assert(!fake_conn_closed(c));
	fake_conn_free(c);
}

/* ---- Through the store ---- */

static bool contains(const char *s, const char *part)
{
	return strstr(s, part) != NULL;
}

static struct conn *open_logged_in(void)
{
	struct conn *c = open_session(true);
	say(c, "l1 LOGIN alice@corp.example pw-alice");
	cr_assert(starts_with(fake_conn_output(c), "l1 OK "), "%s", fake_conn_output(c));
	fake_conn_clear_output(c);
	return c;
}

Test(imap, login_select_and_fetch_a_delivered_message)
{
	struct conn *c = open_logged_in();
	say(c, "a1 SELECT INBOX");
	const char *out = fake_conn_output(c);
	cr_assert(contains(out, "* 1 EXISTS\r\n* 1 RECENT\r\n"), "%s", out);
	cr_assert(contains(out, "* OK [UIDNEXT 2]"), "%s", out);
	cr_assert(contains(out, "\r\na1 OK [READ-WRITE] "), "%s", out);
	fake_conn_clear_output(c);

	say(c, "a2 FETCH 1 (FLAGS BODY[])");
	out = fake_conn_output(c);
	char body[256];
	snprintf(body, sizeof(body), "BODY[] {%zu}\r\n%s)\r\n", strlen(ALICE_MSG), ALICE_MSG);
	cr_assert(starts_with(out, "* 1 FETCH ("), "%s", out);
	cr_assert(contains(out, body), "%s", out);
	cr_assert(contains(out, "\r\na2 OK "), "%s", out);
	fake_conn_clear_output(c);

	/* BODY[] set \Seen in the store: a fresh FETCH reads it back. The message is new to
	 * the mailbox and this session selected it first: \Recent here. */
	say(c, "a3 FETCH 1 (FLAGS)");
	out = fake_conn_output(c);
	cr_assert(starts_with(out, "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"), "%s", out);
	cr_assert(contains(out, "\r\na3 OK "), "%s", out);
	fake_conn_free(c);
}

Test(imap, wrong_password_for_a_store_user_is_refused)
{
	struct conn *c = open_session(true);
	say(c, "a1 LOGIN alice@corp.example not-her-password");
	cr_assert(starts_with(fake_conn_output(c), "a1 NO [AUTHENTICATIONFAILED] "), "%s",
	          fake_conn_output(c));
	fake_conn_clear_output(c);
	say(c, "a2 SELECT INBOX");
	cr_assert(starts_with(fake_conn_output(c), "a2 BAD "), "%s", fake_conn_output(c));
	fake_conn_free(c);
}

Test(imap, select_a_created_mailbox_and_a_missing_one)
{
	cr_assert_gt(support_mem_mailbox_create(sv.store, alice, "Projects"), 0);
	struct conn *c = open_logged_in();
	say(c, "a1 EXAMINE Projects");
	const char *out = fake_conn_output(c);
	cr_assert(contains(out, "* 0 EXISTS\r\n"), "%s", out);
	cr_assert(contains(out, "\r\na1 OK [READ-ONLY] "), "%s", out);
	fake_conn_clear_output(c);
	/* A failed SELECT leaves the one before closed (RFC 7162 3.2.11). */
	say(c, "a2 SELECT Nowhere");
	out = fake_conn_output(c);
	cr_assert(contains(out, "\r\na2 NO [NONEXISTENT] "), "%s", out);
	fake_conn_clear_output(c);
	say(c, "a3 FETCH 1 (FLAGS)");
	cr_assert(starts_with(fake_conn_output(c), "a3 BAD "), "%s", fake_conn_output(c));
	fake_conn_free(c);
}

/* ---- AUTHENTICATE SCRAM-SHA-256 through conn_fake.c's scripted exchange ------------- */

extern unsigned fake_scram_live;

#define SCRAM_FIRST "+ c2VydmVyLWZpcnN0\r\n" /* the fake's server-first challenge */
#define SCRAM_FINAL "+ c2VydmVyLWZpbmFs\r\n" /* and its server-final */

static void expect(struct conn *c, const char *line, const char *prefix)
{
	fake_conn_clear_output(c);
	fake_conn_line(c, line);
	const char *out = fake_conn_output(c);
	cr_assert(starts_with(out, prefix), "after \"%s\": %s", line, out);
}

Test(imap, scram_is_offered_next_to_plain)
{
	struct conn *c = open_session(true);
	fake_conn_line(c, "a1 CAPABILITY");
	cr_assert(contains(fake_conn_output(c), " AUTH=PLAIN AUTH=SCRAM-SHA-256 SASL-IR"), "%s",
	          fake_conn_output(c));
	/* -PLUS is not offered here (no binding), so it is as unknown as any name. */
	expect(c, "a2 AUTHENTICATE SCRAM-SHA-256-PLUS cD10bHMtZXhwb3J0ZXIsLG49YSxyPWI=",
	       "a2 NO Unsupported");
	fake_conn_free(c);
}

Test(imap, scram_with_and_without_sasl_ir)
{
	struct conn *c = open_session(true);
	expect(c, "a1 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "", "a1 OK [CAPABILITY IMAP4rev1 ");
	cr_assert(!contains(fake_conn_output(c), "AUTH="), "%s", fake_conn_output(c));
	cr_assert_eq(fake_scram_live, 0);
	fake_conn_free(c);

	c = open_session(true);
	expect(c, "a1 authenticate scram-sha-256", "+ \r\n");
	expect(c, "Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "", "a1 OK ");
	cr_assert_eq(fake_scram_live, 0);
	fake_conn_free(c);
}

Test(imap, scram_refusals_end_the_command_and_keep_the_session)
{
	struct conn *c = open_session(true);
	/* Cancelled at each step. */
	expect(c, "a1 AUTHENTICATE SCRAM-SHA-256", "+ \r\n");
	expect(c, "*", "a1 BAD ");
	expect(c, "a2 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "*", "a2 BAD ");
	expect(c, "a3 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "*", "a3 BAD ");
	/* Undecodable first messages, an empty one, a wrong proof, a non-empty answer to the
	 * server-final-message. */
	expect(c, "b1 AUTHENTICATE SCRAM-SHA-256 !!!", "b1 BAD ");
	expect(c, "b2 AUTHENTICATE SCRAM-SHA-256 =", "b2 BAD ");
	expect(c, "b3 AUTHENTICATE SCRAM-SHA-256", "+ \r\n");
	expect(c, "", "b3 BAD ");
	expect(c, "b4 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "wrong", "b4 NO [AUTHENTICATIONFAILED] ");
	expect(c, "b5 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "dj1ubw==", "b5 BAD ");
	cr_assert_eq(fake_scram_live, 0);
	/* Still logged out, and a login still works. */
	expect(c, "c1 SELECT INBOX", "c1 BAD ");
	expect(c, "c2 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "", "c2 OK ");
	fake_conn_free(c);
}

Test(imap, scram_response_too_long_ends_the_command)
{
	struct conn *c = open_session(true);
	expect(c, "a1 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	fake_conn_clear_output(c);
	fake_conn_too_long(c);
	cr_assert(starts_with(fake_conn_output(c), "a1 BAD [TOOBIG] "), "%s", fake_conn_output(c));
	cr_assert_eq(fake_scram_live, 0);
	expect(c, "a2 NOOP", "a2 OK ");
	fake_conn_free(c);
}

Test(imap, scram_exchange_pending_at_close_is_freed)
{
	struct conn *c = open_session(true);
	expect(c, "a1 AUTHENTICATE SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	cr_assert_eq(fake_scram_live, 1);
	fake_conn_free(c);
	cr_assert_eq(fake_scram_live, 0);
}

/* COMPRESS (RFC 4978): after login only, DEFLATE only, once; its tagged OK is the last
 * thing written before compression starts. */
Test(imap, compress_deflate)
{
	struct conn *c = open_session(true);
	say(c, "a0 CAPABILITY");
	cr_assert(!contains(fake_conn_output(c), "COMPRESS"), "%s", fake_conn_output(c));
	fake_conn_clear_output(c);
	say(c, "a0 COMPRESS DEFLATE");
	cr_assert(starts_with(fake_conn_output(c), "a0 BAD Log in first\r\n"), "%s",
	          fake_conn_output(c));
	cr_assert(!fake_conn_compressed(c, NULL));
	fake_conn_free(c);

	c = open_logged_in();
	say(c, "a1 CAPABILITY");
	cr_assert(contains(fake_conn_output(c), " COMPRESS=DEFLATE"), "%s", fake_conn_output(c));
	fake_conn_clear_output(c);
	const char *bad[] = {"a2 COMPRESS", "a2 COMPRESS GZIP", "a2 COMPRESS DEFLATE DEFLATE",
	                     "a2 COMPRESS \"DEFLATE\"", "a2 COMPRESS (DEFLATE)"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		say(c, bad[i]);
		cr_assert(starts_with(fake_conn_output(c), "a2 BAD "), "%s: %s", bad[i],
		          fake_conn_output(c));
		cr_assert(!fake_conn_compressed(c, NULL));
		fake_conn_clear_output(c);
	}
	say(c, "a3 compress deflate");
	size_t at = 0;
	cr_assert(fake_conn_compressed(c, &at));
	cr_assert_str_eq(fake_conn_output(c), "a3 OK DEFLATE active\r\n");
	cr_assert_eq(at, strlen("a3 OK DEFLATE active\r\n"));
	fake_conn_clear_output(c);
	say(c, "a4 CAPABILITY");
	cr_assert(!contains(fake_conn_output(c), "COMPRESS"), "%s", fake_conn_output(c));
	fake_conn_clear_output(c);
	say(c, "a5 COMPRESS DEFLATE");
	cr_assert_str_eq(fake_conn_output(c),
	                 "a5 NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n");
	fake_conn_clear_output(c);
	/* Selected state too. */
	say(c, "a6 SELECT INBOX");
	cr_assert(contains(fake_conn_output(c), "\r\na6 OK [READ-WRITE] "), "%s",
	          fake_conn_output(c));
	fake_conn_free(c);

	c = open_logged_in();
	say(c, "b1 SELECT INBOX");
	fake_conn_clear_output(c);
	say(c, "b2 COMPRESS DEFLATE");
	cr_assert_str_eq(fake_conn_output(c), "b2 OK DEFLATE active\r\n");
	cr_assert(fake_conn_compressed(c, NULL));
	fake_conn_free(c);
}
