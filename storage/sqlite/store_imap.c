/*
 * Reads that IMAP SEARCH, SORT and THREAD need in bulk: the decoded header fields (From,
 * To, Cc, Subject, Message-ID, Date) or the sort keys of every message of a mailbox in one
 * query, so they cost one store round trip per command instead of one per message.
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
	"e.emailid, e.threadid, e.savedate, "                                                      \
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
		m->hdr_from = store_col_text(st, 10);
		m->hdr_to = store_col_text(st, 11);
		m->hdr_cc = store_col_text(st, 12);
		m->hdr_subject = store_col_text(st, 13);
		m->hdr_message_id = store_col_text(st, 14);
		m->hdr_date = sqlite3_column_int64(st, 15);
	}
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_message_headers(void *impl, int64_t mailbox_id, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct headers_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, headers_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	return store_job_submit(&j->job);
}

/* The sort keys live in their own narrow table (schema version 8), so this reads neither
 * the contents rows nor their bodies. */
#define SORTKEYS_SQL                                                                               \
	"SELECT e.uid, e.internal_date, e.size, k.date, k.message_id, k.subject, k.reply, "        \
	"k.from_mbox, k.from_name, k.to_mbox, k.to_name, k.cc_mbox, k.refs "                       \
	"FROM entries e LEFT JOIN sortkeys k ON k.content_id = e.content_id "                      \
	"WHERE e.mailbox_id = ? AND e.uid > ? ORDER BY e.uid"

struct sortkeys_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t after_uid;
};

static int sortkeys_run(struct store_conn *c, struct store_job *job)
{
	struct sortkeys_job *j = (struct sortkeys_job *)job;
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc = sqlite3_prepare_v3(c->db, SORTKEYS_SQL, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	sqlite3_bind_int64(st, 1, j->mailbox_id);
	sqlite3_bind_int64(st, 2, j->after_uid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_msgs == cap) {
			cap = cap != 0 ? cap * 2 : 256;
			job->res.msgs = xreallocarray(job->res.msgs, cap, sizeof(*job->res.msgs));
		}
		struct store_msg *m = &job->res.msgs[job->res.n_msgs++];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->internal_date = sqlite3_column_int64(st, 1);
		m->size = (uint64_t)sqlite3_column_int64(st, 2);
		m->hdr_date = sqlite3_column_int64(st, 3);
		m->hdr_message_id = store_col_text(st, 4);
		m->sort_subject = store_col_text(st, 5);
		m->sort_reply = sqlite3_column_int(st, 6) != 0;
		m->sort_from = store_col_text(st, 7);
		m->sort_from_name = store_col_text(st, 8);
		m->sort_to = store_col_text(st, 9);
		m->sort_to_name = store_col_text(st, 10);
		m->sort_cc = store_col_text(st, 11);
		m->thread_refs = store_col_text(st, 12);
	}
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_message_sortkeys(void *impl, int64_t mailbox_id, uint32_t after_uid,
                                  store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct sortkeys_job *j =
	    store_job_new(sizeof(*j), s, STORE_JOB_READ, sortkeys_run, cb, ctx);
	j->mailbox_id = mailbox_id;
	j->after_uid = after_uid;
	return store_job_submit(&j->job);
}
