/*
 * The mail transaction: recipients, the message's bytes (memory, then spool) and the one
 * store_deliver that makes it durable, with the failure report on copies it refuses.
 */
#include "server/smtp/smtp_txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "server/audit.h"
#include "server/conn.h"
#include "server/relay/relay_notice.h"
#include "server/services.h"
#include "server/smtp/smtp_bounce.h"
#include "server/smtp/smtp_quota.h"
#include "server/smtp/smtp_received.h"
#include "server/spool.h"
#include "server/tls.h"
#include "storage/store.h"

/* In memory when there is no spool: the message limit plus room for added fields. */
#define TXN_HEADER_SLACK (64u * 1024)
/* The store's own limit when the configuration sets none (store_options). */
#define TXN_REPORT_MAX (50u * 1024 * 1024)

/* The failure report's hook and what it reads (smtp_bounce.h): kept unchanged from
 * store_deliver until its callback, because the hook runs on a store thread. */
struct smtp_txn_report {
	struct smtp_bounce b;
	struct smtp_bounce_rcpt *rcpts;
	struct store_deliver_report hook;
	char boundary[128];
};

void smtp_txn_init(struct smtp_txn *t, struct conn *c, void *sess)
{
	memset(t, 0, sizeof(*t));
	t->c = c;
	t->sess = sess;
	buf_init(&t->mem, SMTP_TXN_MEM_MAX);
}

static void txn_free_message(struct smtp_txn *t)
{
	if (t->spool != NULL) {
		spool_free(t->spool);
		t->spool = NULL;
	}
	t->spool_error = 0;
	buf_free(&t->mem);
	buf_init(&t->mem, SMTP_TXN_MEM_MAX);
	t->bytes = 0;
	free(t->msgid_line);
	free(t->date_line);
	t->msgid_line = t->date_line = NULL;
	if (t->paused) {
		t->paused = false;
		conn_resume(t->c);
	}
	t->reading = false;
}

void smtp_txn_reset(struct smtp_txn *t)
{
	for (size_t i = 0; i < t->n_rcpts; i++) {
		free(t->rcpts[i].address);
		free(t->rcpts[i].notify);
		free(t->rcpts[i].orcpt);
	}
	free(t->rcpts);
	t->rcpts = NULL;
	t->n_rcpts = t->cap_rcpts = 0;
	t->n_local = t->n_relay = 0;
	txn_free_message(t);
	free(t->targets);
	free(t->relay);
	free(t->req);
	if (t->report != NULL)
		free(t->report->rcpts);
	free(t->report);
	t->report = NULL;
	t->targets = NULL;
	t->relay = NULL;
	t->req = NULL;
	t->active = false;
	t->delivering = false;
	memset(&t->mail, 0, sizeof(t->mail));
}

void smtp_txn_mail(struct smtp_txn *t, const struct smtp_mail_args *m)
{
	smtp_txn_reset(t);
	t->mail = *m;
	t->active = true;
}

bool smtp_txn_has_rcpt(const struct smtp_txn *t, const char *address)
{
	for (size_t i = 0; i < t->n_rcpts; i++)
		if (strcmp(t->rcpts[i].address, address) == 0)
			return true;
	return false;
}

