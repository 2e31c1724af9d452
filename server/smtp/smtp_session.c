/*
 * The SMTP session: a table-driven state machine (STYLE.md 5). Each command names the
 * states it is allowed in and its flags; the dispatcher checks both before the handler
 * runs, so no handler asks "are we in TLS?" or "did EHLO happen?" again.
 *
 * Before TLS only EHLO, HELO, STARTTLS, NOOP, RSET, QUIT, HELP and VRFY are answered;
 * everything else gets 530 5.7.0 (RFC 3207), and EHLO offers STARTTLS and nothing that
 * would tempt a client to send secrets in clear.
 */
#include "server/smtp/smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xmalloc.h"

enum smtp_state {
	SMTP_S_GREETED = 1 << 0,  /* before EHLO/HELO */
	SMTP_S_READY = 1 << 1,    /* after EHLO/HELO */
	SMTP_S_STARTTLS = 1 << 2, /* STARTTLS answered, handshake pending */
};
#define SMTP_S_ANY (SMTP_S_GREETED | SMTP_S_READY)

enum smtp_cmd_flag {
	SMTP_F_PRE_TLS = 1 << 0, /* allowed before TLS */
	SMTP_F_SECRET = 1 << 1,  /* arguments never logged */
};

struct smtp_session {
	struct conn *c;
	enum smtp_state state;
	bool esmtp;
	unsigned commands;
	unsigned errors;
	char helo[256];
};

struct smtp_command {
	const char *name;
	void (*fn)(struct smtp_session *s, const char *arg);
	unsigned states;
	unsigned flags;
};

static void smtp_reply(struct smtp_session *s, const char *line)
{
	conn_write_str(s->c, line);
	conn_write(s->c, "\r\n", 2);
}

/* The one place the state changes. */
static void smtp_set_state(struct smtp_session *s, enum smtp_state st)
{
	s->state = st;
}

static void smtp_error(struct smtp_session *s, const char *line)
{
	smtp_reply(s, line);
	const struct config *cfg = conn_config(s->c);
	if (++s->errors >= cfg->limits.errors) {
		smtp_reply(s, "421 4.7.0 Too many errors, closing connection");
		conn_close(s->c, "too_many_errors");
	}
}

static const char *smtp_hostname(struct smtp_session *s)
{
	return conn_config(s->c)->hostname;
}

static void cmd_ehlo_common(struct smtp_session *s, const char *arg, bool esmtp)
{
	if (*arg == '\0') {
		smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	snprintf(s->helo, sizeof(s->helo), "%s", arg);
	s->esmtp = esmtp;
	smtp_set_state(s, SMTP_S_READY);
	if (!esmtp) {
		conn_printf(s->c, "250 %s\r\n", smtp_hostname(s));
		return;
	}
	conn_printf(s->c, "250-%s\r\n", smtp_hostname(s));
	if (!conn_is_tls(s->c)) {
		conn_write_str(s->c,
		               "250-STARTTLS\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n");
		return;
	}
	const struct config *cfg = conn_config(s->c);
	conn_printf(s->c,
	            "250-PIPELINING\r\n250-SIZE %llu\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
	            "250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n250-REQUIRETLS\r\n",
	            (unsigned long long)cfg->limits.message_size);
	if (conn_listener(s->c)->protocol == CFG_PROTO_SUBMISSION)
		conn_write_str(s->c, "250-AUTH PLAIN LOGIN\r\n");
	conn_write_str(s->c, "250 HELP\r\n");
}

static void cmd_ehlo(struct smtp_session *s, const char *arg)
{
	cmd_ehlo_common(s, arg, true);
}

static void cmd_helo(struct smtp_session *s, const char *arg)
{
	cmd_ehlo_common(s, arg, false);
}

static void cmd_starttls(struct smtp_session *s, const char *arg)
{
	if (conn_is_tls(s->c)) {
		smtp_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (*arg != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	smtp_set_state(s, SMTP_S_STARTTLS);
	conn_start_tls(s->c);
}

static void cmd_noop(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "250 2.0.0 OK");
}

static void cmd_rset(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "250 2.0.0 OK");
}

static void cmd_quit(struct smtp_session *s, const char *arg)
{
	conn_printf(s->c, "221 2.0.0 %s closing connection\r\n", smtp_hostname(s));
	conn_close(s->c, "quit");
}

static void cmd_help(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "214 2.0.0 See RFC 5321 and RFC 6409");
}

static void cmd_vrfy(struct smtp_session *s, const char *arg)
{
	/* Reveals nothing about which addresses exist. */
	smtp_reply(s, "252 2.5.0 Cannot verify the user, but will accept the message");
}

