/*
 * SELECT and EXAMINE (with CONDSTORE and QRESYNC), and CLOSE and UNSELECT, which leave the
 * selected mailbox. The snapshot they open is kept by imap_snapshot.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_objectid.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"
#include "server/notify.h"
#include "server/services.h"

struct select_op {
	struct imap_client *cl;
	char *name;
	bool examine;
	struct store_mailbox mb;
	/* SELECT ... (QRESYNC (uidvalidity modseq [known-uids])) */
	bool qr;
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imap_seqset qr_known;
	bool qr_has_known;
	/* notify_generation() before the store reads (see select_opened) */
	uint64_t notify_gen;
	uint64_t modseq; /* the snapshot's, while \Recent is taken */
};

static void select_op_free(void *p)
{
	struct select_op *op = p;
	free(op->name);
	free(op->mb.name);
	imap_seqset_free(&op->qr_known);
	free(op);
}

static void select_finish(struct select_op *op)
{
	imap_done(op->cl, "OK",
	          op->examine ? "[READ-ONLY] EXAMINE completed" : "[READ-WRITE] SELECT completed");
}

/* QRESYNC (RFC 7162 3.2.5): what vanished since the client's modseq (of the UIDs it
 * knows), then the flags of every message changed since. */
static void select_vanished(void *ctx, int rc, struct store_uids *res)
{
	struct select_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	uint32_t *v = xcalloc(res->n + 1, sizeof(*v));
	size_t nv = 0;
	for (size_t i = 0; rc == 0 && i < res->n; i++)
		if (!op->qr_has_known || imap_seqset_contains(&op->qr_known, res->v[i], UINT32_MAX))
			v[nv++] = res->v[i];
	if (nv > 0) {
		buf_append_str(&o, "* VANISHED (EARLIER) ");
		buf_append_uidset(&o, v, nv);
		buf_append_str(&o, "\r\n");
	}
	free(v);
	for (size_t i = 0; i < cl->n_msgs; i++) {
		const struct imap_msg *m = &cl->msgs[i];
		if (m->modseq <= op->qr_modseq)
			continue;
		buf_printf(&o, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_fmt_flags(&o, m->flags, m->keywords, imap_recent_is(cl, m->uid));
		buf_printf(&o, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
	}
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	select_finish(op);
}

/* The mailbox is open with its snapshot in place (cl->mailbox_id set): the untagged
 * responses, then QRESYNC's. modseq is the HIGHESTMODSEQ the snapshot was read at. */
static void select_opened(struct select_op *op, uint64_t modseq)
{
	struct imap_client *cl = op->cl;
	cl->mailbox_name = xstrdup(op->mb.name);
	cl->readonly = op->examine;
	cl->uidvalidity = op->mb.uidvalidity;
	cl->uidnext = op->mb.uidnext;
	cl->highest_modseq = modseq > op->mb.highest_modseq ? modseq : op->mb.highest_modseq;
	cl->changed = false;
	imap_set_state(cl, IMAP_STATE_SELECTED);
	imap_watch(cl, true);
	/* The session watches only from here: a change committed after the store read and
	 * published before now reached nobody. When anything was published meanwhile, sync
	 * (two indexed reads, usually empty) before the tagged OK instead of missing it. */
	struct services *sv = conn_services(cl->c);
	if (sv != NULL && sv->notify != NULL && notify_generation(sv->notify) != op->notify_gen)
		cl->changed = true;
	uint32_t unseen = imap_snapshot_first_unseen(cl);
	uint32_t uidnext = op->mb.uidnext;
	if (cl->n_msgs > 0 && cl->msgs[cl->n_msgs - 1].uid >= uidnext)
		uidnext = cl->msgs[cl->n_msgs - 1].uid + 1;
	/* FLAGS names every keyword in use: the client may know of no others. */
	imap_keywords_forget(cl);
	for (size_t i = 0; i < cl->n_msgs; i++)
		imap_keywords_learn(cl, cl->msgs[i].keywords);
	struct buf o;
	buf_init(&o, SIZE_MAX);
	imap_fmt_flags_announce(cl, &o);
	buf_printf(&o, "* %zu EXISTS\r\n", cl->n_msgs);
	imap_recent_fmt(cl, &o);
	if (unseen > 0)
		buf_printf(&o, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	buf_printf(&o,
	           "* OK [UIDVALIDITY %u] UIDs valid\r\n* OK [UIDNEXT %u] Predicted next UID\r\n"
	           "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	           cl->uidvalidity, uidnext, (unsigned long long)cl->highest_modseq);
	buf_append_str(&o, "* OK [MAILBOXID (");
	imap_fmt_objectid(&o, 'F', op->mb.objectid);
	buf_append_str(&o, ")] Mailbox id\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	if (op->qr && op->qr_uidvalidity == cl->uidvalidity) {
		imap_async_begin(cl);
		if (store_vanished(imap_store(cl), cl->mailbox_id, op->qr_modseq, select_vanished,
		                   op) == 0)
			return;
		conn_release(cl->c);
	}
	select_finish(op);
}

static void select_recent_taken(void *arg)
{
	struct select_op *op = arg;
	select_opened(op, op->modseq);
}

/* The snapshot is in place: \Recent before the untagged responses count it. SELECT takes
 * what no session has taken yet (when there is any); EXAMINE takes nothing and sees as
 * recent the newest messages that are still untaken. */
static void select_recent(struct select_op *op, uint64_t modseq)
{
	struct imap_client *cl = op->cl;
	op->modseq = modseq;
	uint32_t untaken = op->mb.recent;
	if (untaken == 0 || cl->n_msgs == 0 || !imap_recent_shown(cl)) {
		select_opened(op, modseq);
		return;
	}
	if (op->examine) {
		size_t from = untaken < cl->n_msgs ? cl->n_msgs - untaken : 0;
		uint32_t *v = xcalloc(cl->n_msgs - from, sizeof(*v));
		for (size_t i = from; i < cl->n_msgs; i++)
			v[i - from] = cl->msgs[i].uid;
		imap_recent_add(cl, v, cl->n_msgs - from);
		free(v);
		select_opened(op, modseq);
		return;
	}
	imap_recent_take(cl, op->mb.id, cl->msgs[cl->n_msgs - 1].uid + 1, select_recent_taken, NULL,
	                 op);
}

static void select_listed(void *ctx, int rc, struct store_msgs *res)
{
	struct select_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_set_state(cl, IMAP_STATE_AUTH);
		imap_done(cl, "NO", imap_mailbox_error(rc));
		return;
	}
	/* The list is one read; the mailbox's counts were an earlier one. When they agree
	 * nothing changed in between, and the snapshot is the mailbox in the state they
	 * describe: a later SELECT that reads the same may reuse it. */
	struct imap_snap_key key = {op->mb.uidvalidity, op->mb.uidnext, op->mb.highest_modseq,
	                            op->mb.messages};
	bool exact = res->modseq == op->mb.highest_modseq &&
	             res->uidvalidity == op->mb.uidvalidity && res->n == op->mb.messages;
	cl->mailbox_id = op->mb.id; /* before the snapshot: it is shared by mailbox */
	imap_snapshot_set(cl, res->v, res->n, exact ? &key : NULL);
	select_recent(op, res->modseq);
}

static void select_got(void *ctx, int rc, struct store_mailboxes *res)
{
	struct select_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n != 1) {
		imap_done(cl, "NO", imap_mailbox_error(rc < 0 ? rc : -ENOENT));
		return;
	}
	op->mb = res->v[0];
	op->mb.name = xstrdup(res->v[0].name);
	/* Unchanged since a snapshot was read (HIGHESTMODSEQ rises with every change, by
	 * whomever): no need to list the messages again. */
	struct imap_snap_key key = {op->mb.uidvalidity, op->mb.uidnext, op->mb.highest_modseq,
	                            op->mb.messages};
	cl->mailbox_id = op->mb.id;
	if (imap_snapshot_reuse(cl, &key)) {
		select_recent(op, op->mb.highest_modseq);
		return;
	}
	imap_async_begin(cl);
	rc = store_message_list(imap_store(cl), op->mb.id, 0, select_listed, op);
	if (rc < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", imap_mailbox_error(rc));
	}
}

static int parse_num(const struct imap_arg *a, uint64_t *v)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		return -EINVAL;
	uint64_t x = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (a->s[i] < '0' || a->s[i] > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(a->s[i] - '0');
	}
	*v = x;
	return 0;
}

static int parse_qresync(struct select_op *op, const struct imap_arg *l)
{
	uint64_t uv, ms;
	if (l->type != IMAP_ARG_LIST || l->n < 2 || l->n > 4 || parse_num(&l->list[0], &uv) < 0 ||
	    parse_num(&l->list[1], &ms) < 0 || uv == 0 || uv > UINT32_MAX)
		return -EINVAL;
	if (l->n >= 3) {
		const struct imap_arg *k = &l->list[2];
		if (k->type != IMAP_ARG_ATOM || imap_seqset_parse(k->s, k->len, &op->qr_known) < 0)
			return -EINVAL;
		op->qr_has_known = true;
	}
	op->qr = true;
	op->qr_uidvalidity = (uint32_t)uv;
	op->qr_modseq = ms;
	return 0;
}

static void select_common(struct imap_client *cl, const struct imap_arg *a, size_t n, bool examine)
{
	if (n < 1) {
		imap_done(cl, "BAD", "Needs a mailbox name");
		return;
	}
	/* Selecting (even a failing one) leaves the currently selected mailbox. */
	if (cl->state == IMAP_STATE_SELECTED) {
		conn_write_str(cl->c, "* OK [CLOSED] Previous mailbox closed\r\n");
		imap_set_state(cl, IMAP_STATE_AUTH);
	}
	struct select_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = select_op_free;
	if (n >= 2 && a[1].type == IMAP_ARG_LIST)
		for (size_t i = 0; i < a[1].n; i++) {
			if (imap_arg_is(&a[1].list[i], "CONDSTORE"))
				imap_condstore_enable(cl);
			if (!imap_arg_is(&a[1].list[i], "QRESYNC"))
				continue;
			if (!cl->qresync) {
				imap_done(cl, "BAD", "QRESYNC is not enabled");
				return;
			}
			if (i + 1 >= a[1].n || parse_qresync(op, &a[1].list[i + 1]) < 0) {
				imap_done(cl, "BAD", "Invalid QRESYNC parameters");
				return;
			}
			i++;
		}
	char *name = imap_mailbox_arg(cl, &a[0]);
	if (name == NULL)
		return;
	op->name = name;
	op->examine = examine;
	struct services *sv = conn_services(cl->c);
	if (sv != NULL && sv->notify != NULL)
		op->notify_gen = notify_generation(sv->notify);
	imap_async_begin(cl);
	int rc = store_mailbox_get(imap_store(cl), cl->user_id, name, select_got, op);
	if (rc < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", imap_mailbox_error(rc));
	}
}

void imap_cmd_select(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	select_common(cl, a, n, false);
}

void imap_cmd_examine(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	select_common(cl, a, n, true);
}

/* ---- CLOSE / UNSELECT ---- */

static void close_expunged(void *ctx, int rc, struct store_uids *res)
{
	struct imap_client *cl = ctx;
	if (!imap_async_end(cl))
		return;
	imap_set_state(cl, IMAP_STATE_AUTH);
	imap_done(cl, "OK", "CLOSE completed");
}

void imap_cmd_close(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (cl->readonly) {
		imap_set_state(cl, IMAP_STATE_AUTH);
		imap_done(cl, "OK", "CLOSE completed");
		return;
	}
	if (!imap_audit_deleted(cl, "expunge", "CLOSE"))
		return;
	imap_async_begin(cl);
	if (store_expunge(imap_store(cl), cl->mailbox_id, NULL, 0, close_expunged, cl) < 0) {
		conn_release(cl->c);
		imap_set_state(cl, IMAP_STATE_AUTH);
		imap_done(cl, "OK", "CLOSE completed");
	}
}

void imap_cmd_unselect(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	imap_set_state(cl, IMAP_STATE_AUTH);
	imap_done(cl, "OK", "UNSELECT completed");
}
