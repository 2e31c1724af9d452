/*
 * APPEND with MULTIAPPEND (RFC 3502): every message of the command (each with its own
 * flags and date-time) goes to the store in order; APPENDUID names them all (GETQUOTA and
 * GETQUOTAROOT: imap_cmd_quota.c; APPEND's own quota check is here).
 *
 * The messages are literals in the assembled command (bounded by limits.message_size
 * each, the reader checks that before the "+" continuation); one over IMAP_SPOOL_MIN
 * arrived in a spool file instead (imap_session.c), which the store streams from, so no
 * large message is held whole in memory. They are delivered together with
 * store_deliver_batch: one transaction, so one fsync for the whole command, the UIDs in
 * the order of the messages, and a message refused fails the command with nothing stored
 * (all-or-nothing, as RFC 3502 asks, even across a crash). The tagged OK follows the
 * commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/imap/imap_catenate.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"
#include "server/spool.h"

struct append_msg {
	unsigned flags;
	char *keywords;
	int64_t date;
	const char *data; /* view into the command buffer, or into cat */
	uint64_t len;
	struct spool_file *spool; /* borrowed from the client (freed with the command) */
	/* CATENATE (RFC 4469): the parts, and the message assembled from them. */
	struct imap_cat_part *parts;
	size_t n_parts;
	struct buf cat;
};

struct append_op {
	struct imap_client *cl;
	char *name;
	struct append_msg *msgs;
	size_t n, next;
	struct store_target target;   /* the mailbox; flags and keywords per message below */
	struct store_target *targets; /* one per message */
	struct store_deliver_req *reqs;
	uint32_t uidvalidity;
	uint32_t *uids;
	size_t cat_next; /* the next CATENATE message to assemble */
};

static void append_free(void *p)
{
	struct append_op *op = p;
	for (size_t i = 0; i < op->n; i++) {
		free(op->msgs[i].keywords);
		free(op->msgs[i].parts);
		buf_free(&op->msgs[i].cat);
	}
	free(op->msgs);
	free(op->targets);
	free(op->reqs);
	free(op->uids);
	free(op->name);
	free(op);
}

static int two(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d"), RFC 3501 date-time. 0 or -EINVAL. */
int imap_parse_datetime(const char *s, size_t len, int64_t *t_r)
{
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	if (len != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' ||
	    s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
		return -EINVAL;
	char d[2] = {s[0] == ' ' ? '0' : s[0], s[1]};
	int day = two(d), year1 = two(s + 7), year2 = two(s + 9), hh = two(s + 12),
	    mm = two(s + 15), ss = two(s + 18), zh = two(s + 22), zm = two(s + 24);
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s + 3, mon[i], 3) == 0)
			m = i;
	if (day < 1 || day > 31 || m < 0 || year1 < 0 || year2 < 0 || hh < 0 || hh > 23 || mm < 0 ||
	    mm > 59 || ss < 0 || ss > 60 || zh < 0 || zh > 23 || zm < 0 || zm > 59)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_mday = day;
	tm.tm_mon = m;
	tm.tm_year = year1 * 100 + year2 - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	int64_t off = (int64_t)(zh * 3600 + zm * 60) * (s[21] == '-' ? -1 : 1);
	*t_r = (int64_t)timegm(&tm) - off;
	return 0;
}

static void append_spool_next(struct append_op *op);

static void append_fail(struct append_op *op, int rc)
{
	imap_done(op->cl, "NO",
	          rc == -EDQUOT                 ? "[OVERQUOTA] Quota exceeded"
	          : rc == -EFBIG                ? "[TOOBIG] Message too large"
	          : rc == -ENOSPC || rc == -EIO ? imap_mailbox_error(rc)
	                                        : "[SERVERBUG] APPEND failed");
}

static void appended(void *ctx, int rc, struct store_delivery_result *res)
{
	struct append_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	/* The mailbox was there a moment ago, so the quota is the likely reason. */
	if (rc == -ENOENT)
		rc = -EDQUOT;
	if (rc == 0 && res->n != op->n)
		rc = -EIO;
	if (rc < 0) {
		append_fail(op, rc); /* the batch stored nothing */
		return;
	}
	for (size_t i = 0; i < op->n; i++)
		op->uids[i] = res->v[i].uid;
	op->uidvalidity = res->v[0].uidvalidity;
	if (cl->state == IMAP_STATE_SELECTED && res->v[0].mailbox_id == cl->mailbox_id)
		cl->changed = true;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_printf(&o, "[APPENDUID %u ", op->uidvalidity);
	buf_append_uidset(&o, op->uids, op->n);
	buf_append_str(&o, "] APPEND completed");
	imap_done(cl, "OK", o.data);
	buf_free(&o);
}

