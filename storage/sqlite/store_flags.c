/*
 * Changes to messages in a mailbox: STORE of flags and keywords (CONDSTORE aware),
 * EXPUNGE (UIDs are never reused: uidnext only grows; expunged UIDs are kept with their
 * modseq for QRESYNC), COPY and MOVE.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

struct flags_job {
	struct store_job job;
	int64_t mailbox_id;
	int64_t dst_mailbox_id;
	struct store_uid_range *ranges;
	size_t n_ranges;
	enum store_flag_mode mode;
	unsigned flags;
	char *keywords; /* normalized; NULL: leave keywords alone (ADD/REMOVE) */
	uint64_t unchanged_since;
	bool move;
	bool any_flags; /* expunge: remove what is in the ranges, \Deleted or not */
};

static void flags_job_free(struct store_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	free(j->ranges);
	free(j->keywords);
}

static struct flags_job *flags_job_new(struct sqlite_store *s, store_job_run_fn *run,
                                       int64_t mailbox_id, const struct store_uid_range *ranges,
                                       size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	struct flags_job *j = store_job_new(sizeof(*j), s, STORE_JOB_WRITE, run, cb, ctx);
	j->job.free_args = flags_job_free;
	j->mailbox_id = mailbox_id;
	if (n_ranges == 0) {
		static const struct store_uid_range all = {1, UINT32_MAX};
		j->ranges = store_ranges_dup(&all, 1);
		j->n_ranges = 1;
	} else {
		j->ranges = store_ranges_dup(ranges, n_ranges);
		j->n_ranges = n_ranges;
	}
	return j;
}

/* The entries of the mailbox in the job's ranges, in UID order per range. */
static int collect(struct store_conn *c, const struct flags_job *j, struct store_msg **msgs_r,
                   size_t *n_r)
{
	struct store_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (size_t r = 0; r < j->n_ranges && rc == 0; r++) {
		sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_RANGE);
		if (st == NULL) {
			rc = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, j->ranges[r].first);
		sqlite3_bind_int64(st, 3, j->ranges[r].last);
		int step;
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap != 0 ? cap * 2 : 32;
				msgs = xreallocarray(msgs, cap, sizeof(*msgs));
			}
			memset(&msgs[n], 0, sizeof(*msgs));
			store_msg_load(st, &msgs[n++]);
		}
		sqlite3_reset(st);
		rc = step == SQLITE_DONE ? 0 : store_err(c->db, step);
	}
	*msgs_r = msgs;
	*n_r = n;
	return rc;
}

static void msgs_free(struct store_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_msg_clear(&msgs[i]);
	free(msgs);
}

static int flags_run(struct store_conn *c, struct store_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	struct store_msg *msgs;
	size_t n, n_changed = 0;
	uint64_t modseq = 0;
	int rc = collect(c, j, &msgs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct store_msg *m = &msgs[i];
		if (j->unchanged_since > 0 && m->modseq > j->unchanged_since) {
			job->res.uids = xreallocarray(job->res.uids, job->res.n_uids + 1,
			                              sizeof(*job->res.uids));
			job->res.uids[job->res.n_uids++] = m->uid;
			continue;
		}
		unsigned nf = j->mode == STORE_FLAGS_SET   ? j->flags
		              : j->mode == STORE_FLAGS_ADD ? (m->flags | j->flags)
		                                           : (m->flags & ~j->flags);
		char *nk;
		if (j->mode == STORE_FLAGS_SET)
			nk = xstrdup(j->keywords != NULL ? j->keywords : "");
		else if (j->keywords != NULL)
			nk = store_keywords_apply(m->keywords, j->keywords, j->mode);
		else
			nk = xstrdup(m->keywords);
		if (nf == m->flags && strcmp(nk, m->keywords) == 0) {
			free(nk);
			continue;
		}
		/* One modseq for the whole STORE (RFC 7162 allows it), taken at the first
		 * real change. */
		if (modseq == 0)
			rc = store_mailbox_bump(c, j->mailbox_id, 0, &modseq, NULL);
		sqlite3_stmt *st = rc == 0 ? store_stmt(c, SQL_ENTRY_SET_FLAGS) : NULL;
		if (st == NULL) {
			free(nk);
			rc = rc < 0 ? rc : -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, j->mailbox_id);
		sqlite3_bind_int64(st, 2, m->uid);
		sqlite3_bind_int(st, 3, (int)nf);
		store_bind_text(st, 4, nk);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)modseq);
		int step = sqlite3_step(st);
		sqlite3_reset(st);
		rc = step == SQLITE_DONE ? 0 : store_err(c->db, step);
		m->flags = nf;
		free(m->keywords);
		m->keywords = nk;
		m->modseq = modseq;
		/* Keep changed messages at the front: they are the result. */
		if (n_changed != i) {
			struct store_msg tmp = msgs[n_changed];
			msgs[n_changed] = *m;
			*m = tmp;
		}
		n_changed++;
	}
	if (rc == 0 && n_changed > 0)
		rc = store_mailbox_note(c, job, j->mailbox_id);
	if (rc < 0) {
		msgs_free(msgs, n);
		return rc;
	}
	for (size_t i = n_changed; i < n; i++)
		store_msg_clear(&msgs[i]);
	job->res.msgs = msgs;
	job->res.n_msgs = n_changed;
	job->res.modseq = modseq;
	return 0;
}

