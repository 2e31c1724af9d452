/*
 * The POP3 session's front door against the fake conn: every command before and after TLS
 * with its exact reply, STLS injection, limits, hostile lines. Logins ask the real store on
 * the mem backend (tests/unit/support/mem_store.h) through pop3_fakes.c's auth_login. (The
 * maildrop half is tested further in test_pop3_transcript.c, test_pop3_mail.c and the
 * integration tests.)
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "server/notify.h"
#include "server/pop3/pop3.h"
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
bool fake_conn_closed(const struct conn *c);
const char *fake_conn_close_reason(const struct conn *c);
void fake_conn_free(struct conn *c);
void fake_conn_set_services(struct conn *c, struct services *sv);

#define CAPA_PLAIN                                                                                 \
	"+OK Capability list "                                                                     \
	"follows\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n.\r\n"
#define CAPA_TLS                                                                                   \
	"+OK Capability list follows\r\nUSER\r\nSASL PLAIN "                                       \
	"SCRAM-SHA-256\r\nRESP-CODES\r\nPIPELINING\r\n"                                            \
	"TOP\r\nUIDL\r\nAUTH-RESP-CODE\r\n.\r\n"
#define NEED_TLS_AUTH "-ERR [AUTH] TLS required, use STLS first\r\n"
#define NEED_TLS      "-ERR TLS required, use STLS first\r\n"
#define NOT_AUTHED    "-ERR Not authenticated\r\n"

static struct config cfg;
static struct cfg_listener listener;
static struct services sv;
static int64_t alice;

/* A mem store with alice@corp.example (password pw-alice) and nothing in her INBOX. */
static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	listener.protocol = CFG_PROTO_POP3;
	listener.tls = CFG_TLS_STARTTLS;
	memset(&sv, 0, sizeof(sv));
	sv.cfg = &cfg;
	sv.notify = notify_new();
	cr_assert_eq(support_mem_store_open(&sv.store), 0);
	alice = support_mem_user_add(sv.store, "alice@corp.example", "pw-alice");
	cr_assert_gt(alice, 0);
}

static void teardown(void)
{
	support_mem_store_close(sv.store);
	sv.store = NULL;
	notify_free(sv.notify);
}

TestSuite(pop3, .init = setup, .fini = teardown);

/* One line and every store call it starts, answered. */
static void say(struct conn *c, const char *line)
{
	fake_conn_line(c, line);
	cr_assert(support_mem_settle(c), "no store answer after %s", line);
}

static struct conn *open_session(bool tls)
{
	struct conn *c = fake_conn_open(&pop3_proto_handler, &cfg, &listener, false);
	fake_conn_set_services(c, &sv);
	cr_assert_str_eq(fake_conn_output(c), "+OK sealmail ready\r\n");
	if (tls) {
		fake_conn_line(c, "STLS");
		cr_assert_eq(fake_conn_start_tls_calls(c), 1);
		fake_conn_tls_ready(c);
	}
	fake_conn_clear_output(c);
	return c;
}

struct row {
	bool tls;
	const char *pre;
	const char *in;
	const char *out;
	bool closed;
};

