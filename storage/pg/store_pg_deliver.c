/*
 * Delivery on PostgreSQL: one message into N mailboxes in one job of the writer's
 * transaction. The slow half (SHA-256, MIME parsing, reading a spool file) runs on a
 * worker. On the writer each target's user row and then its mailbox row are locked
 * (docs/postgresql.md): the quota check, the UID and the modseq taken stay true until
 * COMMIT even with other front ends delivering to the same user. The content row is
 * shared by SHA-256 and referenced by the entries (triggers keep refs and counts).
 * Relaying and failure reports are not done yet (-ENOTSUP at submit).
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
#include "storage/pg/store_pg_private.h"

#define PG_MAX_MESSAGE_DEFAULT (50u * 1024 * 1024)

/* One message of a delivery, prepared on a worker. */
struct pg_delivery {
	const struct store_deliver_req *req;
	unsigned char *file; /* the spool file's bytes, when spooled */
	const void *data;
	uint64_t size;
	unsigned char sha256[32];
	struct store_mime_info mime;
	char **keywords; /* per target, normalized */
	size_t n_keywords;
};

struct deliver_job {
	struct pg_job job;
	struct pg_delivery *d;
	size_t n; /* messages: 1, or a batch's */
	bool batch;
};

static void delivery_clear(struct pg_delivery *d)
{
	free(d->file);
	store_mime_info_clear(&d->mime);
	/* Not through req: it may be gone once the callback was queued. */
	for (size_t i = 0; i < d->n_keywords; i++)
		free(d->keywords[i]);
	free(d->keywords);
}

static void deliver_job_free(struct pg_job *job)
{
	struct deliver_job *j = (struct deliver_job *)job;
	for (size_t i = 0; i < j->n; i++)
		delivery_clear(&j->d[i]);
	free(j->d);
}

/* The whole spool file, at most max bytes (-EFBIG past it). */
static int file_read(const char *path, uint64_t max, unsigned char **data_r, uint64_t *size_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -EIO;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -EIO;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	unsigned char *buf = xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			free(buf);
			close(fd);
			return -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	*data_r = buf;
	*size_r = got;
	return 0;
}

static int delivery_prepare(struct pg_store *s, struct pg_delivery *d)
{
	uint64_t max =
	    s->opt.max_message_size != 0 ? s->opt.max_message_size : PG_MAX_MESSAGE_DEFAULT;
	int rc;
	if (d->req->spool_path != NULL) {
		rc = file_read(d->req->spool_path, max, &d->file, &d->size);
		if (rc < 0)
			return rc;
		d->data = d->file;
	} else {
		if (d->req->size > max)
			return -EFBIG;
		d->data = d->req->data;
		d->size = d->req->size;
	}
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, d->data, (size_t)d->size, d->sha256) < 0)
		return -EIO;
	return store_mime_parse_mem(d->data, (size_t)d->size, &d->mime);
}

