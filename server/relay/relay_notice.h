#ifndef SEALMAIL_RELAY_NOTICE_H
#define SEALMAIL_RELAY_NOTICE_H
/*
 * DSNs that are not part of a relay queue report (RFC 3461 6.2): the "delivered" report
 * for local recipients that asked NOTIFY=SUCCESS (sent by the SMTP server once the message
 * is stored), the "failed" report on a local copy the store refused after DATA (formatted
 * here, stored by the store with the other copies), and the relay's "relayed" and
 * "delayed" reports (sent once the attempt's
 * outcome is stored). A report goes to the envelope sender: into the INBOX of that user
 * when the sender's domain is local (an unknown user gets none), else into the relay
 * queue with the null sender. The null sender never gets one.
 *
 * Fire and forget on the loop thread: the store's callbacks finish the work, failures are
 * logged, nothing comes back to the caller. A crash between the message's commit and the
 * report's loses the report (an informational one; failures go with the queue report).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct store;
struct config;

/* Sends msg, a complete DSN message, to sender. Takes msg's bytes (msg is left empty);
 * borrows the rest for the call only. kind names the report in log lines. */
void relay_notice_send(struct store *s, const struct config *cfg, const char *sender,
                       struct buf *msg, const char *kind);

struct relay_notice_rcpt {
	const char *address;
	const char *notify; /* DSN NOTIFY or NULL: only those with SUCCESS are reported */
	const char *orcpt;  /* DSN ORCPT as received, or NULL */
};

/* A message delivered into local mailboxes, with its recipients delivered there. */
struct relay_notice_delivery {
	const char *sender; /* "" for the null sender: then nothing is sent */
	const char *envid;  /* DSN ENVID or NULL */
	const char *ret;    /* DSN RET or NULL (headers only) */
	bool requiretls;    /* RFC 8689 5: headers only, whatever RET says */
	int64_t arrival;
	int64_t mailbox_id; /* one stored copy, read back for the original's header */
	uint32_t uid;
	const struct relay_notice_rcpt *rcpts;
	size_t n_rcpts;
};

/* A recipient the message could not be delivered to (relay_notice_format_failed). */
struct relay_notice_failed {
	const char *address;
	const char *notify;     /* DSN NOTIFY or NULL: one without FAILURE leaves it out */
	const char *orcpt;      /* DSN ORCPT as received, or NULL */
	const char *status;     /* RFC 3463 code, "5.2.2" */
	const char *diagnostic; /* why, or NULL */
};

struct relay_notice_failure {
	const char *reporting_mta; /* our host name */
	const char *sender;        /* "" for the null sender: then no report */
	const char *envid;         /* DSN ENVID or NULL */
	const char *ret;           /* DSN RET or NULL (headers only) */
	bool requiretls;           /* RFC 8689 5: headers only, whatever RET says */
	int64_t arrival;
	int64_t now;
	const char *boundary; /* unique per report */
	const struct relay_notice_failed *rcpts;
	size_t n_rcpts;
	const void *original; /* the message, or its first bytes */
	size_t original_len;
	bool original_complete;
	bool local; /* the sender's domain is ours: the report starts with Return-Path: <> */
};

/* Whether a recipient's NOTIFY (NULL when not given) asks for a failure report (RFC 3461
 * 4.1: without NOTIFY it does; NOTIFY=NEVER does not). */
bool relay_notice_failure_wanted(const char *notify);

/* A "failed" report (RFC 3464, Action: failed) for those of f's recipients whose NOTIFY
 * asks for failures, into out (empty, initialised by the caller with the size limit of a
 * message: a report that would pass it returns only the original's header). Pure: no
 * store, no log, no shared state, so it may run on any thread (the store calls it inside
 * a delivery). 0 with out left empty when no recipient wants a report or the sender is
 * the null sender; -ENOBUFS (out empty) when even the short form does not fit. */
int relay_notice_format_failed(const struct relay_notice_failure *f, struct buf *out);

/* Sends one "delivered" report (Action: delivered, Status: 2.0.0) for those of n's
 * recipients whose NOTIFY has SUCCESS; nothing when none has. Copies what it needs. */
void relay_notice_delivered(struct store *s, const struct config *cfg,
                            const struct relay_notice_delivery *n);

#endif
