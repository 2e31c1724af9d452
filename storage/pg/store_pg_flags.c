/*
 * Changes to messages of a mailbox on PostgreSQL: STORE of flags and keywords (CONDSTORE
 * aware) and EXPUNGE / remove (UIDs never reused; expunged UIDs kept with their modseq for
 * QRESYNC). The mailbox row is locked first (an expunge locks its user's row before it, as
 * a delivery does), then the entries in the ranges: another front end's change to the
 * same messages waits, and the one modseq taken is the mailbox's next.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/pg/store_pg_private.h"

struct flags_job {
	struct pg_job job;
	int64_t mailbox_id;
	struct store_uid_range *ranges;
	size_t n_ranges;
	enum store_flag_mode mode;
	unsigned flags;
	char *keywords; /* normalized; NULL: leave keywords alone (ADD/REMOVE) */
	uint64_t unchanged_since;
	bool any_flags;         /* remove: whatever the flags */
	int64_t dst_mailbox_id; /* copy */
	bool move;
};

static void flags_job_free(struct pg_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	free(j->ranges);
	free(j->keywords);
}

static struct flags_job *flags_job_new(struct pg_store *s, pg_job_run_fn *run, int64_t mailbox_id,
                                       const struct store_uid_range *ranges, size_t n_ranges,
                                       store_backend_cb *cb, void *ctx)
{
	static const struct store_uid_range all = {1, UINT32_MAX};
	struct flags_job *j = pg_job_new(sizeof(*j), s, PG_JOB_WRITE, run, cb, ctx);
	j->job.free_args = flags_job_free;
	j->mailbox_id = mailbox_id;
	if (n_ranges == 0) {
		ranges = &all;
		n_ranges = 1;
	}
	j->ranges = xreallocarray(NULL, n_ranges, sizeof(*ranges));
	memcpy(j->ranges, ranges, n_ranges * sizeof(*ranges));
	j->n_ranges = n_ranges;
	return j;
}

/* Locks the mailbox's row (and first its user's with lock_user): 0, or -ENOENT. */
static int lock_mailbox(struct pg_conn *c, int64_t mailbox_id, bool lock_user)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, mailbox_id);
	if (lock_user) {
		PGresult *r = pg_run(c, PGSQL_TARGET_MAILBOX, &p, &rc);
		if (r == NULL)
			return rc;
		int64_t user = PQntuples(r) == 1 ? pg_i64(r, 0, 1) : 0;
		PQclear(r);
		if (user == 0)
			return -ENOENT;
		struct pg_params pu = {0};
		pg_p_i64(&pu, user);
		r = pg_run(c, PGSQL_TARGET_LOCK_USER, &pu, &rc);
		if (r == NULL)
			return rc;
		PQclear(r);
	}
	PGresult *r = pg_run(c, PGSQL_TARGET_LOCK_MAILBOX, &p, &rc);
	if (r == NULL)
		return rc;
	rc = PQntuples(r) == 1 ? 0 : -ENOENT;
	PQclear(r);
	return rc;
}

/* The entries of the mailbox in the job's ranges, locked, in UID order per range. */
static int collect(struct pg_conn *c, const struct flags_job *j, struct store_msg **msgs_r,
                   size_t *n_r)
{
	struct store_msg *msgs = NULL;
	size_t n = 0;
	int rc = 0;
	for (size_t k = 0; k < j->n_ranges && rc == 0; k++) {
		struct pg_params p = {0};
		pg_p_i64(&p, j->mailbox_id);
		pg_p_i64(&p, j->ranges[k].first);
		pg_p_i64(&p, j->ranges[k].last);
		PGresult *r = pg_run(c, PGSQL_ENTRY_RANGE, &p, &rc);
		if (r == NULL)
			break;
		size_t got = (size_t)PQntuples(r);
		msgs = xreallocarray(msgs, n + got + 1, sizeof(*msgs));
		for (size_t i = 0; i < got; i++) {
			memset(&msgs[n], 0, sizeof(*msgs));
			pg_entry_from_row(r, (int)i, &msgs[n++]);
		}
		PQclear(r);
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

static int bump(struct pg_conn *c, int64_t mailbox_id, uint64_t *modseq_r)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, mailbox_id);
	pg_p_i64(&p, 0);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_BUMP, &p, &rc);
	if (r == NULL)
		return rc;
	*modseq_r = (uint64_t)pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

