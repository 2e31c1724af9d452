/*
 * Delivery: one message to N mailboxes and the relay queue in one transaction. The slow,
 * lock-free half (SHA-256 of the bytes, MIME parsing) runs on a worker; the writer then
 * stores the content once (or finds it already stored), streams spooled bytes into the
 * blob in chunks, and adds one entry per target mailbox.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"
#include "storage/store_spool.h"

struct deliver_job {
	struct store_job job;
	struct store_delivery d;
};

void store_delivery_clear(struct store_delivery *d)
{
	store_mime_info_clear(&d->mime);
	/* Not through req: it may be gone once the callback returned. */
	for (size_t i = 0; i < d->n_keywords; i++)
		free(d->keywords[i]);
	free(d->keywords);
	d->keywords = NULL;
	d->n_keywords = 0;
}

static void deliver_job_free(struct store_job *job)
{
	store_delivery_clear(&((struct deliver_job *)job)->d);
}

static int hash_file(const char *path, bool sealed, uint64_t max, uint64_t *size_r,
                     unsigned char *out)
{
	struct store_spool_reader *r;
	gnutls_hash_hd_t h = NULL;
	unsigned char *chunk = NULL;
	int rc = store_spool_open(path, sealed, &r, size_r);
	if (rc < 0)
		return rc;
	if (*size_r > max) {
		rc = -EFBIG;
		goto out;
	}
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		rc = -EIO;
		goto out;
	}
	chunk = xmalloc(STORE_BLOB_CHUNK);
	uint64_t done = 0;
	while (done < *size_r) {
		ssize_t n = store_spool_pread(r, chunk, STORE_BLOB_CHUNK, done);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO; /* shrank under us */
			goto out;
		}
		gnutls_hash(h, chunk, (size_t)n);
		done += (uint64_t)n;
	}
out:
	if (h != NULL)
		gnutls_hash_deinit(h, out);
	free(chunk);
	store_spool_close(r);
	return rc;
}

int store_delivery_prepare(struct sqlite_store *s, struct store_delivery *j)
{
	const struct store_deliver_req *req = j->req;
	uint64_t max = s->opt.max_message_size;
	int rc;

	if (req->spool_path != NULL) {
		j->spool_sealed = s->opt.spool_sealed;
		rc = hash_file(req->spool_path, j->spool_sealed, max, &j->size, j->sha256);
		if (rc == 0)
			rc = store_mime_parse_file(req->spool_path, j->spool_sealed, &j->mime);
	} else {
		if (req->size > max)
			return -EFBIG;
		j->size = req->size;
		rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, req->data, req->size, j->sha256) < 0 ? -EIO
		                                                                              : 0;
		if (rc == 0)
			rc = store_mime_parse_mem(req->data, req->size, &j->mime);
	}
	return rc;
}

static int deliver_prepare(struct store_job *job)
{
	return store_delivery_prepare(job->store, &((struct deliver_job *)job)->d);
}

/* Streams the spool file into the zeroblob of the new row, chunk by chunk. */
static int blob_fill(struct store_conn *c, int64_t content_id, const char *path, bool sealed,
                     uint64_t size)
{
	sqlite3_blob *blob = NULL;
	unsigned char *chunk = NULL;
	struct store_spool_reader *r;
	uint64_t file_size;
	int rc = store_spool_open(path, sealed, &r, &file_size);
	if (rc < 0)
		return rc;
	rc = sqlite3_blob_open(c->db, "main", "contents", "body", content_id, 1, &blob);
	if (rc != SQLITE_OK) {
		rc = store_err(c->db, rc);
		goto out;
	}
	chunk = xmalloc(STORE_BLOB_CHUNK);
	uint64_t done = 0;
	while (done < size) {
		size_t want =
		    size - done < STORE_BLOB_CHUNK ? (size_t)(size - done) : STORE_BLOB_CHUNK;
		ssize_t n = store_spool_pread(r, chunk, want, done);
		if (n <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			goto out;
		}
		rc = sqlite3_blob_write(blob, chunk, (int)n, (int)done);
		if (rc != SQLITE_OK) {
			rc = store_err(c->db, rc);
			goto out;
		}
		done += (uint64_t)n;
	}
	rc = 0;
out:
	if (blob != NULL)
		sqlite3_blob_close(blob);
	free(chunk);
	store_spool_close(r);
	return rc;
}

