/*
 * The records of certificates issued by the built-in client CA, and the CRL number. Only
 * sealctl writes them; the CRL file itself is made by certs/. Revoking and taking the next
 * CRL number happen in one transaction, so two CRLs never carry the same number for
 * different contents.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

/* Longest serial stored: 20 octets in hex (RFC 5280), as certs/ allows. */
#define CERT_SERIAL_MAX 40

static bool serial_valid(const char *serial)
{
	size_t len = serial != NULL ? strlen(serial) : 0;
	if (len == 0 || len > CERT_SERIAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (strchr("0123456789abcdef", serial[i]) == NULL)
			return false;
	return true;
}

static struct store_cert *cert_push(struct store_backend_result *res)
{
	res->certs = xreallocarray(res->certs, res->n_certs + 1, sizeof(*res->certs));
	struct store_cert *c = &res->certs[res->n_certs++];
	memset(c, 0, sizeof(*c));
	return c;
}

static void cert_from_row(sqlite3_stmt *st, struct store_cert *c)
{
	const unsigned char *kind = sqlite3_column_text(st, 4);
	c->id = sqlite3_column_int64(st, 0);
	c->serial = store_col_text(st, 1);
	c->address = store_col_text(st, 2);
	c->user_id = sqlite3_column_int64(st, 3); /* NULL reads as 0 */
	c->kind = kind != NULL && strcmp((const char *)kind, "server") == 0 ? STORE_CERT_SERVER
	                                                                    : STORE_CERT_CLIENT;
	c->not_before = sqlite3_column_int64(st, 5);
	c->not_after = sqlite3_column_int64(st, 6);
	c->revoked_at = sqlite3_column_int64(st, 7);
	c->created = sqlite3_column_int64(st, 8);
}

/* Steps st (already bound) and appends every row to res.certs. */
static int rows_load(struct store_conn *c, sqlite3_stmt *st, struct store_backend_result *res)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cert_from_row(st, cert_push(res));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

static int by_serial(struct store_conn *c, const char *serial, struct store_backend_result *res)
{
	sqlite3_stmt *st = store_stmt(c, SQL_CERT_BY_SERIAL);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, serial);
	size_t before = res->n_certs;
	int rc = rows_load(c, st, res);
	if (rc == 0 && res->n_certs == before)
		rc = -ENOENT;
	return rc;
}

static int crl_next(struct store_conn *c, struct store_backend_result *res)
{
	sqlite3_stmt *st = store_stmt(c, SQL_CRL_NEXT);
	if (st == NULL)
		return -EIO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		res->crl_number = (uint64_t)sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return res->crl_number > 0 ? 0 : -EIO;
}

/* ---- Jobs ---- */

struct cert_job {
	struct store_job job;
	char *serial;
	char *address;
	enum store_cert_kind kind;
	int64_t t1, t2; /* not_before/not_after, expiring_before, now */
};

static void cert_job_free(struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	free(j->serial);
	free(j->address);
}

static struct cert_job *cert_job_new(struct sqlite_store *s, enum store_job_kind kind,
                                     store_job_run_fn *run, store_backend_cb *cb, void *ctx)
{
	struct cert_job *j = store_job_new(sizeof(*j), s, kind, run, cb, ctx);
	j->job.free_args = cert_job_free;
	return j;
}

static int add_run(struct store_conn *c, struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_CERT_INSERT);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, j->serial);
	store_bind_text(st, 2, j->address);
	store_bind_text(st, 3, j->kind == STORE_CERT_SERVER ? "server" : "client");
	sqlite3_bind_int64(st, 4, j->t1);
	sqlite3_bind_int64(st, 5, j->t2);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return by_serial(c, j->serial, &job->res);
}

int sqlite_store_cert_add(void *impl, const struct store_cert_new *cert, store_backend_cb *cb,
                          void *ctx)
{
	struct sqlite_store *s = impl;
	if (!serial_valid(cert->serial) || cert->address == NULL || cert->address[0] == '\0' ||
	    (cert->kind != STORE_CERT_CLIENT && cert->kind != STORE_CERT_SERVER) ||
	    cert->not_after < cert->not_before)
		return -EINVAL;
	struct cert_job *j = cert_job_new(s, STORE_JOB_WRITE, add_run, cb, ctx);
	j->serial = xstrdup(cert->serial);
	j->address = xstrdup(cert->address);
	j->kind = cert->kind;
	j->t1 = cert->not_before;
	j->t2 = cert->not_after;
	return store_job_submit(&j->job);
}

