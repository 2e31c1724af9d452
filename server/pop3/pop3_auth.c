/*
 * USER/PASS and AUTH for POP3 (see pop3_auth.h). Secrets (PASS arguments, SASL responses)
 * are copied only into buffers that are wiped before return.
 */
#include "server/pop3/pop3_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/cert_login.h"
#include "server/auth/scram.h"
#include "server/conn.h"

/* A SASL continuation line: base64 of authzid, authcid and password plus slack. */
#define POP3_SASL_LINE_MAX 4096

void pop3_auth_init(struct pop3_auth *a, struct conn *c, void *sess, pop3_auth_done_fn *done,
                    pop3_auth_more_fn *more)
{
	memset(a, 0, sizeof(*a));
	a->c = c;
	a->sess = sess;
	a->done = done;
	a->more = more;
}

void pop3_auth_free(struct pop3_auth *a)
{
	a->have_user = false;
	a->step = POP3_AUTH_IDLE;
	scram_auth_free(a->scram);
	a->scram = NULL;
}

/* A user name or password as typed: 1..AUTH_FIELD_MAX bytes, no NUL or control byte. */
static bool pop3_auth_field_ok(const char *s, size_t len)
{
	if (len == 0 || len > AUTH_FIELD_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

/* An answer that needs no store: the same words auth_login's failures get. */
static void pop3_auth_fail_now(struct pop3_auth *a)
{
	struct auth_login_result r = {.status = AUTH_LOGIN_FAILED};
	a->done(a->sess, &r);
}

int pop3_auth_user(struct pop3_auth *a, const char *arg, size_t len)
{
	if (!pop3_auth_field_ok(arg, len)) {
		a->have_user = false;
		conn_write_str(a->c, "-ERR usage: USER name\r\n");
		return -1;
	}
	memcpy(a->user, arg, len);
	a->user[len] = '\0';
	a->have_user = true;
	/* The same answer for every name: whether it exists is PASS's business. */
	conn_write_str(a->c, "+OK send PASS\r\n");
	return 0;
}

int pop3_auth_pass(struct pop3_auth *a, const char *arg, size_t len)
{
	if (!a->have_user) {
		conn_write_str(a->c, "-ERR USER first\r\n");
		return -1;
	}
	a->have_user = false; /* RFC 1939: a failed PASS needs a new USER */
	if (!pop3_auth_field_ok(arg, len)) {
		/* Not sent to the store, but still counted and delayed by auth_login when
		 * it has the right shape; an empty password is simply wrong. */
		char none[1] = "";
		auth_login(a->c, "PLAIN", a->user, none, a->done);
		return 1;
	}
	char pass[AUTH_FIELD_MAX + 1];
	memcpy(pass, arg, len);
	pass[len] = '\0';
	auth_login(a->c, "PLAIN", a->user, pass, a->done);
	explicit_bzero(pass, sizeof(pass));
	return 1;
}

/* ---- SASL PLAIN ------------------------------------------------------------------ */

static int pop3_auth_plain(struct pop3_auth *a, const char *resp, size_t len)
{
	struct auth_plain p;
	if (len == 1 && resp[0] == '=')
		len = 0; /* RFC 5034: "=" is an empty initial response */
	if (auth_plain_decode(resp, len, &p) < 0) {
		auth_plain_wipe(&p);
		conn_write_str(a->c, "-ERR [AUTH] malformed SASL PLAIN response\r\n");
		return -1;
	}
	if (p.authzid[0] != '\0' && strcmp(p.authzid, p.authcid) != 0) {
		/* No proxy logins: acting as another user is not a password's right. */
		auth_plain_wipe(&p);
		pop3_auth_fail_now(a);
		return 1;
	}
	auth_login(a->c, "PLAIN", p.authcid, p.password, a->done);
	auth_plain_wipe(&p);
	return 1;
}

/* ---- SASL EXTERNAL --------------------------------------------------------------- */

/* EXTERNAL is the certificate alone: the road in server/auth/cert_login.h decides. */
static int pop3_auth_external(struct pop3_auth *a, const char *resp, size_t len)
{
	char authz[AUTH_FIELD_MAX + 1] = "";
	if (len > 0 && !(len == 1 && resp[0] == '=') &&
	    auth_login_decode(resp, len, authz, sizeof(authz)) < 0) {
		conn_write_str(a->c, "-ERR [AUTH] malformed SASL EXTERNAL response\r\n");
		return -1;
	}
	auth_cert_login(a->c, AUTH_CERT_EXTERNAL, authz, a->done);
	return 1;
}

/* ---- SASL SCRAM-SHA-256(-PLUS) ---------------------------------------------------- */

/* Sends a challenge ("+ " alone asks for the client-first-message) and waits. */
static void pop3_auth_challenge(struct pop3_auth *a, const char *challenge)
{
	a->step = POP3_AUTH_SCRAM_WAIT;
	conn_set_line_limit(a->c, POP3_SASL_LINE_MAX);
	conn_printf(a->c, "+ %s\r\n", challenge);
}

/* Each SCRAM step's outcome (server/auth/scram.h); input is paused until it returns. */
static void pop3_auth_scram_cb(void *sess, const struct scram_auth_result *r)
{
	struct pop3_auth *a = pop3_session_auth(sess);
	if (!r->done) {
		pop3_auth_challenge(a, r->challenge);
		a->more(a->sess, 0);
		return;
	}
	/* The exchange is over; free it before the session's callback, which may replay a
	 * pipelined AUTH. r->user lives in it, so it is copied out first. */
	char user[AUTH_FIELD_MAX + 1];
	snprintf(user, sizeof(user), "%s", r->user != NULL ? r->user : "");
	struct auth_login_result lr = {.status = r->status, .user_id = r->user_id, .user = user};
	bool malformed = r->malformed;
	scram_auth_free(a->scram);
	a->scram = NULL;
	if (malformed) {
		/* The server-final-message is answered with an empty line (RFC 5034 4). */
		conn_write_str(a->c,
		               "-ERR [AUTH] the answer to the last challenge must be empty\r\n");
		a->more(a->sess, -1);
		return;
	}
	a->done(a->sess, &lr);
	explicit_bzero(user, sizeof(user));
}

static int pop3_auth_scram(struct pop3_auth *a, const char *resp, size_t len)
{
	if (a->scram != NULL) {
		scram_auth_step(a->scram, resp, len);
		return 1;
	}
	if (len == 1 && resp[0] == '=')
		len = 0; /* an empty initial response: no client-first-message */
	a->scram = scram_auth_start(a->c, a->scram_plus, resp, len, pop3_auth_scram_cb);
	if (a->scram == NULL) {
		conn_write_str(a->c, "-ERR [AUTH] malformed SASL SCRAM message\r\n");
		return -1;
	}
	return 1;
}

/* ---- AUTH ------------------------------------------------------------------------ */

/* Whether the mechanism of AUTH (mlen bytes) is SCRAM as offered here: -PLUS only where the
 * SASL capability lists it (auth.channel_binding and a binding to give). */
static bool pop3_auth_is_scram(struct pop3_auth *a, const char *m, size_t mlen)
{
	return scram_mech_allowed(m, mlen, &a->scram_plus) &&
	       (!a->scram_plus || scram_plus_offered(a->c));
}

const char *pop3_auth_mechanisms(struct pop3_auth *a)
{
	/* The order and the set of SMTP's AUTH (smtp_auth.c) and IMAP's CAPABILITY. */
	static const char *const mechs[] = {
	    "PLAIN SCRAM-SHA-256",
	    "PLAIN SCRAM-SHA-256 EXTERNAL",
	    "PLAIN SCRAM-SHA-256-PLUS SCRAM-SHA-256",
	    "PLAIN SCRAM-SHA-256-PLUS SCRAM-SHA-256 EXTERNAL",
	};
	return mechs[(scram_plus_offered(a->c) ? 2 : 0) + (auth_cert_offered(a->c) ? 1 : 0)];
}

int pop3_auth_auth(struct pop3_auth *a, const char *arg, size_t len)
{
	const char *sp = memchr(arg, ' ', len);
	size_t mlen = sp != NULL ? (size_t)(sp - arg) : len;
	const char *resp = sp != NULL ? sp + 1 : NULL;
	size_t rlen = sp != NULL ? len - mlen - 1 : 0;
	enum pop3_auth_step wait;
	if (len == 0) {
		/* Bare AUTH lists the mechanisms (draft-myers-sasl-pop3, still sent by some
		 * clients before RFC 5034 CAPA), one a line. */
		const char *m = pop3_auth_mechanisms(a);
		conn_write_str(a->c, "+OK\r\n");
		for (const char *end; *m != '\0'; m = *end == ' ' ? end + 1 : end) {
			end = strchr(m, ' ');
			if (end == NULL)
				end = m + strlen(m);
			conn_printf(a->c, "%.*s\r\n", (int)(end - m), m);
		}
		conn_write_str(a->c, ".\r\n");
		return 0;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		wait = POP3_AUTH_PLAIN_WAIT;
	} else if (mlen == 8 && strncasecmp(arg, "EXTERNAL", 8) == 0 && auth_cert_offered(a->c)) {
		wait = POP3_AUTH_EXTERNAL_WAIT;
	} else if (pop3_auth_is_scram(a, arg, mlen)) {
		wait = POP3_AUTH_SCRAM_WAIT;
	} else {
		conn_write_str(a->c, "-ERR [AUTH] unsupported mechanism\r\n");
		return -1;
	}
	if (resp == NULL) {
		a->step = wait;
		/* Room for the longest PLAIN response (three AUTH_FIELD_MAX fields in
		 * base64), which is longer than an ordinary line before login. */
		conn_set_line_limit(a->c, POP3_SASL_LINE_MAX);
		conn_write_str(a->c, "+ \r\n");
		return 0;
	}
	switch (wait) {
	case POP3_AUTH_PLAIN_WAIT:
		return pop3_auth_plain(a, resp, rlen);
	case POP3_AUTH_EXTERNAL_WAIT:
		return pop3_auth_external(a, resp, rlen);
	default:
		return pop3_auth_scram(a, resp, rlen);
	}
}

bool pop3_auth_waiting(const struct pop3_auth *a)
{
	return a->step != POP3_AUTH_IDLE;
}

int pop3_auth_continue(struct pop3_auth *a, const char *line, size_t len)
{
	enum pop3_auth_step step = a->step;
	a->step = POP3_AUTH_IDLE;
	conn_set_line_limit(a->c, 0);
	if (len == 1 && line[0] == '*') {
		scram_auth_free(a->scram);
		a->scram = NULL;
		conn_write_str(a->c, "-ERR authentication cancelled\r\n");
		return -1;
	}
	switch (step) {
	case POP3_AUTH_SCRAM_WAIT:
		/* An empty line: the answer to the server-final-message, or (first) an empty
		 * client-first-message, which is malformed. */
		return pop3_auth_scram(a, line, len);
	case POP3_AUTH_EXTERNAL_WAIT:
		return pop3_auth_external(a, len == 0 ? "=" : line, len == 0 ? 1 : len);
	default:
		/* In a continuation an empty line is the empty response. */
		return pop3_auth_plain(a, len == 0 ? "=" : line, len == 0 ? 1 : len);
	}
}
