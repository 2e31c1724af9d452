/*
 * The relay runner's side of the queue: leasing due recipients, recording outcomes, and
 * delivering the DSN in the transaction that records the failure (store.h has the
 * contract). Leases make a crash harmless: a recipient in flight (status 3) whose lease
 * expires is due again, so nothing queued is lost when the server dies mid-delivery.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

static int entry_load(struct store_conn *c, int64_t id, struct store_queue_entry *q)
{
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_GET);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
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
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	return 0;
}

static int due_rcpts_load(struct store_conn *c, struct store_queue_entry *q, int64_t now)
{
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_RCPTS_DUE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, q->id);
	sqlite3_bind_int64(st, 2, now);
	return store_queue_rcpts_collect(c, st, q);
}

static int rcpt_lease(struct store_conn *c, int64_t rcpt_id, int64_t until)
{
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_RCPT_LEASE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, until);
	sqlite3_bind_int64(st, 2, rcpt_id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

struct due_job {
	struct store_job job;
	int64_t now;
	unsigned lease;
	size_t limit;
};

static int due_run(struct store_conn *c, struct store_job *job)
{
	struct due_job *j = (struct due_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_DUE);
	int64_t *ids = NULL;
	size_t n = 0;
	int rc;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)j->limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		job->res.queue =
		    xreallocarray(job->res.queue, job->res.n_queue + 1, sizeof(*job->res.queue));
		struct store_queue_entry *q = &job->res.queue[job->res.n_queue++];
		memset(q, 0, sizeof(*q));
		rc = entry_load(c, ids[i], q);
		if (rc == 0)
			rc = due_rcpts_load(c, q, j->now);
		for (size_t r = 0; rc == 0 && r < q->n_rcpts; r++)
			rc = rcpt_lease(c, q->rcpts[r].id, j->now + (int64_t)j->lease);
	}
	free(ids);
	return rc;
}

int sqlite_store_queue_due(void *impl, int64_t now, unsigned lease_seconds, size_t limit,
                           store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (limit == 0 || lease_seconds == 0)
		return -EINVAL;
	struct due_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, due_run, cb, ctx);
	j->now = now;
	j->lease = lease_seconds;
	j->limit = limit;
	return store_job_submit(&j->job);
}

static int recover_run(struct store_conn *c, struct store_job *job)
{
	/* At start nothing is in flight: a lease left by a crash is due now, not when it
	 * would have expired (up to RELAY_LEASE_S later). One fixed statement, run once per
	 * start, so it is not among the prepared ones. */
	char *msg = NULL;
	int rc = sqlite3_exec(
	    c->db, "UPDATE queue_rcpts SET status = 0, next_attempt = 0 WHERE status = 3", NULL,
	    NULL, &msg);
	sqlite3_free(msg);
	return rc == SQLITE_OK ? 0 : store_err(c->db, rc);
}

int sqlite_store_queue_recover(void *impl, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct store_job *job =
	    store_job_new(sizeof(*job), s, STORE_JOB_WRITE, recover_run, cb, ctx);
	return store_job_submit(job);
}

struct flush_job {
	struct store_job job;
	int64_t id;
	int64_t now;
};

static int flush_run(struct store_conn *c, struct store_job *job)
{
	struct flush_job *j = (struct flush_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_FLUSH);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->id);
	sqlite3_bind_int64(st, 2, j->now);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	return j->id != 0 && sqlite3_changes(c->db) == 0 ? -ENOENT : 0;
}

int sqlite_store_queue_flush(void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	if (queue_id < 0)
		return -EINVAL;
	struct flush_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, flush_run, cb, ctx);
	j->id = queue_id;
	j->now = now;
	return store_job_submit(&j->job);
}

struct read_job {
	struct store_job job;
	int64_t content_id;
	uint64_t offset;
	size_t max_len;
};

static int read_run(struct store_conn *c, struct store_job *job)
{
	struct read_job *j = (struct read_job *)job;
	sqlite3_stmt *st = store_stmt(c, SQL_CONTENT_SIZE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, j->content_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		job->res.total_size = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	return store_content_range(c, j->content_id, j->offset, j->max_len, &job->res);
}

int sqlite_store_queue_content_read(void *impl, int64_t content_id, uint64_t offset, size_t max_len,
                                    store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (max_len == 0 || max_len > STORE_READ_MAX)
		return -EINVAL;
	struct read_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, read_run, cb, ctx);
	j->content_id = content_id;
	j->offset = offset;
	j->max_len = max_len;
	return store_job_submit(&j->job);
}

/* ----- Outcomes and DSNs ----- */

