/*
 * The SMTP front door: the command table, the state machine and the replies of the
 * commands that need no mail transaction (see smtp.h).
 *
 * States (one bit each, so table entries can list where a command is allowed):
 *   CONNECT   greeted, no EHLO/HELO yet (also right after the TLS handshake, RFC 3207)
 *   HELO      EHLO/HELO seen, no transaction
 *   MAIL      MAIL accepted
 *   RCPT      at least one RCPT accepted
 *   STARTTLS  STARTTLS answered, waiting for the handshake: every line is ignored
 *   QUIT      goodbye written: every line is ignored
 * Before TLS only CMD_PRE_TLS commands run; the rest get 530 (the check in cmdtab.c runs
 * before any handler, so handlers never re-check TLS, login or state).
 *
 * Decisions worth knowing:
 * - EHLO before TLS shows only STARTTLS and ENHANCEDSTATUSCODES: nothing else is usable
 *   before TLS, and PIPELINING is not offered where a pipelined STARTTLS would matter.
 * - AUTH is advertised and accepted only on submission listeners (none on smtp).
 * - The per-session command limit (limits.commands) counts commands before login; an smtp
 *   listener has no login, so there it counts only the commands before TLS.
 * - Every refusal and syntax error counts towards limits.errors; at the limit the session
 *   answers 421 4.7.0 and closes. A line too long gets 500 5.5.6 then 421 and the close
 *   (house rules, docs/hacking.md: framing after an over-long line is not trusted).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/cmdtab.h"
#include "server/smtp/smtp.h"
#include "server/smtp/smtp_private.h"

#define SMTP_S_ANY (SMTP_S_CONNECT | SMTP_S_HELO | SMTP_S_MAIL | SMTP_S_RCPT)

static void smtp_cmd_ehlo(void *sess, const char *args, size_t len);
static void smtp_cmd_helo(void *sess, const char *args, size_t len);
static void smtp_cmd_starttls(void *sess, const char *args, size_t len);
static void smtp_cmd_noop(void *sess, const char *args, size_t len);
static void smtp_cmd_rset(void *sess, const char *args, size_t len);
static void smtp_cmd_quit(void *sess, const char *args, size_t len);
static void smtp_cmd_help(void *sess, const char *args, size_t len);
static void smtp_cmd_vrfy(void *sess, const char *args, size_t len);
static void smtp_cmd_not_offered(void *sess, const char *args, size_t len);

#define PRE (CMD_PRE_TLS | CMD_PRE_AUTH)

static const struct cmdtab_entry smtp_commands[] = {
    {"EHLO", smtp_cmd_ehlo, PRE, SMTP_S_ANY},
    {"HELO", smtp_cmd_helo, PRE, SMTP_S_ANY},
    {"STARTTLS", smtp_cmd_starttls, PRE | CMD_NOT_TLS, SMTP_S_CONNECT | SMTP_S_HELO},
    {"NOOP", smtp_cmd_noop, PRE, SMTP_S_ANY},
    {"RSET", smtp_cmd_rset, PRE, SMTP_S_ANY},
    {"QUIT", smtp_cmd_quit, PRE, SMTP_S_ANY},
    {"HELP", smtp_cmd_help, PRE, SMTP_S_ANY},
    {"VRFY", smtp_cmd_vrfy, PRE, SMTP_S_ANY},
    {"AUTH", smtp_cmd_auth, CMD_PRE_AUTH | CMD_SECRET, SMTP_S_HELO},
    {"MAIL", smtp_cmd_mail, 0, SMTP_S_HELO},
    {"RCPT", smtp_cmd_rcpt, 0, SMTP_S_MAIL | SMTP_S_RCPT},
    {"DATA", smtp_cmd_data, 0, SMTP_S_RCPT},
    /* BDAT checks its state itself: a refused chunk's bytes must still be read. */
    {"BDAT", smtp_cmd_bdat, 0, SMTP_S_HELO | SMTP_S_MAIL | SMTP_S_RCPT},
    /* Known but never offered: refused before TLS like the rest, 502 after. */
    {"EXPN", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"ETRN", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"TURN", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"ATRN", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"SEND", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"SOML", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
    {"SAML", smtp_cmd_not_offered, CMD_PRE_AUTH, SMTP_S_ANY},
};