static int content_store(struct store_conn *c, struct store_delivery *j, int64_t *id_r)
{
	const struct store_deliver_req *req = j->req;
	sqlite3_stmt *st = store_stmt(c, SQL_CONTENT_BY_HASH);
	int rc;
	if (st == NULL)
		return -EIO;
	sqlite3_bind_blob(st, 1, j->sha256, sizeof(j->sha256), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0; /* stored once, shared */
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);

	st = store_stmt(c, SQL_CONTENT_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_blob(st, 1, j->sha256, sizeof(j->sha256), SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)j->size);
	if (req->spool_path != NULL)
		sqlite3_bind_zeroblob64(st, 3, j->size);
	else
		sqlite3_bind_blob64(st, 3, req->data, req->size, SQLITE_STATIC);
	store_bind_text(st, 4, j->mime.json);
	store_bind_text(st, 5, j->mime.from);
	store_bind_text(st, 6, j->mime.to);
	store_bind_text(st, 7, j->mime.cc);
	store_bind_text(st, 8, j->mime.subject);
	store_bind_text(st, 9, j->mime.message_id);
	sqlite3_bind_int64(st, 10, j->mime.date);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	*id_r = sqlite3_last_insert_rowid(c->db);
	st = store_stmt(c, SQL_SORTKEY_INSERT);
	if (st == NULL)
		return -EIO;
	store_sortkeys_bind(st, *id_r, &j->mime);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	if (j->mime.preview != NULL) {
		st = store_stmt(c, SQL_PREVIEW_INSERT);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, *id_r);
		store_bind_text(st, 2, j->mime.preview);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_err(c->db, rc);
	}
	if (req->spool_path != NULL) {
		rc = blob_fill(c, *id_r, req->spool_path, j->spool_sealed, j->size);
		if (rc < 0)
			return rc;
	}
	j->index_id = *id_r;
	return j->defer_index ? 0 : store_delivery_index(c, j);
}

void store_sortkeys_bind(sqlite3_stmt *st, int64_t content_id, const struct store_mime_info *info)
{
	sqlite3_bind_int64(st, 1, content_id);
	sqlite3_bind_int64(st, 2, info->date);
	store_bind_text(st, 3, info->message_id);
	store_bind_text(st, 4, info->sort_subject);
	sqlite3_bind_int(st, 5, info->sort_reply ? 1 : 0);
	store_bind_text(st, 6, info->sort_from);
	store_bind_text(st, 7, info->sort_from_name);
	store_bind_text(st, 8, info->sort_to);
	store_bind_text(st, 9, info->sort_to_name);
	store_bind_text(st, 10, info->sort_cc);
	store_bind_text(st, 11, info->thread_refs);
}

int store_delivery_index(struct store_conn *c, struct store_delivery *d)
{
	if (d->index_id == 0)
		return 0;
	sqlite3_stmt *st = store_stmt(c, SQL_FTS_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, d->index_id);
	store_bind_text(st, 2, d->mime.header);
	store_bind_text(st, 3, d->mime.text);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	d->index_id = 0;
	return 0;
}

/* A target mailbox as a delivery finds it: one query for what the checks and the new entry
 * need (the writer is the only writer, so it stays true until this delivery changes it). */
struct target_state {
	int64_t mailbox_id;
	int64_t user_id;
	uint32_t uidvalidity;
	uint64_t uidnext;
	uint64_t modseq;
	uint32_t messages;
	uint64_t quota;
	uint64_t used;
	uint64_t quota_messages;
	uint64_t used_messages;
	bool found; /* the target's user and mailbox exist (quota and used are its) */
};

/* 0, -ENOENT (no such user or mailbox, or not the user's), -EDQUOT (size would pass the
 * user's storage quota, or one more message its message quota), -EFBIG (no UID left), or an error.
 * ts->mailbox_id and uidvalidity are set whenever the mailbox was found. */
