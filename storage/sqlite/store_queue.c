/*
 * The relay queue as sealctl and the relay runner see it: entries with their recipients.
 * Entries are added by store_deliver in the delivery's own transaction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

/* Appends the recipient rows of a stepped statement (id, address, notify, orcpt, status,
 * attempts, next_attempt, last_error) to q, then resets it. */
int store_queue_rcpts_collect(struct store_conn *c, sqlite3_stmt *st, struct store_queue_entry *q)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		q->rcpts = xreallocarray(q->rcpts, q->n_rcpts + 1, sizeof(*q->rcpts));
		struct store_queue_rcpt *r = &q->rcpts[q->n_rcpts++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		r->address = store_col_text(st, 1);
		r->notify = store_col_text(st, 2);
		r->orcpt = store_col_text(st, 3);
		r->status = sqlite3_column_int(st, 4);
		r->attempts = (unsigned)sqlite3_column_int(st, 5);
		r->next_attempt = sqlite3_column_int64(st, 6);
		r->last_error = store_col_text(st, 7);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

static int rcpts_load(struct store_conn *c, struct store_queue_entry *q)
{
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_RCPTS);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, q->id);
	return store_queue_rcpts_collect(c, st, q);
}

static int list_run(struct store_conn *c, struct store_job *job)
{
	int rc = store_exec_stmt(c, SQL_BEGIN_READ);
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_LIST);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		job->res.queue =
		    xreallocarray(job->res.queue, job->res.n_queue + 1, sizeof(*job->res.queue));
		struct store_queue_entry *q = &job->res.queue[job->res.n_queue++];
		memset(q, 0, sizeof(*q));
		q->id = sqlite3_column_int64(st, 0);
		q->content_id = sqlite3_column_int64(st, 1);
		q->size = (uint64_t)sqlite3_column_int64(st, 2);
		q->sender = store_col_text(st, 3);
		q->requiretls = sqlite3_column_int(st, 4) != 0;
		q->ret = store_col_text(st, 5);
		q->envid = store_col_text(st, 6);
		q->created = sqlite3_column_int64(st, 7);
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	for (size_t i = 0; rc == 0 && i < job->res.n_queue; i++)
		rc = rcpts_load(c, &job->res.queue[i]);
out:
	store_exec_stmt(c, SQL_COMMIT);
	return rc;
}

int sqlite_store_queue_list(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job = store_job_new(sizeof(*job), s, STORE_JOB_READ, list_run, cb, ctx);
	return store_job_submit(job);
}

static int summary_run(struct store_conn *c, struct store_job *job)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(c->db,
	                            "SELECT (SELECT count(*) FROM queue),"
	                            " (SELECT count(*) FROM queue_rcpts WHERE status IN (0, 3)),"
	                            " (SELECT coalesce(min(created), 0) FROM queue)",
	                            -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		job->res.queue_summary.messages = (uint64_t)sqlite3_column_int64(st, 0);
		job->res.queue_summary.recipients = (uint64_t)sqlite3_column_int64(st, 1);
		job->res.queue_summary.oldest = sqlite3_column_int64(st, 2);
		rc = 0;
	} else {
		rc = store_err(c->db, rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_queue_summary(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job =
	    store_job_new(sizeof(*job), s, STORE_JOB_READ, summary_run, cb, ctx);
	return store_job_submit(job);
}

struct queue_job {
	struct store_job job;
	int64_t id;
};

static int delete_run(struct store_conn *c, struct store_job *job)
{
	struct queue_job *j = (struct queue_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_DELETE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return sqlite3_changes(c->db) > 0 ? 0 : -ENOENT;
}

int sqlite_store_queue_delete(void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct queue_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, delete_run, cb, ctx);
	j->id = queue_id;
	return store_job_submit(&j->job);
}
