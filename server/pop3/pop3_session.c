/*
 * The POP3 front door (see pop3.h).
 *
 * States (one bit each): AUTHORIZATION, TRANSACTION and UPDATE (RFC 1939 3), STLS
 * (answered, waiting for the handshake: every line is ignored) and QUIT (goodbye written:
 * likewise). The login (pop3_auth.h) and the maildrop (pop3_mail.h) answer through their
 * done callbacks; while one of their steps runs (s->op), one pipelined line is kept and
 * input is paused until the step ends.
 *
 * Decisions worth knowing:
 * - Before TLS, USER, PASS, AUTH and APOP get "-ERR [AUTH] TLS required, use STLS first":
 *   RFC 3206 [AUTH] says the failure is about the credentials or the policy around them
 *   (not a system error, so no [SYS/...]), and the client must not retry as it is. Other
 *   known commands before TLS get the same text without a code.
 * - After TLS, commands of the TRANSACTION state before login get "-ERR Not authenticated"
 *   (no code: RFC 3206 codes are for failed logins).
 * - NOOP is accepted in every state, before TLS too (RFC 1939 lists it for TRANSACTION
 *   only; a keep-alive in AUTHORIZATION harms nothing).
 * - The idle timeout writes nothing: RFC 1939 3 says the server closes "without ...
 *   sending any response to the client".
 * - An over-long line gets "-ERR Line too long" and the close (house rules, docs/hacking.md).
 * - Every refusal counts towards limits.errors: at the limit "-ERR Too many errors" and
 *   close; limits.commands bounds the commands before login ("-ERR Too many commands").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/cmdtab.h"
#include "server/pop3/pop3.h"
#include "server/pop3/pop3_auth.h"
#include "server/pop3/pop3_mail.h"

enum pop3_state {
	POP3_S_AUTHORIZATION = 1 << 0,
	POP3_S_TRANSACTION = 1 << 1,
	POP3_S_UPDATE = 1 << 2,
	POP3_S_STLS = 1 << 3,
	POP3_S_QUIT = 1 << 4,
};

/* The asynchronous step in progress, if any. */
enum pop3_op { POP3_OP_NONE, POP3_OP_LOGIN, POP3_OP_OPEN, POP3_OP_STREAM, POP3_OP_UPDATE };

/* Line limit once logged in: RFC 1939 commands are short. */
#define POP3_LINE_MAX_AUTHED 1024

#define POP3_S_ANY (POP3_S_AUTHORIZATION | POP3_S_TRANSACTION)
#define POP3_PRE   (CMD_PRE_TLS | CMD_PRE_AUTH)

struct pop3_session {
	struct conn *c;
	enum pop3_state state;
	bool authenticated;
	unsigned commands, errors;
	enum pop3_op op;
	struct pop3_auth auth;
	struct pop3_mail mail;
	/* One line pipelined behind a running step. */
	char *stash;
	size_t stash_len;
	bool stashed;
	char user[AUTH_FIELD_MAX + 1];
};

static void pop3_cmd_capa(void *sess, const char *args, size_t len);
static void pop3_cmd_stls(void *sess, const char *args, size_t len);
static void pop3_cmd_noop(void *sess, const char *args, size_t len);
static void pop3_cmd_quit(void *sess, const char *args, size_t len);
static void pop3_cmd_apop(void *sess, const char *args, size_t len);
static void pop3_cmd_user(void *sess, const char *args, size_t len);
static void pop3_cmd_pass(void *sess, const char *args, size_t len);
static void pop3_cmd_auth(void *sess, const char *args, size_t len);
static void pop3_cmd_stat(void *sess, const char *args, size_t len);
static void pop3_cmd_list(void *sess, const char *args, size_t len);
static void pop3_cmd_retr(void *sess, const char *args, size_t len);
static void pop3_cmd_dele(void *sess, const char *args, size_t len);
static void pop3_cmd_rset(void *sess, const char *args, size_t len);
static void pop3_cmd_top(void *sess, const char *args, size_t len);
static void pop3_cmd_uidl(void *sess, const char *args, size_t len);
static void pop3_line(void *sess, char *line, size_t len, bool has_cr);

