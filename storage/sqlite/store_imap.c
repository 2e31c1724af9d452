/*
 * Reads that IMAP SEARCH needs in bulk: the decoded header fields (From, To, Cc, Subject,
 * Message-ID, Date) of every message of a mailbox in one query, so header keys cost one
 * store round trip per SEARCH instead of one per message.
 *
 * Its statement is prepared per call (sqlite3_prepare_v3, persistent) rather than in
 * store_sql.c's table: one prepare per SEARCH is noise next to the scan, and it keeps this
 * IMAP addition out of the files the store's owners are changing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

#define HEADERS_SQL                                                                                \
	"SELECT e.uid, e.modseq, e.flags, e.keywords, e.internal_date, e.size, e.content_id, "     \
	"c.hdr_from, c.hdr_to, c.hdr_cc, c.hdr_subject, c.hdr_message_id, c.hdr_date "             \
	"FROM entries e JOIN contents c ON c.id = e.content_id "                                   \
	"WHERE e.mailbox_id = ? ORDER BY e.uid"

struct headers_job {
	struct store_job job;
	int64_t mailbox_id;
};

static int headers_run(struct store_conn *c, struct store_job *job)
{
	struct headers_job *j = (struct headers_job *)job;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc = sqlite3_prepare_v3(c->db, HEADERS_SQL, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_msgs == cap) {
			cap = cap != 0 ? cap * 2 : 64;
			job->res.msgs = xreallocarray(job->res.msgs, cap, sizeof(*job->res.msgs));
		}
		struct store_msg *m = &job->res.msgs[job->res.n_msgs++];
		memset(m, 0, sizeof(*m));
		store_msg_load(st, m);
		m->hdr_from = store_col_text(st, 7);
		m->hdr_to = store_col_text(st, 8);
		m->hdr_cc = store_col_text(st, 9);
		m->hdr_subject = store_col_text(st, 10);
		m->hdr_message_id = store_col_text(st, 11);
		m->hdr_date = sqlite3_column_int64(st, 12);
	}
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_message_headers(void *impl, int64_t mailbox_id, store_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct headers_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, headers_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	return store_job_submit(&j->job);
}

/* ---- many small messages in one read (IMAP FETCH BODY[] of a mailbox) ---- */

struct batch_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
	size_t max_total;
};

static void batch_job_free(struct store_job *job)
{
	free(((struct batch_job *)job)->uids);
}

static int batch_run(struct store_conn *c, struct store_job *job)
{
	struct batch_job *j = (struct batch_job *)job;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(c->db,
	                            "SELECT content_id, size FROM entries "
	                            "WHERE mailbox_id = ? AND uid = ?",
	                            -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	rc = store_exec_stmt(c, SQL_BEGIN_READ); /* one snapshot for the whole batch */
	if (rc < 0) {
		sqlite3_finalize(st);
		return rc;
	}
	size_t total = 0;
	job->res.msgs = xcalloc(j->n, sizeof(*job->res.msgs));
	job->res.data = xmalloc(j->max_total + 1);
	for (size_t i = 0; i < j->n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, j->uids[i]);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			continue; /* expunged meanwhile: left out */
		if (rc != SQLITE_ROW) {
			rc = store_err(c->db, rc);
			goto out;
		}
		int64_t content_id = sqlite3_column_int64(st, 0);
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
		if (size > j->max_total - total)
			break; /* the caller asks again from here */
		if (size > 0) {
			sqlite3_blob *blob = NULL;
			rc = sqlite3_blob_open(c->db, "main", "contents", "body", content_id, 0,
			                       &blob);
			if (rc == SQLITE_OK)
				rc = sqlite3_blob_read(blob, job->res.data + total, (int)size, 0);
			sqlite3_blob_close(blob);
			if (rc != SQLITE_OK) {
				rc = store_err(c->db, rc);
				goto out;
			}
		}
		struct store_msg *m = &job->res.msgs[job->res.n_msgs++];
		m->uid = j->uids[i];
		m->size = size;
		total += size;
	}
	job->res.data_len = total;
	rc = 0;
out:
	store_exec_stmt(c, SQL_COMMIT);
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_content_read_batch(void *impl, int64_t mailbox_id, const uint32_t *uids, size_t n,
                                    size_t max_total, store_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (n == 0 || max_total == 0 || max_total > STORE_READ_MAX)
		return -EINVAL;
	struct batch_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, batch_run, cb, ctx);
	j->job.free_args = batch_job_free;
	j->mailbox_id = mailbox_id;
	j->uids = xmalloc(n * sizeof(*uids));
	memcpy(j->uids, uids, n * sizeof(*uids));
	j->n = n;
	j->max_total = max_total;
	return store_job_submit(&j->job);
}
