/*
 * Reports to the envelope sender outside a queue report (relay_notice.h): a store_user_get
 * for a local sender, then one store_deliver into the INBOX or onto the relay queue.
 */
#include "server/relay/relay_notice.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "server/relay/relay_private.h"
#include "storage/store.h"

struct notice {
	struct store *store;
	char *sender;
	const char *kind; /* a string literal */
	struct buf msg;
	struct store_target target;
	struct store_relay_rcpt rcpt;
	struct store_deliver_req req;
};

static void notice_free(struct notice *n)
{
	buf_free(&n->msg);
	free(n->sender);
	free(n);
}

static void notice_stored(void *ctx, int rc, struct store_delivery_result *res)
{
	struct notice *n = ctx;
	(void)res;
	if (rc < 0)
		log_event(LOGL_WARN, "proto=relay event=dsn_failed kind=%s to=%s error=\"%s\"",
		          n->kind, n->sender, store_strerror(rc));
	else
		log_event(LOGL_INFO, "proto=relay event=dsn_sent kind=%s to=%s%s", n->kind,
		          n->sender, n->req.n_relay > 0 ? " via=queue" : "");
	notice_free(n);
}

static void notice_deliver(struct notice *n)
{
	n->req.data = n->msg.data;
	n->req.size = n->msg.len;
	int rc = store_deliver(n->store, &n->req, notice_stored, n);
	if (rc < 0)
		notice_stored(n, rc, NULL);
}

static void notice_user(void *ctx, int rc, struct store_users *res)
{
	struct notice *n = ctx;
	if (rc < 0 || res == NULL || res->n == 0) {
		/* A local sender unknown (deleted since) gets none, as with bounces. */
		notice_stored(n, rc < 0 ? rc : -ENOENT, NULL);
		return;
	}
	n->target.user_id = res->v[0].id;
	n->req.targets = &n->target;
	n->req.n_targets = 1;
	notice_deliver(n);
}

void relay_notice_send(struct store *s, const struct config *cfg, const char *sender,
                       struct buf *msg, const char *kind)
{
	if (s == NULL || sender == NULL || sender[0] == '\0' || msg->len == 0) {
		buf_free(msg);
		return;
	}
	struct notice *n = xcalloc(1, sizeof(*n));
	n->store = s;
	n->kind = kind;
	n->msg = *msg;
	memset(msg, 0, sizeof(*msg));
	n->sender = xstrdup(sender);
	for (char *p = n->sender; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	n->req.sender = ""; /* a report is never reported on (RFC 3461 6.2) */
	const char *at = strrchr(n->sender, '@');
	if (at != NULL && cfg_is_local_domain(cfg, at + 1, strlen(at + 1))) {
		int rc = store_user_get(s, n->sender, notice_user, n);
		if (rc < 0)
			notice_stored(n, rc, NULL);
		return;
	}
	n->rcpt.address = n->sender;
	n->req.relay = &n->rcpt;
	n->req.n_relay = 1;
	notice_deliver(n);
}

/* ----- "delivered" ----- */

#define NOTICE_HEAD_MAX (256 * 1024) /* of the original: the header block, or all of it */

struct delivered {
	struct store *store;
	const struct config *cfg;
	char *sender, *envid;
	bool full;
	int64_t arrival;
	struct relay_dsn_rcpt *rcpts;
	size_t n_rcpts;
};

static void delivered_free(struct delivered *dl)
{
	for (size_t i = 0; i < dl->n_rcpts; i++) {
		free((char *)dl->rcpts[i].address);
		free((char *)dl->rcpts[i].orcpt);
	}
	free(dl->rcpts);
	free(dl->sender);
	free(dl->envid);
	free(dl);
}

static void delivered_head(void *ctx, int rc, struct store_content *res)
{
	struct delivered *dl = ctx;
	static unsigned seq;
	int64_t now = (int64_t)time(NULL);
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "sealmail-dsn-%ld-%" PRId64 "-%u", (long)getpid(), now,
	         ++seq);
	struct relay_dsn dsn = {
	    .kind = RELAY_DSN_DELIVERED,
	    .reporting_mta = dl->cfg->hostname,
	    .sender = dl->sender,
	    .envid = dl->envid,
	    .full = dl->full,
	    .arrival = dl->arrival,
	    .now = now,
	    .rcpts = dl->rcpts,
	    .n_rcpts = dl->n_rcpts,
	    .boundary = boundary,
	};
	const char *at = strrchr(dl->sender, '@');
	dsn.return_path = at != NULL && cfg_is_local_domain(dl->cfg, at + 1, strlen(at + 1));
	if (rc == 0 && res != NULL) {
		/* The copy may be gone (expunged meanwhile): then the report has no original. */
		dsn.original = (const char *)res->data;
		dsn.original_len = res->len;
		dsn.original_complete = res->len == res->total_size;
	}
	struct buf msg;
	buf_init(&msg, dl->cfg->limits.message_size);
	if (relay_dsn_format(&dsn, &msg) < 0) {
		buf_free(&msg);
		buf_init(&msg, dl->cfg->limits.message_size);
		dsn.full = false;
		relay_dsn_format(&dsn, &msg);
	}
	relay_notice_send(dl->store, dl->cfg, dl->sender, &msg, "delivered");
	delivered_free(dl);
}

