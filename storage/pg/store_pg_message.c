/*
 * Messages of a mailbox on PostgreSQL: the list (SELECT, FETCH FLAGS, POP3), one message
 * with its MIME structure and header fields, and its bytes in chunks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/pg/store_pg_private.h"

int pg_mailbox_note(struct pg_conn *c, struct pg_job *job, int64_t mailbox_id)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, mailbox_id);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_STATE, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1)
		pg_job_note_change(job, pg_i64(r, 0, 0), mailbox_id, (uint64_t)pg_i64(r, 0, 1),
		                   (uint32_t)pg_i64(r, 0, 2), (uint32_t)pg_i64(r, 0, 3));
	else
		rc = -ENOENT;
	PQclear(r);
	return rc;
}

/* The columns every entry query starts with (PGSQL_ENTRY_LIST's order). */
void pg_entry_from_row(const PGresult *r, int row, struct store_msg *m)
{
	m->uid = (uint32_t)pg_i64(r, row, 0);
	m->modseq = (uint64_t)pg_i64(r, row, 1);
	m->flags = (unsigned)pg_i64(r, row, 2);
	m->keywords = pg_str(r, row, 3);
	m->internal_date = pg_i64(r, row, 4);
	m->size = (uint64_t)pg_i64(r, row, 5);
	m->content_id = pg_i64(r, row, 6);
	m->email_id = (uint64_t)pg_i64(r, row, 7);
	m->thread_id = (uint64_t)pg_i64(r, row, 8);
	m->save_date = pg_i64(r, row, 9);
}

struct msg_job {
	struct pg_job job;
	int64_t mailbox_id;
	uint64_t changed_since;
	uint32_t uid;
	uint64_t offset;
	size_t max_len;
};

static int list_run(struct pg_conn *c, struct pg_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->mailbox_id);
	/* One snapshot for the mailbox's state and its entries. */
	if (pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		return -EIO;
	PGresult *r = pg_run(c, PGSQL_MAILBOX_STATE, &p, &rc);
	if (r == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rc = -ENOENT;
		goto out;
	}
	job->res.modseq = (uint64_t)pg_i64(r, 0, 1);
	job->res.uidvalidity = (uint32_t)pg_i64(r, 0, 4);
	PQclear(r);
	pg_p_i64(&p, (int64_t)j->changed_since);
	r = pg_run(c, PGSQL_ENTRY_LIST, &p, &rc);
	if (r == NULL)
		goto out;
	size_t n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.msgs = xcalloc(n, sizeof(*job->res.msgs));
	for (size_t i = 0; i < n; i++)
		pg_entry_from_row(r, (int)i, &job->res.msgs[i]);
	job->res.n_msgs = n;
	PQclear(r);
out:
	if (pg_exec(c, "COMMIT") < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

int pg_store_message_list(void *impl, int64_t mailbox_id, uint64_t changed_since,
                          store_backend_cb *cb, void *ctx)
{
	if (changed_since > INT64_MAX)
		return -EINVAL;
	struct msg_job *j = pg_job_new(sizeof(*j), impl, PG_JOB_READ, list_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->changed_since = changed_since;
	return pg_job_submit(&j->job);
}

static int get_run(struct pg_conn *c, struct pg_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->mailbox_id);
	pg_p_i64(&p, j->uid);
	PGresult *r = pg_run(c, PGSQL_ENTRY_GET, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	struct store_msg *m = job->res.msgs = xcalloc(1, sizeof(*m));
	job->res.n_msgs = 1;
	pg_entry_from_row(r, 0, m);
	m->mime_json = pg_str(r, 0, 10);
	m->hdr_from = pg_str(r, 0, 11);
	m->hdr_to = pg_str(r, 0, 12);
	m->hdr_cc = pg_str(r, 0, 13);
	m->hdr_subject = pg_str(r, 0, 14);
	m->hdr_message_id = pg_str(r, 0, 15);
	m->hdr_date = PQgetisnull(r, 0, 16) ? 0 : pg_i64(r, 0, 16);
	m->preview = pg_str(r, 0, 17);
	PQclear(r);
	return 0;
}

int pg_store_message_get(void *impl, int64_t mailbox_id, uint32_t uid, store_backend_cb *cb,
                         void *ctx)
{
	struct msg_job *j = pg_job_new(sizeof(*j), impl, PG_JOB_READ, get_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->uid = uid;
	return pg_job_submit(&j->job);
}

static int read_run(struct pg_conn *c, struct pg_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->mailbox_id);
	pg_p_i64(&p, j->uid);
	pg_p_i64(&p, (int64_t)j->offset);
	pg_p_i64(&p, (int64_t)j->max_len);
	PGresult *r = pg_run(c, PGSQL_CONTENT_READ, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	job->res.total_size = (uint64_t)pg_i64(r, 0, 0);
	size_t len = 0;
	unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &len);
	PQclear(r);
	if (bytes == NULL)
		return -EIO;
	job->res.data = xmalloc(len + 1);
	memcpy(job->res.data, bytes, len);
	job->res.data_len = len;
	PQfreemem(bytes);
	return 0;
}

int pg_store_content_read(void *impl, int64_t mailbox_id, uint32_t uid, uint64_t offset,
                          size_t max_len, store_backend_cb *cb, void *ctx)
{
	if (max_len == 0 || max_len > 1024 * 1024 || offset > INT64_MAX)
		return -EINVAL;
	struct msg_job *j = pg_job_new(sizeof(*j), impl, PG_JOB_READ, read_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->uid = uid;
	j->offset = offset;
	j->max_len = max_len;
	return pg_job_submit(&j->job);
}

/* QRESYNC: the UIDs expunged with a modseq above since, in UID order. */
static int vanished_run(struct pg_conn *c, struct pg_job *job)
{
	struct msg_job *j = (struct msg_job *)job;
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, j->mailbox_id);
	pg_p_i64(&p, (int64_t)j->changed_since);
	PGresult *r = pg_run(c, PGSQL_VANISHED, &p, &rc);
	if (r == NULL)
		return rc;
	size_t n = (size_t)PQntuples(r);
	if (n > 0)
		job->res.uids = xcalloc(n, sizeof(*job->res.uids));
	for (size_t i = 0; i < n; i++)
		job->res.uids[i] = (uint32_t)pg_i64(r, (int)i, 0);
	job->res.n_uids = n;
	PQclear(r);
	return 0;
}

int pg_store_vanished(void *impl, int64_t mailbox_id, uint64_t since_modseq, store_backend_cb *cb,
                      void *ctx)
{
	if (since_modseq > INT64_MAX)
		return -EINVAL;
	struct msg_job *j = pg_job_new(sizeof(*j), impl, PG_JOB_READ, vanished_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->changed_since = since_modseq;
	return pg_job_submit(&j->job);
}
