/*
 * The SMTP front door against the fake conn: every command before and after TLS with its
 * exact reply, STARTTLS injection, limits, hostile lines; and the shared dispatcher.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server/cmdtab.h"
#include "server/smtp/smtp.h"

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

#define EHLO_PLAIN "250-mail.test\r\n250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_TLS_COMMON                                                                            \
	"250-mail.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"     \
	"250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n"
#define EHLO_TLS_SUBMISSION                                                                        \
	EHLO_TLS_COMMON "250-REQUIRETLS\r\n250 AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"
#define EHLO_TLS_SMTP EHLO_TLS_COMMON "250 REQUIRETLS\r\n"
#define NEED_TLS      "530 5.7.0 Must issue a STARTTLS command first\r\n"

static struct config cfg;
static struct cfg_listener listener;

static void setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&listener, 0, sizeof(listener));
	cfg.hostname = "mail.test";
	cfg.limits.message_size = 1000;
	cfg.limits.commands = 100;
	cfg.limits.errors = 10;
	listener.protocol = CFG_PROTO_SUBMISSION;
	listener.tls = CFG_TLS_STARTTLS;
}

/* A session on a STARTTLS listener; with tls, STARTTLS has run and the handshake ended. */
static struct conn *open_session(bool tls)
{
	struct conn *c = fake_conn_open(&smtp_proto_handler, &cfg, &listener, false);
	cr_assert_str_eq(fake_conn_output(c), "220 mail.test ESMTP sealmail\r\n");
	if (tls) {
		fake_conn_line(c, "STARTTLS");
		cr_assert_eq(fake_conn_start_tls_calls(c), 1);
		fake_conn_tls_ready(c);
	}
	fake_conn_clear_output(c);
	return c;
}

struct row {
	bool tls;
	const char *pre; /* sent first, its output dropped; NULL: none */
	const char *in;
	const char *out;
	bool closed;
};

static const struct row rows[] = {
    /* Before TLS. */
    {false, NULL, "EHLO client.test", EHLO_PLAIN, false},
    {false, NULL, "ehlo client.test", EHLO_PLAIN, false},
    {false, NULL, "EHLO", "501 5.5.4 Syntax: EHLO hostname\r\n", false},
    {false, NULL, "HELO client.test", "250 mail.test\r\n", false},
    {false, NULL, "HELO", "501 5.5.4 Syntax: HELO hostname\r\n", false},
    {false, NULL, "NOOP", "250 2.0.0 OK\r\n", false},
    {false, NULL, "noop anything", "250 2.0.0 OK\r\n", false},
    {false, NULL, "RSET", "250 2.0.0 OK\r\n", false},
    {false, NULL, "HELP", "214 2.0.0 sealmail: see RFC 5321\r\n", false},
    {false, NULL, "VRFY bob",
     "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n", false},
    {false, NULL, "VRFY", "501 5.5.4 Syntax: VRFY address\r\n", false},
    {false, NULL, "QUIT", "221 2.0.0 Bye\r\n", true},
    {false, NULL, "QUIT now", "501 5.5.4 Syntax: QUIT\r\n", false},
    {false, NULL, "STARTTLS", "220 2.0.0 Ready to start TLS\r\n", false},
    {false, NULL, "StartTls", "220 2.0.0 Ready to start TLS\r\n", false},
    {false, NULL, "STARTTLS now", "501 5.5.4 Syntax: STARTTLS\r\n", false},
    {false, NULL, "AUTH PLAIN AGJvYgBzZWNyZXQ=", NEED_TLS, false},
    {false, "EHLO c", "AUTH LOGIN", NEED_TLS, false},
    {false, "EHLO c", "MAIL FROM:<a@corp.test>", NEED_TLS, false},
    {false, NULL, "RCPT TO:<a@corp.test>", NEED_TLS, false},
    {false, NULL, "DATA", NEED_TLS, false},
    {false, NULL, "BDAT 10 LAST", NEED_TLS, false},
    {false, NULL, "ETRN corp.test", NEED_TLS, false},
    {false, NULL, "EXPN staff", NEED_TLS, false},
    {false, NULL, "FOO", "500 5.5.2 Command unrecognized\r\n", false},
    {false, NULL, "MAILFROM:<a@b>", "500 5.5.2 Command unrecognized\r\n", false},
    {false, NULL, "", "500 5.5.2 Syntax error\r\n", false},
    {false, NULL, " EHLO x", "500 5.5.2 Command unrecognized\r\n", false},
    /* After STARTTLS and the handshake. */
    {true, NULL, "EHLO client.test", EHLO_TLS_SUBMISSION, false},
    {true, NULL, "HELO client.test", "250 mail.test\r\n", false},
    {true, NULL, "STARTTLS", "503 5.5.1 TLS already active\r\n", false},
    {true, "EHLO c", "STARTTLS", "503 5.5.1 TLS already active\r\n", false},
    {true, NULL, "NOOP", "250 2.0.0 OK\r\n", false},
    {true, NULL, "QUIT", "221 2.0.0 Bye\r\n", true},
    {true, NULL, "AUTH PLAIN x", "503 5.5.1 Send EHLO or HELO first\r\n", false},
    {true, "EHLO c", "AUTH PLAIN AGJvYgBzZWNyZXQ=", "235 2.7.0 Authentication successful\r\n",
     false},
    {true, "EHLO c", "auth login", "334 VXNlcm5hbWU6\r\n", false},
    /* Not offered (no auth.channel_binding here): as unknown as any other. */
    {true, "EHLO c", "AUTH SCRAM-SHA-256-PLUS",
     "504 5.5.4 Unrecognized authentication mechanism\r\n", false},
    /* Login comes before the EHLO check on submission: MAIL needs AUTH, which needs EHLO. */
    {true, NULL, "MAIL FROM:<a@corp.test>", "530 5.7.0 Authentication required\r\n", false},
    {true, "EHLO c", "MAIL FROM:<a@corp.test>", "530 5.7.0 Authentication required\r\n", false},
    {true, "EHLO c", "RCPT TO:<a@corp.test>", "530 5.7.0 Authentication required\r\n", false},
    {true, "EHLO c", "DATA", "530 5.7.0 Authentication required\r\n", false},
    {true, "EHLO c", "EXPN staff", "502 5.5.1 Command not implemented\r\n", false},
    {true, "EHLO c", "VRFY bob",
     "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n", false},
    {true, NULL, "FOO", "500 5.5.2 Command unrecognized\r\n", false},
};

