/*
 * Changing messages: STORE, COPY, MOVE, EXPUNGE (APPEND: imap_cmd_append.c, SEARCH:
 * imap_cmd_search.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h" /* imap_fmt_seqset */

struct chg_op {
	struct imap_client *cl;
	bool silent, move;
	char *dst, *reply;
	struct store_uid_range *r;
	size_t nr;
	int64_t dst_id;
};

static void chg_free(void *p)
{
	struct chg_op *op = p;
	free(op->dst);
	free(op->reply);
	free(op->r);
	free(op);
}

static struct chg_op *chg_new(struct imap_client *cl)
{
	struct chg_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = chg_free;
	return op;
}

static void fail(struct imap_client *cl, int rc)
{
	conn_release(cl->c);
	imap_done(cl, "NO",
	          rc == -EDQUOT ? "[OVERQUOTA] Quota exceeded" : "[SERVERBUG] Store error");
}

/* ---- STORE ---- */

static void stored(void *ctx, int rc, struct store_flags_changed *res)
{
	struct chg_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO", "[SERVERBUG] STORE failed");
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	bool announce = false;
	for (size_t i = 0; i < res->n; i++) {
		uint32_t s = imap_seq_of(cl, res->v[i].uid);
		if (s == 0)
			continue;
		struct imap_msg *m = imap_snapshot_mut(cl, s);
		m->flags = res->v[i].flags;
		free(m->keywords);
		m->keywords = imap_keywords_dup(res->v[i].keywords);
		m->modseq = res->v[i].modseq;
		/* A new keyword is named by FLAGS before a FETCH shows it, also after .SILENT:
		 * the client sees it in the next FETCH FLAGS. */
		announce |= imap_keywords_learn(cl, m->keywords);
		if (op->silent && !cl->condstore)
			continue;
		buf_printf(&o, "* %u FETCH (", s);
		/* RFC 7162 3.1: with CONDSTORE on, such a FETCH has UID and MODSEQ. */
		if (cl->uid || cl->condstore)
			buf_printf(&o, "UID %u ", m->uid);
		if (!op->silent) {
			buf_append_str(&o, "FLAGS ");
			imap_fmt_flags(&o, m->flags, m->keywords, imap_recent_is(cl, m->uid));
		}
		if (cl->condstore)
			buf_printf(&o, "%sMODSEQ (%llu)", op->silent ? "" : " ",
			           (unsigned long long)m->modseq);
		buf_append_str(&o, ")\r\n");
	}
	if (announce) {
		struct buf f;
		buf_init(&f, SIZE_MAX);
		imap_fmt_flags_announce(cl, &f);
		conn_write(cl->c, f.data, f.len);
		buf_free(&f);
	}
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	if (res->n_skipped > 0) {
		struct buf m;
		buf_init(&m, SIZE_MAX);
		buf_append_uidset(&m, res->skipped, res->n_skipped);
		imap_donef(cl, "OK", "[MODIFIED %s] Conditional STORE failed", m.data);
		buf_free(&m);
		return;
	}
	imap_done(cl, "OK", "STORE completed");
}

