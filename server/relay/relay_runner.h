#ifndef SEALMAIL_RELAY_RUNNER_H
#define SEALMAIL_RELAY_RUNNER_H
/*
 * The relay runner's own state, shared by its two files: relay.c (taking work, next hops,
 * driving the SMTP session over one server/outconn.h connection per hop) and
 * relay_report.c (outcomes and DSNs). Nothing outside server/relay/ includes this.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "server/relay/relay_hops.h"
#include "server/relay/relay_private.h"
#include "storage/store.h"

struct config;
struct outconn;
struct tls_client_ctx;

struct relay_delivery;

struct relay {
	uv_loop_t *loop;
	const struct config *cfg;
	struct store *store;
	uv_timer_t tick;
	bool taking; /* a store_queue_due is in flight */
	bool stopping;
	bool tick_closed;
	struct tls_client_ctx *sys_ctx;
	struct tls_client_ctx *mx_ctx;     /* relay.mx_ca, else NULL (sys_ctx) */
	struct tls_client_ctx **route_ctx; /* per route with a ca, else NULL */
	struct relay_dns *dns;
	struct relay_delivery *active;
	unsigned n_active;
};

struct relay_delivery {
	struct relay *relay;
	struct relay_delivery *prev, *next;
	struct store_queue_entry q; /* this delivery's recipients only; owned */
	char *domain;
	const char *route_host; /* the route's host (borrowed from the config), or NULL: MX */
	char host[256];         /* the host being tried: its certificate must name it */
	uint16_t port;
	enum cfg_route_tls policy;
	struct tls_client_ctx *tctx;
	struct relay_rcpt *rr;
	struct relay_params params;
	struct relay_session sess;
	bool sess_init;
	struct relay_hops *hops; /* once resolved */
	size_t hop;              /* the one being tried */
	uint64_t hops_started;   /* uv_now() at the first connect */
	const char *perm_status; /* a failure for good before any connection: its DSN status */
	char hop_why[160];       /* this hop's failure, short, when the session's names it */
	char tried[1024];        /* "host [addr]: why; ..." of the hops that failed */
	char summary[1200];      /* every hop failed: the last error, else "" */
	unsigned char *head;     /* the first RELAY_CHUNK bytes of the message */
	size_t head_len;
	uint64_t total;
	struct outconn *oc; /* this hop's connection, until its closed callback ran */
	bool switching;     /* the failed hop's connection is closing; the next connects in its
	                     * closed callback */
	uint64_t body_off;
	struct relay_dotstuff ds;
	bool body_reading;
	bool closing;
	bool reported;
	char reason[300];
	struct store_queue_outcome *outs;
	struct store_queue_report rep;
	struct buf dsn;       /* the failures' report, stored with the outcomes */
	struct buf notice[2]; /* the delayed and relayed reports, sent after them */
};

/* relay.c: unlinks and frees d (its report is stored, or never will be). */
void relay_delivery_free(struct relay_delivery *d);
/* relay_report.c: every recipient's outcome to the store, with a DSN for those that failed
 * for good; frees d when the store has it (at once while the relay stops: the lease brings
 * the entry back at the next start). Once per delivery, after its handles closed. */
void relay_report(struct relay_delivery *d);

#endif
