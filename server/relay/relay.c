/*
 * The relay runner (relay.h). One struct relay_delivery per (queue entry, recipient
 * domain): read the head of the message, resolve the next hops (relay_hops.c: a route's
 * addresses, or the MX hosts' by preference, with c-ares on this loop), connect, drive
 * relay_session over plaintext then TLS, stream the content dot-stuffed, and record the
 * outcome of every recipient with its DSN in one store transaction.
 *
 * RFC 5321 5.1 fallback: while nothing of the envelope has gone out, a failed hop
 * (connection refused or timed out, a 4xx/5xx greeting, no STARTTLS, a failed handshake or
 * verification) closes its connection and the next address is tried on a new one; the
 * session starts over, so a host that failed TLS never sees MAIL FROM. Only when every
 * hop failed is the attempt deferred, with every hop's reason in the last error.
 *
 * The connection itself (connect timeout, lines, STARTTLS, back-pressure) is
 * server/outconn.c, one per hop; a delivery is freed only after its connection's closed
 * callback ran and its store report completed.
 */
#include "server/relay/relay.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/relay/relay_dns.h"
#include "server/relay/relay_hops.h"
#include "server/relay/relay_private.h"
#include "server/relay/relay_runner.h"
#include "server/outconn.h"
#include "server/services.h"
#include "server/tls_client.h"
#include "storage/store.h"

#define RELAY_TICK_MS    2000
#define RELAY_LEASE_S    900 /* longer than any delivery: then it is due again */
#define RELAY_BATCH      32
#define RELAY_MAX_ACTIVE 64
#define RELAY_TIMEOUT_MS 60000 /* per reply (RFC 5321 4.5.3.2 allows longer; we retry) */
#define RELAY_CONNECT_MS 30000 /* per address: then the next one */
/* No new hop is tried after this long, so a delivery ends well within its lease. */
#define RELAY_HOPS_TIME_MS (10 * 60 * 1000)
#define RELAY_CHUNK        (256 * 1024)
#define RELAY_LINE_MAX     2048
#define RELAY_WRITE_LIMIT  (1024 * 1024)

/* ----- Lifetime ----- */

static void relay_maybe_free(struct relay *r)
{
	if (!r->stopping || r->n_active > 0 || !r->tick_closed || r->taking)
		return;
	tls_client_ctx_free(r->sys_ctx);
	tls_client_ctx_free(r->mx_ctx);
	for (size_t i = 0; i < r->cfg->relay.n_routes; i++)
		tls_client_ctx_free(r->route_ctx[i]);
	free(r->route_ctx);
	free(r);
}

void relay_delivery_free(struct relay_delivery *d)
{
	struct relay *r = d->relay;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		r->active = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	r->n_active--;
	if (d->sess_init)
		relay_session_free(&d->sess);
	buf_free(&d->dsn);
	buf_free(&d->notice[0]);
	buf_free(&d->notice[1]);
	for (size_t i = 0; i < d->q.n_rcpts; i++) {
		free(d->q.rcpts[i].address);
		free(d->q.rcpts[i].notify);
		free(d->q.rcpts[i].orcpt);
		free(d->q.rcpts[i].last_error);
	}
	free(d->q.rcpts);
	free(d->q.sender);
	free(d->q.ret);
	free(d->q.envid);
	free(d->domain);
	free(d->rr);
	free(d->head);
	relay_hops_free(d->hops);
	/* delivery_report copied every error string for the store job: they are ours. */
	for (size_t i = 0; d->outs != NULL && i < d->q.n_rcpts; i++)
		free((char *)d->outs[i].error);
	free(d->outs);
	free(d);
	relay_maybe_free(r);
}

/* ----- Connection ----- */

static void hop_connect(struct relay_delivery *d);

/* Whether callbacks of the connection must be ignored: it is being closed. */
static bool delivery_idle(const struct relay_delivery *d)
{
	return d->closing || d->switching;
}

static void conn_closed(void *ctx)
{
	struct relay_delivery *d = ctx;
	d->oc = NULL;
	if (d->switching && !d->closing) {
		/* Every callback of the old connection has run (it is freed): the next hop
		 * gets a new one. */
		d->switching = false;
		hop_connect(d);
		return;
	}
	d->switching = false;
	/* A content read in flight finishes the delivery itself (body_read_cb). */
	if (!d->body_reading)
		relay_report(d);
}