void relay_notice_delivered(struct store *s, const struct config *cfg,
                            const struct relay_notice_delivery *n)
{
	size_t wanted = 0;
	for (size_t i = 0; i < n->n_rcpts; i++)
		wanted += relay_dsn_wanted(n->rcpts[i].notify, RELAY_DSN_DELIVERED);
	if (s == NULL || n->sender == NULL || n->sender[0] == '\0' || wanted == 0)
		return;
	struct delivered *dl = xcalloc(1, sizeof(*dl));
	dl->store = s;
	dl->cfg = cfg;
	dl->sender = xstrdup(n->sender);
	dl->envid = n->envid != NULL ? xstrdup(n->envid) : NULL;
	dl->full = !n->requiretls && n->ret != NULL && strcasecmp(n->ret, "FULL") == 0;
	dl->arrival = n->arrival;
	dl->rcpts = xcalloc(wanted, sizeof(*dl->rcpts));
	for (size_t i = 0; i < n->n_rcpts; i++) {
		if (!relay_dsn_wanted(n->rcpts[i].notify, RELAY_DSN_DELIVERED))
			continue;
		struct relay_dsn_rcpt *r = &dl->rcpts[dl->n_rcpts++];
		r->address = xstrdup(n->rcpts[i].address);
		r->orcpt = n->rcpts[i].orcpt != NULL ? xstrdup(n->rcpts[i].orcpt) : NULL;
		r->action = RELAY_DSN_DELIVERED;
		r->status = "2.0.0";
	}
	int rc =
	    store_content_read(s, n->mailbox_id, n->uid, 0, NOTICE_HEAD_MAX, delivered_head, dl);
	if (rc < 0)
		delivered_head(dl, rc, NULL);
}

/* ----- "failed", formatted for the store ----- */

bool relay_notice_failure_wanted(const char *notify)
{
	return relay_dsn_wanted(notify, RELAY_DSN_FAILED);
}

int relay_notice_format_failed(const struct relay_notice_failure *f, struct buf *out)
{
	if (f->sender == NULL || f->sender[0] == '\0')
		return 0;
	struct relay_dsn_rcpt *rcpts = xcalloc(f->n_rcpts + 1, sizeof(*rcpts));
	size_t n = 0;
	for (size_t i = 0; i < f->n_rcpts; i++) {
		const struct relay_notice_failed *r = &f->rcpts[i];
		if (!relay_dsn_wanted(r->notify, RELAY_DSN_FAILED))
			continue;
		rcpts[n++] = (struct relay_dsn_rcpt){
		    .address = r->address,
		    .orcpt = r->orcpt,
		    .action = RELAY_DSN_FAILED,
		    .status = r->status,
		    .diagnostic = r->diagnostic,
		};
	}
	struct relay_dsn dsn = {
	    .kind = RELAY_DSN_FAILED,
	    .reporting_mta = f->reporting_mta,
	    .sender = f->sender,
	    .envid = f->envid,
	    .full = !f->requiretls && f->ret != NULL && strcasecmp(f->ret, "FULL") == 0,
	    .arrival = f->arrival,
	    .now = f->now,
	    .rcpts = rcpts,
	    .n_rcpts = n,
	    .original = f->original,
	    .original_len = f->original_len,
	    .original_complete = f->original_complete,
	    .boundary = f->boundary,
	    .return_path = f->local,
	};
	int rc = 0;
	if (n > 0) {
		rc = relay_dsn_format(&dsn, out);
		if (rc < 0 && dsn.full) {
			/* Too big with the whole message: its header only. */
			buf_reset(out);
			dsn.full = false;
			rc = relay_dsn_format(&dsn, out);
		}
		if (rc < 0)
			buf_reset(out);
	}
	free(rcpts);
	return rc;
}