/* EHLO keywords, in the order shown. */
enum smtp_ehlo_flag {
	SMTP_EHLO_PLAIN = 1 << 0,      /* shown before TLS */
	SMTP_EHLO_TLS = 1 << 1,        /* shown once TLS is active */
	SMTP_EHLO_SUBMISSION = 1 << 2, /* only on submission listeners */
	SMTP_EHLO_SIZE = 1 << 3,       /* followed by " <limits.message_size>" */
	SMTP_EHLO_AUTH = 1 << 4,       /* followed by the mechanisms (smtp_auth_mechanisms) */
};

static const struct {
	const char *keyword;
	unsigned flags;
} smtp_ehlo_keywords[] = {
    {"STARTTLS", SMTP_EHLO_PLAIN},
    {"PIPELINING", SMTP_EHLO_TLS},
    {"SIZE", SMTP_EHLO_TLS | SMTP_EHLO_SIZE},
    {"8BITMIME", SMTP_EHLO_TLS},
    {"SMTPUTF8", SMTP_EHLO_TLS},
    {"ENHANCEDSTATUSCODES", SMTP_EHLO_PLAIN | SMTP_EHLO_TLS},
    {"CHUNKING", SMTP_EHLO_TLS},
    {"DSN", SMTP_EHLO_TLS},
    {"REQUIRETLS", SMTP_EHLO_TLS},
    {"AUTH", SMTP_EHLO_TLS | SMTP_EHLO_SUBMISSION | SMTP_EHLO_AUTH},
};

const char *smtp_hostname(const struct smtp_session *s)
{
	const char *h = conn_config(s->c)->hostname;
	return h != NULL ? h : "localhost";
}

static const char *smtp_proto_name(const struct smtp_session *s)
{
	return s->submission ? "submission" : "smtp";
}

/* The ONLY function that changes s->state. */
void smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	/* Leaving a transaction (RSET, EHLO, QUIT, the end of DATA) forgets it. */
	if (st != SMTP_S_MAIL && st != SMTP_S_RCPT && !s->txn.delivering) {
		smtp_txn_reset(&s->txn);
		s->in_data = false;
		s->bdat = false;
		s->bdat_last = false;
	}
	s->state = st;
}

void smtp_reply(struct smtp_session *s, const char *line)
{
	conn_write_str(s->c, line);
	conn_write(s->c, "\r\n", 2);
}

void smtp_goodbye(struct smtp_session *s, const char *reply, const char *reason)
{
	smtp_reply(s, reply);
	smtp_set_state(s, SMTP_S_QUIT);
	conn_close(s->c, reason);
}

/* A refusal or syntax error: the reply, then the error limit. */
void smtp_error(struct smtp_session *s, const char *line)
{
	unsigned max = conn_config(s->c)->limits.errors;

	smtp_reply(s, line);
	s->errors++;
	if (max > 0 && s->errors >= max)
		smtp_goodbye(s, "421 4.7.0 Too many errors", "too many errors");
}

static bool smtp_preauth(const struct smtp_session *s)
{
	if (s->authenticated)
		return false;
	return s->submission || !conn_is_tls(s->c);
}

static bool smtp_no_args(struct smtp_session *s, size_t len, const char *syntax)
{
	if (len == 0)
		return true;
	smtp_error(s, syntax);
	return false;
}

/* The EHLO/HELO argument for the Received: field (sanitised there). */
static void smtp_remember_helo(struct smtp_session *s, const char *args, size_t len)
{
	size_t n = 0;
	while (n < len && n < SMTP_HELO_MAX && args[n] != ' ')
		n++;
	memcpy(s->helo, args, n);
	s->helo[n] = '\0';
}