/* Records why the current hop failed, for the log and for the last error. */
static void hop_note(struct relay_delivery *d, bool last)
{
	const struct relay_hop *h = &d->hops->v[d->hop];
	const char *why = d->hop_why[0] != '\0' ? d->hop_why : d->sess.error;
	bool named = strcmp(h->host, h->addr_text) != 0;
	size_t len = strlen(d->tried);
	if (len + 4 < sizeof(d->tried))
		snprintf(d->tried + len, sizeof(d->tried) - len, "%s%s%s%s%s: %s",
		         len > 0 ? "; " : "", h->host, named ? " [" : "", named ? h->addr_text : "",
		         named ? "]" : "", why);
	log_event(LOGL_WARN,
	          "proto=relay event=hop_failed queue=%" PRId64 " host=%s address=%s port=%u "
	          "hop=%zu/%zu error=\"%s\"%s%s",
	          d->q.id, h->host, h->addr_text, d->port, d->hop + 1, d->hops->n, why,
	          last ? "" : " next=", last ? "" : d->hops->v[d->hop + 1].host);
	d->hop_why[0] = '\0';
}

/*
 * The current hop failed: when RFC 5321 5.1 allows another and one is left, closes this
 * connection (conn_closed connects the next) and returns true. When the last one failed
 * after others, the last error lists them all.
 */
static bool hop_next(struct relay_delivery *d)
{
	struct relay *r = d->relay;
	if (r->stopping || d->hops == NULL || d->oc == NULL ||
	    !relay_session_may_try_next(&d->sess))
		return false;
	bool more =
	    d->hop + 1 < d->hops->n && uv_now(r->loop) - d->hops_started < RELAY_HOPS_TIME_MS;
	hop_note(d, !more);
	if (!more) {
		if (d->hop > 0 || d->hops->skipped[0] != '\0')
			snprintf(d->summary, sizeof(d->summary),
			         "%zu of %zu address%s tried%s%s: %s%s%s", d->hop + 1, d->hops->n,
			         d->hops->n == 1 ? "" : "es",
			         d->hops->mx ? " (MX hosts by preference)" : "",
			         d->hop + 1 < d->hops->n ? ", out of time" : ", all failed",
			         d->tried, d->hops->skipped[0] != '\0' ? "; " : "",
			         d->hops->skipped);
		return false;
	}
	d->hop++;
	d->switching = true;
	outconn_close(d->oc);
	return true;
}

/* Ends the delivery, or only this hop's connection when another hop may be tried: closes
 * what is open; the report runs when the connection is closed. */
static void delivery_end(struct relay_delivery *d, const char *reason)
{
	if (delivery_idle(d))
		return;
	if (reason != NULL)
		relay_session_abort(&d->sess, reason);
	if (hop_next(d))
		return;
	d->closing = true;
	if (d->oc == NULL) {
		relay_report(d);
		return;
	}
	outconn_close(d->oc);
}

/* The server stops: the delivery ends whatever it was doing (between two hops too). */
static void delivery_stop(struct relay_delivery *d)
{
	if (d->closing)
		return;
	if (!d->switching) {
		delivery_end(d, "server stopping");
		return;
	}
	/* The old connection is closing: conn_closed sees closing and connects nothing. */
	d->closing = true;
	relay_session_abort(&d->sess, "server stopping");
}

/* The connection failed: the last error says in which step ("connection closed by the
 * peer during the TLS handshake"), which is what an operator needs from queue list. */
static void delivery_lost(struct relay_delivery *d, const char *what)
{
	if (delivery_idle(d))
		return;
	snprintf(d->reason, sizeof(d->reason), "%s during %s", what,
	         relay_session_state_name(&d->sess));
	delivery_end(d, d->reason);
}

/* Sends plaintext: through TLS once it is up. */
static void send_plain(struct relay_delivery *d, const void *data, size_t len)
{
	if (d->oc == NULL || delivery_idle(d))
		return;
	outconn_write(d->oc, data, len);
}

static void flush_session(struct relay_delivery *d)
{
	send_plain(d, d->sess.out.data, d->sess.out.len);
	buf_reset(&d->sess.out);
}

static void body_read_cb(void *ctx, int rc, struct store_content *res);

