/*
 * Mailbox commands: LIST, LSUB, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS, SELECT,
 * EXAMINE, CLOSE, UNSELECT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"
#include "server/imap/imap_search.h"
#include "server/notify.h"
#include "server/services.h"

struct mbox_op {
	struct imap_client *cl;
	char *name, *name2, *pattern;
	bool lsub, subscribed_only, ret_subscribed, ret_children, ret_special;
	unsigned status_items;
	bool examine;
	struct store_mailbox mb;
	/* SELECT ... (QRESYNC (uidvalidity modseq [known-uids])) */
	bool qr;
	uint32_t qr_uidvalidity;
	uint64_t qr_modseq;
	struct imap_seqset qr_known;
	bool qr_has_known;
	/* SELECT: notify_generation() before the store reads (see select_opened) */
	uint64_t notify_gen;
};

static void mbox_op_free(void *p)
{
	struct mbox_op *op = p;
	free(op->name);
	free(op->name2);
	free(op->pattern);
	free(op->mb.name);
	imap_seqset_free(&op->qr_known);
	free(op);
}

static struct mbox_op *mbox_op_new(struct imap_client *cl)
{
	struct mbox_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = mbox_op_free;
	return op;
}

static const char *store_err_text(int rc)
{
	switch (rc) {
	case -ENOENT:
		return "[NONEXISTENT] No such mailbox";
	case -EEXIST:
		return "[ALREADYEXISTS] Mailbox already exists";
	case -EINVAL:
		return "[CANNOT] Invalid mailbox name or operation";
	case -EDQUOT:
		return "[OVERQUOTA] Quota exceeded";
	default:
		return "[SERVERBUG] Store error";
	}
}

/* ---- simple changes ---- */

static void simple_done(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0)
		imap_done(cl, "NO", store_err_text(rc));
	else
		imap_done(cl, "OK", "Completed");
}

static void start(struct imap_client *cl, struct mbox_op *op, int rc)
{
	if (rc < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", store_err_text(rc));
	}
}

