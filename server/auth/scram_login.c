/*
 * The SCRAM login for a connection (scram.h, second half). The steps, each with the
 * connection paused and held:
 *   start:  decode the user name, look the material up (store thread), set it (or the
 *           dummy material when there is none), answer the server-first-message;
 *   step:   wait for a check slot when the address has failures pending (auth.h), check
 *           the proof (GNU SASL, on the loop: no key stretching happens here, the store
 *           keeps the stretched keys), then the user's certificate flag (store thread)
 *           and the certificate policy, one log line, the failure accounting; a failure's
 *           answer waits the failed-login delay, a success's does not, and is the
 *           server-final-message in one more challenge;
 *   ack:    the client's empty answer to it ends the exchange as logged in (on the next turn
 *           of the loop, so every step answers the same way).
 * An unknown or disabled user gets a server-first-message like everyone else (a fixed
 * salt per name) and fails at the proof, as a wrong password does.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/auth/auth.h"
#include "server/auth/scram.h"
#include "server/conn.h"
#include "server/services.h"
#include "server/tls.h"
#include "storage/store.h"

struct scram_auth {
	struct conn *conn;
	scram_auth_cb *cb;
	struct scram_server *x;
	char *first; /* the client-first-message (base64) until the material is set */
	char *final; /* the client-final-message (base64) while it waits for a check slot */
	char user[AUTH_FIELD_MAX + 1];
	int64_t user_id;
	enum auth_login_status status; /* while a failure's answer waits */
	bool plus;
	bool busy;    /* a step runs: the connection is held */
	bool checked; /* the proof was checked: the outcome counts */
	bool held;    /* holds one of the address's check slots */
	bool acking;  /* the server-final-message went out: the next answer must be empty */
	bool ack_ok;  /* that answer was empty */
};

static bool scram_alive(const struct scram_auth *a)
{
	return conn_is_open(a->conn);
}

static const char *scram_mech_name(const struct scram_auth *a)
{
	return a->plus ? SCRAM_MECH_PLUS : SCRAM_MECH;
}

/* The log line and the failure accounting; returns how long the answer waits. */
static unsigned scram_log(struct scram_auth *a, enum auth_login_status st, const char *why)
{
	struct conn *c = a->conn;
	struct authfail *af = conn_services(c)->authfail;
	const char *ip = conn_peer_ip(c);
	uint64_t now = conn_now_ms(c);
	char user_esc[200];
	log_escape(user_esc, sizeof(user_esc), a->user, strlen(a->user));
	if (st == AUTH_LOGIN_OK)
		log_event(LOGL_INFO, "session=%s proto=%s event=auth_ok mech=%s user=%s ip=%s",
		          conn_id(c), conn_proto_name(c), scram_mech_name(a), user_esc, ip);
	else
		log_event(LOGL_WARN,
		          "session=%s proto=%s event=auth_failed mech=%s user=%s ip=%s reason=%s",
		          conn_id(c), conn_proto_name(c), scram_mech_name(a), user_esc, ip, why);
	audit_login(c, a->user, scram_mech_name(a), st == AUTH_LOGIN_OK, why);
	metrics_inc(METRIC_LOGINS, conn_proto_name(c), scram_mech_name(a),
	            st == AUTH_LOGIN_OK         ? "ok"
	            : st == AUTH_LOGIN_TEMPFAIL ? "tempfail"
	                                        : "failed");
	bool held = a->held;
	a->held = false;
	if (st == AUTH_LOGIN_OK) {
		authfail_succeeded(af, ip, a->user, held, now);
		return 0;
	}
	/* A malformed first message tests no password: logged, not counted. */
	if (st == AUTH_LOGIN_TEMPFAIL || !a->checked) {
		authfail_abandoned(af, ip, held, now);
		return 0;
	}
	return authfail_failed(af, ip, a->user, held, now);
}

/* Ends a step: hands r to the session (if it is still there), resumes input unless the
 * callback paused again, and lets the connection go. a may be freed by the callback or
 * by conn_release (the session's close), so it is not touched after. */
struct scram_answer {
	struct scram_auth *a;
	struct scram_auth_result *r;
};

static void scram_answer_cb(void *sess, void *arg)
{
	struct scram_answer *x = arg;
	x->r->user = x->a->user;
	x->r->user_id = x->a->user_id;
	x->a->cb(sess, x->r);
}

static void scram_answer(struct scram_auth *a, struct scram_auth_result *r)
{
	struct scram_answer x = {a, r};
	a->busy = false;
	conn_step_end(a->conn, scram_answer_cb, &x);
}