static void cmd_not_yet(struct smtp_session *s, const char *arg)
{
	/* Filled in by the SMTP submission issue. */
	smtp_error(s, "502 5.5.1 Command not implemented");
}

static const struct smtp_command smtp_commands[] = {
    {"EHLO", cmd_ehlo, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"HELO", cmd_helo, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"STARTTLS", cmd_starttls, SMTP_S_READY, SMTP_F_PRE_TLS},
    {"NOOP", cmd_noop, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"RSET", cmd_rset, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"QUIT", cmd_quit, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"HELP", cmd_help, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"VRFY", cmd_vrfy, SMTP_S_ANY, SMTP_F_PRE_TLS},
    {"AUTH", cmd_not_yet, SMTP_S_READY, SMTP_F_SECRET},
    {"MAIL", cmd_not_yet, SMTP_S_READY, 0},
    {"RCPT", cmd_not_yet, SMTP_S_READY, 0},
    {"DATA", cmd_not_yet, SMTP_S_READY, 0},
    {"BDAT", cmd_not_yet, SMTP_S_READY, 0},
    {"EXPN", cmd_not_yet, SMTP_S_READY, 0},
    {"ETRN", cmd_not_yet, SMTP_S_READY, 0},
};

static const struct smtp_command *smtp_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (strlen(smtp_commands[i].name) == len &&
		    strncasecmp(smtp_commands[i].name, name, len) == 0)
			return &smtp_commands[i];
	return NULL;
}

static void smtp_log_command(struct smtp_session *s, const struct smtp_command *cmd,
                             const char *line, size_t len)
{
	char esc[256];
	if (cmd != NULL && (cmd->flags & SMTP_F_SECRET)) {
		log_event(LOGL_DEBUG, "session=%s proto=smtp event=command name=%s args=***",
		          conn_id(s->c), cmd->name);
		return;
	}
	log_event(LOGL_DEBUG, "session=%s proto=smtp event=command line=%s", conn_id(s->c),
	          log_escape(esc, sizeof(esc), line, len));
}

static void *smtp_open(struct conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->c = c;
	smtp_set_state(s, SMTP_S_GREETED);
	conn_printf(c, "220 %s ESMTP sealmail\r\n", conn_config(c)->hostname);
	return s;
}

static void smtp_line(void *sess, char *line, size_t len, bool has_cr)
{
	struct smtp_session *s = sess;
	const struct config *cfg = conn_config(s->c);
	if (s->state == SMTP_S_STARTTLS)
		return; /* never act on bytes between STARTTLS and the handshake */
	if (memchr(line, '\0', len) != NULL) {
		smtp_error(s, "500 5.5.2 NUL byte in command");
		return;
	}
	size_t nlen = strcspn(line, " ");
	const struct smtp_command *cmd = smtp_find(line, nlen);
	smtp_log_command(s, cmd, line, len);
	if (conn_user(s->c) == NULL && ++s->commands > cfg->limits.commands) {
		smtp_reply(s, "421 4.7.0 Too many commands, closing connection");
		conn_close(s->c, "too_many_commands");
		return;
	}
	if (cmd == NULL) {
		smtp_error(s, "500 5.5.2 Command unrecognized");
		return;
	}
	if (!(cmd->flags & SMTP_F_PRE_TLS) && !conn_is_tls(s->c)) {
		smtp_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (!(cmd->states & s->state)) {
		smtp_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	const char *arg = line + nlen;
	while (*arg == ' ')
		arg++;
	cmd->fn(s, arg);
}

static void smtp_line_too_long(void *sess)
{
	struct smtp_session *s = sess;
	smtp_error(s, "500 5.5.6 Line too long");
}

static void smtp_tls_ready(void *sess)
{
	struct smtp_session *s = sess;
	/* RFC 3207: forget everything learnt before TLS, including EHLO. */
	s->helo[0] = '\0';
	s->esmtp = false;
	smtp_set_state(s, SMTP_S_GREETED);
}

static void smtp_timeout(void *sess)
{
	struct smtp_session *s = sess;
	conn_printf(s->c, "421 4.4.2 %s Idle timeout, closing connection\r\n", smtp_hostname(s));
}

static void smtp_shutdown(void *sess)
{
	struct smtp_session *s = sess;
	conn_printf(s->c, "421 4.3.2 %s Service shutting down\r\n", smtp_hostname(s));
}

static void smtp_close(void *sess)
{
	free(sess);
}

const struct proto_handler smtp_proto_handler = {
    .name = "smtp",
    .open = smtp_open,
    .line = smtp_line,
    .line_too_long = smtp_line_too_long,
    .tls_ready = smtp_tls_ready,
    .timeout = smtp_timeout,
    .shutdown = smtp_shutdown,
    .close = smtp_close,
};
