/*
 * Completions for backends that do their work when it is submitted (mem, fault): a queue
 * and one thread that hands each result to its callback, through the poster when there is
 * one. The callback thus never runs inside the submitting call, and struct store_sync,
 * which waits on the submitting thread, works without a poster.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "storage/store_backend.h"

struct store_async_item {
	struct store_async_item *next;
	store_backend_cb *cb; /* NULL: a change */
	void *ctx;
	int rc;
	struct store_backend_result res;
	store_change_fn *change_fn;
	struct store_change change;
};

struct store_async {
	struct store_poster poster;
	bool has_poster;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct store_async_item *head, *tail;
	bool stopping;
	pthread_t thread;
};

static void item_run(void *arg)
{
	struct store_async_item *it = arg;
	if (it->cb != NULL)
		it->cb(it->ctx, it->rc, &it->res);
	else
		it->change_fn(it->ctx, &it->change);
	store_backend_result_free(&it->res);
	free(it);
}

static void *async_main(void *arg)
{
	struct store_async *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->head == NULL && !a->stopping)
			pthread_cond_wait(&a->cv, &a->lock);
		struct store_async_item *it = a->head;
		if (it == NULL)
			break;
		a->head = it->next;
		if (a->head == NULL)
			a->tail = NULL;
		pthread_mutex_unlock(&a->lock);
		if (a->has_poster)
			a->poster.post(a->poster.ctx, item_run, it);
		else
			item_run(it);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct store_async *store_async_new(const struct store_poster *poster)
{
	struct store_async *a = xcalloc(1, sizeof(*a));
	if (poster != NULL) {
		a->poster = *poster;
		a->has_poster = true;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_create(&a->thread, NULL, async_main, a);
	return a;
}

static void async_push(struct store_async *a, struct store_async_item *it)
{
	pthread_mutex_lock(&a->lock);
	if (a->tail != NULL)
		a->tail->next = it;
	else
		a->head = it;
	a->tail = it;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->lock);
}

void store_async_complete(struct store_async *a, store_backend_cb *cb, void *ctx, int rc,
                          struct store_backend_result *res)
{
	struct store_async_item *it = xcalloc(1, sizeof(*it));
	it->cb = cb;
	it->ctx = ctx;
	it->rc = rc;
	if (res != NULL)
		store_backend_result_move(&it->res, res);
	async_push(a, it);
}

void store_async_change(struct store_async *a, store_change_fn *fn, void *fn_ctx,
                        const struct store_change *change)
{
	if (fn == NULL)
		return;
	struct store_async_item *it = xcalloc(1, sizeof(*it));
	it->change_fn = fn;
	it->ctx = fn_ctx;
	it->change = *change;
	async_push(a, it);
}

void store_async_free(struct store_async *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cv);
	free(a);
}
