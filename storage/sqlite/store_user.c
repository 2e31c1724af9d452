/*
 * Users and passwords. Hashing (yescrypt, about 40 ms) and checking run on worker threads,
 * never on the writer (it would stall every commit) and never on the caller's loop. An
 * unknown or disabled user is checked against a dummy hash: same time, same answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

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

/* ---- Loading ---- */

static void user_from_row(sqlite3_stmt *st, struct store_user *u)
{
	u->id = sqlite3_column_int64(st, 0);
	u->address = store_col_text(st, 1);
	u->require_client_certificate = sqlite3_column_int(st, 2) != 0;
	u->disabled = sqlite3_column_int(st, 3) != 0;
	u->quota_bytes = (uint64_t)sqlite3_column_int64(st, 4);
	u->used_bytes = (uint64_t)sqlite3_column_int64(st, 5);
	u->quota_messages = (uint64_t)sqlite3_column_int64(st, 7);
	u->used_messages = (uint64_t)sqlite3_column_int64(st, 8);
	const unsigned char *hash = sqlite3_column_text(st, 6);
	if (hash != NULL)
		u->password_tag =
		    store_password_tag((const char *)hash, (size_t)sqlite3_column_bytes(st, 6));
}

int store_user_load(struct store_conn *c, const char *address, struct store_user *u)
{
	sqlite3_stmt *st = store_stmt(c, SQL_USER_BY_ADDRESS);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, address);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		user_from_row(st, u);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

/* ---- Jobs ---- */

struct user_job {
	struct store_job job;
	char *address;  /* normalized */
	char *password; /* wiped and freed once hashed */
	char *hash;
	struct store_scram scram;
	int64_t value;
	enum store_sql sql;
};

static void user_job_free(struct store_job *job)
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

static struct user_job *user_job_new(struct sqlite_store *s, enum store_job_kind kind,
                                     store_job_run_fn *run, const char *address,
                                     store_backend_cb *cb, void *ctx, int *rc_r)
{
	char *norm;
	*rc_r = store_address_normalize(address, &norm);
	if (*rc_r < 0)
		return NULL;
	struct user_job *j = store_job_new(sizeof(*j), s, kind, run, cb, ctx);
	j->job.free_args = user_job_free;
	j->address = norm;
	return j;
}

static int user_prep_hash(struct store_job *job)
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

static int bind_secrets(sqlite3_stmt *st, struct user_job *j)
{
	store_bind_text(st, 2, j->hash);
	store_bind_text(st, 3, j->scram.salt);
	sqlite3_bind_int(st, 4, (int)j->scram.iterations);
	store_bind_text(st, 5, j->scram.stored_key);
	return store_bind_text(st, 6, j->scram.server_key);
}

static int user_add_run(struct store_conn *c, struct store_job *job)
{
	struct user_job *j = (struct user_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_USER_INSERT);
	int rc;
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, j->address);
	bind_secrets(st, j);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	int64_t user_id = sqlite3_last_insert_rowid(c->db);
	uint32_t uidvalidity = (uint32_t)time(NULL);
	for (size_t i = 0; i < sizeof(default_mailboxes) / sizeof(default_mailboxes[0]); i++) {
		st = store_stmt(c, SQL_MAILBOX_INSERT);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, user_id);
		store_bind_text(st, 2, default_mailboxes[i].name);
		sqlite3_bind_int(st, 3, (int)default_mailboxes[i].special_use);
		sqlite3_bind_int64(st, 4, uidvalidity);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			return store_err(c->db, rc);
	}
	job->res.users = xcalloc(1, sizeof(*job->res.users));
	rc = store_user_load(c, j->address, &job->res.users[0]);
	job->res.n_users = rc == 0;
	return rc;
}

int sqlite_store_user_add(void *impl, const char *address, const char *password,
                          store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	int rc;
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	struct user_job *j = user_job_new(s, STORE_JOB_WRITE, user_add_run, address, cb, ctx, &rc);
	if (j == NULL)
		return rc;
	j->password = xstrdup(password);
	j->job.prepare = user_prep_hash;
	return store_job_submit(&j->job);
}

static int user_update_run(struct store_conn *c, struct store_job *job)
{
	struct user_job *j = (struct user_job *)job;
	sqlite3_stmt *st = store_stmt(c, j->sql);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, j->address);
	if (j->sql == SQL_USER_SET_PASSWORD)
		bind_secrets(st, j);
	else if (j->sql != SQL_USER_DELETE)
		sqlite3_bind_int64(st, 2, j->value);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return sqlite3_changes(c->db) > 0 ? 0 : -ENOENT;
}

static int user_update(struct sqlite_store *s, const char *address, enum store_sql sql,
                       int64_t value, const char *password, store_backend_cb *cb, void *ctx)
{
	int rc;
	struct user_job *j =
	    user_job_new(s, STORE_JOB_WRITE, user_update_run, address, cb, ctx, &rc);
	if (j == NULL)
		return rc;
	j->sql = sql;
	j->value = value;
	if (password != NULL) {
		j->password = xstrdup(password);
		j->job.prepare = user_prep_hash;
	}
	return store_job_submit(&j->job);
}

