/*
 * Users and passwords on PostgreSQL. Hashing runs on a worker before the write reaches the
 * writer (it would stall every commit); checking runs on a worker. The hashes and SCRAM
 * material are those of every backend (storage/store_password.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/pg/store_pg_private.h"

static const struct {
	const char *name;
	unsigned special_use;
} default_mailboxes[] = {
    {"INBOX", 0},
    {"Sent", STORE_SU_SENT},
    {"Drafts", STORE_SU_DRAFTS},
    {"Trash", STORE_SU_TRASH},
    {"Junk", STORE_SU_JUNK},
    {"Archive", STORE_SU_ARCHIVE},
};

static void user_from_row(const PGresult *r, int row, struct store_user *u)
{
	u->id = pg_i64(r, row, 0);
	u->address = pg_str(r, row, 1);
	u->require_client_certificate = pg_i64(r, row, 2) != 0;
	u->disabled = pg_i64(r, row, 3) != 0;
	u->quota_bytes = (uint64_t)pg_i64(r, row, 4);
	u->used_bytes = (uint64_t)pg_i64(r, row, 5);
	u->quota_messages = (uint64_t)pg_i64(r, row, 7);
	u->used_messages = (uint64_t)pg_i64(r, row, 8);
	if (!PQgetisnull(r, row, 6))
		u->password_tag =
		    store_password_tag(PQgetvalue(r, row, 6), (size_t)PQgetlength(r, row, 6));
}

int pg_user_load(struct pg_conn *c, const char *address, struct store_user *u)
{
	struct pg_params p = {0};
	int rc;
	pg_p_text(&p, address);
	PGresult *r = pg_run(c, PGSQL_USER_BY_ADDRESS, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1)
		user_from_row(r, 0, u);
	else
		rc = -ENOENT;
	PQclear(r);
	return rc;
}

struct user_job {
	struct pg_job job;
	char *address;  /* normalized */
	char *password; /* wiped and freed once hashed */
	char *hash;
	struct store_scram scram;
	int64_t value;
	enum pg_sql sql;
};

static void user_job_free(struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	free(j->address);
	if (j->password != NULL) {
		explicit_bzero(j->password, strlen(j->password));
		free(j->password);
	}
	free(j->hash);
	free(j->scram.salt);
	free(j->scram.stored_key);
	free(j->scram.server_key);
}

static struct user_job *user_job_new(struct pg_store *s, enum pg_job_kind kind, pg_job_run_fn *run,
                                     const char *address, store_backend_cb *cb, void *ctx,
                                     int *rc_r)
{
	char *norm;
	*rc_r = store_address_normalize(address, &norm);
	if (*rc_r < 0)
		return NULL;
	struct user_job *j = pg_job_new(sizeof(*j), s, kind, run, cb, ctx);
	j->job.free_args = user_job_free;
	j->address = norm;
	return j;
}

static int user_prep_hash(struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	int rc = store_password_hash(j->password, &j->hash);
	if (rc == 0)
		rc = store_scram_derive(j->password, &j->scram);
	explicit_bzero(j->password, strlen(j->password));
	free(j->password);
	j->password = NULL;
	return rc;
}

static void params_secrets(struct pg_params *p, struct user_job *j)
{
	pg_p_text(p, j->hash);
	pg_p_text(p, j->scram.salt);
	pg_p_i64(p, j->scram.iterations);
	pg_p_text(p, j->scram.stored_key);
	pg_p_text(p, j->scram.server_key);
}

static int user_add_run(struct pg_conn *c, struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_text(&p, j->address);
	params_secrets(&p, j);
	pg_p_i64(&p, (int64_t)time(NULL));
	PGresult *r = pg_run(c, PGSQL_USER_INSERT, &p, &rc);
	if (r == NULL)
		return rc;
	int64_t user_id = pg_i64(r, 0, 0);
	PQclear(r);
	for (size_t i = 0; i < sizeof(default_mailboxes) / sizeof(default_mailboxes[0]); i++) {
		rc = pg_mailbox_insert(c, user_id, default_mailboxes[i].name,
		                       default_mailboxes[i].special_use);
		if (rc < 0)
			return rc;
	}
	job->res.users = xcalloc(1, sizeof(*job->res.users));
	rc = pg_user_load(c, j->address, &job->res.users[0]);
	job->res.n_users = rc == 0;
	return rc;
}

int pg_store_user_add(void *impl, const char *address, const char *password, store_backend_cb *cb,
                      void *ctx)
{
	int rc;
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	struct user_job *j = user_job_new(impl, PG_JOB_WRITE, user_add_run, address, cb, ctx, &rc);
	if (j == NULL)
		return rc;
	j->password = xstrdup(password);
	j->job.prepare = user_prep_hash;
	return pg_job_submit(&j->job);
}

static int user_update_run(struct pg_conn *c, struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	struct pg_params p = {0};
	uint64_t changed = 0;
	pg_p_text(&p, j->address);
	if (j->sql == PGSQL_USER_SET_PASSWORD)
		params_secrets(&p, j);
	else if (j->sql != PGSQL_USER_DELETE)
		pg_p_i64(&p, j->value);
	int rc = pg_run_cmd(c, j->sql, &p, &changed);
	if (rc < 0)
		return rc;
	return changed > 0 ? 0 : -ENOENT;
}

static int user_update(struct pg_store *s, const char *address, enum pg_sql sql, int64_t value,
                       const char *password, store_backend_cb *cb, void *ctx)
{
	int rc;
	struct user_job *j = user_job_new(s, PG_JOB_WRITE, user_update_run, address, cb, ctx, &rc);
	if (j == NULL)
		return rc;
	j->sql = sql;
	j->value = value;
	if (password != NULL) {
		j->password = xstrdup(password);
		j->job.prepare = user_prep_hash;
	}
	return pg_job_submit(&j->job);
}

