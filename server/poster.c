#include "server/poster.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/xmalloc.h"

struct poster_item {
	struct poster_item *next;
	void (*fn)(void *arg);
	void *arg;
};

struct poster {
	uv_async_t async;
	pthread_mutex_t lock;
	struct poster_item *head, *tail;
};

/* One item at a time under the lock, never a batch taken aside: a posted function may call
 * poster_close, whose drain must not run later posts before the rest of such a batch. */
static void poster_drain(struct poster *p)
{
	for (;;) {
		pthread_mutex_lock(&p->lock);
		struct poster_item *it = p->head;
		if (it != NULL) {
			p->head = it->next;
			if (p->head == NULL)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->lock);
		if (it == NULL)
			return;
		it->fn(it->arg);
		free(it);
	}
}

static void poster_async_cb(uv_async_t *a)
{
	poster_drain(a->data);
}

struct poster *poster_new(uv_loop_t *loop)
{
	struct poster *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	uv_async_init(loop, &p->async, poster_async_cb);
	p->async.data = p;
	return p;
}

void poster_post(void *poster, void (*fn)(void *arg), void *arg)
{
	struct poster *p = poster;
	struct poster_item *it = xmalloc(sizeof(*it));
	it->next = NULL;
	it->fn = fn;
	it->arg = arg;
	pthread_mutex_lock(&p->lock);
	if (p->tail != NULL)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	pthread_mutex_unlock(&p->lock);
	uv_async_send(&p->async);
}

static void poster_closed(uv_handle_t *h)
{
	struct poster *p = h->data;
	poster_drain(p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

void poster_close(struct poster *p)
{
	poster_drain(p);
	uv_close((uv_handle_t *)&p->async, poster_closed);
}