static void smtp_cmd_ehlo(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;
	bool tls = conn_is_tls(s->c);
	unsigned want = tls ? SMTP_EHLO_TLS : SMTP_EHLO_PLAIN;
	size_t last = 0, n = sizeof(smtp_ehlo_keywords) / sizeof(smtp_ehlo_keywords[0]);

	(void)args;
	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	smtp_remember_helo(s, args, len);
	for (size_t i = 0; i < n; i++) {
		unsigned f = smtp_ehlo_keywords[i].flags;
		if ((f & want) != 0 && ((f & SMTP_EHLO_SUBMISSION) == 0 || s->submission))
			last = i;
	}
	conn_printf(s->c, "250-%s\r\n", smtp_hostname(s));
	for (size_t i = 0; i <= last; i++) {
		unsigned f = smtp_ehlo_keywords[i].flags;
		if ((f & want) == 0 || ((f & SMTP_EHLO_SUBMISSION) != 0 && !s->submission))
			continue;
		conn_printf(s->c, "250%c%s", i == last ? ' ' : '-', smtp_ehlo_keywords[i].keyword);
		if ((f & SMTP_EHLO_SIZE) != 0)
			conn_printf(s->c, " %llu",
			            (unsigned long long)conn_config(s->c)->limits.message_size);
		if ((f & SMTP_EHLO_AUTH) != 0)
			conn_printf(s->c, " %s", smtp_auth_mechanisms(&s->auth));
		conn_write(s->c, "\r\n", 2);
	}
	smtp_set_state(s, SMTP_S_HELO);
}

static void smtp_cmd_helo(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	(void)args;
	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	smtp_remember_helo(s, args, len);
	conn_printf(s->c, "250 %s\r\n", smtp_hostname(s));
	smtp_set_state(s, SMTP_S_HELO);
}

static void smtp_cmd_starttls(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	(void)args;
	if (!smtp_no_args(s, len, "501 5.5.4 Syntax: STARTTLS"))
		return;
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* Lines already received or arriving before tls_ready are never executed. */
	smtp_set_state(s, SMTP_S_STARTTLS);
	conn_start_tls(s->c);
}

static void smtp_cmd_noop(void *sess, const char *args, size_t len)
{
	(void)args;
	(void)len; /* RFC 5321 4.1.1.9: a parameter is allowed and ignored */
	smtp_reply(sess, "250 2.0.0 OK");
}

static void smtp_cmd_rset(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	(void)args;
	if (!smtp_no_args(s, len, "501 5.5.4 Syntax: RSET"))
		return;
	if (s->state != SMTP_S_CONNECT)
		smtp_set_state(s, SMTP_S_HELO);
	smtp_reply(s, "250 2.0.0 OK");
}

static void smtp_cmd_quit(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	(void)args;
	if (!smtp_no_args(s, len, "501 5.5.4 Syntax: QUIT"))
		return;
	smtp_goodbye(s, "221 2.0.0 Bye", "quit");
}

static void smtp_cmd_help(void *sess, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_reply(sess, "214 2.0.0 sealmail: see RFC 5321");
}

