/*
 * The access audit in SQLite (store.h, "Access audit"; schema 12). Records wait in memory
 * (bounded) until the writer's next transaction takes them: the transaction of the next
 * group commit, or one of their own STORE_AUDIT_FLUSH_MS after the first arrived. The
 * writer gives each its seq and chains it to the head kept in audit_state, inside the
 * transaction, so records written by sealctl's process and by the server's interleave
 * into one chain (the write lock orders them). Reads and the verifier run on workers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"

/* Waiting records that wake the writer at once. Every commit empties the page cache of
 * every reading connection (SQLite keeps no cache across another connection's write), so
 * on a server that only reads, audit commits of their own are what the reads pay for:
 * measured on one-message FETCHes, a commit every 250 ms or 1,024 records cost them a third
 * of their rate; one a second at most, a few percent. */
#define AUDIT_WAKE_AT     8192
#define AUDIT_PRUNE_BATCH 10000 /* records one retention pass removes at most */
#define AUDIT_PRUNE_EVERY (3600 * 1000)
#define AUDIT_RETRY_NS    (1000 * 1000 * 1000)
#define AUDIT_HEAD_EVERY  (3600 * 1000)

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_empty(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

int sqlite_store_audit_append(void *impl, const struct store_audit_record *r)
{
	struct sqlite_store *s = impl;
	pthread_mutex_lock(&s->audit_lock);
	if (s->audit_n >= STORE_AUDIT_MAX) {
		pthread_mutex_unlock(&s->audit_lock);
		return -EAGAIN;
	}
	if (s->audit_n == s->audit_cap) {
		s->audit_cap = s->audit_cap == 0 ? 64 : s->audit_cap * 2;
		s->audit_v = xreallocarray(s->audit_v, s->audit_cap, sizeof(*s->audit_v));
	}
	s->audit_v[s->audit_n++] = (struct store_audit_record){
	    .time_ms = r->time_ms != 0 ? r->time_ms : wall_ms(),
	    .actor = dup_or_empty(r->actor),
	    .ip = dup_or_empty(r->ip),
	    .session = dup_or_empty(r->session),
	    .proto = dup_or_empty(r->proto),
	    .action = dup_or_empty(r->action),
	    .mailbox = dup_or_empty(r->mailbox),
	    .uids = dup_or_empty(r->uids),
	    .detail = dup_or_empty(r->detail),
	};
	bool wake = s->audit_n == 1 || s->audit_n == AUDIT_WAKE_AT;
	if (s->audit_n == 1)
		s->audit_due_ns = mono_ns() + (int64_t)STORE_AUDIT_FLUSH_MS * 1000000;
	pthread_mutex_unlock(&s->audit_lock);
	/* The first one makes the writer wait with a deadline, a crowd wakes it now. Under the
	 * queues' lock, so that a writer about to wait cannot miss it; only then. */
	if (wake) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_signal(&s->writer_cv);
		pthread_mutex_unlock(&s->lock);
	}
	return 0;
}

bool store_audit_waiting(struct sqlite_store *s, int64_t now_ns, int64_t *due_ns_r, bool *due_r)
{
	pthread_mutex_lock(&s->audit_lock);
	bool waiting = s->audit_n > 0;
	*due_ns_r = s->audit_due_ns;
	*due_r =
	    waiting && (s->audit_n >= AUDIT_WAKE_AT || s->stopping || now_ns >= s->audit_due_ns);
	pthread_mutex_unlock(&s->audit_lock);
	return waiting;
}

/* Called with lock held. */
void store_audit_take(struct sqlite_store *s, struct store_audit_batch *b)
{
	pthread_mutex_lock(&s->audit_lock);
	b->v = s->audit_v;
	b->n = s->audit_n;
	s->audit_v = NULL;
	s->audit_n = 0;
	s->audit_cap = 0;
	pthread_mutex_unlock(&s->audit_lock);
}

void store_audit_batch_free(struct store_audit_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		store_audit_record_free(&b->v[i]);
	free(b->v);
	b->v = NULL;
	b->n = 0;
}

/* The transaction did not commit: the records wait again, before any that came since,
 * and the next try waits a little so that a failing write does not spin. A store that no
 * longer writes keeps none (they are counted in the log: nothing goes silently). */