int pg_store_user_del(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	return user_update(impl, address, PGSQL_USER_DELETE, 0, NULL, cb, ctx);
}

int pg_store_user_passwd(void *impl, const char *address, const char *password,
                         store_backend_cb *cb, void *ctx)
{
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	return user_update(impl, address, PGSQL_USER_SET_PASSWORD, 0, password, cb, ctx);
}

int pg_store_user_set_require_cert(void *impl, const char *address, bool on, store_backend_cb *cb,
                                   void *ctx)
{
	return user_update(impl, address, PGSQL_USER_SET_REQUIRE_CERT, on, NULL, cb, ctx);
}

int pg_store_user_set_disabled(void *impl, const char *address, bool on, store_backend_cb *cb,
                               void *ctx)
{
	return user_update(impl, address, PGSQL_USER_SET_DISABLED, on, NULL, cb, ctx);
}

int pg_store_user_set_quota(void *impl, const char *address, uint64_t bytes, store_backend_cb *cb,
                            void *ctx)
{
	if (bytes > INT64_MAX)
		return -EINVAL;
	return user_update(impl, address, PGSQL_USER_SET_QUOTA, (int64_t)bytes, NULL, cb, ctx);
}

int pg_store_user_set_message_quota(void *impl, const char *address, uint64_t messages,
                                    store_backend_cb *cb, void *ctx)
{
	if (messages > INT64_MAX)
		return -EINVAL;
	return user_update(impl, address, PGSQL_USER_SET_MESSAGE_QUOTA, (int64_t)messages, NULL, cb,
	                   ctx);
}

static int user_get_run(struct pg_conn *c, struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	job->res.users = xcalloc(1, sizeof(*job->res.users));
	int rc = pg_user_load(c, j->address, &job->res.users[0]);
	job->res.n_users = rc == 0;
	return rc;
}

int pg_store_user_get(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	int rc;
	struct user_job *j = user_job_new(impl, PG_JOB_READ, user_get_run, address, cb, ctx, &rc);
	return j != NULL ? pg_job_submit(&j->job) : rc;
}

static int user_list_run(struct pg_conn *c, struct pg_job *job)
{
	int rc;
	PGresult *r = pg_run(c, PGSQL_USER_LIST, NULL, &rc);
	if (r == NULL)
		return rc;
	size_t n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.users = xcalloc(n, sizeof(*job->res.users));
	for (size_t i = 0; i < n; i++)
		user_from_row(r, (int)i, &job->res.users[i]);
	job->res.n_users = n;
	PQclear(r);
	return 0;
}

int pg_store_user_list(void *impl, store_backend_cb *cb, void *ctx)
{
	struct pg_job *job = pg_job_new(sizeof(*job), impl, PG_JOB_READ, user_list_run, cb, ctx);
	return pg_job_submit(job);
}

static int auth_run(struct pg_conn *c, struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	struct pg_params p = {0};
	char *hash = NULL;
	bool usable = false;
	int rc;

	pg_p_text(&p, j->address);
	PGresult *r = pg_run(c, PGSQL_USER_AUTH, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1) {
		job->res.user_id = pg_i64(r, 0, 0);
		hash = pg_str(r, 0, 1);
		job->res.require_client_certificate = pg_i64(r, 0, 2) != 0;
		usable = pg_i64(r, 0, 3) == 0 && hash != NULL;
	}
	PQclear(r);
	/* Always one hash computation, whether or not the user exists. */
	bool ok = store_password_verify(j->password, usable ? hash : store_password_dummy_hash()) &&
	          usable;
	explicit_bzero(j->password, strlen(j->password));
	free(hash);
	if (!ok) {
		job->res.user_id = 0;
		job->res.require_client_certificate = false;
		return -EACCES;
	}
	return 0;
}

int pg_store_auth(void *impl, const char *address, const char *password, store_backend_cb *cb,
                  void *ctx)
{
	int rc;
	if (password == NULL)
		return -EINVAL;
	struct user_job *j = user_job_new(impl, PG_JOB_READ, auth_run, address, cb, ctx, &rc);
	if (j == NULL) {
		/* A malformed address gets a job too: the caller must not learn more, nor
		 * sooner, than from a wrong password. */
		j = pg_job_new(sizeof(*j), impl, PG_JOB_READ, auth_run, cb, ctx);
		j->job.free_args = user_job_free;
		j->address = xstrdup("");
	}
	j->password = xstrdup(password);
	return pg_job_submit(&j->job);
}

static int scram_run(struct pg_conn *c, struct pg_job *job)
{
	struct user_job *j = (struct user_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_text(&p, j->address);
	PGresult *r = pg_run(c, PGSQL_USER_SCRAM, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 1) && pg_i64(r, 0, 5) == 0) {
		job->res.user_id = pg_i64(r, 0, 0);
		job->res.scram.salt = pg_str(r, 0, 1);
		job->res.scram.iterations = (unsigned)pg_i64(r, 0, 2);
		job->res.scram.stored_key = pg_str(r, 0, 3);
		job->res.scram.server_key = pg_str(r, 0, 4);
	} else {
		rc = -ENOENT;
	}
	PQclear(r);
	return rc;
}

int pg_store_user_scram(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	int rc;
	struct user_job *j = user_job_new(impl, PG_JOB_READ, scram_run, address, cb, ctx, &rc);
	return j != NULL ? pg_job_submit(&j->job) : rc;
}