static void scram_fail_cb(void *arg)
{
	struct scram_auth *a = arg;
	scram_answer(a, &(struct scram_auth_result){.done = true, .status = a->status});
}

static void scram_done(struct scram_auth *a, enum auth_login_status st, const char *why,
                       const char *final)
{
	unsigned delay = scram_log(a, st, why);
	if (delay > 0 && scram_alive(a)) {
		/* Only failures wait, so final (a success's) is not needed later. */
		a->status = st;
		conn_after(a->conn, delay, scram_fail_cb, a);
		return;
	}
	/* A success is not over yet: the server-final-message goes out as a challenge. */
	a->acking = st == AUTH_LOGIN_OK;
	struct scram_auth_result r = {.done = !a->acking, .status = st, .challenge = final};
	scram_answer(a, &r);
}

static void scram_user_got(void *ctx, int rc, struct store_users *res)
{
	struct scram_auth *a = ctx;
	char *final = a->first; /* the server-final-message waited here */
	a->first = NULL;
	if (!scram_alive(a)) {
		free(final);
		authfail_abandoned(conn_services(a->conn)->authfail, conn_peer_ip(a->conn), a->held,
		                   conn_now_ms(a->conn));
		a->held = false;
		scram_answer(a, &(struct scram_auth_result){.done = true});
		return;
	}
	if (rc < 0 || res->n != 1 || res->v[0].disabled) {
		/* Deleted or disabled between the two lookups, or the store failed. */
		free(final);
		if (rc == -ENOENT || rc == 0)
			scram_done(a, AUTH_LOGIN_FAILED, "bad_credentials", NULL);
		else
			scram_done(a, AUTH_LOGIN_TEMPFAIL, "store_error", NULL);
		return;
	}
	const char *why = NULL;
	if (auth_cert_policy(a->conn, a->user, res->v[0].require_client_certificate, &why) < 0)
		scram_done(a, auth_cert_policy_status(why), why, NULL);
	else
		scram_done(a, AUTH_LOGIN_OK, NULL, final);
	free(final);
}

static void scram_drop_final(struct scram_auth *a)
{
	if (a->final != NULL)
		explicit_bzero(a->final, strlen(a->final));
	free(a->final);
	a->final = NULL;
}

/* The proof may be checked once the address has a free check slot. */
static void scram_proof_cb(void *arg)
{
	struct scram_auth *a = arg;
	struct conn *c = a->conn;
	if (!scram_alive(a)) {
		scram_drop_final(a);
		scram_answer(a, &(struct scram_auth_result){.done = true});
		return;
	}
	unsigned wait = authfail_begin(conn_services(c)->authfail, conn_peer_ip(c), a->user,
	                               conn_now_ms(c), &a->held);
	if (wait > 0) {
		conn_after(c, wait, scram_proof_cb, a);
		return;
	}
	char *out = NULL;
	a->checked = a->x != NULL;
	int r = a->x == NULL ? -EIO : scram_server_step(a->x, a->final, strlen(a->final), &out);
	scram_drop_final(a);
	if (r != 1) {
		free(out);
		scram_done(a, AUTH_LOGIN_FAILED, r == -EINVAL ? "bad_message" : "bad_credentials",
		           NULL);
		return;
	}
	/* The proof matched: now the certificate policy, which needs the user's flag. */
	a->first = out;
	int s = store_user_get(conn_services(c)->store, a->user, scram_user_got, a);
	if (s < 0)
		scram_user_got(a, s, NULL);
}

/* The client's answer to the server-final-message. */
static void scram_ack_cb(void *arg)
{
	struct scram_auth *a = arg;
	struct scram_auth_result r = {.done = true, .status = AUTH_LOGIN_OK};
	if (!a->ack_ok) {
		r.status = AUTH_LOGIN_FAILED;
		r.malformed = true;
	}
	scram_answer(a, &r);
}

void scram_auth_step(struct scram_auth *a, const char *b64, size_t len)
{
	struct conn *c = a->conn;
	assert(!a->busy);
	conn_step_begin(c);
	a->busy = true;
	if (a->acking) {
		a->acking = false;
		a->ack_ok = len == 0;
		conn_after(c, 0, scram_ack_cb, a);
		return;
	}
	a->final = xstrndup(b64, len);
	conn_after(c, 0, scram_proof_cb, a);
}