static int target_load(struct store_conn *c, const struct store_target *t, uint64_t size,
                       struct target_state *ts)
{
	sqlite3_stmt *st =
	    store_stmt(c, t->mailbox_id != 0 ? SQL_DELIVER_MAILBOX : SQL_DELIVER_INBOX);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, t->mailbox_id != 0 ? t->mailbox_id : t->user_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	ts->mailbox_id = sqlite3_column_int64(st, 0);
	ts->user_id = sqlite3_column_int64(st, 1);
	ts->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	ts->uidnext = (uint64_t)sqlite3_column_int64(st, 3);
	ts->modseq = (uint64_t)sqlite3_column_int64(st, 4);
	ts->messages = (uint32_t)sqlite3_column_int64(st, 5);
	ts->quota = (uint64_t)sqlite3_column_int64(st, 6);
	ts->used = (uint64_t)sqlite3_column_int64(st, 7);
	ts->quota_messages = (uint64_t)sqlite3_column_int64(st, 8);
	ts->used_messages = (uint64_t)sqlite3_column_int64(st, 9);
	sqlite3_reset(st);
	if (t->user_id != 0 && ts->user_id != t->user_id)
		return -ENOENT;
	ts->found = true;
	if (ts->quota != 0 && ts->used + size > ts->quota)
		return -EDQUOT;
	if (ts->quota_messages != 0 && ts->used_messages >= ts->quota_messages)
		return -EDQUOT;
	return ts->uidnext >= UINT32_MAX ? -EFBIG : 0;
}

/* One mailbox entry row (the entries_ref trigger keeps the mailbox's counts), saved now;
 * m gives what it is (content, size, flags, keywords, internal date, EMAILID, THREADID). */
static int entry_insert(struct store_conn *c, int64_t mailbox_id, uint32_t uid, uint64_t modseq,
                        const struct store_msg *m)
{
	sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, m->content_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)modseq);
	sqlite3_bind_int(st, 5, (int)m->flags);
	store_bind_text(st, 6, m->keywords != NULL ? m->keywords : "");
	sqlite3_bind_int64(st, 7, m->internal_date);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)m->size);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)m->email_id);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)m->thread_id);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

/* The new entry in a loaded target: the mailbox's next UID and modseq (the entries_ref
 * trigger keeps its counts), a new EMAILID, the thread its Message-IDs put it in; then the
 * change to announce, known without reading it back. */
static int target_add(struct store_conn *c, struct store_job *job, const struct target_state *ts,
                      int64_t content_id, uint64_t size, const struct store_target *t,
                      const char *keywords, int64_t internal_date, uint32_t *uid_r)
{
	uint32_t uid = (uint32_t)ts->uidnext;
	uint64_t modseq = ts->modseq + 1;
	struct store_thread_stmts th = {store_stmt(c, SQL_THREAD_KEYS),
	                                store_stmt(c, SQL_THREAD_FIND),
	                                store_stmt(c, SQL_THREAD_ADD)};
	sqlite3_stmt *st = store_stmt(c, SQL_DELIVER_BUMP);
	if (st == NULL || th.keys == NULL || th.find == NULL || th.add == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, ts->mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)uid + 1);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	struct store_msg m = {.content_id = content_id,
	                      .size = size,
	                      .flags = t->flags,
	                      .keywords = (char *)keywords,
	                      .internal_date = internal_date};
	int64_t thread = 0;
	rc = store_thread_assign(c->db, &th, ts->user_id, content_id, &thread);
	if (rc < 0)
		return rc;
	m.thread_id = (uint64_t)thread;
	sqlite3_randomness(sizeof(m.email_id), &m.email_id);
	rc = entry_insert(c, ts->mailbox_id, uid, modseq, &m);
	if (rc < 0)
		return rc;
	*uid_r = uid;
	store_job_note_change(job, ts->user_id, ts->mailbox_id, modseq, uid + 1, ts->messages + 1);
	return 0;
}

