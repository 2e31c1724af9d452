/*
 * SMTP AUTH PLAIN / LOGIN / EXTERNAL exchanges. Secrets live in stack buffers that are
 * wiped before returning; auth_login copies (and wipes) what it keeps.
 */
#include "server/smtp/smtp_auth.h"

#include <stdio.h>
#include <string.h>

#include "server/auth/cert_login.h"
#include "server/auth/login.h"
#include "server/auth/scram.h"
#include "server/conn.h"

#define R_OK   "235 2.7.0 Authentication successful\r\n"
#define R_FAIL "535 5.7.8 Authentication credentials invalid\r\n"
#define R_CERT "535 5.7.8 Authentication refused: this account needs its client certificate\r\n"
#define R_OTHER                                                                                    \
	"535 5.7.8 Authentication refused: the client certificate on this connection "             \
	"belongs to another user\r\n"
#define R_TEMP   "454 4.7.0 Temporary authentication failure\r\n"
#define R_CANCEL "501 5.7.0 Authentication cancelled\r\n"
#define R_BAD64  "501 5.5.2 Cannot decode the response\r\n"
#define R_MECH   "504 5.5.4 Unrecognized authentication mechanism\r\n"
#define R_SYNTAX "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"

void smtp_auth_init(struct smtp_auth *a, struct conn *c, void *sess)
{
	memset(a, 0, sizeof(*a));
	a->c = c;
	a->sess = sess;
}

const char *smtp_auth_mechanisms(const struct smtp_auth *a)
{
	static const char *const mechs[] = {
	    "PLAIN LOGIN SCRAM-SHA-256",
	    "PLAIN LOGIN SCRAM-SHA-256 EXTERNAL",
	    "PLAIN LOGIN SCRAM-SHA-256-PLUS SCRAM-SHA-256",
	    "PLAIN LOGIN SCRAM-SHA-256-PLUS SCRAM-SHA-256 EXTERNAL",
	};
	return mechs[(scram_plus_offered(a->c) ? 2 : 0) + (auth_cert_offered(a->c) ? 1 : 0)];
}

void smtp_auth_cleanup(struct smtp_auth *a)
{
	scram_auth_free(a->scram);
	a->scram = NULL;
}

static bool ieq(const char *a, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = a[i] >= 'a' && a[i] <= 'z' ? (char)(a[i] - 32) : a[i];
		if (x != lit[i])
			return false;
	}
	return true;
}

static void auth_fail_now(struct smtp_auth *a, const char *reply)
{
	smtp_auth_cleanup(a);
	explicit_bzero(a->user, sizeof(a->user));
	a->state = SMTP_AUTH_IDLE;
	conn_write_str(a->c, reply);
	a->done(a->sess, false, NULL);
}

static void auth_checked(void *sess, const struct auth_login_result *r)
{
	struct smtp_auth *a = smtp_session_auth(sess);
	a->state = SMTP_AUTH_IDLE;
	explicit_bzero(a->user, sizeof(a->user));
	switch (r->status) {
	case AUTH_LOGIN_OK:
		a->succeeded = true;
		conn_write_str(a->c, R_OK);
		a->done(a->sess, true, r->user);
		return;
	case AUTH_LOGIN_CERT:
		/* With a verified certificate on the connection this can only be a login as
		 * someone other than its user: answered like a wrong password, so the reply
		 * does not tell that the other account's password was right. */
		conn_write_str(a->c, conn_cert_identity(a->c) != NULL ? R_FAIL : R_CERT);
		break;
	case AUTH_LOGIN_CERT_OTHER_USER:
		conn_write_str(a->c, R_OTHER);
		break;
	case AUTH_LOGIN_TEMPFAIL:
		conn_write_str(a->c, R_TEMP);
		break;
	case AUTH_LOGIN_FAILED:
		conn_write_str(a->c, R_FAIL);
		break;
	}
	a->done(a->sess, false, NULL);
}

static void auth_check(struct smtp_auth *a, const char *mech, const char *user,
                       const char *password)
{
	a->state = SMTP_AUTH_CHECKING;
	auth_login(a->c, mech, user, password, auth_checked);
}

static void auth_plain(struct smtp_auth *a, const char *b64, size_t len)
{
	struct auth_plain p;
	if (auth_plain_decode(b64, len, &p) < 0) {
		auth_plain_wipe(&p);
		auth_fail_now(a, R_BAD64);
		return;
	}
	/* An authorization identity other than the login itself is not supported: the
	 * same answer as a wrong password. */
	if (p.authzid[0] != '\0' && strcmp(p.authzid, p.authcid) != 0) {
		auth_plain_wipe(&p);
		auth_fail_now(a, R_FAIL);
		return;
	}
	auth_check(a, "PLAIN", p.authcid, p.password);
	auth_plain_wipe(&p);
}

/* EXTERNAL: resp is the initial response or the continuation line ("=" or empty: no
 * authorization identity; else base64 of the one the client asks for). */
static void auth_external_resp(struct smtp_auth *a, const char *resp, size_t len)
{
	char authzid[AUTH_FIELD_MAX + 1] = "";
	if (len > 0 && !(len == 1 && resp[0] == '=') &&
	    auth_login_decode(resp, len, authzid, sizeof(authzid)) < 0) {
		auth_fail_now(a, R_BAD64);
		return;
	}
	a->state = SMTP_AUTH_CHECKING;
	auth_cert_login(a->c, AUTH_CERT_EXTERNAL, authzid, auth_checked);
}

/* Each SCRAM step's outcome: a challenge (the server-first, then the server-final), or
 * the end of the exchange. */