static const struct row rows[] = {
    /* Before TLS. */
    {false, NULL, "CAPA", CAPA_PLAIN, false},
    {false, NULL, "capa", CAPA_PLAIN, false},
    {false, NULL, "CAPA x", "-ERR Unexpected arguments\r\n", false},
    {false, NULL, "NOOP", "+OK\r\n", false},
    {false, NULL, "QUIT", "+OK Bye\r\n", true},
    {false, NULL, "qUiT", "+OK Bye\r\n", true},
    {false, NULL, "STLS", "+OK Begin TLS negotiation\r\n", false},
    {false, NULL, "STLS now", "-ERR Unexpected arguments\r\n", false},
    {false, NULL, "USER bob@corp.test", NEED_TLS_AUTH, false},
    {false, NULL, "PASS secret", NEED_TLS_AUTH, false},
    {false, NULL, "AUTH PLAIN", NEED_TLS_AUTH, false},
    {false, NULL, "AUTH PLAIN AGJvYgBzZWNyZXQ=", NEED_TLS_AUTH, false},
    {false, NULL, "APOP bob 0123456789abcdef", NEED_TLS_AUTH, false},
    {false, NULL, "STAT", NEED_TLS, false},
    {false, NULL, "LIST", NEED_TLS, false},
    {false, NULL, "RETR 1", NEED_TLS, false},
    {false, NULL, "DELE 1", NEED_TLS, false},
    {false, NULL, "UIDL", NEED_TLS, false},
    {false, NULL, "TOP 1 0", NEED_TLS, false},
    {false, NULL, "RSET", NEED_TLS, false},
    {false, NULL, "FOO", "-ERR Unknown command\r\n", false},
    {false, NULL, "STLSX", "-ERR Unknown command\r\n", false},
    {false, NULL, "", "-ERR Empty command line\r\n", false},
    {false, NULL, " CAPA", "-ERR Unknown command\r\n", false},
    /* After STLS and the handshake. */
    {true, NULL, "CAPA", CAPA_TLS, false},
    {true, NULL, "STLS", "-ERR TLS already active\r\n", false},
    {true, NULL, "NOOP", "+OK\r\n", false},
    {true, NULL, "QUIT", "+OK Bye\r\n", true},
    {true, NULL, "USER bob@corp.test", "+OK send PASS\r\n", false},
    {true, NULL, "PASS secret", "-ERR USER first\r\n", false},
    {true, "USER bob@corp.test", "PASS wrong", "-ERR [AUTH] invalid user name or password\r\n",
     false},
    {true, NULL, "AUTH PLAIN", "+ \r\n", false},
    {true, NULL, "APOP bob 0123456789abcdef", "-ERR APOP not supported\r\n", false},
    {true, NULL, "STAT", NOT_AUTHED, false},
    {true, NULL, "LIST", NOT_AUTHED, false},
    {true, NULL, "RETR 1", NOT_AUTHED, false},
    {true, NULL, "DELE 1", NOT_AUTHED, false},
    {true, NULL, "UIDL", NOT_AUTHED, false},
    {true, NULL, "TOP 1 0", NOT_AUTHED, false},
    {true, NULL, "RSET", NOT_AUTHED, false},
    {true, NULL, "FOO", "-ERR Unknown command\r\n", false},
};

/* Criterion may run each case in a fresh process (addresses differ under ASLR): the
 * parameters are indices into the static table, never pointers. */
static size_t indices[sizeof(rows) / sizeof(rows[0])];

ParameterizedTestParameters(pop3, row)
{
	size_t n = sizeof(rows) / sizeof(rows[0]);
	for (size_t i = 0; i < n; i++)
		indices[i] = i;
	return cr_make_param_array(size_t, indices, n);
}

ParameterizedTest(size_t *i, pop3, row)
{
	const struct row *r = &rows[*i];
	struct conn *c = open_session(r->tls);
	if (r->pre != NULL) {
		say(c, r->pre);
		fake_conn_clear_output(c);
	}
	say(c, r->in);
	cr_expect_str_eq(fake_conn_output(c), r->out, "in: %s", r->in);
	cr_expect_eq(fake_conn_closed(c), r->closed, "in: %s", r->in);
	fake_conn_free(c);
}

Test(pop3, implicit_tls)
{
	listener.tls = CFG_TLS_IMPLICIT;
	struct conn *c = fake_conn_open(&pop3_proto_handler, &cfg, &listener, true);
	fake_conn_set_services(c, &sv);
	fake_conn_line(c, "CAPA");
	fake_conn_line(c, "STLS");
	cr_assert_str_eq(fake_conn_output(c),
	                 "+OK sealmail ready\r\n" CAPA_TLS "-ERR TLS already active\r\n");
	cr_assert_eq(fake_conn_start_tls_calls(c), 0);
	fake_conn_free(c);
}

