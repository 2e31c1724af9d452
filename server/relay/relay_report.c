/*
 * The end of a delivery (relay_runner.h): every recipient's outcome goes to the store in one
 * transaction, with a DSN (RFC 3464, relay_dsn.c) to the sender for those that failed for
 * good or gave up. Recipients whose NOTIFY asks for them get a "relayed" report when the
 * peer that took them does not speak DSN (RFC 3461 5.2.2, 6.2.3.3; a DSN peer reports
 * itself) and a "delayed" one at their first deferral (the stored attempt count is 0): one
 * report per action, sent once the outcomes are stored (relay_notice.c).
 * A temporary failure gets the next attempt from the back-off; when every
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
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/relay/relay_notice.h"
#include "server/relay/relay_private.h"
#include "server/relay/relay_runner.h"
#include "storage/store.h"

static void report_cb(void *ctx, int rc, struct store_queue_reported *res)
{
	struct relay_delivery *d = ctx;
	struct relay *r = d->relay;
	if (rc < 0 && rc != -ENOENT)
		log_event(LOGL_ERROR,
		          "proto=relay event=report_failed queue=%" PRId64 " error=\"%s\"", d->q.id,
		          store_strerror(rc));
	/* Only when the outcome is stored: a failed report means the attempt is made again
	 * (and reported then), a deleted entry wants no more reports. */
	if (rc == 0) {
		relay_notice_send(r->store, r->cfg, d->q.sender, &d->notice[0], "delayed");
		relay_notice_send(r->store, r->cfg, d->q.sender, &d->notice[1], "relayed");
	}
	relay_delivery_free(d);
}

/* Formats the report of one kind for rcpts into out (initialised here). */
static void build_dsn(struct relay_delivery *d, enum relay_dsn_action kind,
                      const struct relay_dsn_rcpt *rcpts, size_t n, int64_t now, struct buf *out)
{
	struct relay *r = d->relay;
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "sealmail-dsn-%" PRId64 "-%" PRId64 "-%u-%08x",
	         d->q.id, now, (unsigned)kind, (unsigned)uv_hrtime());
	struct relay_dsn dsn = {
	    .kind = kind,
	    .reporting_mta = r->cfg->hostname,
	    .sender = d->q.sender,
	    .envid = d->q.envid,
	    /* RFC 8689 5: the bounce of a REQUIRETLS message carries its headers only. */
	    .full = !d->q.requiretls && d->q.ret != NULL && strcasecmp(d->q.ret, "FULL") == 0,
	    .arrival = d->q.created,
	    .now = now,
	    .will_retry_until = d->q.created + (int64_t)r->cfg->relay.give_up,
	    .rcpts = rcpts,
	    .n_rcpts = n,
	    .original = (const char *)d->head,
	    .original_len = d->head_len,
	    .original_complete = d->head_len == d->total,
	    .boundary = boundary,
	};
	const char *at = strrchr(d->q.sender, '@');
	dsn.return_path = at != NULL && cfg_is_local_domain(r->cfg, at + 1, strlen(at + 1));
	buf_free(out);
	buf_init(out, r->cfg->limits.message_size);
	if (relay_dsn_format(&dsn, out) < 0) {
		/* Too big with the whole message: headers only. */
		buf_free(out);
		buf_init(out, r->cfg->limits.message_size);
		dsn.full = false;
		relay_dsn_format(&dsn, out);
	}
}