static void auth_scram_cb(void *sess, const struct scram_auth_result *r)
{
	struct smtp_auth *a = smtp_session_auth(sess);
	if (!r->done) {
		a->state = SMTP_AUTH_SCRAM_WAIT;
		conn_printf(a->c, "334 %s\r\n", r->challenge);
		return;
	}
	if (r->malformed) {
		/* RFC 4954 4: the server-final-message is answered with an empty line. */
		auth_fail_now(a, R_CANCEL);
		return;
	}
	/* The exchange is freed before the session hears the outcome; r->user lives in it. */
	char user[AUTH_FIELD_MAX + 1];
	snprintf(user, sizeof(user), "%s", r->user != NULL ? r->user : "");
	struct auth_login_result lr = {.status = r->status, .user_id = r->user_id, .user = user};
	smtp_auth_cleanup(a);
	auth_checked(sess, &lr);
	explicit_bzero(user, sizeof(user));
}

static void auth_scram_first(struct smtp_auth *a, const char *b64, size_t len)
{
	a->scram = scram_auth_start(a->c, a->scram_plus, b64, len, auth_scram_cb);
	if (a->scram == NULL) {
		auth_fail_now(a, R_BAD64);
		return;
	}
	a->state = SMTP_AUTH_CHECKING;
}

void smtp_auth_start(struct smtp_auth *a, const char *args, size_t len, smtp_auth_done_cb *done)
{
	a->done = done;
	size_t m = 0;
	while (m < len && args[m] != ' ')
		m++;
	const char *ir = m < len ? args + m + 1 : NULL;
	size_t ir_len = ir ? len - m - 1 : 0;
	if (m == 0 || (ir && (ir_len == 0 || memchr(ir, ' ', ir_len)))) {
		auth_fail_now(a, R_SYNTAX);
		return;
	}
	bool empty_ir = ir && ir_len == 1 && ir[0] == '=';
	if (ieq(args, m, "PLAIN")) {
		if (ir == NULL) {
			a->state = SMTP_AUTH_PLAIN_WAIT;
			conn_write_str(a->c, "334 \r\n");
			return;
		}
		auth_plain(a, empty_ir ? "" : ir, empty_ir ? 0 : ir_len);
		return;
	}
	if (ieq(args, m, "LOGIN")) {
		if (ir == NULL) {
			a->state = SMTP_AUTH_LOGIN_USER;
			conn_write_str(a->c, "334 VXNlcm5hbWU6\r\n");
			return;
		}
		/* RFC 4954 allows the user name as an initial response to LOGIN. */
		if (auth_login_decode(ir, ir_len, a->user, sizeof(a->user)) < 0 ||
		    a->user[0] == '\0') {
			auth_fail_now(a, R_BAD64);
			return;
		}
		a->state = SMTP_AUTH_LOGIN_PASS;
		conn_write_str(a->c, "334 UGFzc3dvcmQ6\r\n");
		return;
	}
	if (ieq(args, m, "EXTERNAL")) {
		if (ir == NULL) {
			a->state = SMTP_AUTH_EXTERNAL_WAIT;
			conn_write_str(a->c, "334 \r\n");
			return;
		}
		auth_external_resp(a, ir, ir_len);
		return;
	}
	/* -PLUS only where it is advertised (auth.channel_binding, and a binding to give):
	 * elsewhere it is as unknown as any mechanism not in the EHLO list. */
	if (scram_mech_allowed(args, m, &a->scram_plus) &&
	    (!a->scram_plus || scram_plus_offered(a->c))) {
		if (ir == NULL) {
			a->state = SMTP_AUTH_SCRAM_FIRST;
			conn_write_str(a->c, "334 \r\n");
			return;
		}
		auth_scram_first(a, ir, ir_len);
		return;
	}
	auth_fail_now(a, R_MECH);
}

void smtp_auth_line(struct smtp_auth *a, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		auth_fail_now(a, R_CANCEL);
		return;
	}
	switch (a->state) {
	case SMTP_AUTH_PLAIN_WAIT:
		auth_plain(a, line, len);
		return;
	case SMTP_AUTH_EXTERNAL_WAIT:
		auth_external_resp(a, line, len);
		return;
	case SMTP_AUTH_SCRAM_FIRST:
		auth_scram_first(a, line, len);
		return;
	case SMTP_AUTH_SCRAM_WAIT:
		a->state = SMTP_AUTH_CHECKING;
		scram_auth_step(a->scram, line, len);
		return;
	case SMTP_AUTH_LOGIN_USER:
		if (auth_login_decode(line, len, a->user, sizeof(a->user)) < 0 ||
		    a->user[0] == '\0') {
			auth_fail_now(a, R_BAD64);
			return;
		}
		a->state = SMTP_AUTH_LOGIN_PASS;
		conn_write_str(a->c, "334 UGFzc3dvcmQ6\r\n");
		return;
	case SMTP_AUTH_LOGIN_PASS: {
		char pw[AUTH_FIELD_MAX + 1];
		if (auth_login_decode(line, len, pw, sizeof(pw)) < 0 || pw[0] == '\0') {
			explicit_bzero(pw, sizeof(pw));
			auth_fail_now(a, R_BAD64);
			return;
		}
		auth_check(a, "LOGIN", a->user, pw);
		explicit_bzero(pw, sizeof(pw));
		return;
	}
	case SMTP_AUTH_IDLE:
	case SMTP_AUTH_CHECKING:
		break; /* input is paused while checking; nothing to do */
	}
}
