/*
 * Annotations (IMAP METADATA, RFC 5464) in the SQLite store: one row per entry in the
 * annotations table (schema 11), mailbox_id NULL for the user's server annotations.
 * Reads run on a worker, SETMETADATA on the writer as one job: its savepoint makes a
 * refused change (over the entry limit) leave nothing behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

struct meta_job {
	struct store_job job;
	int64_t user_id;
	int64_t mailbox_id;
	int depth;
	char **names; /* get */
	size_t n_names;
	struct store_meta_change *changes; /* set: names and values copied */
	size_t n_changes;
	uint64_t max_entries;
};

static void meta_job_free(struct store_job *job)
{
	struct meta_job *j = (struct meta_job *)job;
	for (size_t i = 0; i < j->n_names; i++)
		free(j->names[i]);
	free(j->names);
	for (size_t i = 0; i < j->n_changes; i++) {
		free((char *)j->changes[i].name);
		free((void *)j->changes[i].value);
	}
	free(j->changes);
}

/* The mailbox is the user's (0, the server, always is). */
static int meta_owned(struct store_conn *c, int64_t user_id, int64_t mailbox_id)
{
	if (mailbox_id == 0)
		return 0;
	sqlite3_stmt *st = store_stmt(c, SQL_META_OWNED);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, user_id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
}

static bool meta_have(const struct store_backend_result *res, const char *name)
{
	for (size_t i = 0; i < res->n_meta; i++)
		if (strcmp(res->meta[i].name, name) == 0)
			return true;
	return false;
}

static int get_run(struct store_conn *c, struct store_job *job)
{
	struct meta_job *j = (struct meta_job *)job;
	int rc = meta_owned(c, j->user_id, j->mailbox_id);
	for (size_t i = 0; rc == 0 && i < j->n_names; i++) {
		sqlite3_stmt *st = store_stmt(c, SQL_META_GET);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, j->user_id);
		sqlite3_bind_int64(st, 2, j->mailbox_id);
		store_bind_text(st, 3, j->names[i]);
		int step;
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			const char *name = (const char *)sqlite3_column_text(st, 0);
			const char *const one[1] = {j->names[i]};
			if (name == NULL || !store_meta_matches(name, one, 1, j->depth) ||
			    meta_have(&job->res, name))
				continue;
			size_t len = (size_t)sqlite3_column_bytes(st, 1);
			const void *v = sqlite3_column_blob(st, 1);
			struct store_meta_entry e = {.name = xstrdup(name), .len = len};
			e.value = xmalloc(len + 1);
			if (len > 0)
				memcpy(e.value, v, len);
			e.value[len] = '\0';
			job->res.meta = xreallocarray(job->res.meta, job->res.n_meta + 1,
			                              sizeof(*job->res.meta));
			job->res.meta[job->res.n_meta++] = e;
		}
		sqlite3_reset(st);
		rc = step == SQLITE_DONE ? 0 : store_err(c->db, step);
	}
	if (rc == 0)
		store_meta_sort(job->res.meta, job->res.n_meta);
	return rc;
}

int sqlite_store_metadata_get(void *impl, int64_t user_id, int64_t mailbox_id,
                              const char *const *names, size_t n, int depth, store_backend_cb *cb,
                              void *ctx)
{
	struct sqlite_store *s = impl;
	struct meta_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, get_run, cb, ctx);
	j->job.free_args = meta_job_free;
	j->user_id = user_id;
	j->mailbox_id = mailbox_id;
	j->depth = depth;
	j->names = xcalloc(n, sizeof(*j->names));
	for (size_t i = 0; i < n; i++)
		j->names[i] = xstrdup(names[i]);
	j->n_names = n;
	return store_job_submit(&j->job);
}

static int meta_count(struct store_conn *c, int64_t user_id, uint64_t *n_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_META_COUNT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, user_id);
	int rc = sqlite3_step(st);
	*n_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : store_err(c->db, rc);
}

/* Runs one key statement (update, insert, delete) for change ch: 0 or -errno. */
static int meta_step(struct store_conn *c, enum store_sql id, const struct meta_job *j,
                     const struct store_meta_change *ch)
{
	sqlite3_stmt *st = store_stmt(c, id);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->user_id);
	sqlite3_bind_int64(st, 2, j->mailbox_id);
	store_bind_text(st, 3, ch->name);
	if (id != SQL_META_DELETE)
		/* A NULL pointer would bind SQL NULL: an empty value is an empty blob. */
		sqlite3_bind_blob(st, 4, ch->len > 0 ? ch->value : "", (int)ch->len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

static int set_run(struct store_conn *c, struct store_job *job)
{
	struct meta_job *j = (struct meta_job *)job;
	uint64_t before = 0, after = 0;
	int rc = meta_owned(c, j->user_id, j->mailbox_id);
	if (rc == 0 && j->max_entries > 0)
		rc = meta_count(c, j->user_id, &before);
	for (size_t i = 0; rc == 0 && i < j->n_changes; i++) {
		const struct store_meta_change *ch = &j->changes[i];
		if (ch->value == NULL) {
			rc = meta_step(c, SQL_META_DELETE, j, ch);
			continue;
		}
		rc = meta_step(c, SQL_META_UPDATE, j, ch);
		if (rc == 0 && sqlite3_changes(c->db) == 0)
			rc = meta_step(c, SQL_META_INSERT, j, ch);
	}
	if (rc == 0 && j->max_entries > 0) {
		rc = meta_count(c, j->user_id, &after);
		if (rc == 0 && after > j->max_entries && after > before)
			rc = -EDQUOT;
	}
	return rc;
}

int sqlite_store_metadata_set(void *impl, int64_t user_id, int64_t mailbox_id,
                              const struct store_meta_change *changes, size_t n,
                              uint64_t max_entries, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (n > INT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (changes[i].len > INT32_MAX)
			return -EFBIG;
	struct meta_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, set_run, cb, ctx);
	j->job.free_args = meta_job_free;
	j->user_id = user_id;
	j->mailbox_id = mailbox_id;
	j->max_entries = max_entries;
	j->changes = xcalloc(n, sizeof(*j->changes));
	j->n_changes = n;
	for (size_t i = 0; i < n; i++) {
		j->changes[i].name = xstrdup(changes[i].name);
		j->changes[i].len = changes[i].len;
		if (changes[i].value != NULL) {
			void *v = xmalloc(changes[i].len + 1);
			memcpy(v, changes[i].value, changes[i].len);
			j->changes[i].value = v;
		}
	}
	return store_job_submit(&j->job);
}

int store_metadata_copy(struct store_conn *c, int64_t src, int64_t dst)
{
	sqlite3_stmt *st = store_stmt(c, SQL_META_COPY);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, src);
	sqlite3_bind_int64(st, 2, dst);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}
