/*
 * USER/PASS and AUTH for POP3 (see pop3_auth.h). Secrets (PASS arguments, SASL responses)
 * are copied only into buffers that are wiped before return.
 */
#include "server/pop3/pop3_auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "server/conn.h"
#include "server/services.h"
#include "storage/store.h"

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
	free(a->ext_user);
	a->ext_user = NULL;
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

/*
 * EXTERNAL is the certificate alone. Where the administrator demands a certificate AND a
 * password (auth.require_client_certificate, or the user's require-cert flag), it would
 * drop the password, so it is not offered (globally) or refused (for that user).
 */
static bool pop3_auth_external_allowed(struct pop3_auth *a)
{
	const struct config *cfg = conn_config(a->c);
	return conn_cert_identity(a->c) != NULL &&
	       (cfg == NULL || !cfg->auth.require_client_certificate);
}

static void pop3_auth_ext_got(void *ctx, int rc, struct store_result *res)
{
	struct pop3_auth *a = ctx;
	struct conn *c = a->c;
	if (!conn_release(c))
		return;
	struct auth_login_result r = {.status = AUTH_LOGIN_FAILED};
	const char *why = "unknown_user";
	if (rc == 0 && res->n_users == 1 && !res->users[0].disabled &&
	    res->users[0].require_client_certificate) {
		why = "password_required";
	} else if (rc == 0 && res->n_users == 1 && !res->users[0].disabled) {
		r.status = AUTH_LOGIN_OK;
		r.user_id = res->users[0].id;
		r.user = a->ext_user;
	} else if (rc < 0 && rc != -ENOENT) {
		r.status = AUTH_LOGIN_TEMPFAIL;
		why = "store_error";
	}
	char esc[200];
	log_escape(esc, sizeof(esc), a->ext_user, strlen(a->ext_user));
	if (r.status == AUTH_LOGIN_OK)
		log_event(
		    LOGL_INFO,
		    "session=%s proto=pop3 event=auth_ok mech=EXTERNAL user=%s ip=%s serial=%s",
		    conn_id(c), esc, conn_peer_ip(c), conn_cert_serial(c));
	else
		log_event(LOGL_WARN,
		          "session=%s proto=pop3 event=auth_failed mech=EXTERNAL user=%s ip=%s "
		          "reason=%s",
		          conn_id(c), esc, conn_peer_ip(c), why);
	/* Input stays paused: the session answers and resumes it. Held during the call
	 * so that a close there frees the session only after done returns. */
	conn_hold(c);
	a->done(a->sess, &r);
	conn_release(c);
}

static int pop3_auth_external(struct pop3_auth *a, const char *resp, size_t len)
{
	const char *identity = conn_cert_identity(a->c);
	struct services *sv = conn_services(a->c);
	if (len == 1 && resp[0] == '=')
		len = 0;
	if (len > 0) {
		/* An authorization identity, when given, must be the certificate's own. */
		unsigned char authz[AUTH_FIELD_MAX + 4];
		long n = len <= base64_encoded_len(AUTH_FIELD_MAX) ? base64_decode(resp, len, authz)
		                                                   : -EINVAL;
		if (n < 0) {
			conn_write_str(a->c, "-ERR [AUTH] malformed SASL EXTERNAL response\r\n");
			return -1;
		}
		if (identity == NULL || (size_t)n != strlen(identity) ||
		    strncasecmp((const char *)authz, identity, (size_t)n) != 0) {
			pop3_auth_fail_now(a);
			return 1;
		}
	}
	if (identity == NULL || sv == NULL || sv->store == NULL) {
		pop3_auth_fail_now(a);
		return 1;
	}
	free(a->ext_user);
	a->ext_user = xstrdup(identity);
	conn_pause(a->c);
	conn_hold(a->c);
	int rc = store_user_get(sv->store, identity, pop3_auth_ext_got, a);
	if (rc < 0) {
		conn_release(a->c);
		struct auth_login_result r = {.status = AUTH_LOGIN_TEMPFAIL};
		a->done(a->sess, &r);
	}
	return 1;
}

/* ---- AUTH ------------------------------------------------------------------------ */

const char *pop3_auth_mechanisms(struct pop3_auth *a)
{
	return pop3_auth_external_allowed(a) ? "PLAIN EXTERNAL" : "PLAIN";
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
		if (pop3_auth_external_allowed(a))
			conn_write_str(a->c, "EXTERNAL\r\n");
		conn_write_str(a->c, ".\r\n");
		return 0;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		wait = POP3_AUTH_PLAIN_WAIT;
	} else if (mlen == 8 && strncasecmp(arg, "EXTERNAL", 8) == 0 &&
	           pop3_auth_external_allowed(a)) {
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