static void scram_material_got(void *ctx, int rc, struct store_scram_material *res)
{
	struct scram_auth *a = ctx;
	char *out = NULL;
	if (!scram_alive(a)) {
		scram_answer(a, &(struct scram_auth_result){.done = true});
		return;
	}
	int r;
	if (a->x == NULL) {
		scram_done(a, AUTH_LOGIN_TEMPFAIL, "sasl_error", NULL);
		return;
	}
	if (rc == 0) {
		a->user_id = res->user_id;
		r = scram_server_set_material(a->x, res->scram.salt, res->scram.iterations,
		                              res->scram.stored_key, res->scram.server_key);
	} else if (rc == -ENOENT || rc == -EINVAL) {
		r = scram_server_set_dummy(a->x, a->user);
	} else {
		log_event(LOGL_ERROR, "session=%s event=store_error op=scram error=\"%s\"",
		          conn_id(a->conn), store_strerror(rc));
		scram_done(a, AUTH_LOGIN_TEMPFAIL, "store_error", NULL);
		return;
	}
	if (r == 0)
		r = scram_server_step(a->x, a->first, strlen(a->first), &out);
	free(a->first);
	a->first = NULL;
	if (r == 0 && out != NULL) {
		struct scram_auth_result res2 = {.done = false, .challenge = out};
		scram_answer(a, &res2);
		free(out);
		return;
	}
	free(out);
	scram_done(a, AUTH_LOGIN_FAILED, r == -EINVAL ? "bad_message" : "bad_credentials", NULL);
}

/* From the timer, so the first answer never comes before scram_auth_start returns. */
static void scram_timer_cb(void *arg)
{
	struct scram_auth *a = arg;
	if (!scram_alive(a)) {
		scram_answer(a, &(struct scram_auth_result){.done = true});
		return;
	}
	struct store *st = conn_services(a->conn)->store;
	int r = store_user_scram(st, a->user, scram_material_got, a);
	if (r < 0)
		scram_material_got(a, r, NULL);
}

/* The connection's tls-exporter binding into bind, when PLUS is offered on it: turned on
 * by auth.channel_binding, and TLS can export it. 0 or -ENOTSUP. */
static int scram_binding(struct conn *c, unsigned char bind[SCRAM_CB_LEN])
{
	const struct config *cfg = conn_config(c);
	struct tls_session *tls = conn_tls(c);
	if (cfg == NULL || !cfg->auth.channel_binding || tls == NULL ||
	    tls_session_channel_binding(tls, bind, SCRAM_CB_LEN) < 0)
		return -ENOTSUP;
	return 0;
}

struct scram_auth *scram_auth_start(struct conn *c, bool plus, const char *b64, size_t len,
                                    scram_auth_cb *cb)
{
	char user[AUTH_FIELD_MAX + 1];
	unsigned char bind[SCRAM_CB_LEN];
	bool have_cb = false;
	if (scram_client_first_user(b64, len, user, sizeof(user)) < 0)
		return NULL;
	/* The binding goes to GNU SASL only where PLUS was offered: then a client's "y" (it
	 * could bind but saw no PLUS) is a downgrade and refused; where PLUS was not offered
	 * "y" is what an honest client says. */
	if (scram_binding(c, bind) == 0)
		have_cb = true;
	struct scram_auth *a = xcalloc(1, sizeof(*a));
	a->conn = c;
	a->cb = cb;
	a->plus = plus;
	for (size_t i = 0; user[i] != '\0'; i++)
		a->user[i] = (char)tolower((unsigned char)user[i]);
	a->first = xstrndup(b64, len);
	conn_step_begin(c);
	a->busy = true;
	/* PLUS without a channel binding (no TLS exporter): a plain exchange, which GNU SASL
	 * ends like a wrong password when the client asks to bind. */
	if (scram_server_new(plus, have_cb ? bind : NULL, SCRAM_CB_LEN, &a->x) < 0)
		(void)scram_server_new(false, NULL, 0, &a->x);
	gnutls_memset(bind, 0, sizeof(bind));
	conn_after(c, 0, scram_timer_cb, a);
	return a;
}

bool scram_plus_offered(struct conn *c)
{
	unsigned char bind[SCRAM_CB_LEN];
	if (scram_binding(c, bind) < 0)
		return false;
	gnutls_memset(bind, 0, sizeof(bind));
	return true;
}

void scram_auth_free(struct scram_auth *a)
{
	if (a == NULL)
		return;
	assert(!a->busy);
	scram_server_free(a->x);
	a->x = NULL;
	free(a->first);
	a->first = NULL;
	scram_drop_final(a);
	explicit_bzero(a->user, sizeof(a->user));
	free(a);
}