static const struct cmdtab_entry pop3_commands[] = {
    {"CAPA", pop3_cmd_capa, POP3_PRE, POP3_S_ANY},
    {"STLS", pop3_cmd_stls, POP3_PRE | CMD_NOT_TLS, POP3_S_AUTHORIZATION},
    {"NOOP", pop3_cmd_noop, POP3_PRE, POP3_S_ANY},
    {"QUIT", pop3_cmd_quit, POP3_PRE, POP3_S_ANY},
    {"USER", pop3_cmd_user, CMD_PRE_AUTH, POP3_S_AUTHORIZATION},
    {"PASS", pop3_cmd_pass, CMD_PRE_AUTH | CMD_SECRET, POP3_S_AUTHORIZATION},
    {"AUTH", pop3_cmd_auth, CMD_PRE_AUTH | CMD_SECRET, POP3_S_AUTHORIZATION},
    {"APOP", pop3_cmd_apop, CMD_PRE_AUTH | CMD_SECRET, POP3_S_AUTHORIZATION},
    {"STAT", pop3_cmd_stat, 0, POP3_S_TRANSACTION},
    {"LIST", pop3_cmd_list, 0, POP3_S_TRANSACTION},
    {"RETR", pop3_cmd_retr, 0, POP3_S_TRANSACTION},
    {"DELE", pop3_cmd_dele, 0, POP3_S_TRANSACTION},
    {"RSET", pop3_cmd_rset, 0, POP3_S_TRANSACTION},
    {"TOP", pop3_cmd_top, 0, POP3_S_TRANSACTION},
    {"UIDL", pop3_cmd_uidl, 0, POP3_S_TRANSACTION},
};

/* CAPA lines, in the order shown. */
enum pop3_capa_flag {
	POP3_CAPA_PLAIN = 1 << 0, /* shown before TLS */
	POP3_CAPA_TLS = 1 << 1,   /* shown once TLS is active */
	POP3_CAPA_LOGIN = 1 << 2, /* only before login (RFC 2449 6.0: may change after) */
	POP3_CAPA_SASL = 1 << 3,  /* followed by the mechanisms offered now */
};

static const struct {
	const char *line;
	unsigned flags;
} pop3_capas[] = {
    {"STLS", POP3_CAPA_PLAIN},
    {"USER", POP3_CAPA_TLS | POP3_CAPA_LOGIN},
    {"SASL", POP3_CAPA_TLS | POP3_CAPA_LOGIN | POP3_CAPA_SASL},
    {"RESP-CODES", POP3_CAPA_PLAIN | POP3_CAPA_TLS},
    {"PIPELINING", POP3_CAPA_PLAIN | POP3_CAPA_TLS},
    {"TOP", POP3_CAPA_TLS},
    {"UIDL", POP3_CAPA_TLS},
    {"AUTH-RESP-CODE", POP3_CAPA_PLAIN | POP3_CAPA_TLS},
};

/* The ONLY function that changes s->state. */
static void pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
	s->state = st;
}

static void pop3_reply(struct pop3_session *s, const char *line)
{
	conn_write_str(s->c, line);
	conn_write(s->c, "\r\n", 2);
}

static void pop3_goodbye(struct pop3_session *s, const char *reply, const char *reason)
{
	pop3_reply(s, reply);
	pop3_set_state(s, POP3_S_QUIT);
	conn_close(s->c, reason);
}

/* An -ERR was written (here or by pop3_auth / pop3_mail): count it. */
static void pop3_count_error(struct pop3_session *s)
{
	unsigned max = conn_config(s->c)->limits.errors;

	if (max > 0 && ++s->errors >= max)
		pop3_goodbye(s, "-ERR Too many errors", "too many errors");
}

static void pop3_error(struct pop3_session *s, const char *line)
{
	pop3_reply(s, line);
	pop3_count_error(s);
}

/* The outcome of a pop3_auth / pop3_mail handler: < 0 means it answered -ERR. */
static void pop3_handled(struct pop3_session *s, int rc)
{
	if (rc < 0)
		pop3_count_error(s);
}

static bool pop3_no_args(struct pop3_session *s, size_t len)
{
	if (len == 0)
		return true;
	pop3_error(s, "-ERR Unexpected arguments");
	return false;
}

static void pop3_cmd_capa(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;
	unsigned want = conn_is_tls(s->c) ? POP3_CAPA_TLS : POP3_CAPA_PLAIN;

	(void)args;
	if (!pop3_no_args(s, len))
		return;
	pop3_reply(s, "+OK Capability list follows");
	for (size_t i = 0; i < sizeof(pop3_capas) / sizeof(pop3_capas[0]); i++) {
		unsigned f = pop3_capas[i].flags;
		if ((f & want) == 0 || ((f & POP3_CAPA_LOGIN) != 0 && s->authenticated))
			continue;
		if ((f & POP3_CAPA_SASL) != 0)
			conn_printf(s->c, "%s %s\r\n", pop3_capas[i].line,
			            pop3_auth_mechanisms(&s->auth));
		else
			pop3_reply(s, pop3_capas[i].line);
	}
	pop3_reply(s, ".");
}