/* Criterion may run each case in a fresh process (addresses differ under ASLR): the
 * parameters are indices into the static tables, never pointers. */
static size_t indices[64];

static size_t *make_indices(size_t n)
{
	cr_assert(n <= sizeof(indices) / sizeof(indices[0]));
	for (size_t i = 0; i < n; i++)
		indices[i] = i;
	return indices;
}

ParameterizedTestParameters(smtp, row)
{
	size_t n = sizeof(rows) / sizeof(rows[0]);
	return cr_make_param_array(size_t, make_indices(n), n);
}

ParameterizedTest(size_t *i, smtp, row, .init = setup)
{
	const struct row *r = &rows[*i];
	struct conn *c = open_session(r->tls);
	if (r->pre != NULL) {
		fake_conn_line(c, r->pre);
		fake_conn_clear_output(c);
	}
	fake_conn_line(c, r->in);
	cr_expect_str_eq(fake_conn_output(c), r->out, "in: %s", r->in);
	cr_expect_eq(fake_conn_closed(c), r->closed, "in: %s", r->in);
	fake_conn_free(c);
}

/* The smtp listener (peer servers): no AUTH, no login needed for the transaction. */
static const struct row smtp_rows[] = {
    {true, NULL, "EHLO peer.test", EHLO_TLS_SMTP, false},
    {true, NULL, "MAIL FROM:<a@peer.test>", "503 5.5.1 Send EHLO or HELO first\r\n", false},
    {true, "EHLO peer.test", "MAIL FROM:<a@peer.test>", "250 2.1.0 Ok\r\n", false},
    {true, "EHLO peer.test", "RCPT TO:<a@corp.test>", "503 5.5.1 Need MAIL command first\r\n",
     false},
    {true, "EHLO peer.test", "DATA", "503 5.5.1 Need MAIL command first\r\n", false},
    /* a refused chunk is read first (RFC 3030), so the 503 comes after its byte */
    {true, "EHLO peer.test", "BDAT 1 LAST", "", false},
    {false, NULL, "MAIL FROM:<a@peer.test>", NEED_TLS, false},
};