/* Every message of the command in one store call: one transaction and one fsync for the
 * batch, and all or none stored. */
static void append_submit(struct append_op *op)
{
	struct imap_client *cl = op->cl;
	op->targets = xcalloc(op->n, sizeof(*op->targets));
	op->reqs = xcalloc(op->n, sizeof(*op->reqs));
	for (size_t i = 0; i < op->n; i++) {
		const struct append_msg *m = &op->msgs[i];
		struct store_deliver_req *r = &op->reqs[i];
		op->targets[i] = op->target;
		op->targets[i].flags = m->flags;
		op->targets[i].keywords = m->keywords;
		if (m->spool != NULL) {
			r->spool_path = spool_path(m->spool);
		} else {
			r->data = m->data;
			r->size = (size_t)m->len;
		}
		r->internal_date = m->date;
		r->targets = &op->targets[i];
		r->n_targets = 1;
		r->sender = "";
	}
	uint64_t bytes = 0;
	for (size_t i = 0; i < op->n; i++)
		bytes +=
		    op->msgs[i].spool != NULL ? spool_size(op->msgs[i].spool) : op->msgs[i].len;
	char detail[80];
	snprintf(detail, sizeof(detail), "messages=%zu bytes=%llu", op->n,
	         (unsigned long long)bytes);
	if (!audit_session(cl->c, "append", op->name, NULL, 0, detail))
		return;
	imap_async_begin(cl);
	int rc = store_deliver_batch(imap_store(cl), op->reqs, op->n, appended, op);
	if (rc < 0) {
		conn_release(cl->c);
		append_fail(op, rc);
	}
}

static void append_spooled(void *ctx, int rc)
{
	struct append_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	const struct append_msg *m = &op->msgs[op->next];
	if (rc == 0 && spool_size(m->spool) != m->len)
		rc = -EIO;
	if (rc < 0) {
		log_event(LOGL_WARN, "session=%s proto=imap event=spool_failed error=%s",
		          conn_id(cl->c), strerror(-rc));
		append_fail(op, rc);
		return;
	}
	op->next++;
	append_spool_next(op);
}

/* Every byte of each spooled message must be on disk before the store reads the file. */
static void append_spool_next(struct append_op *op)
{
	while (op->next < op->n && op->msgs[op->next].spool == NULL)
		op->next++;
	if (op->next == op->n) {
		append_submit(op);
		return;
	}
	imap_async_begin(op->cl);
	spool_finish(op->msgs[op->next].spool, append_spooled, op);
}

/* A MULTIAPPEND that cannot fit is refused before any message is stored. */
static void append_quota(void *ctx, int rc, struct store_users *res)
{
	struct append_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc == 0 && res->n == 1) {
		uint64_t total = 0;
		for (size_t i = 0; i < op->n; i++)
			total += op->msgs[i].len;
		const struct store_user *u = &res->v[0];
		if ((u->quota_bytes > 0 && u->used_bytes + total > u->quota_bytes) ||
		    (u->quota_messages > 0 && u->used_messages + op->n > u->quota_messages)) {
			imap_done(cl, "NO", "[OVERQUOTA] Quota exceeded");
			return;
		}
	}
	append_spool_next(op);
}

static void cat_step(struct append_op *op);

/* "[BADURL url]": the URL as resp-text allows (no "]", CR or LF), cut there. */
static void fail_badurl(struct imap_client *cl, const struct imap_cat_part *bad)
{
	size_t n = 0;
	while (n < bad->len && n < 1024 && bad->data[n] != ']' && bad->data[n] != '\r' &&
	       bad->data[n] != '\n' && bad->data[n] != '\0')
		n++;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, "[BADURL ");
	buf_append(&o, bad->data, n);
	buf_append_str(&o, "] The URL names no message of yours");
	imap_done(cl, "NO", o.data);
	buf_free(&o);
}

static void cat_done(void *arg, int rc, const struct imap_cat_part *bad)
{
	struct append_op *op = arg;
	struct append_msg *m = &op->msgs[op->cat_next];
	if (rc == -EINVAL && bad != NULL) {
		fail_badurl(op->cl, bad);
		return;
	}
	if (rc == 0 && m->cat.len == 0) {
		imap_done(op->cl, "NO", "The message would be empty");
		return;
	}
	if (rc < 0) {
		append_fail(op, rc);
		return;
	}
	m->data = m->cat.data;
	m->len = m->cat.len;
	op->cat_next++;
	cat_step(op);
}

