/*
 * The end of a delivery (relay_runner.h): every recipient's outcome goes to the store in one
 * transaction, with a DSN (RFC 3464, relay_dsn.c) to the sender for those that failed for
 * good or gave up. A temporary failure gets the next attempt from the back-off; when every
 * hop failed, its last error is the list of hops tried (relay.c builds it); a failure for
 * good before any connection (null MX, unknown domain) carries its own DSN status.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/relay/relay_private.h"
#include "server/relay/relay_runner.h"
#include "storage/store.h"

static void report_cb(void *ctx, int rc, struct store_result *res)
{
	struct relay_delivery *d = ctx;
	if (rc < 0 && rc != -ENOENT)
		log_event(LOGL_ERROR,
		          "proto=relay event=report_failed queue=%" PRId64 " error=\"%s\"", d->q.id,
		          store_strerror(rc));
	relay_delivery_free(d);
}

static void build_dsn(struct relay_delivery *d, const struct relay_dsn_rcpt *rcpts, size_t n,
                      int64_t now)
{
	struct relay *r = d->relay;
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "sealmail-dsn-%" PRId64 "-%" PRId64 "-%08x", d->q.id,
	         now, (unsigned)uv_hrtime());
	struct relay_dsn dsn = {
	    .reporting_mta = r->cfg->hostname,
	    .sender = d->q.sender,
	    .envid = d->q.envid,
	    /* RFC 8689 5: the bounce of a REQUIRETLS message carries its headers only. */
	    .full = !d->q.requiretls && d->q.ret != NULL && strcasecmp(d->q.ret, "FULL") == 0,
	    .arrival = d->q.created,
	    .now = now,
	    .rcpts = rcpts,
	    .n_rcpts = n,
	    .original = (const char *)d->head,
	    .original_len = d->head_len,
	    .original_complete = d->head_len == d->total,
	    .boundary = boundary,
	};
	buf_init(&d->dsn, r->cfg->limits.message_size);
	if (relay_dsn_format(&dsn, &d->dsn) < 0) {
		/* Too big with the whole message: headers only. */
		buf_free(&d->dsn);
		buf_init(&d->dsn, r->cfg->limits.message_size);
		dsn.full = false;
		relay_dsn_format(&dsn, &d->dsn);
	}
	const char *at = strrchr(d->q.sender, '@');
	d->rep.dsn = d->dsn.data;
	d->rep.dsn_len = d->dsn.len;
	d->rep.dsn_local = at != NULL && cfg_is_local_domain(r->cfg, at + 1, strlen(at + 1));
}

/* Every recipient's outcome to the store, with a DSN for those that failed for good. */
void relay_report(struct relay_delivery *d)
{
	struct relay *r = d->relay;
	const struct cfg_relay *rc = &r->cfg->relay;
	int64_t now = (int64_t)time(NULL);
	d->reported = true;
	if (r->stopping) {
		/* Cut by a shutdown: the lease brings it back at the next start. */
		relay_delivery_free(d);
		return;
	}
	d->outs = xcalloc(d->q.n_rcpts, sizeof(*d->outs));
	struct relay_dsn_rcpt *dr = xcalloc(d->q.n_rcpts, sizeof(*dr));
	char(*status)[16] = xcalloc(d->q.n_rcpts, sizeof(*status));
	char(*gave)[RELAY_REPLY_MAX + 64] = xcalloc(d->q.n_rcpts, sizeof(*gave));
	size_t n_dsn = 0;
	bool answered = d->sess.state != RELAY_S_GREETING;
	for (size_t i = 0; i < d->q.n_rcpts; i++) {
		struct store_queue_outcome *o = &d->outs[i];
		const char *why = NULL;
		int st = relay_session_outcome(&d->sess, i, &why);
		unsigned attempts = d->q.rcpts[i].attempts + 1;
		if (st == 0 && d->rr[i].code == 0 && d->summary[0] != '\0')
			why = d->summary;
		o->rcpt_id = d->q.rcpts[i].id;
		o->error = why[0] != '\0' ? why : NULL;
		if (st == 0 && relay_give_up(d->q.created, now, rc->give_up)) {
			snprintf(gave[i], sizeof(gave[i]), "gave up after %u attempts: %s",
			         attempts, why);
			o->error = gave[i];
			snprintf(status[i], sizeof(status[i]), "4.4.7");
			st = 2;
		} else if (st == 2) {
			relay_dsn_status(d->rr[i].code != 0 ? d->rr[i].code : 550, d->rr[i].reply,
			                 status[i], sizeof(status[i]));
			if (status[i][0] == '4')
				snprintf(status[i], sizeof(status[i]), "5.0.0");
			if (d->rr[i].code == 0 && strstr(why, "REQUIRETLS") != NULL)
				snprintf(status[i], sizeof(status[i]), "5.7.30");
			if (d->rr[i].code == 0 && d->perm_status != NULL)
				snprintf(status[i], sizeof(status[i]), "%s", d->perm_status);
		}
		o->status = st;
		if (st == 0)
			o->next_attempt =
			    now + relay_backoff(attempts, rc->retry_initial, rc->retry_max);
		log_event(st == 1 ? LOGL_INFO : LOGL_WARN,
		          "proto=relay event=%s queue=%" PRId64 " rcpt=%s host=%s attempt=%u%s%s%s",
		          st == 1   ? "delivered"
		          : st == 2 ? "failed"
		                    : "deferred",
		          d->q.id, d->q.rcpts[i].address, d->host[0] ? d->host : "-", attempts,
		          o->error ? " error=\"" : "", o->error ? o->error : "",
		          o->error ? "\"" : "");
		if (st == 2 && relay_dsn_wanted(d->q.rcpts[i].notify)) {
			dr[n_dsn].address = d->q.rcpts[i].address;
			dr[n_dsn].orcpt = d->q.rcpts[i].orcpt;
			dr[n_dsn].status = status[i];
			dr[n_dsn].diagnostic = o->error != NULL ? o->error : "failed";
			dr[n_dsn].remote_mta = answered && d->rr[i].code != 0 ? d->host : NULL;
			n_dsn++;
		}
	}
	d->rep.queue_id = d->q.id;
	d->rep.outcomes = d->outs;
	d->rep.n_outcomes = d->q.n_rcpts;
	/* Never bounce a bounce: the null sender gets no DSN (the store checks it too). */
	if (n_dsn > 0 && d->q.sender[0] != '\0')
		build_dsn(d, dr, n_dsn, now);
	/* The report borrows o->error strings: copy those that point into our arrays. */
	for (size_t i = 0; i < d->q.n_rcpts; i++)
		if (d->outs[i].error != NULL)
			d->outs[i].error = xstrdup(d->outs[i].error);
	free(dr);
	free(status);
	free(gave);
	int rcode = store_queue_report(r->store, &d->rep, report_cb, d);
	if (rcode < 0) {
		log_event(LOGL_ERROR,
		          "proto=relay event=report_failed queue=%" PRId64 " error=\"%s\"", d->q.id,
		          store_strerror(rcode));
		relay_delivery_free(d);
	}
}