static void body_next(struct relay_delivery *d)
{
	if (d->closing)
		return;
	struct buf out;
	if (d->body_off >= d->total) {
		buf_init(&out, 16);
		relay_dotstuff_finish(&d->ds, &out);
		send_plain(d, out.data, out.len);
		buf_free(&out);
		relay_session_body_done(&d->sess);
		return;
	}
	if (d->body_off < d->head_len) {
		buf_init(&out, (size_t)-1);
		relay_dotstuff(&d->ds, d->head + d->body_off, d->head_len - d->body_off, &out);
		send_plain(d, out.data, out.len);
		buf_free(&out);
		d->body_off = d->head_len;
		body_next(d);
		return;
	}
	d->body_reading = true;
	int rc = store_queue_content_read(d->relay->store, d->q.content_id, d->body_off,
	                                  RELAY_CHUNK, body_read_cb, d);
	if (rc < 0) {
		d->body_reading = false;
		delivery_end(d, "cannot read the queued message");
	}
}

static void body_read_cb(void *ctx, int rc, struct store_content *res)
{
	struct relay_delivery *d = ctx;
	d->body_reading = false;
	if (d->closing) {
		if (d->oc == NULL && !d->reported)
			relay_report(d);
		return;
	}
	if (rc < 0 || res->len == 0) {
		delivery_end(d, "cannot read the queued message");
		return;
	}
	struct buf out;
	buf_init(&out, (size_t)-1);
	relay_dotstuff(&d->ds, res->data, res->len, &out);
	send_plain(d, out.data, out.len);
	buf_free(&out);
	d->body_off += res->len;
	if (d->closing)
		return;
	/* At most about RELAY_WRITE_LIMIT of a message in memory: a slow peer slows the
	 * reading, the writes go on (conn_drained reads the next chunk). */
	if (outconn_queued(d->oc) > RELAY_WRITE_LIMIT) {
		outconn_when_drained(d->oc, RELAY_WRITE_LIMIT / 2);
		return;
	}
	body_next(d);
}

static void conn_drained(void *ctx)
{
	body_next(ctx);
}

static void conn_line(void *ctx, const char *line, size_t len)
{
	struct relay_delivery *d = ctx;
	if (delivery_idle(d))
		return;
	enum relay_action a = relay_session_line(&d->sess, line, len);
	flush_session(d);
	switch (a) {
	case RELAY_ACT_CONTINUE:
		break;
	case RELAY_ACT_START_TLS:
		/* outconn drops whatever came with or after the 220 (CVE-2011-0411's client
		 * side). */
		outconn_start_tls(d->oc, d->tctx, d->host, d->policy == CFG_ROUTE_TLS_VERIFY);
		break;
	case RELAY_ACT_SEND_BODY:
		body_next(d);
		break;
	case RELAY_ACT_DONE:
	case RELAY_ACT_FAIL:
		delivery_end(d, NULL);
		break;
	}
}

static void conn_tls_ready(void *ctx)
{
	struct relay_delivery *d = ctx;
	const struct tls_client *t = outconn_tls(d->oc);
	log_event(LOGL_INFO,
	          "proto=relay event=tls queue=%" PRId64 " host=%s version=%s cipher=%s "
	          "verified=%s",
	          d->q.id, d->host, tls_client_version(t), tls_client_cipher(t),
	          tls_client_verified(t) ? "yes" : "no");
	relay_session_tls_done(&d->sess);
	flush_session(d);
}

/* A failed connect: the hop's short reason for the summary, the long one for the session
 * (which is the last error when this was the only hop). */
static void connect_failed(struct relay_delivery *d, const char *why)
{
	const struct relay_hop *h = &d->hops->v[d->hop];
	char reason[sizeof(d->hop_why) + 320];
	if (strcmp(h->host, h->addr_text) != 0)
		snprintf(reason, sizeof(reason), "cannot connect to %s [%s] port %u: %s", h->host,
		         h->addr_text, d->port, why);
	else
		snprintf(reason, sizeof(reason), "cannot connect to %s port %u: %s", h->host,
		         d->port, why);
	snprintf(d->hop_why, sizeof(d->hop_why), "cannot connect: %s", why);
	delivery_end(d, reason);
}

static void conn_failed(void *ctx, enum outconn_failure what, const char *reason)
{
	struct relay_delivery *d = ctx;
	switch (what) {
	case OUTCONN_CONNECT:
		connect_failed(d, reason);
		break;
	case OUTCONN_LOST:
		delivery_lost(d, reason);
		break;
	case OUTCONN_ERROR:
		delivery_end(d, reason);
		break;
	}
}

