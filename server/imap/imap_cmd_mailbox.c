/*
 * Mailbox commands: LIST, LSUB, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS, NAMESPACE
 * (SELECT, EXAMINE, CLOSE and UNSELECT: imap_cmd_select.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"

struct mbox_op {
	struct imap_client *cl;
	char *name, *name2, *pattern;
	bool lsub, subscribed_only, ret_subscribed, ret_children, ret_special;
	unsigned status_items;
};

static void mbox_op_free(void *p)
{
	struct mbox_op *op = p;
	free(op->name);
	free(op->name2);
	free(op->pattern);
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

const char *imap_mailbox_error(int rc)
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
		imap_done(cl, "NO", imap_mailbox_error(rc));
	else
		imap_done(cl, "OK", "Completed");
}

static void start(struct imap_client *cl, struct mbox_op *op, int rc)
{
	if (rc < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", imap_mailbox_error(rc));
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
		imap_done(cl, "NO", imap_mailbox_error(rc < 0 ? rc : -ENOENT));
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
		imap_done(cl, "NO", imap_mailbox_error(rc));
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

void imap_cmd_namespace(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	conn_write_str(cl->c, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_done(cl, "OK", "NAMESPACE completed");
}