int sqlite_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                             size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                             const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	char *kw = NULL;
	if (n_ranges == 0 || (flags & ~0x1fu) != 0)
		return -EINVAL;
	if (keywords != NULL && store_keywords_normalize(keywords, &kw) < 0)
		return -EINVAL;
	struct flags_job *j = flags_job_new(s, flags_run, mailbox_id, ranges, n_ranges, cb, ctx);
	j->mode = mode;
	j->flags = flags;
	j->keywords = kw;
	j->unchanged_since = unchanged_since;
	return store_job_submit(&j->job);
}

/* Deletes one entry and remembers its UID as expunged at modseq. */
static int entry_remove(struct store_conn *c, int64_t mailbox_id, uint32_t uid, uint64_t modseq)
{
	sqlite3_stmt *st = store_stmt(c, SQL_ENTRY_DELETE);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_err(c->db, rc);
	st = store_stmt(c, SQL_EXPUNGED_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

static int expunge_run(struct store_conn *c, struct store_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	struct store_msg *msgs;
	size_t n;
	uint64_t modseq = 0;
	int rc = collect(c, j, &msgs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!j->any_flags && (msgs[i].flags & STORE_DELETED) == 0)
			continue;
		if (modseq == 0)
			rc = store_mailbox_bump(c, j->mailbox_id, 0, &modseq, NULL);
		if (rc == 0)
			rc = entry_remove(c, j->mailbox_id, msgs[i].uid, modseq);
		if (rc == 0) {
			job->res.uids = xreallocarray(job->res.uids, job->res.n_uids + 1,
			                              sizeof(*job->res.uids));
			job->res.uids[job->res.n_uids++] = msgs[i].uid;
		}
	}
	msgs_free(msgs, n);
	if (rc == 0 && modseq != 0)
		rc = store_mailbox_note(c, job, j->mailbox_id);
	job->res.modseq = modseq;
	return rc;
}

int sqlite_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                         size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct flags_job *j = flags_job_new(s, expunge_run, mailbox_id, ranges, n_ranges, cb, ctx);
	return store_job_submit(&j->job);
}

int sqlite_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                        size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	if (n_ranges == 0)
		return -EINVAL;
	struct flags_job *j = flags_job_new(s, expunge_run, mailbox_id, ranges, n_ranges, cb, ctx);
	j->any_flags = true;
	return store_job_submit(&j->job);
}

static int mailbox_owner(struct store_conn *c, int64_t mailbox_id, int64_t *user_r,
                         uint32_t *uidvalidity_r)
{
	sqlite3_stmt *st = store_stmt(c, SQL_MAILBOX_BY_ID);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*user_r = sqlite3_column_int64(st, 1);
		*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 5);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : store_err(c->db, rc);
	}
	sqlite3_reset(st);
	return rc;
}

