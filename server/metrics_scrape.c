/*
 * /metrics: the registry's counters and the values known only at scrape time
 * (metrics_scrape.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/metrics_scrape.h"
#include "server/services.h"
#include "server/server_private.h"
#include "server/tls.h"
#include "storage/store.h"

struct scrape {
	struct conn *c;
	metrics_scrape_cb *cb;
	void *ctx;
};

/* Resident set size from /proc/self/statm (its second field, in pages); 0 if unknown. */
static double resident_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long long size = 0, rss = 0;
	if (f == NULL)
		return 0;
	int n = fscanf(f, "%llu %llu", &size, &rss);
	fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	return n == 2 && page > 0 ? (double)rss * (double)page : 0;
}

static const enum cfg_protocol protos[] = {CFG_PROTO_SUBMISSION, CFG_PROTO_SMTP,
                                           CFG_PROTO_IMAP,       CFG_PROTO_POP3,
                                           CFG_PROTO_HTTPS,      CFG_PROTO_GATEWAY};
#define N_PROTOS (sizeof(protos) / sizeof(protos[0]))

/* Connections open now, per entry of protos. */
static void count_connections(struct server *srv, unsigned count[N_PROTOS])
{
	memset(count, 0, N_PROTOS * sizeof(count[0]));
	for (struct conn *c = srv->conns; c != NULL; c = c->next)
		for (size_t i = 0; i < N_PROTOS; i++)
			if (c->listener->cfg->protocol == protos[i])
				count[i]++;
}

static void fmt_connections(struct buf *o, struct server *srv)
{
	unsigned count[N_PROTOS];
	count_connections(srv, count);
	for (size_t i = 0; i < N_PROTOS; i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "protocol=\"%s\"", cfg_protocol_name(protos[i]));
		metrics_fmt_value(o, "sealmail_connections_open",
		                  i == 0 ? "Connections open now, by protocol." : NULL, "gauge",
		                  labels, count[i]);
	}
}

static void fmt_dates(struct buf *o, struct server *srv)
{
	time_t now = time(NULL);
	struct crl_mark mark;
	time_t next_update = (time_t)-1;
	if (srv->tls != NULL && tls_ctx_crl_mark(srv->tls, &mark, &next_update) &&
	    next_update != (time_t)-1)
		metrics_fmt_value(o, "sealmail_crl_next_update_seconds",
		                  "Seconds until the CRL's nextUpdate (negative: passed; "
		                  "client certificates are then refused).",
		                  "gauge", NULL, (double)(next_update - now));
	time_t not_after = srv->tls != NULL ? tls_ctx_cert_not_after(srv->tls) : (time_t)-1;
	if (not_after != (time_t)-1)
		metrics_fmt_value(o, "sealmail_server_certificate_expiry_seconds",
		                  "Seconds until the server certificate expires.", "gauge", NULL,
		                  (double)(not_after - now));
}

static void summary_got(void *ctx, int rc, const struct store_queue_summary *res)
{
	struct scrape *sc = ctx;
	struct conn *c = sc->c;
	if (!conn_release(c)) {
		sc->cb(sc->ctx, -ECONNRESET, NULL);
		free(sc);
		return;
	}
	struct server *srv = c->server;
	struct buf o;
	buf_init(&o, 4 * 1024 * 1024);
	metrics_format(&o);
	fmt_connections(&o, srv);
	metrics_fmt_value(&o, "sealmail_store_up", "1 when the store answered this scrape.",
	                  "gauge", NULL, rc == 0 ? 1 : 0);
	if (rc == 0) {
		metrics_fmt_value(&o, "sealmail_queue_messages", "Messages in the relay queue.",
		                  "gauge", NULL, (double)res->messages);
		metrics_fmt_value(&o, "sealmail_queue_recipients",
		                  "Relay queue recipients not delivered or failed yet.", "gauge",
		                  NULL, (double)res->recipients);
		int64_t age = res->oldest != 0 ? (int64_t)time(NULL) - res->oldest : 0;
		metrics_fmt_value(&o, "sealmail_queue_oldest_age_seconds",
		                  "Age of the oldest message in the relay queue (0 when empty).",
		                  "gauge", NULL, (double)(age > 0 ? age : 0));
	}
	metrics_fmt_value(&o, "process_resident_memory_bytes", "Resident memory of sealmaild.",
	                  "gauge", NULL, resident_bytes());
	fmt_dates(&o, srv);
	sc->cb(sc->ctx, 0, &o);
	buf_free(&o);
	free(sc);
}

int server_status_write(struct server *srv)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	buf_printf(&o, "pid %ld\nstarted %lld\n", (long)getpid(), (long long)srv->started);
	for (size_t i = 0; i < srv->n_listeners; i++) {
		const struct listener *l = &srv->listeners[i];
		buf_printf(&o, "listener %s %s %s %u %s %s\n", cfg_protocol_name(l->cfg->protocol),
		           cfg_tls_mode_name(l->cfg->tls), l->cfg->address, l->port,
		           cfg_client_cert_name(l->cfg->client_certificate),
		           l->open ? "open" : "closed");
	}
	unsigned count[N_PROTOS];
	count_connections(srv, count);
	for (size_t i = 0; i < N_PROTOS; i++)
		buf_printf(&o, "sessions %s %u\n", cfg_protocol_name(protos[i]), count[i]);
	struct crl_mark mark;
	time_t next_update = (time_t)-1;
	if (srv->tls != NULL && tls_ctx_crl_mark(srv->tls, &mark, &next_update) &&
	    next_update != (time_t)-1)
		buf_printf(&o, "crl_next_update %lld\n", (long long)next_update);
	time_t not_after = srv->tls != NULL ? tls_ctx_cert_not_after(srv->tls) : (time_t)-1;
	if (not_after != (time_t)-1)
		buf_printf(&o, "certificate_not_after %lld\n", (long long)not_after);
	char *tmp = xasprintf("%s/status.tmp", srv->cfg->data_dir);
	char *path = xasprintf("%s/status", srv->cfg->data_dir);
	int rc = 0;
	FILE *f = fopen(tmp, "we");
	if (f == NULL || fwrite(o.data, 1, o.len, f) != o.len || fclose(f) != 0 ||
	    rename(tmp, path) < 0)
		rc = -errno;
	if (f == NULL)
		rc = -errno;
	buf_free(&o);
	free(tmp);
	free(path);
	return rc;
}

void server_metrics_scrape(struct conn *c, metrics_scrape_cb *cb, void *ctx)
{
	struct scrape *sc = xcalloc(1, sizeof(*sc));
	sc->c = c;
	sc->cb = cb;
	sc->ctx = ctx;
	conn_hold(c);
	struct store *st = c->server->services != NULL ? c->server->services->store : NULL;
	if (st == NULL || store_queue_summary(st, summary_got, sc) < 0)
		summary_got(sc, -EIO, NULL);
}
