/*
 * The password login shared by every protocol (see login.h). Runs on the loop thread;
 * the expensive parts (the hash check) run in the store's workers.
 */
#include "server/auth/login.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/auth/auth.h"
#include "server/conn.h"
#include "server/services.h"
#include "storage/store.h"

struct login {
	struct conn *conn;
	auth_login_cb *cb;
	char mech[16];
	char *user;
	char *password;
	char *password_tag; /* of the stored hash, from store_user_get, for the cache */
	int64_t user_id;
	enum auth_login_status status; /* while a failure's reply waits */
	bool require_cert;
	bool cached;
	bool checked; /* the password went to the cache or the store: the outcome counts */
	bool held;    /* holds one of the address's check slots (authfail_begin) */
};

static bool login_alive(const struct login *l)
{
	return conn_is_open(l->conn);
}

static void login_answer(void *sess, void *arg)
{
	struct login *l = arg;
	struct auth_login_result r = {
	    .status = l->status,
	    .user_id = l->user_id,
	    .user = l->user,
	};
	l->cb(sess, &r);
}

/* The answer, once any failure delay is over. */
static void login_reply(void *arg)
{
	struct login *l = arg;
	conn_step_end(l->conn, login_answer, l);
	free(l->user);
	free(l->password_tag);
	free(l);
}

static void login_finish(struct login *l, enum auth_login_status status, const char *why)
{
	struct conn *c = l->conn;
	struct services *sv = conn_services(c);
	const char *ip = conn_peer_ip(c);
	uint64_t now = conn_now_ms(c);
	unsigned delay = 0;
	char user_esc[200];
	log_escape(user_esc, sizeof(user_esc), l->user, strlen(l->user));
	if (status == AUTH_LOGIN_OK) {
		log_event(LOGL_INFO,
		          "session=%s proto=%s event=auth_ok mech=%s user=%s ip=%s cached=%s",
		          conn_id(c), conn_proto_name(c), l->mech, user_esc, ip,
		          l->cached ? "yes" : "no");
	} else {
		log_event(LOGL_WARN,
		          "session=%s proto=%s event=auth_failed mech=%s user=%s ip=%s reason=%s",
		          conn_id(c), conn_proto_name(c), l->mech, user_esc, ip, why);
	}
	audit_login(c, l->user, l->mech, status == AUTH_LOGIN_OK, why);
	metrics_inc(METRIC_LOGINS, conn_proto_name(c), l->mech,
	            status == AUTH_LOGIN_OK         ? "ok"
	            : status == AUTH_LOGIN_TEMPFAIL ? "tempfail"
	                                            : "failed");
	if (status == AUTH_LOGIN_OK)
		authfail_succeeded(sv->authfail, ip, l->user, l->held, now);
	else if (status == AUTH_LOGIN_TEMPFAIL || !l->checked)
		authfail_abandoned(sv->authfail, ip, l->held, now);
	else
		delay = authfail_failed(sv->authfail, ip, l->user, l->held, now);
	if (status == AUTH_LOGIN_OK && !l->cached && l->password_tag != NULL)
		authcache_add(sv->authcache, l->user, l->password, l->password_tag, now);
	explicit_bzero(l->password, strlen(l->password));
	free(l->password);
	l->password = NULL;
	l->status = status;
	/* Only a failure's reply waits, and only after the check: a right password is
	 * never held up by anyone's failures, and a wrong one for an unknown user waits
	 * exactly as long as one for a real user (the counts do not depend on the name). */
	if (delay > 0 && login_alive(l))
		conn_after(c, delay, login_reply, l);
	else
		login_reply(l);
}

int auth_cert_policy(struct conn *c, const char *user, bool user_requires_cert, const char **why_r)
{
	const struct config *cfg = conn_config(c);
	const char *identity = conn_cert_identity(c);
	if (identity != NULL && strcmp(identity, user) != 0) {
		*why_r = "certificate_user_mismatch";
		return -EACCES;
	}
	if ((cfg->auth.require_client_certificate || user_requires_cert) && identity == NULL) {
		*why_r = "client_certificate_required";
		return -EACCES;
	}
	return 0;
}

