/*
 * SASL EXTERNAL by the client certificate (see external.h). Runs on the loop thread; the
 * user lookup runs in the store's workers. The answer always comes from a timer or a
 * store completion, never before auth_external returns, so protocol code can finish its
 * own bookkeeping first, as with auth_login.
 */
#include "server/auth/external.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/auth/auth.h"
#include "server/server_private.h"
#include "server/services.h"
#include "server/tls.h"
#include "storage/store.h"

struct external {
	struct conn *conn;
	auth_login_cb *cb;
	uv_timer_t timer;
	char *user;      /* the certificate's identity, or NULL */
	char serial[48]; /* of the verified certificate, "-" without one */
	const char *why; /* a refusal decided before the lookup, else NULL */
	int64_t user_id;
	enum auth_login_status status; /* while a failure's answer waits */
};

static bool external_alive(const struct external *e)
{
	return e->conn->state == CONN_PLAIN || e->conn->state == CONN_TLS;
}

static bool external_policy_demands_password(struct conn *c)
{
	const struct config *cfg = c->server->cfg;
	return cfg != NULL && cfg->auth.require_client_certificate;
}

bool auth_external_offered(struct conn *c)
{
	return conn_cert_identity(c) != NULL && !external_policy_demands_password(c);
}

static void external_free_cb(uv_handle_t *h)
{
	struct external *e = h->data;
	free(e->user);
	free(e);
}

static void external_reply(struct external *e)
{
	struct conn *c = e->conn;
	if (external_alive(e)) {
		struct auth_login_result r = {
		    .status = e->status,
		    .user_id = e->user_id,
		    .user = e->user,
		};
		void *sess = c->sess;
		/* As in login.c: the pause of this step ends here; a callback that starts
		 * another asynchronous step pauses again and keeps input stopped. */
		c->paused = false;
		if (sess != NULL)
			e->cb(sess, &r);
		if (!c->paused) {
			c->paused = true;
			conn_resume(c);
		}
	}
	conn_release(c);
	uv_close((uv_handle_t *)&e->timer, external_free_cb);
}

static void external_reply_cb(uv_timer_t *t)
{
	external_reply(t->data);
}

static void external_finish(struct external *e, enum auth_login_status status, const char *why)
{
	struct conn *c = e->conn;
	unsigned delay = 0;
	char user_esc[200];
	const char *u = e->user != NULL ? e->user : "-";
	log_escape(user_esc, sizeof(user_esc), u, strlen(u));
	if (status == AUTH_LOGIN_OK)
		log_event(LOGL_INFO,
		          "session=%s proto=%s event=auth_ok mech=EXTERNAL user=%s ip=%s serial=%s",
		          c->id, conn_proto_name(c), user_esc, c->ip, e->serial);
	else
		log_event(LOGL_WARN,
		          "session=%s proto=%s event=auth_failed mech=EXTERNAL user=%s ip=%s "
		          "serial=%s reason=%s",
		          c->id, conn_proto_name(c), user_esc, c->ip, e->serial, why);
	/* No check slot is taken (a certificate cannot be guessed), but refusals count and
	 * their answers wait like a wrong password's; a success is not delayed. */
	if (status == AUTH_LOGIN_FAILED && external_alive(e))
		delay = authfail_failed(c->server->services->authfail, c->ip, e->user, false,
		                        conn_now_ms(c));
	e->status = status;
	if (delay > 0)
		uv_timer_start(&e->timer, external_reply_cb, delay, 0);
	else
		external_reply(e);
}

static void external_user_got(void *ctx, int rc, struct store_result *res)
{
	struct external *e = ctx;
	if (!external_alive(e)) {
		external_finish(e, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	if (rc == -ENOENT || (rc == 0 && res->n_users != 1)) {
		external_finish(e, AUTH_LOGIN_FAILED, "not_a_user");
		return;
	}
	if (rc < 0) {
		log_event(LOGL_ERROR, "session=%s event=store_error op=user_get error=\"%s\"",
		          e->conn->id, store_strerror(rc));
		external_finish(e, AUTH_LOGIN_TEMPFAIL, "store_error");
		return;
	}
	const struct store_user *u = &res->users[0];
	if (u->disabled) {
		external_finish(e, AUTH_LOGIN_FAILED, "disabled");
		return;
	}
	if (u->require_client_certificate) {
		external_finish(e, AUTH_LOGIN_FAILED, "password_required");
		return;
	}
	e->user_id = u->id;
	external_finish(e, AUTH_LOGIN_OK, NULL);
}

static void external_timer_cb(uv_timer_t *t)
{
	struct external *e = t->data;
	if (!external_alive(e)) {
		external_finish(e, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	if (e->why != NULL) {
		external_finish(e, AUTH_LOGIN_FAILED, e->why);
		return;
	}
	struct store *st = e->conn->server->services->store;
	int rc = st != NULL ? store_user_get(st, e->user, external_user_got, e) : -ENOTSUP;
	if (rc < 0)
		external_user_got(e, rc == -ENOENT ? -EIO : rc, NULL);
}

void auth_external(struct conn *c, const char *authzid, auth_login_cb *cb)
{
	struct external *e = xcalloc(1, sizeof(*e));
	e->conn = c;
	e->cb = cb;
	const char *serial = c->tls != NULL ? tls_session_peer_serial(c->tls) : NULL;
	snprintf(e->serial, sizeof(e->serial), "%s", serial != NULL ? serial : "-");
	const char *identity = conn_cert_identity(c);
	if (identity != NULL)
		e->user = xstrdup(identity);
	if (serial == NULL)
		e->why = "no_certificate";
	else if (identity == NULL)
		e->why = "no_identity";
	else if (authzid != NULL && authzid[0] != '\0' && strcasecmp(authzid, identity) != 0)
		e->why = "authzid_mismatch";
	else if (external_policy_demands_password(c))
		e->why = "password_required";
	conn_pause(c);
	conn_hold(c);
	uv_timer_init(c->server->loop, &e->timer);
	e->timer.data = e;
	uv_timer_start(&e->timer, external_timer_cb, 0, 0);
}
