/*
 * The in-memory backend's relay queue: list, delete, due work with leases, recovery, flush,
 * reading queued content and recording an attempt's outcome (with its report).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/mem/store_mem_private.h"

/* ---- Relay queue ---- */

void mem_queued_clear(struct mem_store *m, struct mem_queued *q)
{
	for (size_t i = 0; i < q->n_rcpts; i++) {
		free(q->rcpts[i].address);
		free(q->rcpts[i].notify);
		free(q->rcpts[i].orcpt);
		free(q->rcpts[i].last_error);
	}
	free(q->rcpts);
	free(q->sender);
	free(q->ret);
	free(q->envid);
	mem_content_unref(m, q->content);
	memset(q, 0, sizeof(*q));
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static struct store_queue_entry *queue_push(struct store_backend_result *res,
                                            const struct mem_queued *q)
{
	res->queue = xreallocarray(res->queue, res->n_queue + 1, sizeof(*res->queue));
	struct store_queue_entry *o = &res->queue[res->n_queue++];
	memset(o, 0, sizeof(*o));
	o->id = q->id;
	o->content_id = q->content->id;
	o->size = q->content->size;
	o->sender = xstrdup(q->sender);
	o->requiretls = q->requiretls;
	o->ret = dup_or_null(q->ret);
	o->envid = dup_or_null(q->envid);
	o->created = q->created;
	return o;
}

static void rcpt_push(struct store_queue_entry *o, const struct mem_rcpt *r)
{
	o->rcpts = xreallocarray(o->rcpts, o->n_rcpts + 1, sizeof(*o->rcpts));
	struct store_queue_rcpt *x = &o->rcpts[o->n_rcpts++];
	x->id = r->id;
	x->address = xstrdup(r->address);
	x->notify = dup_or_null(r->notify);
	x->orcpt = dup_or_null(r->orcpt);
	x->status = r->status;
	x->attempts = r->attempts;
	x->next_attempt = r->next_attempt;
	x->last_error = dup_or_null(r->last_error);
}

static struct mem_queued *queued_by_id(struct mem_store *m, int64_t id, size_t *index_r)
{
	for (size_t i = 0; i < m->n_queue; i++) {
		if (m->queue[i].id == id) {
			if (index_r != NULL)
				*index_r = i;
			return &m->queue[i];
		}
	}
	return NULL;
}

static void queued_remove(struct mem_store *m, size_t i)
{
	mem_queued_clear(m, &m->queue[i]);
	memmove(&m->queue[i], &m->queue[i + 1], (m->n_queue - i - 1) * sizeof(*m->queue));
	m->n_queue--;
}

int mem_store_queue_list(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_queue; i++) {
		struct store_queue_entry *o = queue_push(&res, &m->queue[i]);
		for (size_t r = 0; r < m->queue[i].n_rcpts; r++)
			rcpt_push(o, &m->queue[i].rcpts[r]);
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_summary(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	res.queue_summary.messages = m->n_queue;
	for (size_t i = 0; i < m->n_queue; i++) {
		const struct mem_queued *q = &m->queue[i];
		if (res.queue_summary.oldest == 0 || q->created < res.queue_summary.oldest)
			res.queue_summary.oldest = q->created;
		for (size_t r = 0; r < q->n_rcpts; r++)
			if (q->rcpts[r].status == 0 || q->rcpts[r].status == 3)
				res.queue_summary.recipients++;
	}
	mem_done(m, cb, ctx, 0, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_delete(void *impl, int64_t queue_id, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	size_t i;
	pthread_mutex_lock(&m->lock);
	bool found = queued_by_id(m, queue_id, &i) != NULL;
	if (found)
		queued_remove(m, i);
	mem_done(m, cb, ctx, found ? 0 : -ENOENT, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static bool rcpt_due(const struct mem_rcpt *r, int64_t now)
{
	return (r->status == 0 || r->status == 3) && r->next_attempt <= now;
}

int mem_store_queue_due(void *impl, int64_t now, unsigned lease_seconds, size_t limit,
                        store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_queue && res.n_queue < limit; i++) {
		struct mem_queued *q = &m->queue[i];
		struct store_queue_entry *o = NULL;
		for (size_t r = 0; r < q->n_rcpts; r++) {
			if (!rcpt_due(&q->rcpts[r], now))
				continue;
			if (o == NULL)
				o = queue_push(&res, q);
			rcpt_push(o, &q->rcpts[r]);
			q->rcpts[r].status = 3;
			q->rcpts[r].next_attempt = now + (int64_t)lease_seconds;
		}
	}
	mem_done(m, cb, ctx, 0, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_recover(void *impl, store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_queue; i++)
		for (size_t r = 0; r < m->queue[i].n_rcpts; r++)
			if (m->queue[i].rcpts[r].status == 3)
				m->queue[i].rcpts[r].status = 0;
	mem_done(m, cb, ctx, 0, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_flush(void *impl, int64_t queue_id, int64_t now, store_backend_cb *cb,
                          void *ctx)
{
	struct mem_store *m = impl;
	size_t changed = 0;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_queue; i++) {
		if (queue_id != 0 && m->queue[i].id != queue_id)
			continue;
		for (size_t r = 0; r < m->queue[i].n_rcpts; r++) {
			if (m->queue[i].rcpts[r].status == 0) {
				m->queue[i].rcpts[r].next_attempt = now;
				changed++;
			}
		}
	}
	mem_done(m, cb, ctx, queue_id != 0 && changed == 0 ? -ENOENT : 0, NULL, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_content_read(void *impl, int64_t content_id, uint64_t offset, size_t max_len,
                                 store_backend_cb *cb, void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	if (max_len == 0 || max_len > MEM_READ_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	struct mem_content *c = mem_content_by_id(m, content_id);
	if (c != NULL)
		mem_content_range(c, offset, max_len, &res);
	mem_done(m, cb, ctx, c != NULL ? 0 : -ENOENT, &res, false);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int mem_store_queue_report(void *impl, const struct store_queue_report *rep, store_backend_cb *cb,
                           void *ctx)
{
	struct mem_store *m = impl;
	struct store_backend_result res = {0};
	int rc = 0;
	size_t qi;
	pthread_mutex_lock(&m->lock);
	struct mem_queued *q = queued_by_id(m, rep->queue_id, &qi);
	if (q == NULL) {
		rc = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < rep->n_outcomes; i++) {
		const struct store_queue_outcome *o = &rep->outcomes[i];
		for (size_t r = 0; r < q->n_rcpts; r++) {
			struct mem_rcpt *x = &q->rcpts[r];
			if (x->id != o->rcpt_id)
				continue;
			x->status = o->status;
			x->attempts++;
			x->next_attempt = o->next_attempt;
			if (o->error != NULL) {
				free(x->last_error);
				x->last_error = xstrdup(o->error);
			}
		}
	}
	if (rep->dsn != NULL && q->sender[0] != '\0') {
		char *to = xstrdup(q->sender);
		bool requiretls = q->requiretls;
		int64_t id = 0;
		mem_report_place(m, rep->dsn, rep->dsn_len, to, rep->dsn_local, requiretls, &id);
		free(to);
		res.id = id;
		q = &m->queue[qi]; /* the queue may have moved */
	}
	bool pending = false;
	for (size_t r = 0; r < q->n_rcpts; r++)
		pending = pending || q->rcpts[r].status == 0 || q->rcpts[r].status == 3;
	if (!pending)
		queued_remove(m, qi);
out:
	mem_done(m, cb, ctx, rc, &res, true);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