void store_audit_giveback(struct sqlite_store *s, struct store_audit_batch *b)
{
	if (b->n == 0)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->poisoned || s->writer_exit_ok) {
		pthread_mutex_unlock(&s->lock);
		log_event(LOGL_ERROR, "event=audit_lost records=%zu reason=store_failed", b->n);
		store_audit_batch_free(b);
		return;
	}
	pthread_mutex_lock(&s->audit_lock);
	size_t n = b->n + s->audit_n;
	struct store_audit_record *v = xcalloc(n, sizeof(*v));
	memcpy(v, b->v, b->n * sizeof(*v));
	if (s->audit_n > 0)
		memcpy(v + b->n, s->audit_v, s->audit_n * sizeof(*v));
	free(s->audit_v);
	s->audit_v = v;
	s->audit_n = n;
	s->audit_cap = n;
	s->audit_due_ns = mono_ns() + AUDIT_RETRY_NS;
	pthread_mutex_unlock(&s->audit_lock);
	pthread_mutex_unlock(&s->lock);
	free(b->v);
	b->v = NULL;
	b->n = 0;
}

static int state_read(struct store_conn *c, uint64_t *anchor_seq, unsigned char *anchor,
                      uint64_t *head_seq, unsigned char *head)
{
	sqlite3_stmt *st = store_stmt(c, SQL_AUDIT_STATE);
	if (st == NULL)
		return -EIO;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -EIO : store_err(c->db, rc);
	}
	*anchor_seq = (uint64_t)sqlite3_column_int64(st, 0);
	*head_seq = (uint64_t)sqlite3_column_int64(st, 2);
	const void *a = sqlite3_column_blob(st, 1);
	const void *h = sqlite3_column_blob(st, 3);
	bool ok = a != NULL && h != NULL && sqlite3_column_bytes(st, 1) == 32 &&
	          sqlite3_column_bytes(st, 3) == 32;
	if (ok) {
		memcpy(anchor, a, 32);
		memcpy(head, h, 32);
	}
	sqlite3_reset(st);
	return ok ? 0 : -EIO;
}

static int insert_one(struct store_conn *c, struct store_audit_record *r, uint64_t seq,
                      const unsigned char *prev)
{
	r->seq = seq;
	memcpy(r->prev, prev, 32);
	store_audit_hash(prev, r, r->hash);
	sqlite3_stmt *st = store_stmt(c, SQL_AUDIT_INSERT);
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(st, 2, r->time_ms);
	const char *text[] = {r->actor,  r->ip,      r->session, r->proto,
	                      r->action, r->mailbox, r->uids,    r->detail};
	for (int i = 0; i < 8; i++)
		sqlite3_bind_text(st, 3 + i, text[i], -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 11, r->prev, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 12, r->hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
}

/* Retention: moves the anchor past the oldest records older than the cut-off, then
 * removes them (the trigger lets only those go). Appends a record saying so to b. */
static int prune(struct store_conn *c, struct sqlite_store *s, struct store_audit_batch *b)
{
	int64_t now = wall_ms();
	if (s->opt.audit_retention_days == 0 || now < s->audit_prune_ms)
		return 0;
	s->audit_prune_ms = now + AUDIT_PRUNE_EVERY;
	int64_t cutoff = now - (int64_t)s->opt.audit_retention_days * 86400 * 1000;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db,
	                            "SELECT seq, hash, (SELECT count(*) FROM audit a2 WHERE"
	                            " a2.seq <= t.seq) FROM (SELECT seq, hash, ts FROM audit"
	                            " ORDER BY seq LIMIT ?2) t WHERE ts < ?1"
	                            " ORDER BY seq DESC LIMIT 1",
	                            -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	sqlite3_bind_int64(st, 1, cutoff);
	sqlite3_bind_int(st, 2, AUDIT_PRUNE_BATCH);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	}
	sqlite3_int64 upto = sqlite3_column_int64(st, 0);
	sqlite3_int64 removed = sqlite3_column_int64(st, 2);
	unsigned char hash[32];
	bool ok = sqlite3_column_bytes(st, 1) == 32;
	if (ok)
		memcpy(hash, sqlite3_column_blob(st, 1), 32);
	sqlite3_finalize(st);
	if (!ok)
		return -EIO;
	if (removed >= AUDIT_PRUNE_BATCH)
		s->audit_prune_ms = now + 1000; /* more to do: soon, in small steps */
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "UPDATE audit_state SET anchor_seq = %lld, anchor_hash = ?1;"
	         " DELETE FROM audit WHERE seq <= %lld",
	         (long long)upto, (long long)upto);
	/* Two statements: prepare and run each in turn. */
	const char *tail = sql;
	while (tail != NULL && *tail != '\0') {
		rc = sqlite3_prepare_v2(c->db, tail, -1, &st, &tail);
		if (rc != SQLITE_OK)
			return store_err(c->db, rc);
		if (st == NULL)
			break;
		if (sqlite3_bind_parameter_count(st) > 0)
			sqlite3_bind_blob(st, 1, hash, 32, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_err(c->db, rc);
	}
	char detail[160];
	snprintf(detail, sizeof(detail), "removed=%lld through_seq=%lld retention_days=%u",
	         (long long)removed, (long long)upto, s->opt.audit_retention_days);
	b->v = xreallocarray(b->v, b->n + 1, sizeof(*b->v));
	b->v[b->n++] = (struct store_audit_record){
	    .time_ms = now,
	    .actor = xstrdup("sealmail"),
	    .ip = xstrdup(""),
	    .session = xstrdup(""),
	    .proto = xstrdup("store"),
	    .action = xstrdup("audit_prune"),
	    .mailbox = xstrdup(""),
	    .uids = xstrdup(""),
	    .detail = xstrdup(detail),
	};
	return 0;
}