static void pop3_cmd_stls(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	(void)args;
	if (!pop3_no_args(s, len))
		return;
	pop3_reply(s, "+OK Begin TLS negotiation");
	/* Lines already received or arriving before tls_ready are never executed. */
	pop3_set_state(s, POP3_S_STLS);
	conn_start_tls(s->c);
}

static void pop3_cmd_noop(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	(void)args;
	if (!pop3_no_args(s, len))
		return;
	pop3_reply(s, "+OK");
}

static void pop3_cmd_quit(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	(void)args;
	if (!pop3_no_args(s, len))
		return;
	if (s->state == POP3_S_TRANSACTION) {
		/* UPDATE: the deletions are applied; pop3_mail_done answers and closes. */
		pop3_set_state(s, POP3_S_UPDATE);
		s->op = POP3_OP_UPDATE;
		pop3_mail_update(&s->mail);
		return;
	}
	pop3_goodbye(s, "+OK Bye", "quit");
}

static void pop3_cmd_apop(void *sess, const char *args, size_t len)
{
	(void)args;
	(void)len;
	/* APOP needs the plaintext password on the server; passwords are stored hashed. */
	pop3_error(sess, "-ERR APOP not supported");
}

static void pop3_cmd_user(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_auth_user(&s->auth, args, len));
}

static void pop3_cmd_pass(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	if (!s->auth.have_user) {
		pop3_error(s, "-ERR USER first");
		return;
	}
	s->op = POP3_OP_LOGIN;
	int rc = pop3_auth_pass(&s->auth, args, len);
	if (rc <= 0) {
		s->op = POP3_OP_NONE;
		pop3_handled(s, rc);
	}
}

static void pop3_cmd_auth(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	s->op = POP3_OP_LOGIN;
	int rc = pop3_auth_auth(&s->auth, args, len);
	if (rc <= 0) {
		s->op = POP3_OP_NONE;
		pop3_handled(s, rc);
	}
}

static void pop3_cmd_stat(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_mail_stat(&s->mail, args, len));
}

static void pop3_cmd_list(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_mail_list(&s->mail, args, len));
}

static void pop3_cmd_uidl(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_mail_uidl(&s->mail, args, len));
}

static void pop3_cmd_dele(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_mail_dele(&s->mail, args, len));
}

static void pop3_cmd_rset(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	pop3_handled(s, pop3_mail_rset(&s->mail, args, len));
}

/* RETR and TOP: the step is marked before the call, because the store may fail at once
 * and end the step (pop3_resume) before the call returns. */
static void pop3_cmd_retr(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	s->op = POP3_OP_STREAM;
	int rc = pop3_mail_retr(&s->mail, args, len);
	if (rc < 0) {
		s->op = POP3_OP_NONE;
		pop3_handled(s, rc);
	}
}

static void pop3_cmd_top(void *sess, const char *args, size_t len)
{
	struct pop3_session *s = sess;

	s->op = POP3_OP_STREAM;
	int rc = pop3_mail_top(&s->mail, args, len);
	if (rc < 0) {
		s->op = POP3_OP_NONE;
		pop3_handled(s, rc);
	}
}

/* A step ended: run the line pipelined behind it, else resume input. This often runs
 * in a store completion, outside any conn callback: there a goodbye in the replayed line
 * would free the session at once, so the conn is held around it and s is not touched
 * once the release says the connection is gone. */
static void pop3_resume(struct pop3_session *s)
{
	struct conn *c = s->c;

	s->op = POP3_OP_NONE;
	if (s->stashed) {
		char *l = s->stash;
		size_t n = s->stash_len;
		s->stash = NULL;
		s->stashed = false;
		conn_hold(c);
		pop3_line(s, l, n, true);
		explicit_bzero(l, n); /* may have been a password */
		free(l);
		bool busy = s->op != POP3_OP_NONE;
		if (!conn_release(c) || busy)
			return;
	}
	conn_resume(c);
}