enum auth_login_status auth_cert_policy_status(const char *why)
{
	return strcmp(why, "certificate_user_mismatch") == 0 ? AUTH_LOGIN_CERT_OTHER_USER
	                                                     : AUTH_LOGIN_CERT;
}

/* Step 4: certificate policy (a certificate of this user required), once the password is
 * known to be right. */
static void login_check_cert(struct login *l)
{
	const char *why = NULL;
	if (auth_cert_policy(l->conn, l->user, l->require_cert, &why) < 0)
		login_finish(l, auth_cert_policy_status(why), why);
	else
		login_finish(l, AUTH_LOGIN_OK, NULL);
}

static void login_auth_done(void *ctx, int rc, struct store_login *res)
{
	struct login *l = ctx;
	if (rc == 0) {
		l->user_id = res->user_id;
		l->require_cert = res->require_client_certificate;
		login_check_cert(l);
	} else if (rc == -EACCES || rc == -ENOENT || rc == -EINVAL) {
		login_finish(l, AUTH_LOGIN_FAILED, "bad_credentials");
	} else {
		log_event(LOGL_ERROR, "session=%s event=store_error op=auth error=\"%s\"",
		          conn_id(l->conn), store_strerror(rc));
		login_finish(l, AUTH_LOGIN_TEMPFAIL, "store_error");
	}
}

static void login_check_password(struct login *l)
{
	l->checked = true;
	struct store *st = conn_services(l->conn)->store;
	int r = store_auth(st, l->user, l->password, login_auth_done, l);
	if (r < 0)
		login_auth_done(l, r, NULL);
}

/* Step 2: the cache, keyed by the stored hash's tag so a changed password misses. */
static void login_user_got(void *ctx, int rc, struct store_users *res)
{
	struct login *l = ctx;
	if (!login_alive(l)) {
		login_finish(l, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	if (rc == 0 && res->n == 1 && res->v[0].password_tag != NULL) {
		const struct store_user *u = &res->v[0];
		l->password_tag = xstrdup(u->password_tag);
		struct services *sv = conn_services(l->conn);
		if (!u->disabled && authcache_hit(sv->authcache, l->user, l->password,
		                                  l->password_tag, conn_now_ms(l->conn))) {
			l->cached = true;
			l->checked = true;
			l->user_id = u->id;
			l->require_cert = u->require_client_certificate;
			login_check_cert(l);
			return;
		}
	}
	login_check_password(l);
}

/* Step 1: wait for a check slot of the address when it has failures pending (never a
 * delay for the password's own sake: that comes after the check, for failures only). */
static void login_start(void *arg)
{
	struct login *l = arg;
	if (!login_alive(l)) {
		login_finish(l, AUTH_LOGIN_FAILED, "connection_closed");
		return;
	}
	struct services *sv = conn_services(l->conn);
	unsigned wait = authfail_begin(sv->authfail, conn_peer_ip(l->conn), l->user,
	                               conn_now_ms(l->conn), &l->held);
	if (wait > 0) {
		conn_after(l->conn, wait, login_start, l);
		return;
	}
	/* A connection that carries another user's certificate is told so before any
	 * password is checked: answering after the check would tell a certificate holder
	 * whether another account's password is right. */
	const char *identity = conn_cert_identity(l->conn);
	if (identity != NULL && strcmp(identity, l->user) != 0) {
		l->checked = true; /* counted as a failure, not as an abandoned check */
		login_finish(l, AUTH_LOGIN_CERT_OTHER_USER, "certificate_user_mismatch");
		return;
	}
	int r = store_user_get(sv->store, l->user, login_user_got, l);
	if (r < 0)
		login_check_password(l);
}

void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb)
{
	struct login *l = xcalloc(1, sizeof(*l));
	l->conn = c;
	l->cb = cb;
	snprintf(l->mech, sizeof(l->mech), "%s", mech);
	l->user = xstrdup(user);
	for (char *p = l->user; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	l->password = xstrdup(password);
	conn_step_begin(c);
	/* Later, so the callback never runs before auth_login returns. */
	conn_after(c, 0, login_start, l);
}