/* Connects to hop d->hop with a fresh session and connection: nothing of an earlier hop
 * carries over. */
static void hop_connect(struct relay_delivery *d)
{
	static const struct outconn_ops ops = {
	    .line = conn_line,
	    .tls_ready = conn_tls_ready,
	    .drained = conn_drained,
	    .failed = conn_failed,
	    .closed = conn_closed,
	};
	static const struct outconn_limits lim = {
	    .line_max = RELAY_LINE_MAX,
	    .connect_ms = RELAY_CONNECT_MS,
	    .idle_ms = RELAY_TIMEOUT_MS,
	};
	const struct relay_hop *h = &d->hops->v[d->hop];
	snprintf(d->host, sizeof(d->host), "%s", h->host);
	if (d->hop > 0) {
		relay_session_free(&d->sess);
		relay_session_init(&d->sess, &d->params);
	}
	d->oc = outconn_new(d->relay->loop, &ops, d, &lim);
	outconn_connect(d->oc, (const struct sockaddr *)&h->addr);
}

static void hops_cb(void *ctx, struct relay_hops *hops)
{
	struct relay_delivery *d = ctx;
	struct relay *r = d->relay;
	d->hops = hops;
	switch (hops->result) {
	case RELAY_HOPS_OK:
		break;
	case RELAY_HOPS_CANCELLED:
		delivery_end(d, "server stopping");
		return;
	case RELAY_HOPS_TEMPFAIL:
		delivery_end(d, hops->error);
		return;
	case RELAY_HOPS_PERMFAIL:
		d->perm_status = hops->status;
		relay_session_fail_permanent(&d->sess, hops->error);
		delivery_end(d, NULL);
		return;
	}
	if (r->stopping) {
		delivery_end(d, "server stopping");
		return;
	}
	log_event(LOGL_INFO,
	          "proto=relay event=next_hops queue=%" PRId64 " domain=%s via=%s hops=%zu "
	          "first=%s address=%s port=%u%s%s",
	          d->q.id, d->domain, hops->mx ? "mx" : "route", hops->n, hops->v[0].host,
	          hops->v[0].addr_text, d->port, hops->skipped[0] ? " skipped=" : "",
	          hops->skipped[0] ? "yes" : "");
	d->hops_started = uv_now(r->loop);
	hop_connect(d);
}

static void head_cb(void *ctx, int rc, struct store_content *res)
{
	struct relay_delivery *d = ctx;
	struct relay *r = d->relay;
	if (r->stopping) {
		delivery_end(d, "server stopping");
		return;
	}
	if (rc < 0) {
		delivery_end(d, "cannot read the queued message");
		return;
	}
	d->head = (unsigned char *)res->data;
	d->head_len = res->len;
	d->total = res->total_size;
	res->data = NULL;
	res->len = 0;
	/* The Return-Path: of a copy also delivered here is not handed on: the next server
	 * writes its own at final delivery. */
	size_t skip = relay_return_path_len((const char *)d->head, d->head_len);
	d->body_off = skip;
	if (skip > 0 && d->sess.p.size >= skip)
		d->sess.p.size -= skip;
	if (!d->q.requiretls && relay_tls_optional_header((const char *)d->head, d->head_len))
		/* RFC 8689 5: TLS-Required: No lifts TLS policies such as MTA-STS, which we do
		 * not apply; the route's own policy is the administrator's and still holds. */
		log_event(LOGL_INFO,
		          "proto=relay event=tls_required_no queue=%" PRId64
		          " action=route_policy_applies",
		          d->q.id);
	if (d->policy == CFG_ROUTE_TLS_NONE) {
		if (!relay_plaintext_allowed(&r->cfg->relay, d->host)) {
			delivery_end(d, "route tls: none is only allowed to loopback or a legacy "
			                "gateway");
			return;
		}
		log_event(LOGL_WARN,
		          "proto=relay event=plaintext_delivery queue=%" PRId64 " host=%s port=%u",
		          d->q.id, d->host, d->port);
	}
	struct relay_hops_query hq = {
	    .domain = d->domain,
	    .host = d->route_host,
	    .port = d->port,
	    .self = r->cfg->hostname,
	};
	/* hops_cb may run before this returns: nothing may follow it here. */
	if (relay_hops_resolve(r->dns, &hq, hops_cb, d) < 0)
		delivery_end(d, "server stopping");
}