void imap_cmd_store(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	uint64_t unchanged = 0;
	bool conditional = false;
	size_t i = 1;
	if (n >= 2 && a[1].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k + 1 < a[1].n; k++)
			if (imap_arg_is(&a[1].list[k], "UNCHANGEDSINCE")) {
				char *s = imap_arg_dup(&a[1].list[k + 1]);
				unchanged = s != NULL ? strtoull(s, NULL, 10) : 0;
				free(s);
				conditional = true;
			}
		i = 2;
	}
	if (n != i + 2 || a[i].type != IMAP_ARG_ATOM) {
		imap_done(cl, "BAD", "STORE needs a set, an action and flags");
		return;
	}
	if (conditional)
		imap_condstore_enable(cl);
	if (cl->readonly) {
		imap_done(cl, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	struct chg_op *op = chg_new(cl);
	char *act = imap_arg_dup(&a[i]);
	enum store_flag_mode mode;
	const char *p = act;
	if (*p == '+' || *p == '-')
		p++;
	mode = act[0] == '+'   ? STORE_FLAGS_ADD
	       : act[0] == '-' ? STORE_FLAGS_REMOVE
	                       : STORE_FLAGS_SET;
	bool ok =
	    strncasecmp(p, "FLAGS", 5) == 0 && (p[5] == '\0' || strcasecmp(p + 5, ".SILENT") == 0);
	op->silent = ok && p[5] != '\0';
	free(act);
	unsigned flags;
	char *kw;
	if (!ok || imap_parse_flags(&a[i + 1], &flags, &kw) < 0) {
		imap_done(cl, "BAD", "Invalid STORE action or flags");
		return;
	}
	int rc = imap_set_to_ranges(cl, &a[0], cl->uid, &op->r, &op->nr);
	if (rc < 0) {
		free(kw);
		imap_done(cl, "BAD", "Invalid sequence set");
		return;
	}
	if (op->nr == 0) {
		free(kw);
		imap_done(cl, "OK", "STORE completed");
		return;
	}
	struct buf words;
	buf_init(&words, 4096);
	imap_audit_args(&words, &a[i], 2);
	bool audited = imap_audit_ranges(cl, "flags", op->r, op->nr, words.data);
	buf_free(&words);
	if (!audited) {
		free(kw);
		return;
	}
	imap_async_begin(cl);
	rc = store_flags_store(imap_store(cl), cl->mailbox_id, op->r, op->nr, mode, flags, kw,
	                       unchanged, stored, op);
	free(kw);
	if (rc < 0)
		fail(cl, rc);
}

/* ---- EXPUNGE ---- */

static void expunged(void *ctx, int rc, struct store_uids *res)
{
	struct chg_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO", "[SERVERBUG] EXPUNGE failed");
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (cl->qresync && res->n > 0) {
		buf_append_str(&o, "* VANISHED ");
		buf_append_uidset(&o, res->v, res->n);
		buf_append_str(&o, "\r\n");
	}
	for (size_t i = 0; i < res->n; i++) {
		uint32_t s = imap_seq_of(cl, res->v[i]);
		if (s == 0)
			continue;
		if (!cl->qresync)
			buf_printf(&o, "* %u EXPUNGE\r\n", s);
		imap_snapshot_remove(cl, s);
	}
	if (o.len > 0)
		conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	if (op->move) {
		imap_done(cl, "OK", "MOVE completed");
		return;
	}
	/* The mailbox's, not the snapshot's: our own STOREs are newer than the snapshot's
	 * HIGHESTMODSEQ (which only moves when other sessions' changes are shown). */
	uint64_t hms = res->modseq > cl->highest_modseq ? res->modseq : cl->highest_modseq;
	for (size_t i = 0; i < cl->n_msgs; i++)
		if (cl->msgs[i].modseq > hms)
			hms = cl->msgs[i].modseq;
	imap_donef(cl, "OK", "[HIGHESTMODSEQ %llu] EXPUNGE completed", (unsigned long long)hms);
}

void imap_cmd_expunge(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (cl->readonly) {
		imap_done(cl, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	struct chg_op *op = chg_new(cl);
	if (cl->uid) {
		if (n != 1 || imap_set_to_ranges(cl, &a[0], true, &op->r, &op->nr) < 0) {
			imap_done(cl, "BAD", "UID EXPUNGE needs a UID set");
			return;
		}
		if (op->nr == 0) {
			imap_done(cl, "OK", "EXPUNGE completed");
			return;
		}
	}
	/* The messages marked \Deleted as this session sees them (UID EXPUNGE: of the set). */
	bool audited = cl->uid ? imap_audit_ranges(cl, "expunge", op->r, op->nr, "UID EXPUNGE")
	                       : imap_audit_deleted(cl, "expunge", "EXPUNGE");
	if (!audited)
		return;
	imap_async_begin(cl);
	int rc = store_expunge(imap_store(cl), cl->mailbox_id, op->r, op->nr, expunged, op);
	if (rc < 0)
		fail(cl, rc);
}

/* ---- COPY / MOVE ---- */

static void copy_reply(struct imap_client *cl)
{
	struct chg_op *op = cl->op;
	imap_done(cl, "OK", op->reply);
}

static void copied(void *ctx, int rc, struct store_copied *res)
{
	struct chg_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO",
		          rc == -ENOENT                 ? "[TRYCREATE] No such mailbox"
		          : rc == -EDQUOT               ? "[OVERQUOTA] Quota exceeded"
		          : rc == -ENOSPC || rc == -EIO ? imap_mailbox_error(rc)
		                                        : "[SERVERBUG] COPY failed");
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (res->n > 0) {
		buf_printf(&o, "[COPYUID %u ", res->uidvalidity);
		buf_append_uidset(&o, res->src, res->n);
		buf_append_str(&o, " ");
		/* Destination UIDs are parallel to the source ones, not necessarily sorted as
		 * a set: write them one by one in the same order. */
		for (size_t i = 0; i < res->n; i++)
			buf_printf(&o, "%s%u", i > 0 ? "," : "", res->dst[i]);
		buf_append_str(&o, "] ");
	}
	bool into_selected = op->dst_id == cl->mailbox_id && res->n > 0;
	/* New messages in the selected mailbox are shown before the tagged reply (RFC 3501
	 * 5.2: size changes are sent during the command); after a MOVE's expunges the sync
	 * in imap_done finds them. */
	if (into_selected)
		cl->changed = true;
	if (!op->move) {
		buf_append_str(&o, "COPY completed");
		if (!into_selected) {
			imap_done(cl, "OK", o.data);
			buf_free(&o);
			return;
		}
		/* imap_done does not sync for a COPY by sequence number (no EXPUNGE may come
		 * before its reply); the sync itself holds expunges back, and EXISTS may come. */
		op->reply = xstrdup(o.data);
		buf_free(&o);
		imap_sync_then(cl, copy_reply);
		return;
	}
	/* MOVE: COPYUID goes in an untagged OK (resp-text needs text after the code), then
	 * the expunges. */
	if (res->n > 0) {
		conn_printf(cl->c, "* OK %.*sMoved\r\n", (int)o.len, o.data);
		struct store_uids fake = {.v = res->src, .n = res->n, .modseq = res->modseq};
		imap_async_begin(cl);
		expunged(op, 0, &fake);
	} else {
		imap_done(cl, "OK", "MOVE completed");
	}
	buf_free(&o);
}

static void copy_dst(void *ctx, int rc, struct store_mailboxes *res)
{
	struct chg_op *op = ctx;
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
	op->dst_id = res->v[0].id;
	char *detail = xasprintf("to=%s", op->dst);
	bool audited = imap_audit_ranges(cl, op->move ? "move" : "copy", op->r, op->nr, detail);
	free(detail);
	if (!audited)
		return;
	imap_async_begin(cl);
	rc = store_copy(imap_store(cl), cl->mailbox_id, op->r, op->nr, op->dst_id, op->move, copied,
	                op);
	if (rc < 0)
		fail(cl, rc);
}

static void copy_move(struct imap_client *cl, const struct imap_arg *a, size_t n, bool move)
{
	if (n != 2) {
		imap_done(cl, "BAD", "Needs a set and a mailbox");
		return;
	}
	if (move && cl->readonly) {
		imap_done(cl, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	struct chg_op *op = chg_new(cl);
	op->move = move;
	if (imap_set_to_ranges(cl, &a[0], cl->uid, &op->r, &op->nr) < 0) {
		imap_done(cl, "BAD", "Invalid sequence set");
		return;
	}
	op->dst = imap_mailbox_arg(cl, &a[1]);
	if (op->dst == NULL)
		return;
	if (op->nr == 0) {
		imap_done(cl, "OK", "Nothing to do");
		return;
	}
	imap_async_begin(cl);
	int rc = store_mailbox_get(imap_store(cl), cl->user_id, op->dst, copy_dst, op);
	if (rc < 0)
		fail(cl, rc);
}

void imap_cmd_copy(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	copy_move(cl, a, n, false);
}

void imap_cmd_move(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	copy_move(cl, a, n, true);
}
