/*
 * CAPABILITY, NOOP, CHECK, LOGOUT, and logging in: LOGIN, AUTHENTICATE PLAIN, EXTERNAL and
 * SCRAM-SHA-256(-PLUS) (the greeting's PREAUTH is in imap_session.c).
 *
 * AUTHENTICATE (RFC 9051 6.2.2, SASL-IR RFC 4959): each challenge is a "+ " continuation,
 * the client's "*" cancels (tagged BAD), a response that cannot be decoded is BAD, refused
 * credentials are NO [AUTHENTICATIONFAILED]. IMAP has no "additional data with success",
 * so SCRAM's server-final-message is one more continuation, which the client answers with
 * an empty line before the tagged OK (RFC 4422 5). The exchanges themselves are shared
 * with SMTP and POP3 (server/auth/): nothing here checks a password or a proof.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/auth/auth.h"
#include "server/auth/cert_login.h"
#include "server/auth/login.h"
#include "server/auth/scram.h"
#include "server/imap/imap_private.h"

void imap_cmd_capability(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, "* ");
	imap_write_capability(cl, &o);
	buf_append_str(&o, "\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", "CAPABILITY completed");
}

static void noop_synced(struct imap_client *cl)
{
	imap_done(cl, "OK", "NOOP completed");
}

void imap_cmd_noop(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (cl->changed)
		imap_sync_then(cl, noop_synced);
	else
		imap_done(cl, "OK", "NOOP completed");
}

void imap_cmd_check(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	imap_cmd_noop(cl, a, n);
}

void imap_cmd_logout(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	conn_write_str(cl->c, "* BYE Logging out\r\n");
	imap_set_state(cl, IMAP_STATE_LOGOUT);
	imap_done(cl, "OK", "LOGOUT completed");
}

/* Ends AUTHENTICATE or LOGIN that ran through server/auth/: the tagged reply is written;
 * the step that called back resumes input itself after this. */
static void login_end(struct imap_client *cl)
{
	free(cl->tag);
	cl->tag = NULL;
	cl->busy = false;
	cl->cmd_flags = 0;
	if (cl->op_free != NULL)
		cl->op_free(cl->op);
	cl->op = NULL;
	cl->op_free = NULL;
	imap_args_free(&cl->args);
	imap_reader_reset(&cl->reader);
}

static void login_done(void *sess, const struct auth_login_result *r)
{
	struct imap_client *cl = sess;
	switch (r->status) {
	case AUTH_LOGIN_OK:
		cl->user_id = r->user_id;
		free(cl->user);
		cl->user = xstrdup(r->user);
		conn_set_authenticated(cl->c, cl->user);
		imap_set_state(cl, IMAP_STATE_AUTH);
		{
			struct buf o;
			buf_init(&o, SIZE_MAX);
			buf_append_str(&o, "[");
			imap_write_capability(cl, &o);
			buf_append_str(&o, "] Logged in");
			conn_printf(cl->c, "%s OK %s\r\n", cl->tag, o.data);
			buf_free(&o);
		}
		break;
	case AUTH_LOGIN_CERT:
		conn_printf(cl->c,
		            "%s NO [AUTHENTICATIONFAILED] A client certificate for this "
		            "user is required\r\n",
		            cl->tag);
		break;
	case AUTH_LOGIN_CERT_OTHER_USER:
		conn_printf(cl->c,
		            "%s NO [AUTHENTICATIONFAILED] The client certificate on this "
		            "connection belongs to another user\r\n",
		            cl->tag);
		break;
	case AUTH_LOGIN_TEMPFAIL:
		conn_printf(cl->c, "%s NO [UNAVAILABLE] Try again later\r\n", cl->tag);
		break;
	default:
		conn_printf(cl->c, "%s NO [AUTHENTICATIONFAILED] Invalid credentials\r\n", cl->tag);
		break;
	}
	login_end(cl);
}

static void start_login(struct imap_client *cl, const char *mech, const char *user,
                        const char *pass)
{
	auth_login(cl->c, mech, user, pass, login_done);
}

void imap_cmd_login(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 2 || !imap_arg_is_astring(&a[0]) || !imap_arg_is_astring(&a[1])) {
		imap_done(cl, "BAD", "LOGIN needs a user name and a password");
		return;
	}
	char *user = imap_arg_dup(&a[0]);
	char *pass = imap_arg_dup(&a[1]);
	if (user == NULL || pass == NULL || a[0].len > AUTH_FIELD_MAX ||
	    a[1].len > AUTH_FIELD_MAX) {
		free(user);
		if (pass != NULL)
			explicit_bzero(pass, strlen(pass));
		free(pass);
		imap_done(cl, "NO", "[AUTHENTICATIONFAILED] Invalid credentials");
		return;
	}
	/* The LOGIN command carries what SASL PLAIN does: logged as PLAIN, so one
	 * spelling covers every cleartext password (docs/logging.md). */
	start_login(cl, "PLAIN", user, pass);
	explicit_bzero(pass, strlen(pass));
	free(pass);
	free(user);
	/* Wipe the password from the command buffer too. */
	explicit_bzero((char *)a[1].s, a[1].len);
}

static void plain_login(struct imap_client *cl, const char *b64, size_t len)
{
	struct auth_plain p;
	if (len == 1 && b64[0] == '*') {
		imap_done(cl, "BAD", "Authentication cancelled");
		return;
	}
	if (auth_plain_decode(b64, len, &p) < 0) {
		imap_done(cl, "BAD", "Invalid SASL PLAIN response");
		return;
	}
	if (p.authzid[0] != '\0' && strcmp(p.authzid, p.authcid) != 0) {
		auth_plain_wipe(&p);
		imap_done(cl, "NO", "[AUTHORIZATIONFAILED] Cannot act as another user");
		return;
	}
	start_login(cl, "PLAIN", p.authcid, p.password);
	auth_plain_wipe(&p);
}