/* ----- Taking work ----- */

static void delivery_start(struct relay *r, const struct store_queue_entry *q, const char *domain,
                           size_t dlen)
{
	struct relay_delivery *d = xcalloc(1, sizeof(*d));
	d->relay = r;
	d->next = r->active;
	if (r->active != NULL)
		r->active->prev = d;
	r->active = d;
	r->n_active++;
	buf_init(&d->dsn, 16);
	buf_init(&d->notice[0], 16);
	buf_init(&d->notice[1], 16);
	d->domain = xstrndup(domain, dlen);
	for (char *p = d->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	d->q.id = q->id;
	d->q.content_id = q->content_id;
	d->q.size = q->size;
	d->q.sender = xstrdup(q->sender != NULL ? q->sender : "");
	d->q.requiretls = q->requiretls;
	d->q.ret = q->ret != NULL ? xstrdup(q->ret) : NULL;
	d->q.envid = q->envid != NULL ? xstrdup(q->envid) : NULL;
	d->q.created = q->created;
	d->q.rcpts = xcalloc(q->n_rcpts, sizeof(*d->q.rcpts));
	d->rr = xcalloc(q->n_rcpts, sizeof(*d->rr));
	for (size_t i = 0; i < q->n_rcpts; i++) {
		const struct store_queue_rcpt *src = &q->rcpts[i];
		const char *at = strrchr(src->address, '@');
		const char *dom = at != NULL ? at + 1 : "";
		if (strlen(dom) != dlen || strncasecmp(dom, domain, dlen) != 0)
			continue;
		struct store_queue_rcpt *dst = &d->q.rcpts[d->q.n_rcpts];
		*dst = *src;
		dst->address = xstrdup(src->address);
		dst->notify = src->notify != NULL ? xstrdup(src->notify) : NULL;
		dst->orcpt = src->orcpt != NULL ? xstrdup(src->orcpt) : NULL;
		dst->last_error = NULL;
		d->rr[d->q.n_rcpts].address = dst->address;
		d->rr[d->q.n_rcpts].notify = dst->notify;
		d->rr[d->q.n_rcpts].orcpt = dst->orcpt;
		d->q.n_rcpts++;
	}
	const struct cfg_route *route = cfg_route_find(r->cfg, d->domain, strlen(d->domain));
	/* MX hosts: tls verify, against the MX host's name (relay_hops.c, docs/architecture). */
	d->policy = CFG_ROUTE_TLS_VERIFY;
	d->port = r->cfg->relay.mx_port;
	d->tctx = r->mx_ctx != NULL ? r->mx_ctx : r->sys_ctx;
	if (route != NULL) {
		d->route_host = route->host;
		snprintf(d->host, sizeof(d->host), "%s", route->host);
		d->port = route->port;
		d->tctx = r->sys_ctx;
		d->policy = route->tls;
		size_t idx = (size_t)(route - r->cfg->relay.routes);
		if (r->route_ctx[idx] != NULL)
			d->tctx = r->route_ctx[idx];
	}
	d->params = (struct relay_params){
	    .helo = r->cfg->hostname,
	    .tls = d->policy,
	    .tls_verified = d->policy == CFG_ROUTE_TLS_VERIFY,
	    .sender = d->q.sender,
	    .size = d->q.size,
	    .requiretls = d->q.requiretls,
	    .ret = d->q.ret,
	    .envid = d->q.envid,
	    .rcpts = d->rr,
	    .n_rcpts = d->q.n_rcpts,
	};
	relay_session_init(&d->sess, &d->params);
	d->sess_init = true;
	int rc = store_queue_content_read(r->store, d->q.content_id, 0, RELAY_CHUNK, head_cb, d);
	if (rc < 0)
		delivery_end(d, "cannot read the queued message");
}

static void due_cb(void *ctx, int rc, struct store_queue_entries *res)
{
	struct relay *r = ctx;
	r->taking = false;
	if (r->stopping) {
		relay_maybe_free(r);
		return;
	}
	if (rc < 0) {
		log_event(LOGL_ERROR, "proto=relay event=queue_failed error=\"%s\"",
		          store_strerror(rc));
		return;
	}
	for (size_t i = 0; i < res->n; i++) {
		const struct store_queue_entry *q = &res->v[i];
		/* One delivery per recipient domain, each domain once. */
		for (size_t k = 0; k < q->n_rcpts; k++) {
			const char *at = strrchr(q->rcpts[k].address, '@');
			const char *dom = at != NULL ? at + 1 : "";
			bool seen = false;
			for (size_t j = 0; j < k && !seen; j++) {
				const char *at2 = strrchr(q->rcpts[j].address, '@');
				seen = at2 != NULL && strcasecmp(at2 + 1, dom) == 0;
			}
			if (!seen)
				delivery_start(r, q, dom, strlen(dom));
		}
	}
}

static void tick_cb(uv_timer_t *t)
{
	struct relay *r = t->data;
	if (r->stopping || r->taking || r->n_active >= RELAY_MAX_ACTIVE)
		return;
	r->taking = true;
	int rc = store_queue_due(r->store, (int64_t)time(NULL), RELAY_LEASE_S,
	                         RELAY_MAX_ACTIVE - r->n_active, due_cb, r);
	if (rc < 0)
		r->taking = false;
}

static void recover_cb(void *ctx, int rc)
{
	struct relay *r = ctx;
	r->taking = false;
	if (r->stopping) {
		relay_maybe_free(r);
		return;
	}
	tick_cb(&r->tick);
}

int relay_start(uv_loop_t *loop, const struct config *cfg, struct services *sv,
                struct relay **relay_r)
{
	struct relay *r = xcalloc(1, sizeof(*r));
	const char *err = NULL;
	r->loop = loop;
	r->cfg = cfg;
	r->store = sv->store;
	r->route_ctx = xcalloc(cfg->relay.n_routes + 1, sizeof(*r->route_ctx));
	int rc =
	    tls_client_ctx_new(NULL, cfg->relay.certificate, cfg->relay.key, &r->sys_ctx, &err);
	if (rc == 0 && cfg->relay.mx_ca != NULL)
		rc = tls_client_ctx_new(cfg->relay.mx_ca, cfg->relay.certificate, cfg->relay.key,
		                        &r->mx_ctx, &err);
	if (rc == 0)
		rc = relay_dns_new(loop, cfg->relay.dns_servers, cfg->relay.n_dns_servers, &r->dns,
		                   &err);
	for (size_t i = 0; rc == 0 && i < cfg->relay.n_routes; i++) {
		const struct cfg_route *rt = &cfg->relay.routes[i];
		if (rt->ca != NULL)
			rc = tls_client_ctx_new(rt->ca, cfg->relay.certificate, cfg->relay.key,
			                        &r->route_ctx[i], &err);
		if (rt->tls == CFG_ROUTE_TLS_NONE)
			log_event(LOGL_WARN,
			          "proto=relay event=plaintext_route domain=%s host=%s port=%u "
			          "allowed=%s",
			          rt->domain, rt->host, rt->port,
			          relay_plaintext_allowed(&cfg->relay, rt->host) ? "yes" : "no");
	}
	if (rc < 0) {
		log_event(LOGL_ERROR, "event=start_failed reason=\"%s\"", err);
		relay_dns_close(r->dns);
		r->stopping = true;
		r->tick_closed = true;
		relay_maybe_free(r);
		return rc;
	}
	uv_timer_init(loop, &r->tick);
	r->tick.data = r;
	uv_timer_start(&r->tick, tick_cb, RELAY_TICK_MS, RELAY_TICK_MS);
	*relay_r = r;
	r->taking = true;
	if (store_queue_recover(r->store, recover_cb, r) < 0)
		r->taking = false;
	return 0;
}

static void tick_closed(uv_handle_t *h)
{
	struct relay *r = h->data;
	r->tick_closed = true;
	relay_maybe_free(r);
}

void relay_stop(struct relay *r)
{
	if (r == NULL || r->stopping)
		return;
	r->stopping = true;
	uv_close((uv_handle_t *)&r->tick, tick_closed);
	/* Lookups in flight end now (their deliveries with them); the channel's handles close
	 * on the loop. */
	relay_dns_close(r->dns);
	r->dns = NULL;
	for (struct relay_delivery *d = r->active, *next; d != NULL; d = next) {
		next = d->next;
		if (d->oc != NULL)
			delivery_stop(d);
	}
}