static int flags_run(struct pg_conn *c, struct pg_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	struct store_msg *msgs = NULL;
	size_t n = 0, n_changed = 0;
	uint64_t modseq = 0;
	int rc = lock_mailbox(c, j->mailbox_id, false);
	if (rc == -ENOENT)
		return 0; /* nothing there to change, as SQLite answers */
	if (rc == 0)
		rc = collect(c, j, &msgs, &n);
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
		/* One modseq for the whole STORE (RFC 7162 allows it), at the first change. */
		if (modseq == 0)
			rc = bump(c, j->mailbox_id, &modseq);
		if (rc == 0) {
			struct pg_params p = {0};
			pg_p_i64(&p, j->mailbox_id);
			pg_p_i64(&p, m->uid);
			pg_p_i64(&p, nf);
			pg_p_text(&p, nk);
			pg_p_i64(&p, (int64_t)modseq);
			rc = pg_run_cmd(c, PGSQL_ENTRY_SET_FLAGS, &p, NULL);
		}
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
		rc = pg_mailbox_note(c, job, j->mailbox_id);
	if (rc < 0) {
		msgs_free(msgs, n);
		return rc;
	}
	for (size_t i = n_changed; i < n; i++)
		store_msg_clear(&msgs[i]);
	if (n_changed == 0) {
		free(msgs);
		msgs = NULL;
	}
	job->res.msgs = msgs;
	job->res.n_msgs = n_changed;
	job->res.modseq = modseq;
	return 0;
}

int pg_store_flags_store(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                         size_t n_ranges, enum store_flag_mode mode, unsigned flags,
                         const char *keywords, uint64_t unchanged_since, store_backend_cb *cb,
                         void *ctx)
{
	char *kw = NULL;
	if (n_ranges == 0 || (flags & ~0x1fu) != 0 || unchanged_since > INT64_MAX)
		return -EINVAL;
	if (keywords != NULL && store_keywords_normalize(keywords, &kw) < 0)
		return -EINVAL;
	struct flags_job *j = flags_job_new(impl, flags_run, mailbox_id, ranges, n_ranges, cb, ctx);
	j->mode = mode;
	j->flags = flags;
	j->keywords = kw;
	j->unchanged_since = unchanged_since;
	return pg_job_submit(&j->job);
}

static int expunge_run(struct pg_conn *c, struct pg_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	uint64_t modseq = 0;
	int rc = lock_mailbox(c, j->mailbox_id, true);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = collect(c, j, &msgs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!j->any_flags && (msgs[i].flags & STORE_DELETED) == 0)
			continue;
		if (modseq == 0)
			rc = bump(c, j->mailbox_id, &modseq);
		struct pg_params p = {0};
		pg_p_i64(&p, j->mailbox_id);
		pg_p_i64(&p, msgs[i].uid);
		if (rc == 0)
			rc = pg_run_cmd(c, PGSQL_ENTRY_DELETE, &p, NULL);
		pg_p_i64(&p, (int64_t)modseq);
		if (rc == 0)
			rc = pg_run_cmd(c, PGSQL_EXPUNGED_INSERT, &p, NULL);
		if (rc == 0) {
			job->res.uids = xreallocarray(job->res.uids, job->res.n_uids + 1,
			                              sizeof(*job->res.uids));
			job->res.uids[job->res.n_uids++] = msgs[i].uid;
		}
	}
	msgs_free(msgs, n);
	if (rc == 0 && modseq != 0)
		rc = pg_mailbox_note(c, job, j->mailbox_id);
	job->res.modseq = modseq;
	return rc;
}