/* SASL EXTERNAL: the login is the client certificate's identity (server/auth/cert_login.h);
 * the response is empty ("=") or the base64 of an authorization identity, which must be
 * the certificate's own. */
static void external_login(struct imap_client *cl, const char *b64, size_t len)
{
	char authzid[AUTH_FIELD_MAX + 1] = "";
	if (len == 1 && b64[0] == '*') {
		imap_done(cl, "BAD", "Authentication cancelled");
		return;
	}
	if (len > 0 && !(len == 1 && b64[0] == '=') &&
	    auth_login_decode(b64, len, authzid, sizeof(authzid)) < 0) {
		imap_done(cl, "BAD", "Invalid SASL EXTERNAL response");
		return;
	}
	auth_cert_login(cl->c, AUTH_CERT_EXTERNAL, authzid, login_done);
}

/* ---- SCRAM-SHA-256(-PLUS) -------------------------------------------------------- */

static void scram_op_free(void *op)
{
	scram_auth_free(op);
}

/* Waits for the client's answer to a challenge (the first one is empty: no SASL-IR). */
static void scram_continue(struct imap_client *cl, const char *challenge)
{
	cl->auth_continue = true;
	cl->auth_mech = IMAP_SASL_SCRAM;
	conn_set_line_limit(cl->c, IMAP_SASL_LINE_MAX);
	conn_printf(cl->c, "+ %s\r\n", challenge);
}

/* Each step's outcome (server/auth/scram.h), with input paused until it returns. */
static void scram_step_done(void *sess, const struct scram_auth_result *r)
{
	struct imap_client *cl = sess;
	if (!r->done) {
		scram_continue(cl, r->challenge);
		return;
	}
	if (r->malformed) {
		conn_printf(cl->c,
		            "%s BAD The answer to the server's last message must be empty\r\n",
		            cl->tag);
		login_end(cl);
		return;
	}
	struct auth_login_result lr = {.status = r->status, .user_id = r->user_id, .user = r->user};
	login_done(sess, &lr);
}

static void scram_response(struct imap_client *cl, const char *b64, size_t len)
{
	if (len == 1 && b64[0] == '*') {
		imap_done(cl, "BAD", "Authentication cancelled"); /* frees the exchange */
		return;
	}
	if (cl->op != NULL) {
		scram_auth_step(cl->op, b64, len);
		return;
	}
	struct scram_auth *x = scram_auth_start(cl->c, cl->scram_plus, b64, len, scram_step_done);
	if (x == NULL) {
		imap_done(cl, "BAD", "Invalid SASL SCRAM message");
		return;
	}
	cl->op = x;
	cl->op_free = scram_op_free;
}

/* ---- AUTHENTICATE ------------------------------------------------------------------- */

void imap_cmd_authenticate(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n < 1 || n > 2 || a[0].type != IMAP_ARG_ATOM) {
		imap_done(cl, "BAD", "AUTHENTICATE needs a mechanism");
		return;
	}
	enum imap_sasl mech;
	if (imap_arg_is(&a[0], "PLAIN")) {
		mech = IMAP_SASL_PLAIN;
	} else if (imap_arg_is(&a[0], "EXTERNAL")) {
		mech = IMAP_SASL_EXTERNAL;
	} else if (scram_mech_allowed(a[0].s, a[0].len, &cl->scram_plus) &&
	           (!cl->scram_plus || scram_plus_offered(cl->c))) {
		/* -PLUS only where CAPABILITY lists it (auth.channel_binding and a binding to
		 * give): elsewhere it is as unknown as any other name. */
		mech = IMAP_SASL_SCRAM;
	} else {
		imap_done(cl, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (n == 2) {
		/* RFC 4959: "=" is an empty initial response. */
		bool empty = a[1].len == 1 && a[1].s[0] == '=';
		switch (mech) {
		case IMAP_SASL_PLAIN:
			plain_login(cl, empty ? "" : a[1].s, empty ? 0 : a[1].len);
			break;
		case IMAP_SASL_EXTERNAL:
			external_login(cl, a[1].s, a[1].len);
			break;
		case IMAP_SASL_SCRAM:
			scram_response(cl, empty ? "" : a[1].s, empty ? 0 : a[1].len);
			break;
		}
		return;
	}
	cl->auth_continue = true;
	cl->auth_mech = mech;
	conn_set_line_limit(cl->c, IMAP_SASL_LINE_MAX);
	conn_write_str(cl->c, "+ \r\n");
}

void imap_authenticate_response(struct imap_client *cl, const char *line, size_t len)
{
	cl->auth_continue = false;
	conn_set_line_limit(cl->c, 0);
	switch (cl->auth_mech) {
	case IMAP_SASL_EXTERNAL:
		external_login(cl, line, len);
		return;
	case IMAP_SASL_SCRAM:
		scram_response(cl, line, len);
		return;
	case IMAP_SASL_PLAIN:
		plain_login(cl, line, len);
		return;
	}
}

void imap_authenticate_too_long(struct imap_client *cl)
{
	cl->auth_continue = false;
	conn_set_line_limit(cl->c, 0);
	imap_done(cl, "BAD", "[TOOBIG] Authentication response too long");
}