struct report_job {
	struct store_job job;
	const struct store_queue_report *rep; /* borrowed until the callback */
	struct store_delivery d;              /* the DSN, when there is one */
	struct store_deliver_req req;
	struct store_target target;
	struct store_relay_rcpt rcpt;
};

static void report_free(struct store_job *job)
{
	struct report_job *j = (struct report_job *)job;
	store_delivery_clear(&j->d);
}

static int report_prepare(struct store_job *job)
{
	struct report_job *j = (struct report_job *)job;
	return j->rep->dsn != NULL ? store_delivery_prepare(job->store, &j->d) : 0;
}

/* The DSN to the entry's sender (never to the null sender): into the local user's INBOX,
 * or queued for relay with the null sender. */
static int report_dsn(struct store_conn *c, struct report_job *j, const char *sender,
                      bool requiretls)
{
	const struct store_queue_report *rep = j->rep;
	struct store_job *job = &j->job;
	int rc;

	if (rep->dsn_local) {
		struct store_user u;
		char *norm = NULL;
		if (store_address_normalize(sender, &norm) < 0)
			return 0; /* no such user can exist */
		memset(&u, 0, sizeof(u));
		rc = store_user_load(c, norm, &u);
		free(norm);
		int64_t user_id = u.id;
		store_user_clear(&u);
		if (rc == -ENOENT)
			return 0; /* nobody to tell */
		if (rc < 0)
			return rc;
		j->target.user_id = user_id;
		j->req.targets = &j->target;
		j->req.n_targets = 1;
	} else {
		j->rcpt.address = sender;
		j->req.relay = &j->rcpt;
		j->req.n_relay = 1;
		/* RFC 8689 5: a bounce of a REQUIRETLS message is sent with REQUIRETLS. */
		j->req.requiretls = requiretls;
	}
	j->d.keywords = xcalloc(1, sizeof(*j->d.keywords));
	j->d.n_keywords = j->req.n_targets;
	rc = store_delivery_run(c, job, &j->d);
	if (rc == -ENOENT || rc == -EDQUOT ||
	    (rc == 0 && job->res.n_delivered > 0 && job->res.delivered[0].rc < 0))
		return 0; /* over quota: the DSN is dropped, the outcome still counts */
	if (rc == 0 && job->res.n_queue > 0)
		job->res.id = job->res.queue[0].id;
	return rc;
}

static int report_run(struct store_conn *c, struct store_job *job)
{
	struct report_job *j = (struct report_job *)job;
	const struct store_queue_report *rep = j->rep;
	struct store_queue_entry q;
	memset(&q, 0, sizeof(q));
	int rc = entry_load(c, rep->queue_id, &q);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < rep->n_outcomes; i++) {
		const struct store_queue_outcome *o = &rep->outcomes[i];
		sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_RCPT_SET);
		if (st == NULL) {
			rc = -EIO;
			goto out;
		}
		sqlite3_bind_int(st, 1, o->status);
		sqlite3_bind_int64(st, 2, o->next_attempt);
		store_bind_text(st, 3, o->error);
		sqlite3_bind_int64(st, 4, o->rcpt_id);
		sqlite3_bind_int64(st, 5, rep->queue_id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			rc = store_err(c->db, rc);
			goto out;
		}
	}
	rc = 0;
	if (rep->dsn != NULL && q.sender != NULL && q.sender[0] != '\0') {
		rc = report_dsn(c, j, q.sender, q.requiretls);
		if (rc < 0)
			goto out;
	}
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_PENDING);
	if (st == NULL) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, rep->queue_id);
	rc = sqlite3_step(st);
	int64_t pending = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		rc = store_err(c->db, rc);
		goto out;
	}
	rc = 0;
	if (pending == 0) {
		st = store_stmt(c, SQL_QUEUE_DELETE);
		if (st == NULL) {
			rc = -EIO;
			goto out;
		}
		sqlite3_bind_int64(st, 1, rep->queue_id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	}
out:
	free(q.sender);
	free(q.ret);
	free(q.envid);
	return rc;
}

int sqlite_store_queue_report(void *impl, const struct store_queue_report *rep,
                              store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (rep->queue_id <= 0 || (rep->n_outcomes > 0 && rep->outcomes == NULL))
		return -EINVAL;
	if (rep->dsn != NULL && rep->dsn_len > s->opt.max_message_size)
		return -EFBIG;
	struct report_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, report_run, cb, ctx);
	j->job.prepare = report_prepare;
	j->job.free_args = report_free;
	j->rep = rep;
	j->req.data = rep->dsn;
	j->req.size = rep->dsn_len;
	j->req.sender = "";
	j->d.req = &j->req;
	return store_job_submit(&j->job);
}