void smtp_txn_add_rcpt(struct smtp_txn *t, const char *address, int64_t user_id, uint64_t quota,
                       unsigned notify, const char *orcpt)
{
	if (t->n_rcpts == t->cap_rcpts) {
		t->cap_rcpts = t->cap_rcpts ? t->cap_rcpts * 2 : 4;
		t->rcpts = xreallocarray(t->rcpts, t->cap_rcpts, sizeof(*t->rcpts));
	}
	struct smtp_txn_rcpt *r = &t->rcpts[t->n_rcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->user_id = user_id;
	r->quota = quota;
	if (notify != 0) {
		char n[40];
		r->notify = xstrdup(smtp_notify_str(notify, n, sizeof(n)));
	}
	if (orcpt != NULL && orcpt[0] != '\0')
		r->orcpt = xstrdup(orcpt);
	if (user_id > 0)
		t->n_local++;
	else
		t->n_relay++;
}

/* ---- the message's bytes ---------------------------------------------------------- */

static void txn_drained(void *ctx)
{
	struct smtp_txn *t = ctx;
	if (t->paused && !t->delivering) {
		t->paused = false;
		conn_resume(t->c);
	}
}

static int txn_sink_write(struct smtp_txn *t, const void *data, size_t len)
{
	int r;
	if (t->spool == NULL) {
		if (t->mem.len + len <= SMTP_TXN_MEM_MAX || t->spool_error == -ENOTSUP)
			return buf_append(&t->mem, data, len);
		r = spool_create(&t->spool);
		if (r == -ENOTSUP) {
			/* No spool folder (tests, or not set up): memory, bounded by the limit. */
			t->spool_error = r;
			t->mem.max = t->data.opts.max_size + TXN_HEADER_SLACK;
			return buf_append(&t->mem, data, len);
		}
		if (r < 0)
			return r;
		r = spool_write(t->spool, t->mem.data, t->mem.len);
		buf_free(&t->mem);
		buf_init(&t->mem, SMTP_TXN_MEM_MAX);
		if (r < 0)
			return r;
	}
	r = spool_write(t->spool, data, len);
	if (r < 0)
		return r;
	if (!t->paused && spool_pending(t->spool) > SMTP_TXN_SPOOL_PAUSE) {
		/* The disk lags the client: stop reading until the spool catches up. */
		t->paused = true;
		conn_pause(t->c);
		spool_on_drain(t->spool, txn_drained, t);
	}
	return 0;
}

/* Counts what is stored: the size the store will see, Received: included. */
static int txn_sink(void *ctx, const void *data, size_t len)
{
	struct smtp_txn *t = ctx;
	int r = txn_sink_write(t, data, len);
	if (r == 0)
		t->bytes += len;
	return r;
}

void smtp_txn_begin(struct smtp_txn *t, const struct smtp_txn_msg_opts *o)
{
	txn_free_message(t);
	t->reading = true;
	snprintf(t->id, sizeof(t->id), "%s.%u", conn_id(t->c), ++t->seq);
	int64_t now = (int64_t)time(NULL);
	struct smtp_data_opts dopts = {
	    .max_size = o->max_size, .binary = o->binary, .drop_return_path = true};
	if (o->submission) {
		struct tm tm;
		time_t tt = (time_t)now;
		gmtime_r(&tt, &tm);
		t->msgid_line = xasprintf("Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
		                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                          tm.tm_min, tm.tm_sec, t->id, o->hostname);
		char date[40];
		smtp_format_date(now, date, sizeof(date));
		t->date_line = xasprintf("Date: %s\r\n", date);
		dopts.add_message_id = t->msgid_line;
		dopts.add_date = t->date_line;
	}
	struct smtp_sink sink = {txn_sink, t};
	smtp_data_init(&t->data, &dopts, &sink);

	struct tls_session *tls = conn_tls(t->c);
	struct smtp_received_info ri = {
	    .helo = o->helo,
	    .peer_ip = conn_peer_ip(t->c),
	    .hostname = o->hostname,
	    .tls_version = tls ? tls_session_version(tls) : NULL,
	    .tls_cipher = tls ? tls_session_cipher(tls) : NULL,
	    .auth_user = conn_user(t->c),
	    .auth_mech = o->auth_mech,
	    .peer_subject = o->peer_subject,
	    .peer_serial = o->peer_serial,
	    .peer_name = o->peer_name,
	    .id = t->id,
	    .rcpt = t->n_rcpts == 1 ? t->rcpts[0].address : NULL,
	    .smtputf8 = t->mail.smtputf8,
	    .time = now,
	};
	struct buf rcv;
	buf_init(&rcv, 4096);
	int r = 0;
	/* Final delivery for the local recipients (RFC 5321 4.4); the relay leaves the field
	 * out of what it hands on for the others, who share these bytes. */
	if (t->n_local > 0)
		r = smtp_return_path_format(t->mail.address, &rcv);
	if (r == 0 && smtp_received_format(&ri, &rcv) == 0)
		smtp_data_prepend(&t->data, rcv.data, rcv.len);
	buf_free(&rcv);
}

/* ---- delivery ----------------------------------------------------------------------- */

static void txn_finish(struct smtp_txn *t, bool ok, bool close, const char *reply)
{
	smtp_txn_done_cb *done = t->done;
	t->done = NULL;
	smtp_txn_reset(t);
	done(t->sess, ok, close, reply);
}

static const char *txn_store_reply(int rc)
{
	switch (rc) {
	case -EFBIG:
		return "552 5.3.4 Message too big";
	case -ENOSPC:
		return "452 4.3.1 Insufficient system storage";
	case -EDQUOT:
		return "452 4.2.2 Mailbox full";
	default:
		return "451 4.3.0 Temporary failure storing the message, try again later";
	}
}

/* RFC 3461 6.2.3.2: local recipients that asked NOTIFY=SUCCESS get a "delivered" report,
 * now that the message is committed (relay_notice.c decides who asked). */
static void txn_report_delivered(struct smtp_txn *t, const struct store_delivery_result *res)
{
	struct services *sv = conn_services(t->c);
	if (t->mail.address[0] == '\0' || t->n_local == 0)
		return;
	struct relay_notice_rcpt *nr = xcalloc(t->n_rcpts, sizeof(*nr));
	struct relay_notice_delivery n = {
	    .sender = t->mail.address,
	    .envid = t->mail.envid[0] ? t->mail.envid : NULL,
	    .ret = t->req->ret,
	    .requiretls = t->mail.requiretls,
	    .arrival = (int64_t)time(NULL),
	    .rcpts = nr,
	};
	for (size_t i = 0; i < t->n_rcpts; i++) {
		const struct smtp_txn_rcpt *r = &t->rcpts[i];
		size_t k = 0;
		while (r->user_id > 0 && k < t->req->n_targets &&
		       t->targets[k].user_id != r->user_id)
			k++;
		if (r->user_id <= 0 || k >= res->n || res->v[k].rc != 0)
			continue;
		n.mailbox_id = res->v[k].mailbox_id;
		n.uid = res->v[k].uid;
		nr[n.n_rcpts++] = (struct relay_notice_rcpt){r->address, r->notify, r->orcpt};
	}
	relay_notice_delivered(sv->store, sv->cfg, &n);
	free(nr);
}

/* Every local copy was refused and nothing is relayed (store rc -EDQUOT or -ENOENT):
 * nothing is stored, so the reply tells the client why. */
static const char *txn_refused_reply(const struct smtp_txn *t, int rc)
{
	if (rc == -ENOENT)
		return "550 5.1.1 Recipient address rejected: user unknown";
	/* Permanent only when it can never fit any of them (their quotas as RCPT saw them);
	 * else the client may try again once the mailboxes have room. */
	bool never = t->n_local > 0;
	for (size_t i = 0; i < t->n_rcpts; i++)
		if (t->rcpts[i].user_id > 0)
			never = never && smtp_quota_never_fits(t->rcpts[i].quota, t->bytes);
	return never ? SMTP_QUOTA_FULL_PERM : SMTP_QUOTA_FULL_TEMP;
}

/* What became of the report on a refused copy, for the log line. */
static const char *txn_report_outcome(const struct smtp_txn *t, const struct smtp_txn_rcpt *r,
                                      const struct store_delivery_result *res)
{
	if (t->report == NULL)
		return "report=none reason=null_sender";
	if (!relay_notice_failure_wanted(r->notify))
		return "report=none reason=notify";
	switch (res->report_rc) {
	case 0:
		return t->report->hook.local ? "report=sent via=inbox" : "report=sent via=queue";
	case -ENOENT:
		return "report=dropped reason=sender_unknown";
	case -EDQUOT:
		return "report=dropped reason=sender_mailbox_full";
	default:
		return "report=none reason=notify";
	}
}

/* One line per recipient whose copy the store refused: never a silent loss. */
static unsigned txn_log_refused(struct smtp_txn *t, const struct store_delivery_result *res)
{
	unsigned failed = 0;
	for (size_t k = 0; k < res->n && k < t->req->n_targets; k++) {
		const struct store_delivered *d = &res->v[k];
		if (d->rc == 0)
			continue;
		failed++;
		const char *status, *diag;
		smtp_bounce_status(d->rc, d->quota_bytes, res->size, &status, &diag);
		for (size_t i = 0; i < t->n_rcpts; i++) {
			const struct smtp_txn_rcpt *r = &t->rcpts[i];
			if (r->user_id != t->targets[k].user_id)
				continue;
			char to[200];
			log_escape(to, sizeof(to), r->address, strlen(r->address));
			log_event(LOGL_WARN,
			          "session=%s proto=%s event=rcpt_failed id=%s rcpt=%s "
			          "status=%s error=\"%s\" %s",
			          conn_id(t->c), conn_proto_name(t->c), t->id, to, status,
			          store_strerror(d->rc), txn_report_outcome(t, r, res));
		}
	}
	return failed;
}

static void txn_delivered(void *ctx, int rc, struct store_delivery_result *res)
{
	struct smtp_txn *t = ctx;
	if (!conn_release(t->c))
		return;
	char from[200];
	log_escape(from, sizeof(from), t->mail.address, strlen(t->mail.address));
	if (rc < 0) {
		log_event(LOGL_WARN, "session=%s proto=%s event=delivery_failed id=%s error=%s",
		          conn_id(t->c), conn_proto_name(t->c), t->id, store_strerror(rc));
		txn_finish(t, false, false,
		           rc == -EDQUOT || rc == -ENOENT ? txn_refused_reply(t, rc)
		                                          : txn_store_reply(rc));
		return;
	}
	/* Checked at RCPT; a copy refused since then was reported in the same transaction. */
	unsigned failed = txn_log_refused(t, res);
	log_event(LOGL_INFO,
	          "session=%s proto=%s event=queued id=%s from=%s size=%llu local=%u relay=%u "
	          "failed=%u",
	          conn_id(t->c), conn_proto_name(t->c), t->id, from,
	          (unsigned long long)t->data.size, t->n_local, t->n_relay, failed);
	metrics_inc(METRIC_MESSAGES, "accepted", NULL, NULL);
	if (t->n_local > failed) {
		const char *lv[] = {"delivered"};
		metrics_add(METRIC_MESSAGES, t->n_local - failed, lv);
	}
	txn_report_delivered(t, res);
	char reply[96];
	snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %s", t->id);
	txn_finish(t, true, false, reply);
}

/* The hook that has the store report copies it refuses to the sender (smtp_bounce.h);
 * none for the null sender (RFC 3461 6.2: a report is never reported on). */
static void txn_report_prepare(struct smtp_txn *t, size_t n_targets)
{
	const struct config *cfg = conn_config(t->c);
	const char *sender = t->mail.address;
	if (sender[0] == '\0' || t->n_local == 0)
		return;
	struct smtp_txn_report *rp = xcalloc(1, sizeof(*rp));
	rp->rcpts = xcalloc(t->n_rcpts, sizeof(*rp->rcpts));
	size_t n = 0;
	for (size_t i = 0; i < t->n_rcpts; i++) {
		const struct smtp_txn_rcpt *r = &t->rcpts[i];
		if (r->user_id > 0)
			rp->rcpts[n++] =
			    (struct smtp_bounce_rcpt){r->address, r->user_id, r->notify, r->orcpt};
	}
	int64_t now = (int64_t)time(NULL);
	snprintf(rp->boundary, sizeof(rp->boundary), "sealmail-dsn-%s-%lld", t->id, (long long)now);
	rp->b = (struct smtp_bounce){
	    .reporting_mta = cfg->hostname,
	    .sender = sender,
	    .envid = t->mail.envid[0] ? t->mail.envid : NULL,
	    .ret = t->req->ret,
	    .requiretls = t->mail.requiretls,
	    .arrival = now,
	    .boundary = rp->boundary,
	    .max_size = cfg->limits.message_size > 0 ? cfg->limits.message_size : TXN_REPORT_MAX,
	    .rcpts = rp->rcpts,
	    .n_rcpts = n,
	    .targets = t->targets,
	    .n_targets = n_targets,
	};
	const char *at = strrchr(sender, '@');
	rp->b.local = at != NULL && cfg_is_local_domain(cfg, at + 1, strlen(at + 1));
	rp->hook = (struct store_deliver_report){
	    .format = smtp_bounce_format,
	    .ctx = &rp->b,
	    .to = sender,
	    .local = rp->b.local,
	};
	t->report = rp;
	t->req->report = &rp->hook;
}

/* A logged-in user's submission in the access audit, before it is stored: sender,
 * recipients and size. Mail from other servers is no user's access and is not recorded. */
static bool txn_audit(struct smtp_txn *t)
{
	if (conn_user(t->c) == NULL)
		return true;
	struct buf d;
	buf_init(&d, 8192);
	buf_printf(&d, "id=%s from=<%s> size=%llu to=", t->id, t->mail.address,
	           (unsigned long long)t->bytes);
	for (size_t i = 0; i < t->n_rcpts; i++)
		buf_printf(&d, "%s<%s>", i > 0 ? "," : "", t->rcpts[i].address);
	bool ok = audit_session(t->c, "submit", NULL, NULL, 0, d.data);
	buf_free(&d);
	return ok;
}

static void txn_deliver(struct smtp_txn *t)
{
	struct services *sv = conn_services(t->c);
	struct store *s = sv != NULL ? sv->store : NULL;
	if (s == NULL) {
		txn_finish(t, false, false, txn_store_reply(-EIO));
		return;
	}
	t->targets = xcalloc(t->n_local + 1, sizeof(*t->targets));
	t->relay = xcalloc(t->n_relay + 1, sizeof(*t->relay));
	size_t nt = 0, nr = 0;
	for (size_t i = 0; i < t->n_rcpts; i++) {
		const struct smtp_txn_rcpt *r = &t->rcpts[i];
		if (r->user_id > 0) {
			bool dup = false;
			for (size_t k = 0; k < nt; k++)
				dup = dup || t->targets[k].user_id == r->user_id;
			if (!dup)
				t->targets[nt++].user_id = r->user_id;
		} else {
			t->relay[nr].address = r->address;
			t->relay[nr].notify = r->notify;
			t->relay[nr].orcpt = r->orcpt;
			nr++;
		}
	}
	t->req = xcalloc(1, sizeof(*t->req));
	struct store_deliver_req *req = t->req;
	if (t->spool != NULL) {
		req->spool_path = spool_path(t->spool);
	} else {
		req->data = t->mem.data ? t->mem.data : "";
		req->size = t->mem.len;
	}
	req->targets = t->targets;
	req->n_targets = nt;
	req->sender = t->mail.address;
	req->relay = t->relay;
	req->n_relay = nr;
	req->requiretls = t->mail.requiretls;
	req->ret = t->mail.ret == SMTP_RET_FULL   ? "FULL"
	           : t->mail.ret == SMTP_RET_HDRS ? "HDRS"
	                                          : NULL;
	req->envid = t->mail.envid[0] ? t->mail.envid : NULL;
	txn_report_prepare(t, nt);
	if (!txn_audit(t))
		return;
	conn_hold(t->c);
	int rc = store_deliver(s, req, txn_delivered, t);
	if (rc < 0) {
		conn_release(t->c);
		txn_finish(t, false, false, txn_store_reply(rc));
	}
}

static void txn_spooled(void *ctx, int rc)
{
	struct smtp_txn *t = ctx;
	if (!conn_release(t->c))
		return;
	if (rc < 0) {
		log_event(LOGL_WARN, "session=%s proto=%s event=spool_failed id=%s error=%s",
		          conn_id(t->c), conn_proto_name(t->c), t->id, strerror(-rc));
		txn_finish(t, false, false, txn_store_reply(rc));
		return;
	}
	txn_deliver(t);
}

void smtp_txn_end(struct smtp_txn *t, smtp_txn_done_cb *done)
{
	t->done = done;
	t->reading = false;
	enum smtp_data_status st = smtp_data_finish(&t->data);
	if (st != SMTP_DATA_OK) {
		txn_finish(t, false, st == SMTP_DATA_LINE_TOO_LONG, smtp_data_reply(st));
		return;
	}
	t->delivering = true;
	conn_pause(t->c);
	if (t->spool != NULL) {
		conn_hold(t->c);
		spool_finish(t->spool, txn_spooled, t);
		return;
	}
	txn_deliver(t);
}

void smtp_txn_abort(struct smtp_txn *t)
{
	txn_free_message(t);
}
