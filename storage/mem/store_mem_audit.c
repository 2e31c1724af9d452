/*
 * The access audit in the in-memory store: the same chain as the SQLite backend's (each
 * record hashed after the one before, store_audit_hash), kept in an array, written at
 * once (nothing here is durable anyway). No retention: the store lives as long as a test.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"

static char *dup_or_empty(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

static void record_copy(struct store_audit_record *dst, const struct store_audit_record *src)
{
	*dst = (struct store_audit_record){
	    .seq = src->seq,
	    .time_ms = src->time_ms,
	    .actor = dup_or_empty(src->actor),
	    .ip = dup_or_empty(src->ip),
	    .session = dup_or_empty(src->session),
	    .proto = dup_or_empty(src->proto),
	    .action = dup_or_empty(src->action),
	    .mailbox = dup_or_empty(src->mailbox),
	    .uids = dup_or_empty(src->uids),
	    .detail = dup_or_empty(src->detail),
	};
	memcpy(dst->prev, src->prev, 32);
	memcpy(dst->hash, src->hash, 32);
}

int mem_store_audit_append(void *impl, const struct store_audit_record *r)
{
	struct mem_store *m = impl;
	pthread_mutex_lock(&m->lock);
	if (m->n_audit >= STORE_AUDIT_MAX) {
		pthread_mutex_unlock(&m->lock);
		return -EAGAIN;
	}
	m->audit = xreallocarray(m->audit, m->n_audit + 1, sizeof(*m->audit));
	struct store_audit_record *a = &m->audit[m->n_audit];
	record_copy(a, r);
	if (a->time_ms == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		a->time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	a->seq = m->n_audit + 1;
	if (m->n_audit > 0)
		memcpy(a->prev, m->audit[m->n_audit - 1].hash, 32);
	else
		memset(a->prev, 0, 32);
	store_audit_hash(a->prev, a, a->hash);
	m->n_audit++;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_audit_query(void *impl, const struct store_audit_filter *f, store_backend_cb *cb,
                          void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	size_t limit = f->limit != 0 ? f->limit : 1000;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_audit && res.n_audit < limit; i++) {
		const struct store_audit_record *a = &m->audit[i];
		if (a->seq <= f->after_seq ||
		    (f->actor != NULL && strcmp(a->actor, f->actor) != 0) ||
		    (f->mailbox != NULL && strcmp(a->mailbox, f->mailbox) != 0) ||
		    (f->since_ms != 0 && a->time_ms < f->since_ms) ||
		    (f->until_ms != 0 && a->time_ms > f->until_ms))
			continue;
		res.audit = xreallocarray(res.audit, res.n_audit + 1, sizeof(*res.audit));
		record_copy(&res.audit[res.n_audit++], a);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_audit_verify(void *impl, uint64_t anchor_seq, const unsigned char *anchor,
                           store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	static const unsigned char zero[32];
	struct store_audit_walk w = {.want_seq = anchor_seq};
	if (anchor_seq > 0)
		memcpy(w.want, anchor, 32);
	pthread_mutex_lock(&m->lock);
	store_audit_walk_start(&w, 0, zero);
	for (size_t i = 0; i < m->n_audit && store_audit_walk_step(&w, &m->audit[i]); i++)
		;
	store_audit_walk_end(&w, m->n_audit, m->n_audit > 0 ? m->audit[m->n_audit - 1].hash : zero);
	res.audit_check = w.check;
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void mem_audit_free(struct mem_store *m)
{
	struct store_audit_records all = {.v = m->audit, .n = m->n_audit};
	store_audit_records_free(&all);
	m->audit = NULL;
	m->n_audit = 0;
}