static void pop3_mail_done(void *sess, int rc)
{
	struct pop3_session *s = sess;

	switch (s->op) {
	case POP3_OP_OPEN:
		if (rc == 0) {
			s->authenticated = true;
			pop3_set_state(s, POP3_S_TRANSACTION);
			conn_set_authenticated(s->c, s->user);
			conn_set_line_limit(s->c, POP3_LINE_MAX_AUTHED);
			pop3_reply(s, "+OK maildrop locked and ready");
		} else {
			pop3_mail_free(&s->mail);
			if (rc == -EBUSY)
				pop3_reply(s, "-ERR [IN-USE] maildrop already locked");
			else
				pop3_reply(s, "-ERR [SYS/TEMP] cannot open the maildrop");
		}
		break;
	case POP3_OP_UPDATE:
		s->op = POP3_OP_NONE;
		if (rc == 0)
			pop3_goodbye(s, "+OK Bye", "quit");
		else
			pop3_goodbye(s, "-ERR [SYS/TEMP] some deleted messages not removed",
			             "quit");
		return;
	default:
		break;
	}
	pop3_resume(s);
}

static void pop3_login_done(void *sess, const struct auth_login_result *r)
{
	struct pop3_session *s = sess;

	switch (r->status) {
	case AUTH_LOGIN_OK:
		snprintf(s->user, sizeof(s->user), "%s", r->user);
		s->op = POP3_OP_OPEN;
		pop3_mail_open(&s->mail, r->user_id);
		return;
	case AUTH_LOGIN_FAILED:
		/* Counted: limits.errors failed logins end the connection. */
		pop3_error(s, "-ERR [AUTH] invalid user name or password");
		break;
	case AUTH_LOGIN_CERT:
		pop3_error(s, "-ERR [AUTH] a client certificate for this user is required");
		break;
	case AUTH_LOGIN_CERT_OTHER_USER:
		pop3_error(s, "-ERR [AUTH] the client certificate on this connection belongs to "
		              "another user");
		break;
	case AUTH_LOGIN_TEMPFAIL:
		pop3_reply(s, "-ERR [SYS/TEMP] try again later");
		break;
	}
	pop3_resume(s);
}

/* A SCRAM challenge went out, or the exchange ended with an -ERR of pop3_auth's. */
static void pop3_login_more(void *sess, int rc)
{
	struct pop3_session *s = sess;

	pop3_handled(s, rc);
	pop3_resume(s);
}

struct pop3_auth *pop3_session_auth(void *sess)
{
	struct pop3_session *s = sess;

	return &s->auth;
}

static void pop3_refuse(struct pop3_session *s, const struct cmdtab_entry *e, enum cmdtab_verdict v)
{
	switch (v) {
	case CMDTAB_OK:
		return;
	case CMDTAB_UNKNOWN:
		pop3_error(s, "-ERR Unknown command");
		return;
	case CMDTAB_NEED_TLS:
		/* Valid here but for TLS (USER, PASS, AUTH, APOP): a login policy refusal. */
		if (cmdtab_check(e, (unsigned)s->state, true, s->authenticated) == CMDTAB_OK)
			pop3_error(s, "-ERR [AUTH] TLS required, use STLS first");
		else
			pop3_error(s, "-ERR TLS required, use STLS first");
		return;
	case CMDTAB_TLS_ACTIVE:
		pop3_error(s, "-ERR TLS already active");
		return;
	case CMDTAB_NEED_AUTH:
		pop3_error(s, "-ERR Not authenticated");
		return;
	case CMDTAB_BAD_STATE:
		pop3_error(s, "-ERR Command not valid in this state");
		return;
	}
}

static void pop3_dispatch(struct pop3_session *s, char *line, size_t len)
{
	const struct cmdtab_entry *e;
	const char *args;
	size_t wlen, alen;

	if (len == 0) {
		pop3_error(s, "-ERR Empty command line");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		pop3_error(s, "-ERR NUL in command line");
		return;
	}
	cmdtab_split(line, len, &wlen, &args, &alen);
	e = cmdtab_find(pop3_commands, sizeof(pop3_commands) / sizeof(pop3_commands[0]), line,
	                wlen);
	cmdtab_log(conn_id(s->c), "pop3", e, line, wlen, args, alen);
	enum cmdtab_verdict v =
	    cmdtab_check(e, (unsigned)s->state, conn_is_tls(s->c), s->authenticated);
	if (v != CMDTAB_OK) {
		pop3_refuse(s, e, v);
		return;
	}
	e->handler(s, args, alen);
}