int store_entry_add(struct store_conn *c, struct store_job *job, int64_t mailbox_id,
                    const struct store_msg *m, uint32_t *uid_r)
{
	uint64_t modseq;
	uint32_t uid;
	int rc = store_mailbox_bump(c, mailbox_id, 1, &modseq, &uid);
	if (rc < 0)
		return rc;
	rc = entry_insert(c, mailbox_id, uid, modseq, m);
	if (rc < 0)
		return rc;
	*uid_r = uid;
	return store_mailbox_note(c, job, mailbox_id);
}

/* The first STORE_REPORT_HEAD_MAX bytes of a spooled message, for its report. */
static int head_read(const char *path, bool sealed, unsigned char **head_r, size_t *len_r)
{
	struct store_spool_reader *r;
	uint64_t size;
	int rc = store_spool_open(path, sealed, &r, &size);
	if (rc < 0)
		return rc;
	unsigned char *head = xmalloc(STORE_REPORT_HEAD_MAX);
	size_t len = 0;
	while (len < STORE_REPORT_HEAD_MAX) {
		ssize_t n = store_spool_pread(r, head + len, STORE_REPORT_HEAD_MAX - len, len);
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	store_spool_close(r);
	if (rc < 0) {
		free(head);
		return rc;
	}
	*head_r = head;
	*len_r = len;
	return 0;
}

/* Stores the report msg (store_deliver_report) inside the running delivery job: its own
 * content, to a local INBOX or onto the relay queue. The nested delivery fills a result of
 * its own, so the job's res keeps the outer delivery's (only report_rc is set). */
static int report_store(struct store_conn *c, struct store_job *job, struct store_delivery *j,
                        const char *msg, size_t len)
{
	const struct store_deliver_report *rp = j->req->report;
	struct store_deliver_req rreq = {.data = msg, .size = len, .sender = ""};
	struct store_target target = {0};
	struct store_relay_rcpt rcpt = {0};
	struct store_delivery d = {.req = &rreq};
	int rc;

	if (rp->local) {
		char *norm = NULL;
		struct store_user u;
		if (store_address_normalize(rp->to, &norm) < 0) {
			job->res.report_rc = -ENOENT; /* no such user can exist */
			return 0;
		}
		memset(&u, 0, sizeof(u));
		rc = store_user_load(c, norm, &u);
		free(norm);
		target.user_id = u.id;
		store_user_clear(&u);
		if (rc == -ENOENT) {
			job->res.report_rc = rc;
			return 0;
		}
		if (rc < 0)
			return rc;
		rreq.targets = &target;
		rreq.n_targets = 1;
	} else {
		rcpt.address = rp->to;
		rreq.relay = &rcpt;
		rreq.n_relay = 1;
		/* RFC 8689 5: the report on a REQUIRETLS message travels with REQUIRETLS. */
		rreq.requiretls = j->req->requiretls;
	}
	d.keywords = xcalloc(1, sizeof(*d.keywords));
	d.n_keywords = rreq.n_targets;
	/* Hashing and parsing here, on the writer: the report exists only now. It is small. */
	rc = store_delivery_prepare(job->store, &d);
	if (rc == 0) {
		struct store_backend_result outer = job->res;
		memset(&job->res, 0, sizeof(job->res));
		rc = store_delivery_run(c, job, &d);
		struct store_backend_result inner = job->res;
		job->res = outer;
		store_backend_result_free(&inner);
		/* Refused before the nested delivery's first write: nothing of it to undo. */
		if (rc == -ENOENT || rc == -EDQUOT) {
			job->res.report_rc = rc;
			rc = 0;
		} else if (rc == 0) {
			job->res.report_rc = 0;
		}
	}
	store_delivery_clear(&d);
	return rc;
}

/* Some targets failed while the message is stored elsewhere: the report, if one is wanted,
 * goes in with the copies (store.h, struct store_deliver_report). */
static int report_failures(struct store_conn *c, struct store_job *job, struct store_delivery *j)
{
	const struct store_deliver_req *req = j->req;
	const struct store_deliver_report *rp = req->report;
	bool failed = false;
	for (size_t i = 0; i < req->n_targets; i++)
		failed = failed || job->res.delivered[i].rc < 0;
	if (!failed)
		return 0;
	job->res.report_rc = -ENODATA;
	if (rp->format == NULL || rp->to == NULL || rp->to[0] == '\0')
		return 0;
	struct store_report_input in = {
	    .delivered = job->res.delivered,
	    .n_targets = req->n_targets,
	    .size = j->size,
	};
	unsigned char *head = NULL;
	int rc;
	if (req->spool_path != NULL) {
		rc = head_read(req->spool_path, job->store->opt.spool_sealed, &head, &in.head_len);
		if (rc < 0)
			return rc;
		in.head = head;
	} else {
		in.head = req->data;
		in.head_len = req->size < STORE_REPORT_HEAD_MAX ? req->size : STORE_REPORT_HEAD_MAX;
	}
	in.head_complete = in.head_len == j->size;
	char *msg = NULL;
	size_t len = 0;
	rc = rp->format(rp->ctx, &in, &msg, &len);
	free(head);
	if (rc == 0 && msg != NULL)
		rc = report_store(c, job, j, msg, len);
	free(msg);
	return rc;
}

static int relay_enqueue(struct store_conn *c, struct store_job *job, struct store_delivery *j,
                         int64_t content_id, int64_t now)
{
	const struct store_deliver_req *req = j->req;
	sqlite3_stmt *st = store_stmt(c, SQL_QUEUE_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, content_id);
	store_bind_text(st, 2, req->sender != NULL ? req->sender : "");
	sqlite3_bind_int(st, 3, req->requiretls);
	store_bind_text(st, 4, req->ret);
	store_bind_text(st, 5, req->envid);
	sqlite3_bind_int64(st, 6, now);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	int64_t qid = sqlite3_last_insert_rowid(c->db);
	for (size_t i = 0; i < req->n_relay; i++) {
		st = store_stmt(c, SQL_QUEUE_RCPT_INSERT);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, qid);
		store_bind_text(st, 2, req->relay[i].address);
		store_bind_text(st, 3, req->relay[i].notify);
		store_bind_text(st, 4, req->relay[i].orcpt);
		sqlite3_bind_int64(st, 5, now);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_err(c->db, rc);
	}
	job->res.queue = xcalloc(1, sizeof(*job->res.queue));
	job->res.n_queue = 1;
	job->res.queue[0].id = qid;
	job->res.queue[0].content_id = content_id;
	job->res.queue[0].size = j->size;
	return 0;
}