/* The recipient's DSN entry for action: status, and the reply (or reason) behind it. */
static void dsn_rcpt(struct relay_delivery *d, size_t i, enum relay_dsn_action action,
                     const char *status, const char *diagnostic, bool answered,
                     struct relay_dsn_rcpt *out)
{
	*out = (struct relay_dsn_rcpt){
	    .address = d->q.rcpts[i].address,
	    .orcpt = d->q.rcpts[i].orcpt,
	    .action = action,
	    .status = status,
	    .diagnostic = diagnostic,
	    .remote_mta = answered && d->rr[i].code != 0 ? d->host : NULL,
	};
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
	/* Per action (enum relay_dsn_action), the recipients to report. */
	enum { N_ACTIONS = RELAY_DSN_RELAYED + 1 };
	struct relay_dsn_rcpt *dr[N_ACTIONS];
	size_t n_dsn[N_ACTIONS] = {0};
	for (size_t k = 0; k < N_ACTIONS; k++)
		dr[k] = xcalloc(d->q.n_rcpts, sizeof(*dr[k]));
	char(*status)[16] = xcalloc(d->q.n_rcpts, sizeof(*status));
	char(*gave)[RELAY_REPLY_MAX + 64] = xcalloc(d->q.n_rcpts, sizeof(*gave));
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
		metrics_inc(METRIC_MESSAGES,
		            st == 1   ? "relayed"
		            : st == 2 ? "bounced"
		                      : "deferred",
		            NULL, NULL);
		log_event(st == 1 ? LOGL_INFO : LOGL_WARN,
		          "proto=relay event=%s queue=%" PRId64 " rcpt=%s host=%s attempt=%u%s%s%s",
		          st == 1   ? "delivered"
		          : st == 2 ? "failed"
		                    : "deferred",
		          d->q.id, d->q.rcpts[i].address, d->host[0] ? d->host : "-", attempts,
		          o->error ? " error=\"" : "", o->error ? o->error : "",
		          o->error ? "\"" : "");
		enum relay_dsn_action act = RELAY_DSN_FAILED;
		if (st == 1) {
			/* A DSN peer got NOTIFY and reports from now on (RFC 3461 5.2.2). */
			if (d->sess.caps & RELAY_CAP_DSN)
				continue;
			act = RELAY_DSN_RELAYED;
			snprintf(status[i], sizeof(status[i]), "2.0.0");
		} else if (st == 0) {
			/* Once: at the first deferral of this recipient. */
			if (d->q.rcpts[i].attempts != 0)
				continue;
			act = RELAY_DSN_DELAYED;
			relay_dsn_status(d->rr[i].code != 0 ? d->rr[i].code : 451, d->rr[i].reply,
			                 status[i], sizeof(status[i]));
			if (status[i][0] != '4')
				snprintf(status[i], sizeof(status[i]), "4.0.0");
		}
		if (!relay_dsn_wanted(d->q.rcpts[i].notify, act))
			continue;
		const char *diag = o->error != NULL ? o->error : st == 2 ? "failed" : NULL;
		if (st == 1 && d->rr[i].reply[0] != '\0')
			diag = d->rr[i].reply;
		dsn_rcpt(d, i, act, status[i], diag, answered, &dr[act][n_dsn[act]++]);
	}
	d->rep.queue_id = d->q.id;
	d->rep.outcomes = d->outs;
	d->rep.n_outcomes = d->q.n_rcpts;
	/* Never bounce a bounce: the null sender gets no DSN (the store checks it too). The
	 * failures go with the outcomes, in their transaction; the other kinds after it. */
	if (d->q.sender[0] != '\0') {
		if (n_dsn[RELAY_DSN_FAILED] > 0) {
			const char *at = strrchr(d->q.sender, '@');
			build_dsn(d, RELAY_DSN_FAILED, dr[RELAY_DSN_FAILED],
			          n_dsn[RELAY_DSN_FAILED], now, &d->dsn);
			d->rep.dsn = d->dsn.data;
			d->rep.dsn_len = d->dsn.len;
			d->rep.dsn_local =
			    at != NULL && cfg_is_local_domain(r->cfg, at + 1, strlen(at + 1));
		}
		if (n_dsn[RELAY_DSN_DELAYED] > 0)
			build_dsn(d, RELAY_DSN_DELAYED, dr[RELAY_DSN_DELAYED],
			          n_dsn[RELAY_DSN_DELAYED], now, &d->notice[0]);
		if (n_dsn[RELAY_DSN_RELAYED] > 0)
			build_dsn(d, RELAY_DSN_RELAYED, dr[RELAY_DSN_RELAYED],
			          n_dsn[RELAY_DSN_RELAYED], now, &d->notice[1]);
	}
	/* The report borrows o->error strings: copy those that point into our arrays. */
	for (size_t i = 0; i < d->q.n_rcpts; i++)
		if (d->outs[i].error != NULL)
			d->outs[i].error = xstrdup(d->outs[i].error);
	for (size_t k = 0; k < N_ACTIONS; k++)
		free(dr[k]);
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
