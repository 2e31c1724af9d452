/* PROVISIONAL session for testing pop3_mail/pop3_auth end to end before the front door
 * lands. */
#include "server/pop3/pop3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/conn.h"
#include "server/pop3/pop3_auth.h"
#include "server/pop3/pop3_mail.h"

enum pop3_state { POP3_AUTHORIZATION, POP3_TRANSACTION, POP3_UPDATE };
enum pop3_op { POP3_OP_NONE, POP3_OP_LOGIN, POP3_OP_OPEN, POP3_OP_STREAM, POP3_OP_UPDATE };

struct pop3_session {
	struct conn *c;
	enum pop3_state state;
	enum pop3_op op;
	struct pop3_auth auth;
	struct pop3_mail mail;
	char *stash;
	size_t stash_len;
	bool stashed;
	char user[256];
};

#define F_AUTH  1u /* AUTHORIZATION */
#define F_TRANS 2u /* TRANSACTION */
#define F_TLS   4u /* needs TLS */

struct pop3_cmd {
	const char *name;
	unsigned flags;
	bool secret;
	void (*fn)(struct pop3_session *s, const char *arg, size_t len);
};

static void pop3_line(void *sess, char *line, size_t len, bool has_cr);

static void pop3_resume(struct pop3_session *s)
{
	s->op = POP3_OP_NONE;
	if (s->stashed) {
		char *l = s->stash;
		size_t n = s->stash_len;
		s->stash = NULL;
		s->stashed = false;
		pop3_line(s, l, n, true);
		free(l);
		if (s->op != POP3_OP_NONE)
			return;
	}
	conn_resume(s->c);
}

static void pop3_mail_done(void *sess, int rc)
{
	struct pop3_session *s = sess;
	switch (s->op) {
	case POP3_OP_OPEN:
		if (rc == 0) {
			s->state = POP3_TRANSACTION;
			conn_set_authenticated(s->c, s->user);
			conn_set_line_limit(s->c, 1024);
			conn_write_str(s->c, "+OK maildrop locked and ready\r\n");
		} else {
			pop3_mail_free(&s->mail);
			if (rc == -EBUSY)
				conn_write_str(s->c, "-ERR [IN-USE] maildrop already locked\r\n");
			else
				conn_write_str(s->c, "-ERR [SYS/TEMP] cannot open the maildrop\r\n");
		}
		break;
	case POP3_OP_UPDATE:
		if (rc == 0)
			conn_write_str(s->c, "+OK sealmail POP3 server signing off\r\n");
		else
			conn_write_str(s->c, "-ERR [SYS/TEMP] some deleted messages not removed\r\n");
		conn_close(s->c, "quit");
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
		conn_write_str(s->c, "-ERR [AUTH] invalid user name or password\r\n");
		break;
	case AUTH_LOGIN_CERT:
		conn_write_str(s->c, "-ERR [AUTH] a client certificate for this user is required\r\n");
		break;
	case AUTH_LOGIN_TEMPFAIL:
		conn_write_str(s->c, "-ERR [SYS/TEMP] try again later\r\n");
		break;
	}
	pop3_resume(s);
}

