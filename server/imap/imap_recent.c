/*
 * \Recent (RFC 3501 2.3.2): a new message is recent in exactly one session, the first to be
 * told of it that has the mailbox selected read-write. The store hands each UID out once
 * (store_recent_take); the session keeps the UIDs it was given, sorted, for as long as the
 * mailbox stays selected. A read-only session (EXAMINE) takes nothing: it sees as recent
 * what no session had taken when it opened the mailbox. IMAP4rev2 has no \Recent (RFC
 * 9051 removed it), so such a session neither takes nor shows it.
 */
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"

static size_t lower_bound(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool imap_recent_is(const struct imap_client *cl, uint32_t uid)
{
	size_t i = lower_bound(cl->recent, cl->n_recent, uid);
	return i < cl->n_recent && cl->recent[i] == uid;
}

uint32_t imap_recent_count(const struct imap_client *cl)
{
	/* Both lists are in UID order: one merge pass; expunged UIDs do not count. */
	uint32_t n = 0;
	size_t j = 0;
	for (size_t i = 0; i < cl->n_recent && j < cl->n_msgs; i++) {
		while (j < cl->n_msgs && cl->msgs[j].uid < cl->recent[i])
			j++;
		if (j < cl->n_msgs && cl->msgs[j].uid == cl->recent[i])
			n++;
	}
	return n;
}

void imap_recent_add(struct imap_client *cl, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	/* Taken UIDs only grow (the store's pointer only moves up): append, then drop what
	 * is not above the last one already held. */
	cl->recent = xreallocarray(cl->recent, cl->n_recent + n, sizeof(*cl->recent));
	for (size_t i = 0; i < n; i++)
		if (cl->n_recent == 0 || uids[i] > cl->recent[cl->n_recent - 1])
			cl->recent[cl->n_recent++] = uids[i];
}

void imap_recent_clear(struct imap_client *cl)
{
	free(cl->recent);
	cl->recent = NULL;
	cl->n_recent = 0;
}

bool imap_recent_shown(const struct imap_client *cl)
{
	return !cl->rev2;
}

struct take_op {
	struct imap_client *cl;
	void (*then)(void *arg);
	void (*gone)(void *arg);
	void *arg;
};

static void taken(void *ctx, int rc, struct store_uids *res)
{
	struct take_op *t = ctx;
	struct imap_client *cl = t->cl;
	void (*then)(void *) = t->then, (*gone)(void *) = t->gone;
	void *arg = t->arg;
	free(t);
	if (!imap_async_end(cl)) {
		if (gone != NULL)
			gone(arg);
		return;
	}
	/* A store error leaves the messages untaken: not recent here, recent for the next
	 * session, which the RFC allows (no session is promised them). */
	if (rc == 0)
		imap_recent_add(cl, res->v, res->n);
	then(arg);
}

void imap_recent_take(struct imap_client *cl, int64_t mailbox_id, uint32_t upto,
                      void (*then)(void *arg), void (*gone)(void *arg), void *arg)
{
	if (!imap_recent_shown(cl) || upto == 0) {
		then(arg);
		return;
	}
	struct take_op *t = xcalloc(1, sizeof(*t));
	t->cl = cl;
	t->then = then;
	t->gone = gone;
	t->arg = arg;
	imap_async_begin(cl);
	if (store_recent_take(imap_store(cl), mailbox_id, upto, taken, t) == 0)
		return;
	conn_release(cl->c);
	free(t);
	then(arg);
}

void imap_recent_fmt(const struct imap_client *cl, struct buf *o)
{
	if (imap_recent_shown(cl))
		buf_printf(o, "* %u RECENT\r\n", imap_recent_count(cl));
}