void imap_cmd_create(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n < 1) {
		imap_done(cl, "BAD", "CREATE needs a name");
		return;
	}
	/* A trailing separator only says the client wants children: drop it. */
	struct imap_arg t = a[0];
	if (t.len > 1 && t.s[t.len - 1] == '/')
		t.len--;
	char *name = imap_mailbox_arg(cl, &t);
	if (name == NULL)
		return;
	struct mbox_op *op = mbox_op_new(cl);
	op->name = name;
	unsigned su = 0;
	if (n >= 2 && a[1].type == IMAP_ARG_LIST && a[1].n == 2 &&
	    imap_arg_is(&a[1].list[0], "USE") && a[1].list[1].type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < a[1].list[1].n; i++) {
			const struct imap_arg *u = &a[1].list[1].list[i];
			su |= imap_arg_is(u, "\\Sent")      ? STORE_SU_SENT
			      : imap_arg_is(u, "\\Drafts")  ? STORE_SU_DRAFTS
			      : imap_arg_is(u, "\\Trash")   ? STORE_SU_TRASH
			      : imap_arg_is(u, "\\Junk")    ? STORE_SU_JUNK
			      : imap_arg_is(u, "\\Archive") ? STORE_SU_ARCHIVE
			                                    : 0;
		}
	}
	if (strcmp(name, "INBOX") == 0) {
		imap_done(cl, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	imap_async_begin(cl);
	start(cl, op, store_mailbox_create(imap_store(cl), cl->user_id, name, su, simple_done, op));
}

void imap_cmd_delete(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	char *name = n == 1 ? imap_mailbox_arg(cl, &a[0]) : NULL;
	if (n != 1) {
		imap_done(cl, "BAD", "DELETE needs a name");
		return;
	}
	if (name == NULL)
		return;
	struct mbox_op *op = mbox_op_new(cl);
	op->name = name;
	if (strcmp(name, "INBOX") == 0) {
		imap_done(cl, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (cl->state == IMAP_STATE_SELECTED && cl->mailbox_name != NULL &&
	    strcmp(cl->mailbox_name, name) == 0)
		imap_set_state(cl, IMAP_STATE_AUTH);
	imap_async_begin(cl);
	start(cl, op, store_mailbox_delete(imap_store(cl), cl->user_id, name, simple_done, op));
}

void imap_cmd_rename(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 2) {
		imap_done(cl, "BAD", "RENAME needs two names");
		return;
	}
	char *from = imap_mailbox_arg(cl, &a[0]);
	if (from == NULL)
		return;
	char *to = imap_mailbox_arg(cl, &a[1]);
	if (to == NULL) {
		free(from);
		return;
	}
	struct mbox_op *op = mbox_op_new(cl);
	op->name = from;
	op->name2 = to;
	imap_async_begin(cl);
	start(cl, op, store_mailbox_rename(imap_store(cl), cl->user_id, from, to, simple_done, op));
}

static void subscribe(struct imap_client *cl, const struct imap_arg *a, size_t n, bool on)
{
	if (n != 1) {
		imap_done(cl, "BAD", "Needs a mailbox name");
		return;
	}
	char *name = imap_mailbox_arg(cl, &a[0]);
	if (name == NULL)
		return;
	struct mbox_op *op = mbox_op_new(cl);
	op->name = name;
	imap_async_begin(cl);
	start(cl, op,
	      store_mailbox_subscribe(imap_store(cl), cl->user_id, name, on, simple_done, op));
}

void imap_cmd_subscribe(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	subscribe(cl, a, n, true);
}

void imap_cmd_unsubscribe(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	subscribe(cl, a, n, false);
}

/* ---- STATUS ---- */

enum {
	ST_MESSAGES = 1,
	ST_UIDNEXT = 2,
	ST_UIDVALIDITY = 4,
	ST_UNSEEN = 8,
	ST_RECENT = 16,
	ST_HIGHESTMODSEQ = 32,
	ST_SIZE = 64,
	ST_DELETED = 128,
};

static int parse_status_items(const struct imap_arg *l, unsigned *items)
{
	static const char *const names[] = {"MESSAGES", "UIDNEXT",       "UIDVALIDITY", "UNSEEN",
	                                    "RECENT",   "HIGHESTMODSEQ", "SIZE",        "DELETED"};
	if (l->type != IMAP_ARG_LIST || l->n == 0)
		return -EINVAL;
	*items = 0;
	for (size_t i = 0; i < l->n; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (imap_arg_is(&l->list[i], names[k])) {
				*items |= 1u << k;
				ok = true;
			}
		if (!ok)
			return -EINVAL;
	}
	return 0;
}

static void fmt_status(struct imap_client *cl, struct buf *o, const struct store_mailbox *mb,
                       unsigned items)
{
	char *cname = imap_mailbox_to_client(mb->name, cl->utf8);
	buf_append_str(o, "* STATUS ");
	imap_fmt_cstring(o, cname, true);
	free(cname);
	buf_append_str(o, " (");
	const char *sep = "";
	if (items & ST_MESSAGES) {
		buf_printf(o, "%sMESSAGES %u", sep, mb->messages);
		sep = " ";
	}
	if (items & ST_UIDNEXT) {
		buf_printf(o, "%sUIDNEXT %u", sep, mb->uidnext);
		sep = " ";
	}
	if (items & ST_UIDVALIDITY) {
		buf_printf(o, "%sUIDVALIDITY %u", sep, mb->uidvalidity);
		sep = " ";
	}
	if (items & ST_UNSEEN) {
		buf_printf(o, "%sUNSEEN %u", sep, mb->unseen);
		sep = " ";
	}
	if (items & ST_RECENT) {
		buf_printf(o, "%sRECENT 0", sep);
		sep = " ";
	}
	if (items & ST_HIGHESTMODSEQ) {
		buf_printf(o, "%sHIGHESTMODSEQ %llu", sep, (unsigned long long)mb->highest_modseq);
		sep = " ";
	}
	if (items & ST_SIZE) {
		buf_printf(o, "%sSIZE %llu", sep, (unsigned long long)mb->size);
		sep = " ";
	}
	if (items & ST_DELETED)
		buf_printf(o, "%sDELETED 0", sep);
	buf_append_str(o, ")\r\n");
}

static void status_got(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n_mailboxes != 1) {
		imap_done(cl, "NO", store_err_text(rc < 0 ? rc : -ENOENT));
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	fmt_status(cl, &o, &res->mailboxes[0], op->status_items);
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", "STATUS completed");
}

void imap_cmd_status(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	unsigned items;
	if (n != 2 || parse_status_items(&a[1], &items) < 0) {
		imap_done(cl, "BAD", "STATUS needs a mailbox and a list of items");
		return;
	}
	char *name = imap_mailbox_arg(cl, &a[0]);
	if (name == NULL)
		return;
	struct mbox_op *op = mbox_op_new(cl);
	op->name = name;
	op->status_items = items;
	imap_async_begin(cl);
	start(cl, op, store_mailbox_get(imap_store(cl), cl->user_id, name, status_got, op));
}

/* ---- LIST / LSUB ---- */

static bool match(const char *p, const char *s)
{
	for (; *p != '\0'; p++, s++) {
		if (*p == '*' || *p == '%') {
			for (const char *t = s;; t++) {
				if (match(p + 1, t))
					return true;
				if (*t == '\0' || (*p == '%' && *t == '/'))
					return false;
			}
		}
		if (*s == '\0' || *p != *s)
			return false;
	}
	return *s == '\0';
}

static bool name_match(const char *pattern, const char *name)
{
	/* INBOX is case-insensitive: match its canonical name against an upper-cased
	 * INBOX prefix of the pattern. */
	if (strncasecmp(pattern, "INBOX", 5) == 0 && strncmp(name, "INBOX", 5) == 0) {
		char *p = xstrdup(pattern);
		memcpy(p, "INBOX", 5);
		bool m = match(p, name);
		free(p);
		return m;
	}
	return match(pattern, name);
}

static bool mailbox_exists(const struct store_result *res, const char *name, size_t len)
{
	for (size_t i = 0; i < res->n_mailboxes; i++)
		if (strlen(res->mailboxes[i].name) == len &&
		    strncmp(res->mailboxes[i].name, name, len) == 0)
			return true;
	return false;
}

/* Parents that are not mailboxes themselves ("a" of "a/b") are listed \Noselect once. */
static void list_parents(struct imap_client *cl, const struct mbox_op *op,
                         const struct store_result *res, struct buf *o)
{
	if (op->lsub || op->subscribed_only)
		return;
	for (size_t i = 0; i < res->n_mailboxes; i++) {
		const char *name = res->mailboxes[i].name;
		for (const char *sl = strchr(name, '/'); sl != NULL; sl = strchr(sl + 1, '/')) {
			size_t len = (size_t)(sl - name);
			if (mailbox_exists(res, name, len))
				continue;
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				seen = strncmp(res->mailboxes[k].name, name, len + 1) == 0;
			if (seen)
				continue;
			char *p = xstrndup(name, len);
			if (name_match(op->pattern, p)) {
				buf_append_str(o, "* LIST (\\Noselect \\HasChildren) \"/\" ");
				char *cname = imap_mailbox_to_client(p, cl->utf8);
				imap_fmt_cstring(o, cname, true);
				free(cname);
				buf_append_str(o, "\r\n");
			}
			free(p);
		}
	}
}

static void list_got(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO", store_err_text(rc));
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	for (size_t i = 0; i < res->n_mailboxes; i++) {
		const struct store_mailbox *mb = &res->mailboxes[i];
		if (!name_match(op->pattern, mb->name))
			continue;
		if ((op->lsub || op->subscribed_only) && !mb->subscribed)
			continue;
		bool children = false;
		size_t nl = strlen(mb->name);
		for (size_t k = 0; k < res->n_mailboxes; k++)
			if (strncmp(res->mailboxes[k].name, mb->name, nl) == 0 &&
			    res->mailboxes[k].name[nl] == '/')
				children = true;
		buf_append_str(&o, op->lsub ? "* LSUB (" : "* LIST (");
		buf_append_str(&o, children ? "\\HasChildren" : "\\HasNoChildren");
		if (!op->lsub && (op->subscribed_only || op->ret_subscribed) && mb->subscribed)
			buf_append_str(&o, " \\Subscribed");
		if (!op->lsub) {
			if (mb->special_use & STORE_SU_SENT)
				buf_append_str(&o, " \\Sent");
			if (mb->special_use & STORE_SU_DRAFTS)
				buf_append_str(&o, " \\Drafts");
			if (mb->special_use & STORE_SU_TRASH)
				buf_append_str(&o, " \\Trash");
			if (mb->special_use & STORE_SU_JUNK)
				buf_append_str(&o, " \\Junk");
			if (mb->special_use & STORE_SU_ARCHIVE)
				buf_append_str(&o, " \\Archive");
		}
		buf_append_str(&o, ") \"/\" ");
		char *cname = imap_mailbox_to_client(mb->name, cl->utf8);
		imap_fmt_cstring(&o, cname, true);
		free(cname);
		buf_append_str(&o, "\r\n");
		if (op->status_items != 0)
			fmt_status(cl, &o, mb, op->status_items);
	}
	list_parents(cl, op, res, &o);
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", op->lsub ? "LSUB completed" : "LIST completed");
}

static void list(struct imap_client *cl, const struct imap_arg *a, size_t n, bool lsub)
{
	struct mbox_op *op = mbox_op_new(cl);
	op->lsub = lsub;
	size_t i = 0;
	if (!lsub && n > 0 && a[0].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < a[0].n; k++)
			if (imap_arg_is(&a[0].list[k], "SUBSCRIBED"))
				op->subscribed_only = true;
		i = 1;
	}
	if (n < i + 2 || !imap_arg_is_astring(&a[i]) ||
	    !(imap_arg_is_astring(&a[i + 1]) || a[i + 1].type == IMAP_ARG_LIST)) {
		imap_done(cl, "BAD", "LIST needs a reference and a pattern");
		return;
	}
	const struct imap_arg *ret = NULL;
	if (n >= i + 4 && imap_arg_is(&a[i + 2], "RETURN") && a[i + 3].type == IMAP_ARG_LIST)
		ret = &a[i + 3];
	for (size_t k = 0; ret != NULL && k < ret->n; k++) {
		if (imap_arg_is(&ret->list[k], "SUBSCRIBED"))
			op->ret_subscribed = true;
		if (imap_arg_is(&ret->list[k], "STATUS") && k + 1 < ret->n &&
		    parse_status_items(&ret->list[k + 1], &op->status_items) < 0) {
			imap_done(cl, "BAD", "Bad STATUS items");
			return;
		}
	}
	const struct imap_arg *pat = &a[i + 1];
	if (pat->type == IMAP_ARG_LIST)
		pat = pat->n > 0 ? &pat->list[0] : NULL;
	if (pat == NULL || !imap_arg_is_astring(pat)) {
		imap_done(cl, "BAD", "Bad pattern");
		return;
	}
	char *ref = imap_arg_dup(&a[i]), *p = imap_arg_dup(pat);
	if (ref == NULL || p == NULL) {
		free(ref);
		free(p);
		imap_done(cl, "BAD", "Bad pattern");
		return;
	}
	char *full = xasprintf("%s%s", ref, p);
	free(ref);
	free(p);
	if (pat->len == 0) {
		free(full);
		conn_printf(cl->c, "* %s (\\Noselect) \"/\" \"\"\r\n", lsub ? "LSUB" : "LIST");
		imap_done(cl, "OK", "LIST completed");
		return;
	}
	if (!cl->utf8) {
		char *dec;
		if (imap_mutf7_to_utf8(full, strlen(full), &dec) == 0) {
			free(full);
			full = dec;
		}
	}
	op->pattern = full;
	imap_async_begin(cl);
	start(cl, op, store_mailbox_list(imap_store(cl), cl->user_id, list_got, op));
}

void imap_cmd_list(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	list(cl, a, n, false);
}

void imap_cmd_lsub(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	list(cl, a, n, true);
}

/* ---- SELECT / EXAMINE ---- */

static void select_finish(struct mbox_op *op)
{
	imap_done(op->cl, "OK",
	          op->examine ? "[READ-ONLY] EXAMINE completed" : "[READ-WRITE] SELECT completed");
}

/* QRESYNC (RFC 7162 3.2.5): what vanished since the client's modseq (of the UIDs it
 * knows), then the flags of every message changed since. */
static void select_vanished(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	struct buf o;
	buf_init(&o, SIZE_MAX);
	uint32_t *v = xcalloc(res->n_uids + 1, sizeof(*v));
	size_t nv = 0;
	for (size_t i = 0; rc == 0 && i < res->n_uids; i++)
		if (!op->qr_has_known ||
		    imap_seqset_contains(&op->qr_known, res->uids[i], UINT32_MAX))
			v[nv++] = res->uids[i];
	if (nv > 0) {
		buf_append_str(&o, "* VANISHED (EARLIER) ");
		imap_fmt_seqset(&o, v, nv);
		buf_append_str(&o, "\r\n");
	}
	free(v);
	for (size_t i = 0; i < cl->n_msgs; i++) {
		const struct imap_msg *m = &cl->msgs[i];
		if (m->modseq <= op->qr_modseq)
			continue;
		buf_printf(&o, "* %zu FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_fmt_flags(&o, m->flags, m->keywords);
		buf_printf(&o, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
	}
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	select_finish(op);
}

/* The mailbox is open with its snapshot in place (cl->mailbox_id set): the untagged
 * responses, then QRESYNC's. modseq is the HIGHESTMODSEQ the snapshot was read at. */
static void select_opened(struct mbox_op *op, uint64_t modseq)
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
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_printf(&o,
	           "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
	           "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
	           "Flags permitted\r\n"
	           "* %zu EXISTS\r\n* 0 RECENT\r\n",
	           cl->n_msgs);
	if (unseen > 0)
		buf_printf(&o, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	buf_printf(&o,
	           "* OK [UIDVALIDITY %u] UIDs valid\r\n* OK [UIDNEXT %u] Predicted next UID\r\n"
	           "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	           cl->uidvalidity, uidnext, (unsigned long long)cl->highest_modseq);
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

static void select_listed(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_set_state(cl, IMAP_STATE_AUTH);
		imap_done(cl, "NO", store_err_text(rc));
		return;
	}
	/* The list is one read; the mailbox's counts were an earlier one. When they agree
	 * nothing changed in between, and the snapshot is the mailbox in the state they
	 * describe: a later SELECT that reads the same may reuse it. */
	struct imap_snap_key key = {op->mb.uidvalidity, op->mb.uidnext, op->mb.highest_modseq,
	                            op->mb.messages};
	bool exact = res->modseq == op->mb.highest_modseq &&
	             res->uidvalidity == op->mb.uidvalidity && res->n_msgs == op->mb.messages;
	cl->mailbox_id = op->mb.id; /* before the snapshot: it is shared by mailbox */
	imap_snapshot_set(cl, res->msgs, res->n_msgs, exact ? &key : NULL);
	select_opened(op, res->modseq);
}

static void select_got(void *ctx, int rc, struct store_result *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n_mailboxes != 1) {
		imap_done(cl, "NO", store_err_text(rc < 0 ? rc : -ENOENT));
		return;
	}
	op->mb = res->mailboxes[0];
	op->mb.name = xstrdup(res->mailboxes[0].name);
	/* Unchanged since a snapshot was read (HIGHESTMODSEQ rises with every change, by
	 * whomever): no need to list the messages again. */
	struct imap_snap_key key = {op->mb.uidvalidity, op->mb.uidnext, op->mb.highest_modseq,
	                            op->mb.messages};
	cl->mailbox_id = op->mb.id;
	if (imap_snapshot_reuse(cl, &key)) {
		select_opened(op, op->mb.highest_modseq);
		return;
	}
	imap_async_begin(cl);
	rc = store_message_list(imap_store(cl), op->mb.id, 0, select_listed, op);
	if (rc < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", store_err_text(rc));
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

static int parse_qresync(struct mbox_op *op, const struct imap_arg *l)
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
	struct mbox_op *op = mbox_op_new(cl);
	if (n >= 2 && a[1].type == IMAP_ARG_LIST)
		for (size_t i = 0; i < a[1].n; i++) {
			if (imap_arg_is(&a[1].list[i], "CONDSTORE"))
				cl->condstore = true;
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
	start(cl, op, store_mailbox_get(imap_store(cl), cl->user_id, name, select_got, op));
}

void imap_cmd_select(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	select_common(cl, a, n, false);
}

void imap_cmd_examine(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	select_common(cl, a, n, true);
}

static void close_expunged(void *ctx, int rc, struct store_result *res)
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