static int list_run(struct store_conn *c, struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_CERT_LIST);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->t1);
	return rows_load(c, st, &job->res);
}

int sqlite_store_cert_list(void *impl, int64_t expiring_before, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (expiring_before < 0)
		return -EINVAL;
	struct cert_job *j = cert_job_new(s, STORE_JOB_READ, list_run, cb, ctx);
	j->t1 = expiring_before;
	return store_job_submit(&j->job);
}

static int get_run(struct store_conn *c, struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	return by_serial(c, j->serial, &job->res);
}

int sqlite_store_cert_get(void *impl, const char *serial, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (!serial_valid(serial))
		return -EINVAL;
	struct cert_job *j = cert_job_new(s, STORE_JOB_READ, get_run, cb, ctx);
	j->serial = xstrdup(serial);
	return store_job_submit(&j->job);
}

static int valid_by_address(struct store_conn *c, const char *address, int64_t now,
                            struct store_backend_result *res)
{
	sqlite3_stmt *st = store_stmt(c, SQL_CERT_VALID_BY_ADDRESS);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, address);
	sqlite3_bind_int64(st, 2, now);
	return rows_load(c, st, res);
}

static int find_valid_run(struct store_conn *c, struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	return valid_by_address(c, j->address, j->t1, &job->res);
}

int sqlite_store_cert_find_valid(void *impl, const char *address, int64_t now, store_backend_cb *cb,
                                 void *ctx)
{
	struct sqlite_store *s = impl;
	char *norm;
	int rc = store_address_normalize(address, &norm);
	if (rc < 0)
		return rc;
	struct cert_job *j = cert_job_new(s, STORE_JOB_READ, find_valid_run, cb, ctx);
	j->address = norm;
	j->t1 = now;
	return store_job_submit(&j->job);
}

static int revoke_run(struct store_conn *c, struct store_job *job)
{
	struct cert_job *j = (struct cert_job *)job;
	int rc = j->serial != NULL ? by_serial(c, j->serial, &job->res)
	                           : valid_by_address(c, j->address, j->t1, &job->res);
	if (rc < 0)
		return rc;
	if (job->res.n_certs == 0)
		return -ENOENT;
	if (j->serial != NULL && job->res.certs[0].revoked_at != 0)
		return -EALREADY;
	for (size_t i = 0; i < job->res.n_certs; i++) {
		sqlite3_stmt *st = store_stmt(c, SQL_CERT_REVOKE);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, job->res.certs[i].id);
		sqlite3_bind_int64(st, 2, j->t1);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_err(c->db, rc);
		job->res.certs[i].revoked_at = j->t1;
	}
	return crl_next(c, &job->res);
}

int sqlite_store_cert_revoke(void *impl, const char *serial, const char *address, int64_t now,
                             store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	char *norm = NULL;
	if ((serial == NULL) == (address == NULL) || now <= 0)
		return -EINVAL;
	if (serial != NULL && !serial_valid(serial))
		return -EINVAL;
	if (address != NULL && store_address_normalize(address, &norm) < 0)
		return -EINVAL;
	struct cert_job *j = cert_job_new(s, STORE_JOB_WRITE, revoke_run, cb, ctx);
	j->serial = serial != NULL ? xstrdup(serial) : NULL;
	j->address = norm;
	j->t1 = now;
	return store_job_submit(&j->job);
}

static int crl_next_run(struct store_conn *c, struct store_job *job)
{
	return crl_next(c, &job->res);
}

int sqlite_store_cert_crl_next(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job =
	    store_job_new(sizeof(*job), s, STORE_JOB_WRITE, crl_next_run, cb, ctx);
	return store_job_submit(job);
}

static int revoked_run(struct store_conn *c, struct store_job *job)
{
	sqlite3_stmt *st = store_stmt(c, SQL_CERT_REVOKED);
	if (st == NULL)
		return -EIO;
	return rows_load(c, st, &job->res);
}

int sqlite_store_cert_list_revoked(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job =
	    store_job_new(sizeof(*job), s, STORE_JOB_READ, revoked_run, cb, ctx);
	return store_job_submit(job);
}