static void *pop3_open(struct conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->c = c;
	pop3_set_state(s, POP3_S_AUTHORIZATION);
	pop3_auth_init(&s->auth, c, s, pop3_login_done, pop3_login_more);
	pop3_mail_init(&s->mail, c, s, pop3_mail_done);
	pop3_reply(s, "+OK sealmail ready");
	return s;
}

static bool pop3_ignoring(const struct pop3_session *s)
{
	return s->state == POP3_S_STLS || s->state == POP3_S_QUIT || s->state == POP3_S_UPDATE;
}

static void pop3_line(void *sess, char *line, size_t len, bool has_cr)
{
	struct pop3_session *s = sess;
	unsigned max = conn_config(s->c)->limits.commands;

	(void)has_cr;
	if (pop3_ignoring(s))
		return;
	if (s->op != POP3_OP_NONE) {
		/* Pipelined behind a running step: keep one line, stop input. */
		if (s->stashed) {
			pop3_goodbye(s, "-ERR Too many pipelined commands", "pipeline overflow");
			return;
		}
		s->stash = xmalloc(len + 1);
		memcpy(s->stash, line, len);
		s->stash[len] = '\0';
		s->stash_len = len;
		s->stashed = true;
		conn_pause(s->c);
		return;
	}
	if (!s->authenticated && max > 0 && ++s->commands > max) {
		pop3_goodbye(s, "-ERR Too many commands", "too many commands");
		return;
	}
	if (pop3_auth_waiting(&s->auth)) {
		/* The client's SASL response: secret, never logged, not a command. */
		s->op = POP3_OP_LOGIN;
		int rc = pop3_auth_continue(&s->auth, line, len);
		if (rc <= 0) {
			s->op = POP3_OP_NONE;
			pop3_handled(s, rc);
		}
		return;
	}
	pop3_dispatch(s, line, len);
}

static void pop3_line_too_long(void *sess)
{
	struct pop3_session *s = sess;

	if (pop3_ignoring(s))
		return;
	pop3_goodbye(s, "-ERR Line too long", "line too long");
}

static void pop3_tls_ready(void *sess)
{
	pop3_set_state(sess, POP3_S_AUTHORIZATION);
}

static void pop3_timeout(void *sess)
{
	/* RFC 1939 3: close without a response; the conn closes right after. */
	pop3_set_state(sess, POP3_S_QUIT);
}

static void pop3_shutdown(void *sess, enum conn_goodbye why)
{
	struct pop3_session *s = sess;

	if (s->state == POP3_S_QUIT)
		return;
	/* Mid-RETR a line would land inside the message; during UPDATE it would deny a
	 * QUIT whose deletions the store still applies. The close alone says it there. */
	if (s->op == POP3_OP_STREAM || s->op == POP3_OP_UPDATE) {
		pop3_set_state(s, POP3_S_QUIT);
		return;
	}
	/* RFC 3206: SYS/TEMP invites a retry, right for a stop and for a CRL the
	 * administrator must renew; AUTH says the credentials themselves are refused. */
	switch (why) {
	case CONN_BYE_SHUTDOWN:
		pop3_reply(s, "-ERR [SYS/TEMP] Server shutting down");
		break;
	case CONN_BYE_CERT_REVOKED:
		pop3_reply(s, "-ERR [AUTH] Your client certificate was revoked");
		break;
	case CONN_BYE_CERT_INVALID:
		pop3_reply(s, "-ERR [AUTH] Your client certificate is no longer valid");
		break;
	case CONN_BYE_CRL_STALE:
		pop3_reply(s, "-ERR [SYS/TEMP] Client certificates cannot be checked: the "
		              "revocation list is out of date");
		break;
	case CONN_BYE_USER_DISABLED:
		pop3_reply(s, "-ERR [AUTH] Your account was disabled");
		break;
	}
	pop3_set_state(s, POP3_S_QUIT);
}

static void pop3_close(void *sess)
{
	struct pop3_session *s = sess;

	/* Nothing is deleted here: only a finished UPDATE removes messages. */
	pop3_auth_free(&s->auth);
	pop3_mail_free(&s->mail);
	if (s->stash != NULL)
		explicit_bzero(s->stash, s->stash_len);
	free(s->stash);
	free(s);
}

const struct proto_handler pop3_proto_handler = {
    .name = "pop3",
    .open = pop3_open,
    .line = pop3_line,
    .line_too_long = pop3_line_too_long,
    .bytes = NULL,
    .tls_ready = pop3_tls_ready,
    .timeout = pop3_timeout,
    .shutdown = pop3_shutdown,
    .close = pop3_close,
};