int store_delivery_run(struct store_conn *c, struct store_job *job, struct store_delivery *j)
{
	const struct store_deliver_req *req = j->req;
	int64_t now = (int64_t)time(NULL);
	int64_t content_id = 0;
	struct target_state ts;
	size_t first = req->n_targets;
	bool over_quota = false;
	int rc;

	j->index_id = 0; /* a run again after a rollback owes nothing from the first */
	job->res.delivered = xcalloc(req->n_targets + 1, sizeof(*job->res.delivered));
	job->res.n_delivered = req->n_targets;
	/* Checks first: when no target can take the message the delivery fails before its
	 * first write (store_job.no_savepoint relies on it). A target over quota or unknown
	 * does not fail the others. */
	for (size_t i = 0; i < req->n_targets; i++) {
		struct store_delivered *d = &job->res.delivered[i];
		memset(&ts, 0, sizeof(ts));
		d->rc = target_load(c, &req->targets[i], j->size, &ts);
		d->mailbox_id = ts.mailbox_id;
		d->uidvalidity = ts.uidvalidity;
		d->quota_bytes = ts.found ? ts.quota : 0;
		d->quota_messages = ts.found ? ts.quota_messages : 0;
		if (d->rc == 0) {
			first = i;
			break;
		}
		if (d->rc != -ENOENT && d->rc != -EDQUOT)
			return d->rc;
		over_quota = over_quota || d->rc == -EDQUOT;
	}
	/* Nothing would refer to the content. The caller answers for every target at once:
	 * tell it whether a quota was the reason. */
	if (first == req->n_targets && req->n_relay == 0)
		return over_quota ? -EDQUOT : -ENOENT;

	rc = content_store(c, j, &content_id);
	if (rc < 0)
		return rc;
	job->res.id = content_id;
	job->res.total_size = j->size;
	for (size_t i = first; i < req->n_targets; i++) {
		struct store_delivered *d = &job->res.delivered[i];
		if (i > first) {
			/* Loaded now: an earlier target may have been the same mailbox. */
			memset(&ts, 0, sizeof(ts));
			d->rc = target_load(c, &req->targets[i], j->size, &ts);
			d->mailbox_id = ts.mailbox_id;
			d->uidvalidity = ts.uidvalidity;
			d->quota_bytes = ts.found ? ts.quota : 0;
			d->quota_messages = ts.found ? ts.quota_messages : 0;
			if (d->rc == -ENOENT || d->rc == -EDQUOT)
				continue;
			if (d->rc < 0)
				return d->rc; /* after a write: the writer rolls it all back */
		}
		d->rc =
		    target_add(c, job, &ts, content_id, j->size, &req->targets[i], j->keywords[i],
		               req->internal_date != 0 ? req->internal_date : now, &d->uid);
		if (d->rc < 0)
			return d->rc; /* disk full, I/O: the whole delivery fails */
	}
	if (req->n_relay > 0) {
		rc = relay_enqueue(c, job, j, content_id, now);
		if (rc < 0)
			return rc;
	}
	return req->report != NULL ? report_failures(c, job, j) : 0;
}