ParameterizedTestParameters(smtp, peer_row)
{
	size_t n = sizeof(smtp_rows) / sizeof(smtp_rows[0]);
	return cr_make_param_array(size_t, make_indices(n), n);
}

ParameterizedTest(size_t *i, smtp, peer_row, .init = setup)
{
	const struct row *r = &smtp_rows[*i];
	listener.protocol = CFG_PROTO_SMTP;
	struct conn *c = open_session(r->tls);
	if (r->pre != NULL) {
		fake_conn_line(c, r->pre);
		fake_conn_clear_output(c);
	}
	fake_conn_line(c, r->in);
	cr_expect_str_eq(fake_conn_output(c), r->out, "in: %s", r->in);
	cr_expect_eq(fake_conn_closed(c), r->closed, "in: %s", r->in);
	fake_conn_free(c);
}

Test(smtp, implicit_tls_greets_and_offers_everything, .init = setup)
{
	listener.tls = CFG_TLS_IMPLICIT;
	struct conn *c = fake_conn_open(&smtp_proto_handler, &cfg, &listener, true);
	cr_assert_str_eq(fake_conn_output(c), "220 mail.test ESMTP sealmail\r\n");
	fake_conn_clear_output(c);
	fake_conn_line(c, "EHLO client.test");
	cr_assert_str_eq(fake_conn_output(c), EHLO_TLS_SUBMISSION);
	fake_conn_clear_output(c);
	fake_conn_line(c, "STARTTLS");
	cr_assert_str_eq(fake_conn_output(c), "503 5.5.1 TLS already active\r\n");
	cr_assert_eq(fake_conn_start_tls_calls(c), 0);
	fake_conn_free(c);
}

Test(smtp, pipelined_after_starttls_is_never_executed, .init = setup)
{
	struct conn *c = open_session(false);
	fake_conn_line(c, "EHLO client.test");
	fake_conn_clear_output(c);
	fake_conn_line(c, "STARTTLS");
	fake_conn_line(c, "EHLO evil.test");
	fake_conn_line(c, "MAIL FROM:<evil@evil.test>");
	fake_conn_line(c, "QUIT");
	fake_conn_too_long(c);
	cr_assert_str_eq(fake_conn_output(c), "220 2.0.0 Ready to start TLS\r\n");
	cr_assert_eq(fake_conn_start_tls_calls(c), 1);
	cr_assert(!fake_conn_closed(c));
	fake_conn_tls_ready(c);
	cr_assert_str_eq(fake_conn_output(c), "220 2.0.0 Ready to start TLS\r\n");
	fake_conn_clear_output(c);
	/* The EHLO before TLS is forgotten (RFC 3207 4.2). */
	fake_conn_line(c, "AUTH PLAIN");
	cr_assert_str_eq(fake_conn_output(c), "503 5.5.1 Send EHLO or HELO first\r\n");
	fake_conn_free(c);
}

/* A password for someone else on a connection that carries a certificate: the reply
 * says that, not that a certificate is required. */
Test(smtp, password_for_another_user_than_the_certificate, .init = setup)
{
	struct conn *c = open_session(true);
	fake_conn_line(c, "EHLO c");
	fake_conn_clear_output(c);
	fake_conn_line(c, "AUTH PLAIN AGJvYgBjZXJ0LW90aGVy");
	cr_assert_str_eq(fake_conn_output(c),
	                 "535 5.7.8 Authentication refused: the client certificate on this "
	                 "connection belongs to another user\r\n");
	fake_conn_free(c);
}