int pg_store_expunge(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                     size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	struct flags_job *j =
	    flags_job_new(impl, expunge_run, mailbox_id, ranges, n_ranges, cb, ctx);
	return pg_job_submit(&j->job);
}

int pg_store_remove(void *impl, int64_t mailbox_id, const struct store_uid_range *ranges,
                    size_t n_ranges, store_backend_cb *cb, void *ctx)
{
	if (n_ranges == 0)
		return -EINVAL;
	struct flags_job *j =
	    flags_job_new(impl, expunge_run, mailbox_id, ranges, n_ranges, cb, ctx);
	j->any_flags = true;
	return pg_job_submit(&j->job);
}

/* The mailbox's user and UIDVALIDITY: 0 or -ENOENT. */
static int mailbox_owner(struct pg_conn *c, int64_t mailbox_id, int64_t *user_r,
                         uint32_t *uidvalidity_r)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, mailbox_id);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_STATE, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) == 1) {
		*user_r = pg_i64(r, 0, 0);
		*uidvalidity_r = (uint32_t)pg_i64(r, 0, 4);
	} else {
		rc = -ENOENT;
	}
	PQclear(r);
	return rc;
}

/* One new entry of m in mailbox_id with its next UID (EMAILID and THREADID kept). */
static int entry_add(struct pg_conn *c, int64_t mailbox_id, const struct store_msg *m,
                     uint32_t *uid_r)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, mailbox_id);
	pg_p_i64(&p, 1);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_BUMP, &p, &rc);
	if (r == NULL)
		return rc;
	uint64_t modseq = (uint64_t)pg_i64(r, 0, 0);
	int64_t uid = pg_i64(r, 0, 1) - 1;
	PQclear(r);
	if (uid >= UINT32_MAX)
		return -EFBIG;
	struct pg_params e = {0};
	pg_p_i64(&e, mailbox_id);
	pg_p_i64(&e, uid);
	pg_p_i64(&e, m->content_id);
	pg_p_i64(&e, (int64_t)modseq);
	pg_p_i64(&e, m->flags);
	pg_p_text(&e, m->keywords != NULL ? m->keywords : "");
	pg_p_i64(&e, m->internal_date);
	pg_p_i64(&e, (int64_t)m->size);
	pg_p_i64(&e, (int64_t)m->email_id);
	pg_p_i64(&e, (int64_t)m->thread_id);
	pg_p_i64(&e, (int64_t)time(NULL));
	rc = pg_run_cmd(c, PGSQL_ENTRY_INSERT, &e, NULL);
	*uid_r = (uint32_t)uid;
	return rc;
}

/* COPY / MOVE: the user's row, then both mailbox rows in id order, then the source
 * entries are locked before anything is added. */