static int deliver_run(struct store_conn *c, struct store_job *job)
{
	return store_delivery_run(c, job, &((struct deliver_job *)job)->d);
}

/* The FTS rows of a group of deliveries go in together: one FTS5 flush per transaction
 * instead of one per delivery. A delivery deletes nothing, as run_deferred requires. */
static int deliver_run_deferred(struct store_conn *c, struct store_job *job)
{
	return store_delivery_index(c, &((struct deliver_job *)job)->d);
}

int sqlite_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                         void *ctx)
{
	struct sqlite_store *s = impl;
	if ((req->data == NULL && req->spool_path == NULL) ||
	    (req->n_targets == 0 && req->n_relay == 0))
		return -EINVAL;
	if (req->spool_path == NULL && req->size > s->opt.max_message_size)
		return -EFBIG;
	for (size_t i = 0; i < req->n_relay; i++)
		if (req->relay[i].address == NULL)
			return -EINVAL;
	char **kw = xcalloc(req->n_targets + 1, sizeof(*kw));
	for (size_t i = 0; i < req->n_targets; i++) {
		if (store_keywords_normalize(req->targets[i].keywords, &kw[i]) < 0) {
			for (size_t k = 0; k < i; k++)
				free(kw[k]);
			free(kw);
			return -EINVAL;
		}
	}
	struct deliver_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, deliver_run, cb, ctx);
	j->job.free_args = deliver_job_free;
	j->job.prepare = deliver_prepare;
	j->job.run_deferred = deliver_run_deferred;
	j->job.no_savepoint = true;
	j->job.adds_mail = true;
	j->d.req = req;
	j->d.defer_index = true;
	j->d.keywords = kw;
	j->d.n_keywords = req->n_targets;
	return store_job_submit(&j->job);
}

/*
 * store_deliver_batch: the messages of one APPEND or MULTIAPPEND in one job, so one
 * transaction and one fsync carry them all, in order, and a refused message takes the
 * others back with it (RFC 3502). The job needs no savepoint: a message refused before
 * the batch's first write has written nothing, and one refused after it has, so the writer
 * rolls the whole transaction back and runs the other jobs again (store_job.no_savepoint).
 */
struct batch_job {
	struct store_job job;
	size_t n;
	size_t prepared; /* d[0..prepared) were prepared on a worker */
	struct store_delivery d[];
};

