#ifndef SEALMAIL_METRICS_SCRAPE_H
#define SEALMAIL_METRICS_SCRAPE_H
/*
 * The text of a /metrics scrape (Prometheus exposition format 0.0.4): the counters of
 * common/metrics.h, then what is known only when asked: connections open per protocol,
 * the relay queue's length and oldest message (one store read), resident memory, and the
 * seconds left until the CRL's nextUpdate and until the server certificate expires.
 */
#include "common/buf.h"

struct conn;

/* text is the whole scrape; the callee may take it (buf_free'd after the call). rc < 0
 * only when the connection closed meanwhile (nothing is to be sent). A store that does
 * not answer gives sealmail_store_up 0, not an error. */
typedef void metrics_scrape_cb(void *ctx, int rc, struct buf *text);

struct server;
/* SIGUSR2 (sealctl status): writes data_dir/status (atomically) with what only the running
 * server knows: its pid and start, each listener with its bound port, the sessions open
 * per protocol, the loaded CRL's nextUpdate and the server certificate's expiry, one
 * "key values..." line each. 0 or a negative errno. */
int server_status_write(struct server *srv);

/* Starts a scrape for the server c belongs to; cb runs on the loop thread, later. The
 * connection is held until then. */
void server_metrics_scrape(struct conn *c, metrics_scrape_cb *cb, void *ctx);

#endif