static void smtp_cmd_vrfy(void *sess, const char *args, size_t len)
{
	struct smtp_session *s = sess;

	(void)args;
	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3: 252 reveals nothing about which users exist. */
	smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void smtp_cmd_not_offered(void *sess, const char *args, size_t len)
{
	(void)args;
	(void)len;
	smtp_error(sess, "502 5.5.1 Command not implemented");
}

static void smtp_refuse_state(struct smtp_session *s, const struct cmdtab_entry *e)
{
	if (s->state == SMTP_S_CONNECT)
		smtp_error(s, "503 5.5.1 Send EHLO or HELO first");
	else if (strcmp(e->name, "MAIL") == 0)
		smtp_error(s, "503 5.5.1 Nested MAIL command");
	else if (strcmp(e->name, "AUTH") == 0)
		smtp_error(s, "503 5.5.1 Not permitted during a mail transaction");
	else if (s->state == SMTP_S_HELO)
		smtp_error(s, "503 5.5.1 Need MAIL command first");
	else if (s->state == SMTP_S_MAIL)
		smtp_error(s, "503 5.5.1 Need RCPT command first");
	else
		smtp_error(s, "503 5.5.1 Bad sequence of commands");
}

static void smtp_dispatch(struct smtp_session *s, char *line, size_t len)
{
	const struct cmdtab_entry *e;
	const char *args;
	size_t wlen, alen;

	cmdtab_split(line, len, &wlen, &args, &alen);
	e = cmdtab_find(smtp_commands, sizeof(smtp_commands) / sizeof(smtp_commands[0]), line,
	                wlen);
	cmdtab_log(conn_id(s->c), smtp_proto_name(s), e, line, wlen, args, alen);
	/* On smtp listeners there is no login: MAIL and friends need none. */
	bool authed = s->authenticated || !s->submission;
	switch (cmdtab_check(e, (unsigned)s->state, conn_is_tls(s->c), authed)) {
	case CMDTAB_OK:
		e->handler(s, args, alen);
		return;
	case CMDTAB_UNKNOWN:
		smtp_error(s, "500 5.5.2 Command unrecognized");
		return;
	case CMDTAB_NEED_TLS:
		smtp_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	case CMDTAB_TLS_ACTIVE:
		smtp_error(s, "503 5.5.1 TLS already active");
		return;
	case CMDTAB_NEED_AUTH:
		smtp_error(s, "530 5.7.0 Authentication required");
		return;
	case CMDTAB_BAD_STATE:
		smtp_refuse_state(s, e);
		return;
	}
}

static void *smtp_open(struct conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->c = c;
	s->submission = conn_listener(c)->protocol == CFG_PROTO_SUBMISSION;
	s->started_ms = conn_now_ms(c);
	smtp_auth_init(&s->auth, c, s);
	smtp_txn_init(&s->txn, c, s);
	smtp_set_state(s, SMTP_S_CONNECT);
	if (conn_is_tls(c) && smtp_refuse_user_cert(s)) {
		/* RFC 5321 3.1: a 554 greeting refuses the session; the client is to QUIT. */
		conn_printf(c,
		            "554 5.7.1 %s A user certificate is not accepted on this port; use "
		            "submission\r\n",
		            smtp_hostname(s));
		return s;
	}
	conn_printf(c, "220 %s ESMTP sealmail\r\n", smtp_hostname(s));
	if (conn_is_tls(c))
		smtp_cert_preauth(s);
	return s;
}

static void smtp_line(void *sess, char *line, size_t len, bool has_cr)
{
	struct smtp_session *s = sess;
	unsigned max = conn_config(s->c)->limits.commands;

	if (s->state == SMTP_S_STARTTLS || s->state == SMTP_S_QUIT)
		return;
	if (s->in_data) {
		smtp_data_input(s, line, len, has_cr); /* DATA refuses bare LF itself */
		return;
	}
	if (smtp_auth_active(&s->auth)) {
		smtp_auth_line(&s->auth, line, len); /* a secret: never logged */
		return;
	}
	unsigned dur = conn_config(s->c)->limits.session_duration;
	if (dur > 0 && conn_now_ms(s->c) - s->started_ms > (uint64_t)dur * 1000) {
		smtp_goodbye(s, "421 4.4.2 Session too long, closing", "session duration");
		return;
	}
	if (smtp_preauth(s) && max > 0 && ++s->commands > max) {
		smtp_goodbye(s, "421 4.7.0 Too many commands", "too many commands");
		return;
	}
	if (len == 0 || memchr(line, '\0', len) != NULL) {
		smtp_error(s, "500 5.5.2 Syntax error");
		return;
	}
	if (s->cert_refused) {
		/* RFC 3207 4.1 (and 5321 3.1): every command but QUIT is refused; the error
		 * limit and the idle timeout end a client that does not give up. */
		if (len == 4 && strncasecmp(line, "QUIT", 4) == 0)
			smtp_goodbye(s, "221 2.0.0 Bye", "quit");
		else
			smtp_error(s, "554 5.7.1 A user certificate is not accepted on this port; "
			              "use submission");
		return;
	}
	smtp_dispatch(s, line, len);
}

static void smtp_line_too_long(void *sess)
{
	struct smtp_session *s = sess;

	if (s->state == SMTP_S_STARTTLS || s->state == SMTP_S_QUIT)
		return;
	if (s->in_data) {
		smtp_data_line_too_long(smtp_txn_data(&s->txn));
		return;
	}
	smtp_reply(s, "500 5.5.6 Line too long");
	conn_printf(s->c, "421 4.7.0 %s Closing connection\r\n", smtp_hostname(s));
	smtp_set_state(s, SMTP_S_QUIT);
	conn_close(s->c, "line too long");
}

static void smtp_tls_ready(void *sess)
{
	/* RFC 3207 4.2: forget what the client said before TLS; it must EHLO again. */
	smtp_set_state(sess, SMTP_S_CONNECT);
	if (smtp_refuse_user_cert(sess))
		return;
	smtp_cert_preauth(sess);
}

static void smtp_timeout(void *sess)
{
	struct smtp_session *s = sess;

	if (s->state == SMTP_S_QUIT)
		return;
	conn_printf(s->c, "421 4.4.2 %s Idle timeout\r\n", smtp_hostname(s));
	smtp_set_state(s, SMTP_S_QUIT);
}

/* 421 is the only reply that closes, and it is transient, so the enhanced code is a 4.x.x
 * one (RFC 3463: the class must match the reply). Certificate trouble is a security
 * status: X.7.0, "other or undefined security status", as RFC 3463 defines no narrower
 * code for a credential revoked mid-session (X.7.8 of RFC 4954 answers AUTH). */
static void smtp_shutdown(void *sess, enum conn_goodbye why)
{
	struct smtp_session *s = sess;
	const char *host = smtp_hostname(s);

	if (s->state == SMTP_S_QUIT)
		return;
	switch (why) {
	case CONN_BYE_SHUTDOWN:
		conn_printf(s->c, "421 4.3.2 %s Service shutting down\r\n", host);
		break;
	case CONN_BYE_CERT_REVOKED:
		conn_printf(s->c, "421 4.7.0 %s Your client certificate was revoked\r\n", host);
		break;
	case CONN_BYE_CERT_INVALID:
		conn_printf(s->c, "421 4.7.0 %s Your client certificate is no longer valid\r\n",
		            host);
		break;
	case CONN_BYE_CRL_STALE:
		conn_printf(s->c,
		            "421 4.7.0 %s Client certificates cannot be checked: the "
		            "revocation list is out of date\r\n",
		            host);
		break;
	case CONN_BYE_USER_DISABLED:
		conn_printf(s->c, "421 4.7.0 %s Your account was disabled\r\n", host);
		break;
	}
	smtp_set_state(s, SMTP_S_QUIT);
}

static void smtp_close(void *sess)
{
	struct smtp_session *s = sess;

	s->txn.delivering = false;
	smtp_txn_reset(&s->txn);
	smtp_auth_cleanup(&s->auth);
	free(s);
}

struct smtp_auth *smtp_session_auth(void *sess)
{
	struct smtp_session *s = sess;

	return &s->auth;
}

const struct proto_handler smtp_proto_handler = {
    .name = "smtp",
    .open = smtp_open,
    .line = smtp_line,
    .line_too_long = smtp_line_too_long,
    .bytes = smtp_bdat_bytes,
    .tls_ready = smtp_tls_ready,
    .timeout = smtp_timeout,
    .shutdown = smtp_shutdown,
    .close = smtp_close,
};
