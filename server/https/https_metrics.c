/*
 * GET /metrics: the Prometheus text of the server (docs/metrics.md), to the addresses and
 * client certificates metrics.allow_from and metrics.allow_certificates let in; 403 for
 * everyone else. The scrape itself is the server's (services->metrics_scrape): one store
 * read for the queue, the rest from memory.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/https/https_private.h"
#include "server/services.h"

#define METRICS_TYPE    "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_HEADERS "Cache-Control: no-store\r\n"

static void metrics_reply(struct https_session *s, void *arg)
{
	struct buf *text = arg;
	https_reply(s, 200, METRICS_TYPE, text->data != NULL ? text->data : "", text->len,
	            METRICS_HEADERS, false);
	buf_free(text);
	free(text);
}

static void metrics_failed(struct https_session *s, void *arg)
{
	(void)arg;
	https_reply_error(s, 503, false);
}

static void metrics_scraped(void *ctx, int rc, struct buf *text)
{
	struct conn *c = ctx;
	if (rc < 0 || text == NULL) {
		https_async_end(c, metrics_failed, NULL); /* ends the step in every case */
		return;
	}
	struct buf *copy = xcalloc(1, sizeof(*copy));
	*copy = *text; /* taken: the caller frees an emptied buffer */
	memset(text, 0, sizeof(*text));
	if (!https_async_end(c, metrics_reply, copy)) {
		buf_free(copy);
		free(copy);
	}
}

void https_metrics(struct https_session *s, const struct https_request *req)
{
	struct conn *c = https_conn(s);
	struct services *sv = conn_services(c);
	(void)req;
	const char *identity = conn_cert_identity(c);
	if (!cfg_metrics_allowed(conn_config(c), conn_peer_ip(c), identity)) {
		static const char no[] =
		    "403 Forbidden: this address or certificate may not read "
		    "/metrics (metrics.allow_from, metrics.allow_certificates)\n";
		https_reply(s, 403, "text/plain; charset=utf-8", no, sizeof(no) - 1, NULL, false);
		return;
	}
	if (sv == NULL || sv->metrics_scrape == NULL) {
		https_reply_error(s, 503, false);
		return;
	}
	https_async_begin(s);
	sv->metrics_scrape(c, metrics_scraped, c);
}