int store_audit_write(struct store_conn *c, struct sqlite_store *s, struct store_audit_batch *b)
{
	uint64_t anchor_seq, head_seq;
	unsigned char anchor[32], head[32];
	int rc = prune(c, s, b);
	if (rc == 0)
		rc = state_read(c, &anchor_seq, anchor, &head_seq, head);
	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		rc = insert_one(c, &b->v[i], head_seq + 1, head);
		if (rc == 0) {
			head_seq++;
			memcpy(head, b->v[i].hash, 32);
		}
	}
	if (rc == 0) {
		sqlite3_stmt *st = store_stmt(c, SQL_AUDIT_SET_HEAD);
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)head_seq);
		sqlite3_bind_blob(st, 2, head, 32, SQLITE_STATIC);
		int src = sqlite3_step(st);
		sqlite3_reset(st);
		rc = src == SQLITE_DONE ? 0 : store_err(c->db, src);
	}
	/* The head in the log too, now and then: the journal (often sent to another machine)
	 * then holds anchors that a rewrite of the database cannot reach. Logged before the
	 * COMMIT: a head that never commits is one the next line replaces. */
	int64_t now = wall_ms();
	if (rc == 0 && now >= s->audit_head_ms) {
		s->audit_head_ms = now + AUDIT_HEAD_EVERY;
		char h[65];
		for (int i = 0; i < 32; i++)
			snprintf(h + 2 * i, 3, "%02x", head[i]);
		log_event(LOGL_INFO, "event=audit_head seq=%" PRIu64 " hash=%s", head_seq, h);
	}
	return rc;
}

/* ---- Reading ---- */

struct audit_query_job {
	struct store_job job;
	char *actor, *mailbox;
	int64_t since_ms, until_ms;
	uint64_t after_seq;
	size_t limit;
	uint64_t anchor_seq; /* verify: --anchor */
	unsigned char anchor[32];
};

static void query_free(struct store_job *job)
{
	struct audit_query_job *j = (struct audit_query_job *)job;
	free(j->actor);
	free(j->mailbox);
}

#define AUDIT_COLS "seq, ts, actor, ip, session, proto, action, mailbox, uids, detail, prev, hash"

static void row_load(sqlite3_stmt *st, struct store_audit_record *r)
{
	r->seq = (uint64_t)sqlite3_column_int64(st, 0);
	r->time_ms = sqlite3_column_int64(st, 1);
	char **text[] = {&r->actor,  &r->ip,      &r->session, &r->proto,
	                 &r->action, &r->mailbox, &r->uids,    &r->detail};
	for (int i = 0; i < 8; i++)
		*text[i] = dup_or_empty((const char *)sqlite3_column_text(st, 2 + i));
	if (sqlite3_column_bytes(st, 10) == 32)
		memcpy(r->prev, sqlite3_column_blob(st, 10), 32);
	if (sqlite3_column_bytes(st, 11) == 32)
		memcpy(r->hash, sqlite3_column_blob(st, 11), 32);
}

