/*
 * Fakes for the SMTP session tests: the pieces that live in sealmaild rather than in the
 * protocol library. auth_login accepts password "secret" for any user (as the fake conn
 * runs no store) and answers "cert-other" as if the connection's certificate named
 * someone else; the spool is "not set up", so messages stay in memory.
 */
#include <errno.h>
#include <string.h>

#include "server/auth/cert_login.h"
#include "server/auth/login.h"
#include "server/auth/scram.h"
#include "server/conn.h"
#include "server/spool.h"

void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb);
void *fake_conn_sess(struct conn *c);

void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                auth_login_cb *cb)
{
	(void)mech;
	enum auth_login_status st = strcmp(password, "secret") == 0 ? AUTH_LOGIN_OK
	                            : strcmp(password, "cert-other") == 0
	                                ? AUTH_LOGIN_CERT_OTHER_USER
	                                : AUTH_LOGIN_FAILED;
	struct auth_login_result r = {
	    .status = st,
	    .user_id = 1,
	    .user = user,
	};
	cb(fake_conn_sess(c), &r);
}

/* EXTERNAL: the fake conn's certificate identity logs in, with no or a matching authzid. */
bool auth_cert_offered(struct conn *c)
{
	return conn_cert_identity(c) != NULL;
}

void auth_cert_login(struct conn *c, enum auth_cert_use use, const char *authzid, auth_login_cb *cb)
{
	(void)use;
	const char *id = conn_cert_identity(c);
	bool ok = id != NULL && (authzid == NULL || authzid[0] == '\0' || strcmp(authzid, id) == 0);
	struct auth_login_result r = {
	    .status = ok ? AUTH_LOGIN_OK : AUTH_LOGIN_FAILED,
	    .user_id = 1,
	    .user = id,
	};
	cb(fake_conn_sess(c), &r);
}

/* SCRAM needs the store and GNU SASL: never offered with PLUS here, and every exchange
 * is refused (the integration tests run the real one). */
bool scram_plus_offered(struct conn *c)
{
	(void)c;
	return false;
}

struct scram_auth *scram_auth_start(struct conn *c, bool plus, const char *b64, size_t len,
                                    scram_auth_cb *cb)
{
	(void)c;
	(void)plus;
	(void)b64;
	(void)len;
	(void)cb;
	return NULL;
}

void scram_auth_step(struct scram_auth *x, const char *b64, size_t len)
{
	(void)x;
	(void)b64;
	(void)len;
}

void scram_auth_free(struct scram_auth *x)
{
	(void)x;
}

int spool_create(struct spool_file **f_r)
{
	(void)f_r;
	return -ENOTSUP;
}

int spool_write(struct spool_file *f, const void *data, size_t len)
{
	(void)f, (void)data, (void)len;
	return -ENOTSUP;
}

size_t spool_pending(const struct spool_file *f)
{
	(void)f;
	return 0;
}

void spool_on_drain(struct spool_file *f, void (*drained)(void *ctx), void *ctx)
{
	(void)f, (void)drained, (void)ctx;
}

void spool_finish(struct spool_file *f, void (*cb)(void *ctx, int rc), void *ctx)
{
	(void)f;
	cb(ctx, -ENOTSUP);
}

const char *spool_path(const struct spool_file *f)
{
	(void)f;
	return "";
}

void spool_free(struct spool_file *f)
{
	(void)f;
}