Test(smtp, error_limit_closes, .init = setup)
{
	cfg.limits.errors = 3;
	struct conn *c = open_session(false);
	fake_conn_line(c, "FOO");
	fake_conn_line(c, "MAIL FROM:<a@b>");
	cr_assert(!fake_conn_closed(c));
	fake_conn_line(c, "BAR");
	cr_assert_str_eq(fake_conn_output(c), "500 5.5.2 Command unrecognized\r\n" NEED_TLS
	                                      "500 5.5.2 Command unrecognized\r\n"
	                                      "421 4.7.0 Too many errors\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(smtp, command_limit_before_login_closes, .init = setup)
{
	cfg.limits.commands = 3;
	struct conn *c = open_session(false);
	for (int i = 0; i < 3; i++)
		fake_conn_line(c, "NOOP");
	cr_assert(!fake_conn_closed(c));
	fake_conn_line(c, "NOOP");
	cr_assert_str_eq(fake_conn_output(c), "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
	                                      "421 4.7.0 Too many commands\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(smtp, command_limit_on_peer_listener_counts_only_before_tls, .init = setup)
{
	listener.protocol = CFG_PROTO_SMTP;
	cfg.limits.commands = 3;
	struct conn *c = open_session(true); /* STARTTLS was command 1 */
	for (int i = 0; i < 10; i++)
		fake_conn_line(c, "NOOP");
	cr_assert(!fake_conn_closed(c));
	fake_conn_free(c);
}

Test(smtp, line_too_long_replies_and_closes, .init = setup)
{
	struct conn *c = open_session(false);
	fake_conn_too_long(c);
	cr_assert_str_eq(fake_conn_output(c),
	                 "500 5.5.6 Line too long\r\n421 4.7.0 mail.test Closing connection\r\n");
	cr_assert(fake_conn_closed(c));
	cr_assert_str_eq(fake_conn_close_reason(c), "line too long");
	fake_conn_free(c);
}

Test(smtp, nul_in_command_is_a_syntax_error, .init = setup)
{
	struct conn *c = open_session(true);
	fake_conn_line_n(c, "EHLO a\0b", 8);
	fake_conn_line_n(c, "NO\0OP", 5);
	cr_assert_str_eq(fake_conn_output(c),
	                 "500 5.5.2 Syntax error\r\n500 5.5.2 Syntax error\r\n");
	fake_conn_free(c);
}

Test(smtp, timeout_says_421, .init = setup)
{
	struct conn *c = open_session(false);
	fake_conn_timeout(c);
	cr_assert_str_eq(fake_conn_output(c), "421 4.4.2 mail.test Idle timeout\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
}

Test(smtp, shutdown_says_421, .init = setup)
{
	struct conn *c = open_session(true);
	fake_conn_shutdown(c);
	cr_assert_str_eq(fake_conn_output(c), "421 4.3.2 mail.test Service shutting down\r\n");
	fake_conn_free(c);
}

/* A session closed over its certificate is told so, with a security status code, not
 * "shutting down" (which says: come back soon). */
Test(smtp, certificate_goodbyes_say_why, .init = setup)
{
	struct conn *c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_REVOKED);
	cr_assert_str_eq(fake_conn_output(c),
	                 "421 4.7.0 mail.test Your client certificate was revoked\r\n");
	cr_assert(fake_conn_closed(c));
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CRL_STALE);
	cr_assert_str_eq(fake_conn_output(c),
	                 "421 4.7.0 mail.test Client certificates cannot be checked: the "
	                 "revocation list is out of date\r\n");
	fake_conn_free(c);
	c = open_session(true);
	fake_conn_goodbye(c, CONN_BYE_CERT_INVALID);
	cr_assert_str_eq(fake_conn_output(c),
	                 "421 4.7.0 mail.test Your client certificate is no longer valid\r\n");
	fake_conn_free(c);
}

Test(smtp, nothing_after_quit, .init = setup)
{
	struct conn *c = open_session(true);
	fake_conn_line(c, "QUIT");
	cr_assert(fake_conn_closed(c));
	cr_assert_str_eq(fake_conn_close_reason(c), "quit");
	fake_conn_free(c);
}

Test(smtp, helo_then_rset_keeps_the_greeting, .init = setup)
{
	listener.protocol = CFG_PROTO_SMTP;
	struct conn *c = open_session(true);
	fake_conn_line(c, "HELO peer.test");
	fake_conn_line(c, "RSET");
	fake_conn_clear_output(c);
	fake_conn_line(c, "MAIL FROM:<a@peer.test>");
	cr_assert_str_eq(fake_conn_output(c), "250 2.1.0 Ok\r\n");
	fake_conn_free(c);
}

Test(smtp, secret_arguments_are_never_logged, .init = setup)
{
	FILE *tmp = tmpfile();
	cr_assert_not_null(tmp);
	int saved = dup(2);
	cr_assert(saved >= 0);
	cr_assert(dup2(fileno(tmp), 2) >= 0);
	log_set_level(LOGL_DEBUG);

	struct conn *c = open_session(true);
	fake_conn_line(c, "EHLO client.test");
	fake_conn_line(c, "AUTH PLAIN c2VjcmV0cGFzc3dvcmQ=");
	fake_conn_line(c, "VRFY some\"body");
	fake_conn_line(c, "XPASS hunter2");
	fake_conn_free(c);

	log_set_level(LOGL_INFO);
	dup2(saved, 2);
	close(saved);
	char text[4096] = {0};
	rewind(tmp);
	size_t n = fread(text, 1, sizeof(text) - 1, tmp);
	fclose(tmp);
	text[n] = '\0';
	cr_assert(strstr(text, "event=command cmd=EHLO args=client.test") != NULL, "%s", text);
	cr_assert(strstr(text, "cmd=AUTH args_len=") != NULL, "%s", text);
	cr_assert(strstr(text, "c2VjcmV0") == NULL, "%s", text);
	cr_assert(strstr(text, "hunter2") == NULL, "%s", text);
	cr_assert(strstr(text, "args=some\\x22body") != NULL, "%s", text);
	cr_assert(strstr(text, "session=fake0001 proto=submission") != NULL, "%s", text);
}

/* ---- the shared dispatcher ---- */

static void nop(void *sess, const char *args, size_t len)
{
	(void)sess;
	(void)args;
	(void)len;
}

static const struct cmdtab_entry tab[] = {
    {"HELLO", nop, CMD_PRE_TLS | CMD_PRE_AUTH, 1},
    {"LOGIN", nop, CMD_PRE_AUTH | CMD_SECRET, 1},
    {"READ", nop, 0, 2},
    {"TLS", nop, CMD_PRE_TLS | CMD_PRE_AUTH | CMD_NOT_TLS, 1 | 2},
};

Test(cmdtab, find_is_case_insensitive_and_exact)
{
	cr_assert_eq(cmdtab_find(tab, 4, "hello", 5), &tab[0]);
	cr_assert_eq(cmdtab_find(tab, 4, "HeLlO", 5), &tab[0]);
	cr_assert_eq(cmdtab_find(tab, 4, "HELLOX", 5), &tab[0]);
	cr_assert_null(cmdtab_find(tab, 4, "HELL", 4));
	cr_assert_null(cmdtab_find(tab, 4, "HELLOX", 6));
	cr_assert_null(cmdtab_find(tab, 4, "HEL\0O", 5));
	cr_assert_null(cmdtab_find(tab, 4, "", 0));
}

Test(cmdtab, check_order)
{
	cr_assert_eq(cmdtab_check(NULL, 1, false, false), CMDTAB_UNKNOWN);
	cr_assert_eq(cmdtab_check(&tab[0], 1, false, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(&tab[0], 2, true, true), CMDTAB_BAD_STATE);
	cr_assert_eq(cmdtab_check(&tab[1], 2, false, true), CMDTAB_NEED_TLS);
	cr_assert_eq(cmdtab_check(&tab[1], 1, true, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(&tab[2], 1, true, false), CMDTAB_NEED_AUTH);
	cr_assert_eq(cmdtab_check(&tab[2], 1, true, true), CMDTAB_BAD_STATE);
	cr_assert_eq(cmdtab_check(&tab[2], 2, true, true), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(&tab[3], 1, false, false), CMDTAB_OK);
	cr_assert_eq(cmdtab_check(&tab[3], 1, true, false), CMDTAB_TLS_ACTIVE);
}

Test(cmdtab, split)
{
	const char *args;
	size_t w, n;

	cmdtab_split("MAIL FROM:<a>", 13, &w, &args, &n);
	cr_assert_eq(w, 4);
	cr_assert_eq(n, 8);
	cr_assert_eq(strncmp(args, "FROM:<a>", n), 0);
	cmdtab_split("NOOP", 4, &w, &args, &n);
	cr_assert_eq(w, 4);
	cr_assert_eq(n, 0);
	cmdtab_split("X ", 2, &w, &args, &n);
	cr_assert_eq(w, 1);
	cr_assert_eq(n, 0);
	cmdtab_split(" X", 2, &w, &args, &n);
	cr_assert_eq(w, 0);
	cr_assert_eq(n, 1);
}
