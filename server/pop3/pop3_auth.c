/*
 * USER/PASS and AUTH for POP3 (see pop3_auth.h). Secrets (PASS arguments, SASL responses)
 * are copied only into buffers that are wiped before return.
 */
#include "server/pop3/pop3_auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/cert_login.h"
#include "server/conn.h"

/* A SASL continuation line: base64 of authzid, authcid and password plus slack. */
#define POP3_SASL_LINE_MAX 4096

void pop3_auth_init(struct pop3_auth *a, struct conn *c, void *sess, pop3_auth_done_fn *done)
{
	memset(a, 0, sizeof(*a));
	a->c = c;
	a->sess = sess;
	a->done = done;
}

void pop3_auth_free(struct pop3_auth *a)
{
	a->have_user = false;
	a->step = POP3_AUTH_IDLE;
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

/* ---- AUTH ------------------------------------------------------------------------ */

const char *pop3_auth_mechanisms(struct pop3_auth *a)
{
	return auth_cert_offered(a->c) ? "PLAIN EXTERNAL" : "PLAIN";
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
		 * clients before RFC 5034 CAPA). */
		conn_write_str(a->c, "+OK\r\nPLAIN\r\n");
		if (auth_cert_offered(a->c))
			conn_write_str(a->c, "EXTERNAL\r\n");
		conn_write_str(a->c, ".\r\n");
		return 0;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		wait = POP3_AUTH_PLAIN_WAIT;
	} else if (mlen == 8 && strncasecmp(arg, "EXTERNAL", 8) == 0 && auth_cert_offered(a->c)) {
		wait = POP3_AUTH_EXTERNAL_WAIT;
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
	if (wait == POP3_AUTH_PLAIN_WAIT)
		return pop3_auth_plain(a, resp, rlen);
	return pop3_auth_external(a, resp, rlen);
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
		conn_write_str(a->c, "-ERR authentication cancelled\r\n");
		return -1;
	}
	/* In a continuation an empty line is the empty response. */
	if (step == POP3_AUTH_PLAIN_WAIT)
		return pop3_auth_plain(a, len == 0 ? "=" : line, len == 0 ? 1 : len);
	return pop3_auth_external(a, len == 0 ? "=" : line, len == 0 ? 1 : len);
}
