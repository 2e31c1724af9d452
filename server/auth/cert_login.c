/*
 * Certificate logins (see cert_login.h). Runs on the loop thread; the user lookup runs in
 * the store's workers. The answer always comes from a timer or a store completion, never
 * before auth_cert_login returns, so protocol code can finish its own bookkeeping first,
 * as with auth_login.
 */
#include "server/auth/cert_login.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/auth/auth.h"
#include "server/conn.h"
#include "server/services.h"
#include "storage/store.h"

struct cert_login {
	struct conn *conn;
	auth_login_cb *cb;
	enum auth_cert_use use;
	char *user;      /* the certificate's identity, or NULL */
	const char *why; /* a refusal decided before the lookup, else NULL */
	int64_t user_id;
	enum auth_login_status status; /* while a failure's answer waits */
};

static bool cert_policy_demands_password(struct conn *c)
{
	const struct config *cfg = conn_config(c);
	return cfg != NULL && cfg->auth.require_client_certificate;
}

bool auth_cert_offered(struct conn *c)
{
	return conn_cert_identity(c) != NULL && !cert_policy_demands_password(c);
}

static void cert_answer(void *sess, void *arg)
{
	struct cert_login *l = arg;
	struct auth_login_result r = {
	    .status = l->status,
	    .user_id = l->user_id,
	    .user = l->user,
	};
	l->cb(sess, &r);
}

static void cert_reply(void *arg)
{
	struct cert_login *l = arg;
	conn_step_end(l->conn, cert_answer, l);
	free(l->user);
	free(l);
}

static void cert_finish(struct cert_login *l, enum auth_login_status status, const char *why)
{
	struct conn *c = l->conn;
	struct authfail *af = conn_services(c)->authfail;
	const char *ip = conn_peer_ip(c);
	uint64_t now = conn_now_ms(c);
	unsigned delay = 0;
	char user_esc[200];
	const char *u = l->user != NULL ? l->user : "-";
	log_escape(user_esc, sizeof(user_esc), u, strlen(u));
	bool skipped = l->use == AUTH_CERT_PREAUTH && status == AUTH_LOGIN_FAILED &&
	               strcmp(why, "password_required") == 0;
	if (status == AUTH_LOGIN_OK)
		log_event(LOGL_INFO,
		          "session=%s proto=%s event=auth_ok mech=EXTERNAL user=%s ip=%s serial=%s",
		          conn_id(c), conn_proto_name(c), user_esc, ip, conn_cert_serial(c));
	else if (skipped)
		log_event(LOGL_INFO,
		          "session=%s proto=%s event=preauth_skipped user=%s ip=%s serial=%s "
		          "reason=%s",
		          conn_id(c), conn_proto_name(c), user_esc, ip, conn_cert_serial(c), why);
	else
		log_event(LOGL_WARN,
		          "session=%s proto=%s event=auth_failed mech=EXTERNAL user=%s ip=%s "
		          "serial=%s reason=%s",
		          conn_id(c), conn_proto_name(c), user_esc, ip, conn_cert_serial(c), why);
	if (!skipped)
		audit_login(c, u, "EXTERNAL", status == AUTH_LOGIN_OK, why);
	if (!skipped)
		metrics_inc(METRIC_LOGINS, conn_proto_name(c), "EXTERNAL",
		            status == AUTH_LOGIN_OK         ? "ok"
		            : status == AUTH_LOGIN_TEMPFAIL ? "tempfail"
		                                            : "failed");
	if (status == AUTH_LOGIN_OK)
		authfail_succeeded(af, ip, l->user, false, now);
	else if (status == AUTH_LOGIN_FAILED && !skipped && conn_is_open(c))
		delay = authfail_failed(af, ip, l->user, false, now);
	l->status = status;
	if (delay > 0)
		conn_after(c, delay, cert_reply, l);
	else
		cert_reply(l);
}

static void cert_user_got(void *ctx, int rc, struct store_users *res)
{
	struct cert_login *l = ctx;
	if (!conn_is_open(l->conn)) {
		cert_finish(l, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	if (rc == -ENOENT || (rc == 0 && res->n != 1)) {
		cert_finish(l, AUTH_LOGIN_FAILED, "not_a_user");
		return;
	}
	if (rc < 0) {
		log_event(LOGL_ERROR, "session=%s event=store_error op=user_get error=\"%s\"",
		          conn_id(l->conn), store_strerror(rc));
		cert_finish(l, AUTH_LOGIN_TEMPFAIL, "store_error");
		return;
	}
	const struct store_user *u = &res->v[0];
	if (u->disabled) {
		cert_finish(l, AUTH_LOGIN_FAILED, "disabled");
		return;
	}
	if (u->require_client_certificate) {
		cert_finish(l, AUTH_LOGIN_FAILED, "password_required");
		return;
	}
	l->user_id = u->id;
	cert_finish(l, AUTH_LOGIN_OK, NULL);
}

static void cert_start(void *arg)
{
	struct cert_login *l = arg;
	if (!conn_is_open(l->conn)) {
		cert_finish(l, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	if (l->why != NULL) {
		cert_finish(l, AUTH_LOGIN_FAILED, l->why);
		return;
	}
	struct services *sv = conn_services(l->conn);
	struct store *st = sv != NULL ? sv->store : NULL;
	int rc = st != NULL ? store_user_get(st, l->user, cert_user_got, l) : -ENOTSUP;
	if (rc < 0)
		cert_user_got(l, rc == -ENOENT ? -EIO : rc, NULL);
}

void auth_cert_login(struct conn *c, enum auth_cert_use use, const char *authzid, auth_login_cb *cb)
{
	struct cert_login *l = xcalloc(1, sizeof(*l));
	l->conn = c;
	l->cb = cb;
	l->use = use;
	const char *identity = conn_cert_identity(c);
	if (identity != NULL)
		l->user = xstrdup(identity);
	if (strcmp(conn_cert_serial(c), "-") == 0)
		l->why = "no_certificate";
	else if (identity == NULL)
		l->why = "no_identity";
	else if (authzid != NULL && authzid[0] != '\0' && strcasecmp(authzid, identity) != 0)
		l->why = "authzid_mismatch";
	else if (cert_policy_demands_password(c))
		l->why = "password_required";
	conn_step_begin(c);
	conn_after(c, 0, cert_start, l);
}