/* COPY / MOVE of j's ranges inside the running write job; results in job->res. */
static int copy_entries(struct store_conn *c, struct store_job *job, const struct flags_job *j)
{
	int64_t src_user, dst_user;
	uint32_t src_uv, dst_uv;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	uint64_t modseq = 0, total = 0;
	int rc = mailbox_owner(c, j->mailbox_id, &src_user, &src_uv);
	if (rc == 0)
		rc = mailbox_owner(c, j->dst_mailbox_id, &dst_user, &dst_uv);
	if (rc == 0 && src_user != dst_user)
		rc = -EINVAL;
	/* Collected before anything is added, so a copy into the source mailbox (RFC 6851
	 * allows a MOVE there too) takes only the entries that were there: the new ones get
	 * new UIDs and are not copied again. */
	if (rc == 0)
		rc = collect(c, j, &msgs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		total += msgs[i].size;
	/* A MOVE stays within one user: neither its bytes nor its count change. */
	if (rc == 0 && !j->move && n > 0) {
		sqlite3_stmt *st = store_stmt(c, SQL_QUOTA_CHECK);
		if (st == NULL) {
			rc = -EIO;
		} else {
			sqlite3_bind_int64(st, 1, dst_user);
			if (sqlite3_step(st) == SQLITE_ROW) {
				uint64_t quota = (uint64_t)sqlite3_column_int64(st, 0);
				uint64_t used = (uint64_t)sqlite3_column_int64(st, 1);
				uint64_t quota_msgs = (uint64_t)sqlite3_column_int64(st, 2);
				uint64_t used_msgs = (uint64_t)sqlite3_column_int64(st, 3);
				if (quota != 0 && used + total > quota)
					rc = -EDQUOT;
				if (quota_msgs != 0 && used_msgs + n > quota_msgs)
					rc = -EDQUOT;
			}
			sqlite3_reset(st);
		}
	}
	if (rc == 0 && n > 0) {
		job->res.uids = xcalloc(n, sizeof(*job->res.uids));
		job->res.uids2 = xcalloc(n, sizeof(*job->res.uids2));
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct store_msg *m = &msgs[i];
		uint32_t uid;
		rc = store_entry_add(c, job, j->dst_mailbox_id, m, &uid);
		if (rc == 0 && j->move) {
			if (modseq == 0)
				rc = store_mailbox_bump(c, j->mailbox_id, 0, &modseq, NULL);
			if (rc == 0)
				rc = entry_remove(c, j->mailbox_id, m->uid, modseq);
		}
		if (rc == 0) {
			job->res.uids[job->res.n_uids++] = m->uid;
			job->res.uids2[i] = uid;
		}
	}
	msgs_free(msgs, n);
	if (rc == 0 && modseq != 0)
		rc = store_mailbox_note(c, job, j->mailbox_id);
	job->res.uidvalidity = dst_uv;
	return rc;
}

static int copy_run(struct store_conn *c, struct store_job *job)
{
	return copy_entries(c, job, (struct flags_job *)job);
}

int store_entries_move_all(struct store_conn *c, struct store_job *job, int64_t src_mailbox_id,
                           int64_t dst_mailbox_id)
{
	struct store_uid_range all = {1, UINT32_MAX};
	struct flags_job j = {.mailbox_id = src_mailbox_id,
	                      .dst_mailbox_id = dst_mailbox_id,
	                      .ranges = &all,
	                      .n_ranges = 1,
	                      .move = true};
	return copy_entries(c, job, &j);
}

int sqlite_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                      size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                      void *ctx)
{
	struct sqlite_store *s = impl;
	if (n_ranges == 0)
		return -EINVAL;
	struct flags_job *j = flags_job_new(s, copy_run, src_mailbox_id, ranges, n_ranges, cb, ctx);
	j->dst_mailbox_id = dst_mailbox_id;
	j->move = move;
	j->job.adds_mail = !move; /* a MOVE adds no bytes: content is stored once */
	return store_job_submit(&j->job);
}
