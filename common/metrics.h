#ifndef SEALMAIL_METRICS_H
#define SEALMAIL_METRICS_H
/*
 * The daemon's counters and histograms, formatted in Prometheus' text exposition format
 * (version 0.0.4) for the HTTPS /metrics route. One registry per process; safe from any
 * thread (the store's writer records its commits). Label values are bounded sets chosen
 * by the code (protocol names, mechanisms, command names from the command table), never
 * raw client input, so the number of series stays bounded.
 *
 * Values known only when asked (connections open, queue length, memory, certificate and
 * CRL dates) are not kept here: whoever serves a scrape appends them with
 * metrics_fmt_value after metrics_format.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum metric_id {
	METRIC_CONNECTIONS,              /* counter: protocol */
	METRIC_TLS_HANDSHAKES,           /* counter: protocol, outcome */
	METRIC_LOGINS,                   /* counter: protocol, mechanism, outcome */
	METRIC_MESSAGES,                 /* counter: event (accepted, delivered, relayed, ...) */
	METRIC_IMAP_COMMANDS,            /* counter: command */
	METRIC_STORE_COMMITS,            /* counter */
	METRIC_STORE_COMMITTED_JOBS,     /* counter: writes carried by those commits */
	METRIC_STORE_COMMIT_SECONDS,     /* histogram: COMMIT, fsync included */
	METRIC_IMAP_IDLE,                /* gauge: IMAP sessions in IDLE */
	METRIC_AUDIT_RECORDS,            /* counter: outcome (recorded, refused) */
	METRIC_GATEWAY_SESSIONS,         /* counter: outcome (relayed, backend_failed, ...) */
	METRIC_GATEWAY_BYTES,            /* counter: direction (to_backend, to_client) */
	METRIC_GATEWAY_BACKEND_FAILURES, /* counter: backend connects that failed */
	METRIC__COUNT
};

/* Adds n to the series of id with the label values labels[0..] (as many as the family
 * has labels; NULL when it has none). */
void metrics_add(enum metric_id id, uint64_t n, const char *const *labels);
/* metrics_add with up to three label values, the unused ones NULL. */
void metrics_inc(enum metric_id id, const char *l1, const char *l2, const char *l3);
/* Moves a gauge family without labels up or down. */
void metrics_gauge_add(enum metric_id id, int64_t delta);
/* One observation of a histogram family (seconds). */
void metrics_observe(enum metric_id id, double value);

/* Every family with at least one series, HELP and TYPE lines first. */
void metrics_format(struct buf *o);
/* One sample of a value known at scrape time: "# HELP", "# TYPE" (type "gauge" or
 * "counter") and the line; labels is the inside of {...} already escaped, or NULL. A
 * family of several samples passes help NULL after its first. */
void metrics_fmt_value(struct buf *o, const char *name, const char *help, const char *type,
                       const char *labels, double value);
/* Appends v as a label value: backslash, double quote and newline escaped. */
void metrics_escape(struct buf *o, const char *v);

/* Forgets every series (tests). */
void metrics_reset(void);

#endif