static int query_run(struct store_conn *c, struct store_job *job)
{
	struct audit_query_job *j = (struct audit_query_job *)job;
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1%s%s%s%s"
	         " ORDER BY seq LIMIT ?6",
	         j->actor != NULL ? " AND actor = ?2" : "",
	         j->mailbox != NULL ? " AND mailbox = ?3" : "",
	         j->since_ms != 0 ? " AND ts >= ?4" : "", j->until_ms != 0 ? " AND ts <= ?5" : "");
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_err(c->db, rc);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)j->after_seq);
	if (j->actor != NULL)
		sqlite3_bind_text(st, 2, j->actor, -1, SQLITE_STATIC);
	if (j->mailbox != NULL)
		sqlite3_bind_text(st, 3, j->mailbox, -1, SQLITE_STATIC);
	if (j->since_ms != 0)
		sqlite3_bind_int64(st, 4, j->since_ms);
	if (j->until_ms != 0)
		sqlite3_bind_int64(st, 5, j->until_ms);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)j->limit);
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (job->res.n_audit == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			job->res.audit =
			    xreallocarray(job->res.audit, cap, sizeof(*job->res.audit));
		}
		struct store_audit_record *r = &job->res.audit[job->res.n_audit++];
		memset(r, 0, sizeof(*r));
		row_load(st, r);
	}
	rc = rc == SQLITE_DONE ? 0 : store_err(c->db, rc);
	sqlite3_finalize(st);
	return rc;
}

int sqlite_store_audit_query(void *impl, const struct store_audit_filter *f, store_backend_cb *cb,
                             void *ctx)
{
	struct sqlite_store *s = impl;
	struct audit_query_job *j =
	    store_job_new(sizeof(*j), s, STORE_JOB_READ, query_run, cb, ctx);
	j->job.free_args = query_free;
	j->actor = f->actor != NULL ? xstrdup(f->actor) : NULL;
	j->mailbox = f->mailbox != NULL ? xstrdup(f->mailbox) : NULL;
	j->since_ms = f->since_ms;
	j->until_ms = f->until_ms;
	j->after_seq = f->after_seq;
	j->limit = f->limit != 0 ? f->limit : 1000;
	return store_job_submit(&j->job);
}

/* One read transaction over the whole walk: the chain and its recorded ends as of one
 * moment, however many records the server adds meanwhile. */
static int verify_run(struct store_conn *c, struct store_job *job)
{
	struct audit_query_job *j = (struct audit_query_job *)job;
	struct store_audit_walk w = {.want_seq = j->anchor_seq};
	memcpy(w.want, j->anchor, 32);
	int rc = store_exec_stmt(c, SQL_BEGIN_READ);
	if (rc < 0)
		return rc;
	uint64_t anchor_seq, head_seq;
	unsigned char anchor[32], head[32];
	rc = state_read(c, &anchor_seq, anchor, &head_seq, head);
	sqlite3_stmt *st = NULL;
	if (rc == 0) {
		int src = sqlite3_prepare_v2(c->db, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq",
		                             -1, &st, NULL);
		rc = src == SQLITE_OK ? 0 : store_err(c->db, src);
	}
	if (rc == 0) {
		store_audit_walk_start(&w, anchor_seq, anchor);
		int src;
		while ((src = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_audit_record r = {0};
			row_load(st, &r);
			bool ok = store_audit_walk_step(&w, &r);
			store_audit_record_free(&r);
			if (!ok)
				break;
		}
		if (src != SQLITE_ROW && src != SQLITE_DONE)
			rc = store_err(c->db, src);
		else
			store_audit_walk_end(&w, head_seq, head);
	}
	sqlite3_finalize(st);
	store_exec_stmt(c, SQL_COMMIT);
	job->res.audit_check = w.check;
	return rc;
}

int sqlite_store_audit_verify(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
                              store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct audit_query_job *j =
	    store_job_new(sizeof(*j), s, STORE_JOB_READ, verify_run, cb, ctx);
	j->job.free_args = query_free;
	j->anchor_seq = anchor_seq;
	if (anchor_seq > 0)
		memcpy(j->anchor, anchor, 32);
	return store_job_submit(&j->job);
}