int sqlite_store_user_del(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	return user_update(s, address, SQL_USER_DELETE, 0, NULL, cb, ctx);
}

int sqlite_store_user_passwd(void *impl, const char *address, const char *password,
                             store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (password == NULL || password[0] == '\0')
		return -EINVAL;
	return user_update(s, address, SQL_USER_SET_PASSWORD, 0, password, cb, ctx);
}

int sqlite_store_user_set_require_cert(void *impl, const char *address, bool on,
                                       store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	return user_update(s, address, SQL_USER_SET_REQUIRE_CERT, on, NULL, cb, ctx);
}

int sqlite_store_user_set_disabled(void *impl, const char *address, bool on, store_backend_cb *cb,
                                   void *ctx)
{
	struct sqlite_store *s = impl;
	return user_update(s, address, SQL_USER_SET_DISABLED, on, NULL, cb, ctx);
}

int sqlite_store_user_set_quota(void *impl, const char *address, uint64_t bytes,
                                store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (bytes > INT64_MAX)
		return -EINVAL;
	return user_update(s, address, SQL_USER_SET_QUOTA, (int64_t)bytes, NULL, cb, ctx);
}

int sqlite_store_user_set_message_quota(void *impl, const char *address, uint64_t messages,
                                        store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (messages > INT64_MAX)
		return -EINVAL;
	return user_update(s, address, SQL_USER_SET_MESSAGE_QUOTA, (int64_t)messages, NULL, cb,
	                   ctx);
}

static int user_get_run(struct store_conn *c, struct store_job *job)
{
	struct user_job *j = (struct user_job *)job;
	job->res.users = xcalloc(1, sizeof(*job->res.users));
	int rc = store_user_load(c, j->address, &job->res.users[0]);
	job->res.n_users = rc == 0;
	return rc;
}

int sqlite_store_user_get(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	int rc;
	struct user_job *j = user_job_new(s, STORE_JOB_READ, user_get_run, address, cb, ctx, &rc);
	return j != NULL ? store_job_submit(&j->job) : rc;
}

static int user_list_run(struct store_conn *c, struct store_job *job)
{
	sqlite3_stmt *st = store_stmt(c, SQL_USER_LIST);
	size_t cap = 0;
	int rc;
	if (st == NULL)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_users == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			job->res.users =
			    xreallocarray(job->res.users, cap, sizeof(*job->res.users));
		}
		user_from_row(st, &job->res.users[job->res.n_users++]);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

int sqlite_store_user_list(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job =
	    store_job_new(sizeof(*job), s, STORE_JOB_READ, user_list_run, cb, ctx);
	return store_job_submit(job);
}

static int auth_run(struct store_conn *c, struct store_job *job)
{
	struct user_job *j = (struct user_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_USER_AUTH);
	char *hash = NULL;
	bool usable = false;
	int rc;

	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, j->address);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		job->res.user_id = sqlite3_column_int64(st, 0);
		hash = store_col_text(st, 1);
		job->res.require_client_certificate = sqlite3_column_int(st, 2) != 0;
		usable = sqlite3_column_int(st, 3) == 0 && hash != NULL;
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	if (rc < 0) {
		free(hash);
		return rc;
	}
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

int sqlite_store_auth(void *impl, const char *address, const char *password, store_backend_cb *cb,
                      void *ctx)
{
	struct sqlite_store *s = impl;
	int rc;
	if (password == NULL)
		return -EINVAL;
	struct user_job *j = user_job_new(s, STORE_JOB_READ, auth_run, address, cb, ctx, &rc);
	if (j == NULL) {
		/* A malformed address gets a job too: the caller must not learn more, nor
		 * sooner, than from a wrong password. */
		j = store_job_new(sizeof(*j), s, STORE_JOB_READ, auth_run, cb, ctx);
		j->job.free_args = user_job_free;
		j->address = xstrdup("");
	}
	j->password = xstrdup(password);
	return store_job_submit(&j->job);
}

static int scram_run(struct store_conn *c, struct store_job *job)
{
	struct user_job *j = (struct user_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_USER_SCRAM);
	if (st == NULL)
		return -EIO;
	store_bind_text(st, 1, j->address);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL &&
	    sqlite3_column_int(st, 5) == 0) {
		job->res.user_id = sqlite3_column_int64(st, 0);
		job->res.scram.salt = store_col_text(st, 1);
		job->res.scram.iterations = (unsigned)sqlite3_column_int(st, 2);
		job->res.scram.stored_key = store_col_text(st, 3);
		job->res.scram.server_key = store_col_text(st, 4);
		rc = 0;
	} else {
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

int sqlite_store_user_scram(void *impl, const char *address, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	int rc;
	struct user_job *j = user_job_new(s, STORE_JOB_READ, scram_run, address, cb, ctx, &rc);
	return j != NULL ? store_job_submit(&j->job) : rc;
}