static int deliver_prepare(struct pg_job *job)
{
	struct deliver_job *j = (struct deliver_job *)job;
	for (size_t i = 0; i < j->n; i++) {
		int rc = delivery_prepare(job->s, &j->d[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The content row of d: found by SHA-256 or inserted with its preview. */
static int content_store(struct pg_conn *c, struct pg_delivery *d, int64_t *id_r)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct pg_params p = {0};
		int rc;
		pg_p_bytes(&p, d->sha256, sizeof(d->sha256));
		pg_p_i64(&p, (int64_t)d->size);
		pg_p_bytes(&p, d->data, (size_t)d->size);
		pg_p_text(&p, d->mime.json);
		pg_p_text(&p, d->mime.from);
		pg_p_text(&p, d->mime.to);
		pg_p_text(&p, d->mime.cc);
		pg_p_text(&p, d->mime.subject);
		pg_p_text(&p, d->mime.message_id);
		pg_p_i64(&p, d->mime.date);
		PGresult *r = pg_run(c, PGSQL_CONTENT_INSERT, &p, &rc);
		if (r == NULL)
			return rc;
		bool inserted = PQntuples(r) == 1;
		if (inserted)
			*id_r = pg_i64(r, 0, 0);
		PQclear(r);
		if (inserted) {
			if (d->mime.preview == NULL)
				return 0;
			struct pg_params pp = {0};
			pg_p_i64(&pp, *id_r);
			pg_p_text(&pp, d->mime.preview);
			return pg_run_cmd(c, PGSQL_PREVIEW_INSERT, &pp, NULL);
		}
		struct pg_params f = {0};
		pg_p_bytes(&f, d->sha256, sizeof(d->sha256));
		r = pg_run(c, PGSQL_CONTENT_FIND, &f, &rc);
		if (r == NULL)
			return rc;
		bool found = PQntuples(r) == 1;
		if (found)
			*id_r = pg_i64(r, 0, 0);
		PQclear(r);
		if (found)
			return 0;
		/* Its last reference went in between: insert it again. */
	}
	return -EAGAIN;
}

/* A target as a delivery finds it, its user and mailbox rows locked. */
struct target_state {
	int64_t mailbox_id, user_id;
	uint32_t uidvalidity;
	uint64_t uidnext, modseq, messages;
	uint64_t quota, used, quota_messages, used_messages;
	bool found;
};

static int target_load(struct pg_conn *c, const struct store_target *t, uint64_t size,
                       struct target_state *ts)
{
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, t->mailbox_id != 0 ? t->mailbox_id : t->user_id);
	PGresult *r =
	    pg_run(c, t->mailbox_id != 0 ? PGSQL_TARGET_MAILBOX : PGSQL_TARGET_INBOX, &p, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	ts->mailbox_id = pg_i64(r, 0, 0);
	ts->user_id = pg_i64(r, 0, 1);
	PQclear(r);
	if (t->user_id != 0 && ts->user_id != t->user_id)
		return -ENOENT;
	struct pg_params pu = {0};
	pg_p_i64(&pu, ts->user_id);
	r = pg_run(c, PGSQL_TARGET_LOCK_USER, &pu, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	ts->quota = (uint64_t)pg_i64(r, 0, 0);
	ts->used = (uint64_t)pg_i64(r, 0, 1);
	ts->quota_messages = (uint64_t)pg_i64(r, 0, 2);
	ts->used_messages = (uint64_t)pg_i64(r, 0, 3);
	PQclear(r);
	struct pg_params pm = {0};
	pg_p_i64(&pm, ts->mailbox_id);
	r = pg_run(c, PGSQL_TARGET_LOCK_MAILBOX, &pm, &rc);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT; /* deleted since by another front end */
	}
	ts->uidvalidity = (uint32_t)pg_i64(r, 0, 0);
	ts->uidnext = (uint64_t)pg_i64(r, 0, 1);
	ts->modseq = (uint64_t)pg_i64(r, 0, 2);
	ts->messages = (uint64_t)pg_i64(r, 0, 3);
	PQclear(r);
	ts->found = true;
	if (ts->quota != 0 && ts->used + size > ts->quota)
		return -EDQUOT;
	if (ts->quota_messages != 0 && ts->used_messages >= ts->quota_messages)
		return -EDQUOT;
	return ts->uidnext >= UINT32_MAX ? -EFBIG : 0;
}

static uint64_t random_id(void)
{
	uint64_t v = 0;
	gnutls_rnd(GNUTLS_RND_NONCE, &v, sizeof(v));
	return v >> 1; /* bigint: positive */
}

/* The entry in a locked target: its next UID and modseq, taken with the row's lock. */
static int target_add(struct pg_conn *c, struct pg_job *job, const struct target_state *ts,
                      int64_t content_id, const struct pg_delivery *d, size_t ti, uint32_t *uid_r)
{
	const struct store_target *t = &d->req->targets[ti];
	struct pg_params p = {0};
	int rc;
	pg_p_i64(&p, ts->mailbox_id);
	pg_p_i64(&p, 1);
	PGresult *r = pg_run(c, PGSQL_MAILBOX_BUMP, &p, &rc);
	if (r == NULL)
		return rc;
	uint64_t modseq = (uint64_t)pg_i64(r, 0, 0);
	uint32_t uid = (uint32_t)(pg_i64(r, 0, 1) - 1);
	PQclear(r);
	int64_t internal = d->req->internal_date != 0 ? d->req->internal_date : (int64_t)time(NULL);
	/* THREADID: a thread per message until thread linking comes (docs/postgresql.md). */
	uint64_t email = random_id();
	struct pg_params e = {0};
	pg_p_i64(&e, ts->mailbox_id);
	pg_p_i64(&e, uid);
	pg_p_i64(&e, content_id);
	pg_p_i64(&e, (int64_t)modseq);
	pg_p_i64(&e, t->flags);
	pg_p_text(&e, d->keywords[ti] != NULL ? d->keywords[ti] : "");
	pg_p_i64(&e, internal);
	pg_p_i64(&e, (int64_t)d->size);
	pg_p_i64(&e, (int64_t)email);
	pg_p_i64(&e, (int64_t)random_id());
	pg_p_i64(&e, (int64_t)time(NULL));
	rc = pg_run_cmd(c, PGSQL_ENTRY_INSERT, &e, NULL);
	if (rc < 0)
		return rc;
	*uid_r = uid;
	(void)modseq;
	/* Read back: the same mailbox may be a target twice. */
	return pg_mailbox_note(c, job, ts->mailbox_id);
}

/* Delivers d into its targets; writes job->res.delivered[first..first + n_targets).
 * all_or_none: any target failing fails the delivery (a batch). */
static int delivery_run(struct pg_conn *c, struct pg_job *job, struct pg_delivery *d, size_t first,
                        bool all_or_none)
{
	const struct store_deliver_req *req = d->req;
	struct target_state *ts = xcalloc(req->n_targets, sizeof(*ts));
	bool any = false, over_quota = false;
	int rc = 0;
	for (size_t i = 0; i < req->n_targets; i++) {
		struct store_delivered *dv = &job->res.delivered[first + i];
		dv->rc = target_load(c, &req->targets[i], d->size, &ts[i]);
		dv->mailbox_id = ts[i].mailbox_id;
		dv->uidvalidity = ts[i].uidvalidity;
		dv->quota_bytes = ts[i].found ? ts[i].quota : 0;
		dv->quota_messages = ts[i].found ? ts[i].quota_messages : 0;
		if (dv->rc != 0 && dv->rc != -ENOENT && dv->rc != -EDQUOT) {
			rc = dv->rc;
			goto out;
		}
		if (dv->rc != 0 && all_or_none) {
			rc = dv->rc;
			goto out;
		}
		over_quota = over_quota || dv->rc == -EDQUOT;
		any = any || dv->rc == 0;
	}
	if (!any) {
		rc = over_quota ? -EDQUOT : -ENOENT;
		goto out;
	}
	int64_t content_id = 0;
	rc = content_store(c, d, &content_id);
	if (rc < 0)
		goto out;
	job->res.id = content_id;
	job->res.total_size = d->size;
	for (size_t i = 0; i < req->n_targets; i++) {
		struct store_delivered *dv = &job->res.delivered[first + i];
		if (dv->rc != 0)
			continue;
		rc = target_add(c, job, &ts[i], content_id, d, i, &dv->uid);
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	free(ts);
	return rc;
}

static int deliver_run(struct pg_conn *c, struct pg_job *job)
{
	struct deliver_job *j = (struct deliver_job *)job;
	size_t total = 0;
	for (size_t i = 0; i < j->n; i++)
		total += j->d[i].req->n_targets;
	/* Run again after a deadlock: start from an empty result. */
	store_backend_result_free(&job->res);
	free(job->changes);
	job->changes = NULL;
	job->n_changes = 0;
	job->res.delivered = xcalloc(total, sizeof(*job->res.delivered));
	job->res.n_delivered = total;
	size_t first = 0;
	uint64_t size = 0;
	for (size_t i = 0; i < j->n; i++) {
		int rc = delivery_run(c, job, &j->d[i], first, j->batch);
		if (rc < 0)
			return rc;
		first += j->d[i].req->n_targets;
		size += j->d[i].size;
	}
	if (j->batch)
		job->res.total_size = size;
	job->res.report_rc = -ENODATA;
	return 0;
}

static int delivery_init(struct pg_delivery *d, const struct store_deliver_req *req)
{
	d->req = req;
	if ((req->data == NULL) == (req->spool_path == NULL) && req->size != 0)
		return -EINVAL;
	if (req->n_targets == 0)
		return -EINVAL;
	d->keywords = xcalloc(req->n_targets, sizeof(*d->keywords));
	d->n_keywords = req->n_targets;
	for (size_t i = 0; i < req->n_targets; i++)
		if (store_keywords_normalize(req->targets[i].keywords, &d->keywords[i]) < 0)
			return -EINVAL;
	return 0;
}

static int submit(struct pg_store *s, const struct store_deliver_req *reqs, size_t n, bool batch,
                  store_backend_cb *cb, void *ctx)
{
	struct deliver_job *j = pg_job_new(sizeof(*j), s, PG_JOB_WRITE, deliver_run, cb, ctx);
	j->job.free_args = deliver_job_free;
	j->job.prepare = deliver_prepare;
	j->d = xcalloc(n, sizeof(*j->d));
	j->n = n;
	j->batch = batch;
	for (size_t i = 0; i < n; i++) {
		int rc = delivery_init(&j->d[i], &reqs[i]);
		if (rc < 0) {
			deliver_job_free(&j->job);
			free(j);
			return rc;
		}
	}
	return pg_job_submit(&j->job);
}

int pg_store_deliver(void *impl, const struct store_deliver_req *req, store_backend_cb *cb,
                     void *ctx)
{
	/* The relay queue and failure reports come with the queue (docs/postgresql.md). */
	if (req->n_relay > 0 || req->report != NULL)
		return -ENOTSUP;
	return submit(impl, req, 1, false, cb, ctx);
}

int pg_store_deliver_batch(void *impl, const struct store_deliver_req *reqs, size_t n,
                           store_backend_cb *cb, void *ctx)
{
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (reqs[i].n_targets != 1 || reqs[i].n_relay != 0 || reqs[i].report != NULL)
			return -EINVAL;
	return submit(impl, reqs, n, true, cb, ctx);
}