/* What the prepared messages of a batch may hold (MIME structure, index text: up to
 * STORE_FTS_MAX each) until the writer takes them: a MULTIAPPEND of thousands of large
 * messages is not held whole. The rest are prepared and indexed one by one on the writer. */
#define BATCH_PREPARED_MAX (32u * 1024 * 1024)

static void batch_job_free(struct store_job *job)
{
	struct batch_job *b = (struct batch_job *)job;
	for (size_t i = 0; i < b->n; i++)
		store_delivery_clear(&b->d[i]);
}

static size_t mime_held(const struct store_mime_info *m)
{
	return (m->json != NULL ? strlen(m->json) : 0) + (m->text != NULL ? strlen(m->text) : 0);
}

/* Hash and MIME of the messages, on one worker, within BATCH_PREPARED_MAX. */
static int batch_prepare(struct store_job *job)
{
	struct batch_job *b = (struct batch_job *)job;
	size_t held = 0;
	for (b->prepared = 0; b->prepared < b->n && held < BATCH_PREPARED_MAX; b->prepared++) {
		struct store_delivery *d = &b->d[b->prepared];
		int rc = store_delivery_prepare(job->store, d);
		if (rc < 0)
			return rc;
		held += mime_held(&d->mime);
	}
	return 0;
}

static int batch_run(struct store_conn *c, struct store_job *job)
{
	struct batch_job *b = (struct batch_job *)job;
	struct store_delivered *all = xcalloc(b->n + 1, sizeof(*all));
	int rc = 0;
	for (size_t i = 0; i < b->n && rc == 0; i++) {
		struct store_delivery *d = &b->d[i];
		bool late = i >= b->prepared;
		if (late) {
			store_mime_info_clear(&d->mime); /* from a run rolled back */
			rc = store_delivery_prepare(job->store, d);
			if (rc < 0)
				break;
		}
		rc = store_delivery_run(c, job, d);
		if (rc == 0 && job->res.delivered[0].rc < 0)
			rc = job->res.delivered[0].rc;
		if (rc == 0)
			all[i] = job->res.delivered[0];
		free(job->res.delivered);
		job->res.delivered = NULL;
		if (late) {
			if (rc == 0)
				rc = store_delivery_index(c, d);
			store_mime_info_clear(&d->mime);
		}
	}
	job->res.delivered = all;
	job->res.n_delivered = b->n;
	return rc;
}

static int batch_run_deferred(struct store_conn *c, struct store_job *job)
{
	struct batch_job *b = (struct batch_job *)job;
	for (size_t i = 0; i < b->n; i++) {
		int rc = store_delivery_index(c, &b->d[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sqlite_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                               store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct store_deliver_req *r = &reqs[i];
		if ((r->data == NULL && r->spool_path == NULL) || r->n_targets != 1 ||
		    r->n_relay != 0 || r->report != NULL)
			return -EINVAL;
		if (r->spool_path == NULL && r->size > s->opt.max_message_size)
			return -EFBIG;
	}
	char **kw = xcalloc(n + 1, sizeof(*kw));
	for (size_t i = 0; i < n; i++) {
		if (store_keywords_normalize(reqs[i].targets[0].keywords, &kw[i]) < 0) {
			for (size_t k = 0; k < i; k++)
				free(kw[k]);
			free(kw);
			return -EINVAL;
		}
	}
	struct batch_job *b =
	    store_job_new(sizeof(*b) + n * sizeof(b->d[0]), s, STORE_JOB_WRITE, batch_run, cb, ctx);
	b->job.free_args = batch_job_free;
	b->job.prepare = batch_prepare;
	b->job.run_deferred = batch_run_deferred;
	b->job.no_savepoint = true;
	b->job.adds_mail = true;
	b->n = n;
	for (size_t i = 0; i < n; i++) {
		b->d[i].req = &reqs[i];
		b->d[i].defer_index = true;
		b->d[i].keywords = xcalloc(1, sizeof(*b->d[i].keywords));
		b->d[i].keywords[0] = kw[i];
		b->d[i].n_keywords = 1;
	}
	free(kw);
	return store_job_submit(&b->job);
}