/* Assembles the CATENATE messages one after the other, then checks the quota. */
static void cat_step(struct append_op *op)
{
	struct imap_client *cl = op->cl;
	while (op->cat_next < op->n && op->msgs[op->cat_next].n_parts == 0)
		op->cat_next++;
	if (op->cat_next < op->n) {
		struct append_msg *m = &op->msgs[op->cat_next];
		buf_init(&m->cat, (size_t)cl->reader.message_max);
		imap_catenate(cl, m->parts, m->n_parts, &m->cat, cat_done, op);
		return;
	}
	imap_async_begin(cl);
	if (store_user_get(imap_store(cl), cl->user, append_quota, op) < 0) {
		conn_release(cl->c);
		append_spool_next(op);
	}
}

static void append_dst(void *ctx, int rc, struct store_mailboxes *res)
{
	struct append_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 && rc != -ENOENT) { /* the store failed: the mailbox may well exist */
		imap_done(cl, "NO", "[SERVERBUG] Store error, try again");
		return;
	}
	if (rc < 0 || res->n != 1) {
		imap_done(cl, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	op->target.user_id = cl->user_id;
	op->target.mailbox_id = res->v[0].id;
	cat_step(op);
}

/* "CATENATE (TEXT literal URL url ...)": 0, or the text of a tagged BAD (*toobig: a TEXT
 * literal went to the spool, which CATENATE does not read back: NO [TOOBIG]). */
#define CAT_MAX_PARTS 1000
static const char *parse_catenate(struct imap_client *cl, const struct imap_arg *l,
                                  struct append_msg *m, bool *toobig)
{
	if (l->type != IMAP_ARG_LIST || l->n == 0 || l->n % 2 != 0)
		return "CATENATE needs a list of TEXT and URL parts";
	if (l->n / 2 > CAT_MAX_PARTS)
		return "Too many CATENATE parts";
	m->parts = xcalloc(l->n / 2, sizeof(*m->parts));
	for (size_t k = 0; k < l->n; k += 2) {
		const struct imap_arg *kind = &l->list[k], *v = &l->list[k + 1];
		struct imap_cat_part *p = &m->parts[m->n_parts++];
		if (imap_arg_is(kind, "TEXT") && v->type == IMAP_ARG_STRING && v->literal) {
			const struct imap_spooled *sp = imap_spooled_at(cl, v->s);
			if (sp != NULL && v->len == 0) {
				*toobig = true;
				return "TEXT part too large";
			}
		} else if (!imap_arg_is(kind, "URL") || !imap_arg_is_astring(v)) {
			return "A CATENATE part is TEXT literal or URL url";
		}
		p->is_url = !imap_arg_is(kind, "TEXT");
		p->data = v->s;
		p->len = v->len;
	}
	return NULL;
}

void imap_cmd_append(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n < 2) {
		imap_done(cl, "BAD", "APPEND needs a mailbox and a message");
		return;
	}
	struct append_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = append_free;
	op->msgs = xcalloc(n, sizeof(*op->msgs));
	for (size_t i = 1; i < n;) {
		struct append_msg *m = &op->msgs[op->n++];
		if (a[i].type == IMAP_ARG_LIST) {
			if (imap_parse_flags(&a[i], &m->flags, &m->keywords) < 0) {
				imap_done(cl, "BAD", "Invalid flags");
				return;
			}
			i++;
		}
		if (i < n && a[i].type == IMAP_ARG_STRING && !a[i].literal) {
			if (imap_parse_datetime(a[i].s, a[i].len, &m->date) < 0) {
				imap_done(cl, "BAD", "Invalid date-time");
				return;
			}
			i++;
		}
		if (i + 1 < n && imap_arg_is(&a[i], "CATENATE")) {
			bool toobig = false;
			const char *why = parse_catenate(cl, &a[i + 1], m, &toobig);
			if (why != NULL) {
				imap_done(cl, toobig ? "NO" : "BAD",
				          toobig ? "[TOOBIG] A CATENATE TEXT part over 1 MiB"
				                 : why);
				return;
			}
			i += 2;
			continue;
		}
		if (i >= n || a[i].type != IMAP_ARG_STRING || !a[i].literal) {
			imap_done(cl, "BAD", "APPEND needs a message literal");
			return;
		}
		const struct imap_spooled *sp = imap_spooled_at(cl, a[i].s);
		m->data = a[i].s;
		m->len = a[i].len;
		if (sp != NULL && a[i].len == 0) {
			m->spool = sp->f;
			m->len = sp->size;
		}
		i++;
	}
	op->uids = xcalloc(op->n, sizeof(*op->uids));
	op->name = imap_mailbox_arg(cl, &a[0]);
	if (op->name == NULL)
		return;
	imap_async_begin(cl);
	if (store_mailbox_get(imap_store(cl), cl->user_id, op->name, append_dst, op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}