static int copy_run(struct pg_conn *c, struct pg_job *job)
{
	struct flags_job *j = (struct flags_job *)job;
	int64_t src_user = 0, dst_user = 0;
	uint32_t src_uv = 0, dst_uv = 0;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	uint64_t modseq = 0, total = 0;
	int rc = mailbox_owner(c, j->mailbox_id, &src_user, &src_uv);
	if (rc == 0)
		rc = mailbox_owner(c, j->dst_mailbox_id, &dst_user, &dst_uv);
	if (rc == 0 && src_user != dst_user)
		rc = -EINVAL;
	uint64_t quota = 0, used = 0, quota_msgs = 0, used_msgs = 0;
	if (rc == 0) {
		struct pg_params pu = {0};
		pg_p_i64(&pu, src_user);
		PGresult *r = pg_run(c, PGSQL_TARGET_LOCK_USER, &pu, &rc);
		if (r != NULL && PQntuples(r) == 1) {
			quota = (uint64_t)pg_i64(r, 0, 0);
			used = (uint64_t)pg_i64(r, 0, 1);
			quota_msgs = (uint64_t)pg_i64(r, 0, 2);
			used_msgs = (uint64_t)pg_i64(r, 0, 3);
		}
		PQclear(r);
	}
	int64_t lo = j->mailbox_id < j->dst_mailbox_id ? j->mailbox_id : j->dst_mailbox_id;
	int64_t hi = j->mailbox_id < j->dst_mailbox_id ? j->dst_mailbox_id : j->mailbox_id;
	if (rc == 0)
		rc = lock_mailbox(c, lo, false);
	if (rc == 0 && hi != lo)
		rc = lock_mailbox(c, hi, false);
	/* Collected before anything is added, so a copy into the source mailbox (RFC 6851
	 * allows a MOVE there too) takes only the entries that were there. */
	if (rc == 0)
		rc = collect(c, j, &msgs, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		total += msgs[i].size;
	/* A MOVE stays within one user: neither its bytes nor its count change. */
	if (rc == 0 && !j->move && n > 0) {
		if ((quota != 0 && used + total > quota) ||
		    (quota_msgs != 0 && used_msgs + n > quota_msgs))
			rc = -EDQUOT;
	}
	if (rc == 0 && n > 0) {
		job->res.uids = xcalloc(n, sizeof(*job->res.uids));
		job->res.uids2 = xcalloc(n, sizeof(*job->res.uids2));
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct store_msg *m = &msgs[i];
		uint32_t uid = 0;
		rc = entry_add(c, j->dst_mailbox_id, m, &uid);
		if (rc == 0 && j->move) {
			if (modseq == 0)
				rc = bump(c, j->mailbox_id, &modseq);
			struct pg_params p = {0};
			pg_p_i64(&p, j->mailbox_id);
			pg_p_i64(&p, m->uid);
			if (rc == 0)
				rc = pg_run_cmd(c, PGSQL_ENTRY_DELETE, &p, NULL);
			pg_p_i64(&p, (int64_t)modseq);
			if (rc == 0)
				rc = pg_run_cmd(c, PGSQL_EXPUNGED_INSERT, &p, NULL);
		}
		if (rc == 0) {
			job->res.uids[job->res.n_uids++] = m->uid;
			job->res.uids2[i] = uid;
		}
	}
	msgs_free(msgs, n);
	if (rc == 0 && n > 0)
		rc = pg_mailbox_note(c, job, j->dst_mailbox_id);
	if (rc == 0 && modseq != 0)
		rc = pg_mailbox_note(c, job, j->mailbox_id);
	job->res.uidvalidity = dst_uv;
	return rc;
}

int pg_entries_move_all(struct pg_conn *c, struct pg_job *job, int64_t src_mailbox_id,
                        int64_t dst_mailbox_id)
{
	struct store_uid_range all = {1, UINT32_MAX};
	struct flags_job j = {.job = *job,
	                      .mailbox_id = src_mailbox_id,
	                      .dst_mailbox_id = dst_mailbox_id,
	                      .ranges = &all,
	                      .n_ranges = 1,
	                      .move = true};
	int rc = copy_run(c, &j.job);
	/* The result and changes were made in the copy of job: hand them back. */
	job->res = j.job.res;
	job->changes = j.job.changes;
	job->n_changes = j.job.n_changes;
	return rc;
}

int pg_store_copy(void *impl, int64_t src_mailbox_id, const struct store_uid_range *ranges,
                  size_t n_ranges, int64_t dst_mailbox_id, bool move, store_backend_cb *cb,
                  void *ctx)
{
	if (n_ranges == 0)
		return -EINVAL;
	struct flags_job *j =
	    flags_job_new(impl, copy_run, src_mailbox_id, ranges, n_ranges, cb, ctx);
	j->dst_mailbox_id = dst_mailbox_id;
	j->move = move;
	return pg_job_submit(&j->job);
}
