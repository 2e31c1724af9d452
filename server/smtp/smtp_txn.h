#ifndef SEALMAIL_SMTP_TXN_H
#define SEALMAIL_SMTP_TXN_H
/*
 * One SMTP mail transaction (MAIL, RCPT..., DATA or BDAT...) below the command table: the
 * recipients, the message as it arrives (in memory up to SMTP_TXN_MEM_MAX, then in a
 * spool file written in the background, with input paused while the disk lags) and the
 * delivery: one store_deliver for every local copy and relay recipient, whose callback
 * (after the durable commit) gives the one reply for DATA / BDAT LAST.
 *
 * The session owns the struct (embedded), decides policy (who may send what) and writes
 * the replies for MAIL and RCPT; this module never writes to the conn except through the
 * done callback's reply line. Loop thread only.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/smtp/smtp_data.h"
#include "server/smtp/smtp_parse.h"

struct conn;
struct spool_file;
struct store_target;
struct store_relay_rcpt;
struct store_deliver_req;
struct smtp_txn_report;

#define SMTP_TXN_MEM_MAX     (256u * 1024)  /* in memory up to this, then spooled */
#define SMTP_TXN_SPOOL_PAUSE (1024u * 1024) /* pause input past this much unwritten */

struct smtp_txn_rcpt {
	char *address;
	int64_t user_id; /* local recipient; 0 for a relay recipient */
	char *notify;    /* DSN NOTIFY or NULL */
	char *orcpt;     /* DSN ORCPT (wire form) or NULL */
	uint64_t quota;  /* local: the user's quota at RCPT (0 = unlimited) */
};

/* The reply for the whole transaction, written by the session (CRLF added by it).
 * ok: the message was stored. close: close the connection after the reply (a line too
 * long left the stream's framing unknown). */
typedef void smtp_txn_done_cb(void *sess, bool ok, bool close, const char *reply);

struct smtp_txn {
	struct conn *c;
	void *sess;
	bool active; /* MAIL accepted */
	struct smtp_mail_args mail;
	struct smtp_txn_rcpt *rcpts;
	size_t n_rcpts, cap_rcpts;
	unsigned n_local, n_relay;
	/* the message */
	bool reading; /* DATA / BDAT in progress */
	bool paused;  /* input paused for the spool */
	struct smtp_data data;
	struct buf mem;
	struct spool_file *spool;
	int spool_error;
	char *msgid_line, *date_line;
	char id[48]; /* "<conn id>.<n>", in Received: and "queued as" */
	unsigned seq;
	/* delivery */
	bool delivering;
	smtp_txn_done_cb *done;
	struct store_target *targets;
	struct store_relay_rcpt *relay;
	struct store_deliver_req *req;  /* borrowed by the store until its callback */
	uint64_t bytes;                 /* of the message as stored (Received: included) */
	struct smtp_txn_report *report; /* the failure report's hook context, or NULL */
};

void smtp_txn_init(struct smtp_txn *t, struct conn *c, void *sess);
/* RSET, the end of a transaction, the end of the session. Not while delivering. */
void smtp_txn_reset(struct smtp_txn *t);

/* MAIL accepted: takes a copy of the arguments. */
void smtp_txn_mail(struct smtp_txn *t, const struct smtp_mail_args *m);
/* True when address (already lower-cased by the caller for local ones) is a recipient. */
bool smtp_txn_has_rcpt(const struct smtp_txn *t, const char *address);
/* A recipient (copied). user_id > 0 for a local mailbox (quota: its quota as RCPT saw it),
 * 0 for the relay queue. */
void smtp_txn_add_rcpt(struct smtp_txn *t, const char *address, int64_t user_id, uint64_t quota,
                       unsigned notify, const char *orcpt);

struct smtp_txn_msg_opts {
	bool submission; /* add Message-ID and Date when missing */
	bool binary;     /* BODY=BINARYMIME (BDAT) */
	uint64_t max_size;
	const char *helo;
	const char *hostname;
	const char *auth_mech;    /* for Received: how the user logged in, or NULL */
	const char *peer_subject; /* for Received: the verified client certificate, or NULL */
	const char *peer_serial;
	const char *peer_name; /* for Received: the organisation server, or NULL */
};
/* DATA or the first BDAT: starts the message with its trace fields. When every recipient
 * is local this is the final delivery: Return-Path: <sender> comes first (RFC 5321 4.4).
 * Copies also queued for the relay share the stored bytes and a relay must not add one,
 * so such a message gets none. Return-Path: fields from the client are always left out
 * (smtp_data.h). */
void smtp_txn_begin(struct smtp_txn *t, const struct smtp_txn_msg_opts *o);
/* The reader, to feed with lines or bytes (smtp_data.h). */
static inline struct smtp_data *smtp_txn_data(struct smtp_txn *t)
{
	return &t->data;
}
/*
 * The message is complete (DATA ".", BDAT LAST): checks it, waits for the spool, delivers.
 * done runs exactly once, maybe before this returns (a refused message), else from a
 * completion (input is paused and the conn held meanwhile; the session resumes input in
 * done). Either way the transaction is reset before done runs.
 * A local copy the store refuses (over quota by now, user deleted) while another copy or
 * a relay recipient is stored gets a DSN to the sender, stored in the same transaction
 * (smtp_bounce.h), and the reply is 250; when nothing could be stored the reply is the
 * reason: 452 4.2.2 / 552 5.2.2 (smtp_quota.h) or 550 5.1.1.
 */
void smtp_txn_end(struct smtp_txn *t, smtp_txn_done_cb *done);
/* Ends a message that will not be delivered (BDAT error, RSET during BDAT). */
void smtp_txn_abort(struct smtp_txn *t);

#endif