Test(pop3, pipelined_after_stls_is_never_executed)
{
	struct conn *c = open_session(false);
	fake_conn_line(c, "STLS");
	fake_conn_line(c, "QUIT");
	fake_conn_line(c, "USER bob@corp.test");
	fake_conn_too_long(c);
	cr_assert_str_eq(fake_conn_output(c), "+OK Begin TLS negotiation\r\n");
	cr_assert(!fake_conn_closed(c));
	fake_conn_tls_ready(c);
	fake_conn_clear_output(c);
	/* USER was not remembered: PASS still needs it. */
	fake_conn_line(c, "PASS secret");
	cr_assert_str_eq(fake_conn_output(c), "-ERR USER first\r\n");
	fake_conn_free(c);
}

Test(pop3, sasl_response_line_is_not_a_command)
{
	struct conn *c = open_session(true);
	fake_conn_line(c, "AUTH PLAIN");
	fake_conn_clear_output(c);
	say(c, "QUIT"); /* the client's SASL response, not QUIT */
	cr_assert(!fake_conn_closed(c));
	cr_assert(strncmp(fake_conn_output(c), "-ERR", 4) == 0, "%s", fake_conn_output(c));
	fake_conn_free(c);
}

Test(pop3, error_limit_closes)
{
	cfg.limits.errors = 3;
	struct conn *c = open_session(false);
	fake_conn_line(c, "FOO");
	fake_conn_line(c, "USER bob");
	cr_assert(!fake_conn_closed(c));
	fake_conn_line(c, "BAR");
	cr_assert_str_eq(fake_conn_output(c), "-ERR Unknown command\r\n" NEED_TLS_AUTH
	                                      "-ERR Unknown command\r\n-ERR Too many errors\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_line(c, "CAPA");
	fake_conn_free(c);
}

Test(pop3, command_limit_closes)
{
	cfg.limits.commands = 2;
	struct conn *c = open_session(false);
	fake_conn_line(c, "NOOP");
	fake_conn_line(c, "NOOP");
	fake_conn_line(c, "NOOP");
	cr_assert_str_eq(fake_conn_output(c), "+OK\r\n+OK\r\n-ERR Too many commands\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(pop3, line_too_long_closes)
{
	struct conn *c = open_session(true);
	fake_conn_too_long(c);
	cr_assert_str_eq(fake_conn_output(c), "-ERR Line too long\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(pop3, nul_in_command)
{
	struct conn *c = open_session(true);
	fake_conn_line_n(c, "NO\0OP", 5);
	fake_conn_line_n(c, "USER a\0b", 8);
	cr_assert_str_eq(fake_conn_output(c),
	                 "-ERR NUL in command line\r\n-ERR NUL in command line\r\n");
	fake_conn_free(c);
}

Test(pop3, timeout_is_silent)
{
	struct conn *c = open_session(false);
	fake_conn_timeout(c);
	cr_assert_str_eq(fake_conn_output(c), "");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(pop3, shutdown_says_err)
{
	struct conn *c = open_session(true);
	fake_conn_shutdown(c);
	cr_assert_str_eq(fake_conn_output(c), "-ERR [SYS/TEMP] Server shutting down\r\n");
	fake_conn_free(c);
}

/* RFC 3206: [AUTH] for a refused credential (no point retrying), [SYS/TEMP] only where
 * the server must be fixed first. */
Test(pop3, certificate_goodbyes_say_why)
{
	struct conn *c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_REVOKED);
	cr_assert_str_eq(fake_conn_output(c),
	                 "-ERR [AUTH] Your client certificate was revoked\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CRL_STALE);
	cr_assert_str_eq(fake_conn_output(c),
	                 "-ERR [SYS/TEMP] Client certificates cannot be checked: the revocation "
	                 "list is out of date\r\n");
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_INVALID);
	cr_assert_str_eq(fake_conn_output(c),
	                 "-ERR [AUTH] Your client certificate is no longer valid\r\n");
	fake_conn_free(c);
}

/* ---- Through the store ---- */

Test(pop3, login_with_a_store_user_opens_the_maildrop)
{
	cr_assert_eq(support_mem_deliver(sv.store, alice, "Subject: hi\r\n\r\nHello\r\n"), 0);
	struct conn *c = open_session(true);
	say(c, "USER alice@corp.example");
	say(c, "PASS pw-alice");
	cr_assert_str_eq(fake_conn_output(c), "+OK send PASS\r\n+OK maildrop locked and ready\r\n");
	fake_conn_clear_output(c);
	say(c, "STAT");
	cr_assert_str_eq(fake_conn_output(c), "+OK 1 22\r\n");
	fake_conn_clear_output(c);
	say(c, "RETR 1");
	cr_assert_str_eq(fake_conn_output(c), "+OK 22 octets\r\nSubject: hi\r\n\r\nHello\r\n.\r\n");
	fake_conn_clear_output(c);
	/* A wrong password for her is refused like an unknown user's. */
	struct conn *d = open_session(true);
	say(d, "USER alice@corp.example");
	fake_conn_clear_output(d);
	say(d, "PASS pw-bob");
	cr_assert_str_eq(fake_conn_output(d), "-ERR [AUTH] invalid user name or password\r\n");
	fake_conn_free(d);
	say(c, "QUIT");
	cr_assert(strncmp(fake_conn_output(c), "+OK", 3) == 0, "%s", fake_conn_output(c));
	fake_conn_free(c);
}

/* ---- AUTH SCRAM-SHA-256 through conn_fake.c's scripted exchange --------------------- */

extern unsigned fake_scram_live;

#define SCRAM_FIRST "+ c2VydmVyLWZpcnN0\r\n" /* the fake's server-first challenge */
#define SCRAM_FINAL "+ c2VydmVyLWZpbmFs\r\n" /* and its server-final */

static void expect(struct conn *c, const char *line, const char *want)
{
	fake_conn_clear_output(c);
	say(c, line);
	cr_assert_str_eq(fake_conn_output(c), want, "after \"%s\"", line);
}

Test(pop3, scram_with_and_without_initial_response)
{
	cr_assert_eq(alice, 1); /* the fake exchange logs in user 1 */
	struct conn *c = open_session(true);
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "", "+OK maildrop locked and ready\r\n");
	cr_assert_eq(fake_scram_live, 0);
	expect(c, "QUIT", "+OK Bye\r\n");
	fake_conn_free(c);

	c = open_session(true);
	expect(c, "auth scram-sha-256", "+ \r\n");
	expect(c, "Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "", "+OK maildrop locked and ready\r\n");
	fake_conn_free(c);
}

Test(pop3, scram_refusals)
{
	struct conn *c = open_session(true);
	expect(c, "AUTH SCRAM-SHA-256", "+ \r\n");
	expect(c, "*", "-ERR authentication cancelled\r\n");
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "*", "-ERR authentication cancelled\r\n");
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "*", "-ERR authentication cancelled\r\n");
	expect(c, "AUTH SCRAM-SHA-256 !!!", "-ERR [AUTH] malformed SASL SCRAM message\r\n");
	expect(c, "AUTH SCRAM-SHA-256 =", "-ERR [AUTH] malformed SASL SCRAM message\r\n");
	cr_assert_eq(fake_scram_live, 0);
	fake_conn_free(c);

	c = open_session(true);
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "wrong", "-ERR [AUTH] invalid user name or password\r\n");
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	expect(c, "proof", SCRAM_FINAL);
	expect(c, "dj1ubw==", "-ERR [AUTH] the answer to the last challenge must be empty\r\n");
	expect(c, "STAT", "-ERR Not authenticated\r\n");
	expect(c, "AUTH SCRAM-SHA-256-PLUS Zmlyc3Q=", "-ERR [AUTH] unsupported mechanism\r\n");
	cr_assert_eq(fake_scram_live, 0);
	fake_conn_free(c);
}

Test(pop3, scram_exchange_pending_at_close_is_freed)
{
	struct conn *c = open_session(true);
	expect(c, "AUTH SCRAM-SHA-256 Zmlyc3Q=", SCRAM_FIRST);
	cr_assert_eq(fake_scram_live, 1);
	fake_conn_free(c);
	cr_assert_eq(fake_scram_live, 0);
}