static void cmd_capa(struct pop3_session *s, const char *arg, size_t len)
{
	conn_write_str(s->c, "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
			     "AUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (!conn_is_tls(s->c))
		conn_write_str(s->c, "STLS\r\n");
	else if (s->state == POP3_AUTHORIZATION)
		conn_printf(s->c, "USER\r\nSASL %s\r\n", pop3_auth_mechanisms(&s->auth));
	conn_write_str(s->c, "IMPLEMENTATION sealmail\r\n.\r\n");
}

static void cmd_stls(struct pop3_session *s, const char *arg, size_t len)
{
	if (conn_is_tls(s->c)) {
		conn_write_str(s->c, "-ERR already using TLS\r\n");
		return;
	}
	conn_write_str(s->c, "+OK begin TLS negotiation\r\n");
	conn_start_tls(s->c);
}

static void cmd_quit(struct pop3_session *s, const char *arg, size_t len)
{
	if (s->state == POP3_TRANSACTION) {
		s->state = POP3_UPDATE;
		s->op = POP3_OP_UPDATE;
		pop3_mail_update(&s->mail);
		return;
	}
	conn_write_str(s->c, "+OK bye\r\n");
	conn_close(s->c, "quit");
}

static void cmd_noop(struct pop3_session *s, const char *arg, size_t len)
{
	conn_write_str(s->c, "+OK\r\n");
}
static void cmd_user(struct pop3_session *s, const char *arg, size_t len)
{
	pop3_auth_user(&s->auth, arg, len);
}
static void cmd_pass(struct pop3_session *s, const char *arg, size_t len)
{
	if (!s->auth.have_user) {
		conn_write_str(s->c, "-ERR USER first\r\n");
		return;
	}
	s->op = POP3_OP_LOGIN;
	if (!pop3_auth_pass(&s->auth, arg, len))
		s->op = POP3_OP_NONE;
}
static void cmd_auth(struct pop3_session *s, const char *arg, size_t len)
{
	s->op = POP3_OP_LOGIN;
	if (!pop3_auth_auth(&s->auth, arg, len))
		s->op = POP3_OP_NONE;
}
static void cmd_stat(struct pop3_session *s, const char *a, size_t n)
{
	pop3_mail_stat(&s->mail, a, n);
}
static void cmd_list(struct pop3_session *s, const char *a, size_t n)
{
	pop3_mail_list(&s->mail, a, n);
}
static void cmd_uidl(struct pop3_session *s, const char *a, size_t n)
{
	pop3_mail_uidl(&s->mail, a, n);
}
static void cmd_dele(struct pop3_session *s, const char *a, size_t n)
{
	pop3_mail_dele(&s->mail, a, n);
}
static void cmd_rset(struct pop3_session *s, const char *a, size_t n)
{
	pop3_mail_rset(&s->mail, a, n);
}
static void cmd_retr(struct pop3_session *s, const char *a, size_t n)
{
	if (pop3_mail_retr(&s->mail, a, n))
		s->op = POP3_OP_STREAM;
}
static void cmd_top(struct pop3_session *s, const char *a, size_t n)
{
	if (pop3_mail_top(&s->mail, a, n))
		s->op = POP3_OP_STREAM;
}

static const struct pop3_cmd cmds[] = {
    {"CAPA", F_AUTH | F_TRANS, false, cmd_capa},
    {"STLS", F_AUTH, false, cmd_stls},
    {"QUIT", F_AUTH | F_TRANS, false, cmd_quit},
    {"NOOP", F_TRANS, false, cmd_noop},
    {"USER", F_AUTH | F_TLS, false, cmd_user},
    {"PASS", F_AUTH | F_TLS, true, cmd_pass},
    {"AUTH", F_AUTH | F_TLS, true, cmd_auth},
    {"STAT", F_TRANS, false, cmd_stat},
    {"LIST", F_TRANS, false, cmd_list},
    {"UIDL", F_TRANS, false, cmd_uidl},
    {"DELE", F_TRANS, false, cmd_dele},
    {"RSET", F_TRANS, false, cmd_rset},
    {"RETR", F_TRANS, false, cmd_retr},
    {"TOP", F_TRANS, false, cmd_top},
};

static void pop3_line(void *sess, char *line, size_t len, bool has_cr)
{
	struct pop3_session *s = sess;
	if (s->op != POP3_OP_NONE) {
		/* A pipelined line while a step runs: keep it, stop input. */
		if (s->stashed) {
			conn_write_str(s->c, "-ERR too many pipelined commands\r\n");
			conn_close(s->c, "pipeline overflow");
			return;
		}
		s->stash = xstrndup(line, len);
		s->stash_len = len;
		s->stashed = true;
		conn_pause(s->c);
		return;
	}
	if (pop3_auth_waiting(&s->auth)) {
		s->op = POP3_OP_LOGIN;
		if (!pop3_auth_continue(&s->auth, line, len))
			s->op = POP3_OP_NONE;
		return;
	}
	const char *sp = memchr(line, ' ', len);
	size_t nlen = sp != NULL ? (size_t)(sp - line) : len;
	const char *arg = sp != NULL ? sp + 1 : line + len;
	size_t alen = sp != NULL ? len - nlen - 1 : 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct pop3_cmd *cmd = &cmds[i];
		if (strlen(cmd->name) != nlen || strncasecmp(cmd->name, line, nlen) != 0)
			continue;
		unsigned st = s->state == POP3_AUTHORIZATION ? F_AUTH : F_TRANS;
		if ((cmd->flags & st) == 0) {
			conn_write_str(s->c, "-ERR command not valid in this state\r\n");
			return;
		}
		if (!conn_is_tls(s->c) && cmd->name[0] != 'C' && cmd->name[0] != 'S' &&
		    cmd->name[0] != 'Q') {
			conn_write_str(s->c, "-ERR [AUTH] TLS required: use STLS first\r\n");
			return;
		}
		cmd->fn(s, arg, alen);
		return;
	}
	conn_write_str(s->c, "-ERR unknown command\r\n");
}

static void *pop3_open(struct conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->c = c;
	pop3_auth_init(&s->auth, c, s, pop3_login_done);
	pop3_mail_init(&s->mail, c, s, pop3_mail_done);
	conn_write_str(c, "+OK sealmail POP3 ready\r\n");
	return s;
}

static void pop3_too_long(void *sess)
{
	struct pop3_session *s = sess;
	conn_write_str(s->c, "-ERR line too long\r\n");
	conn_close(s->c, "line too long");
}

static void pop3_tls_ready(void *sess)
{
}

static void pop3_bytes(void *sess, const char *d, size_t n, bool last)
{
}

static void pop3_timeout(void *sess)
{
	struct pop3_session *s = sess;
	conn_write_str(s->c, "-ERR idle timeout\r\n");
}

static void pop3_close(void *sess)
{
	struct pop3_session *s = sess;
	pop3_auth_free(&s->auth);
	pop3_mail_free(&s->mail);
	free(s->stash);
	free(s);
}

const struct proto_handler pop3_proto_handler = {
    .name = "pop3",
    .open = pop3_open,
    .line = pop3_line,
    .line_too_long = pop3_too_long,
    .bytes = pop3_bytes,
    .tls_ready = pop3_tls_ready,
    .timeout = pop3_timeout,
    .shutdown = pop3_timeout,
    .close = pop3_close,
};
