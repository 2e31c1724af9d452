/*
 * Mailbox commands: LIST, LSUB, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS, NAMESPACE
 * (SELECT, EXAMINE, CLOSE and UNSELECT: imap_cmd_select.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_objectid.h"
#include "server/imap/imap_private.h"

struct mbox_op {
	struct imap_client *cl;
	char *name, *name2;
	char **patterns; /* LIST/LSUB: reference + pattern, store names */
	size_t n_patterns;
	bool lsub, subscribed_only, recursive, special_only, ret_subscribed;
	unsigned status_items;
	int event;           /* enum notify_mailbox_kind published when the change succeeds, or 0 */
	uint64_t created_id; /* CREATE: the new mailbox's MAILBOXID (RFC 8474 4.1) */
};

static void mbox_op_free(void *p)
{
	struct mbox_op *op = p;
	free(op->name);
	free(op->name2);
	for (size_t i = 0; i < op->n_patterns; i++)
		free(op->patterns[i]);
	free(op->patterns);
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
	case -ENOSPC:
		return "[UNAVAILABLE] The server's disk is full, try again later";
	case -EIO:
		return "[UNAVAILABLE] The server cannot store mail now, try again later";
	default:
		return "[SERVERBUG] Store error";
	}
}

/* ---- simple changes ---- */

static void simple_done(void *ctx, int rc)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO", imap_mailbox_error(rc));
		return;
	}
	/* CREATE: the store's form of the name, which INBOX rules may have changed. */
	if (op->event != 0)
		imap_notify_mailbox_event(cl, op->event, op->name2 != NULL ? op->name2 : op->name,
		                          op->name2 != NULL ? op->name : NULL);
	if (op->created_id != 0) {
		struct buf t;
		buf_init(&t, 64);
		buf_append_str(&t, "[MAILBOXID (");
		imap_fmt_objectid(&t, 'F', op->created_id);
		buf_append_str(&t, ")] Completed");
		buf_append(&t, "", 1);
		imap_done(cl, "OK", t.data);
		buf_free(&t);
		return;
	}
	imap_done(cl, "OK", "Completed");
}

static void simple_mailbox(void *ctx, int rc, struct store_mailboxes *res)
{
	(void)res;
	simple_done(ctx, rc);
}

static void created_mailbox(void *ctx, int rc, struct store_mailboxes *res)
{
	struct mbox_op *op = ctx;
	if (rc == 0 && res->n > 0)
		op->created_id = res->v[0].objectid;
	simple_done(ctx, rc);
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
	op->event = NOTIFY_MAILBOX_CREATED;
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
	if (!audit_session(cl->c, "mailbox_create", name, NULL, 0, NULL))
		return;
	imap_async_begin(cl);
	start(cl, op,
	      store_mailbox_create(imap_store(cl), cl->user_id, name, su, created_mailbox, op));
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
	op->event = NOTIFY_MAILBOX_DELETED;
	if (strcmp(name, "INBOX") == 0) {
		imap_done(cl, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (cl->state == IMAP_STATE_SELECTED && cl->mailbox_name != NULL &&
	    strcmp(cl->mailbox_name, name) == 0)
		imap_set_state(cl, IMAP_STATE_AUTH);
	if (!audit_session(cl->c, "mailbox_delete", name, NULL, 0, NULL))
		return;
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
	op->event = NOTIFY_MAILBOX_RENAMED;
	char *detail = xasprintf("to=%s", to);
	bool audited = audit_session(cl->c, "mailbox_rename", from, NULL, 0, detail);
	free(detail);
	if (!audited)
		return;
	imap_async_begin(cl);
	start(cl, op,
	      store_mailbox_rename(imap_store(cl), cl->user_id, from, to, simple_mailbox, op));
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
	op->event = on ? NOTIFY_MAILBOX_SUBSCRIBED : NOTIFY_MAILBOX_UNSUBSCRIBED;
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

static int parse_status_items(const struct imap_arg *l, unsigned *items)
{
	static const char *const names[] = {
	    "MESSAGES",      "UIDNEXT", "UIDVALIDITY", "UNSEEN",          "RECENT",
	    "HIGHESTMODSEQ", "SIZE",    "DELETED",     "DELETED-STORAGE", "MAILBOXID"};
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
	if (items & IMAP_STATUS_MESSAGES) {
		buf_printf(o, "%sMESSAGES %u", sep, mb->messages);
		sep = " ";
	}
	if (items & IMAP_STATUS_UIDNEXT) {
		buf_printf(o, "%sUIDNEXT %u", sep, mb->uidnext);
		sep = " ";
	}
	if (items & IMAP_STATUS_UIDVALIDITY) {
		buf_printf(o, "%sUIDVALIDITY %u", sep, mb->uidvalidity);
		sep = " ";
	}
	if (items & IMAP_STATUS_UNSEEN) {
		buf_printf(o, "%sUNSEEN %u", sep, mb->unseen);
		sep = " ";
	}
	if (items & IMAP_STATUS_RECENT) {
		/* Untaken ones, and those this session holds when it has the mailbox selected. */
		uint32_t recent = mb->recent;
		if (cl->state == IMAP_STATE_SELECTED && cl->mailbox_id == mb->id)
			recent += imap_recent_count(cl);
		buf_printf(o, "%sRECENT %u", sep, recent);
		sep = " ";
	}
	if (items & IMAP_STATUS_HIGHESTMODSEQ) {
		buf_printf(o, "%sHIGHESTMODSEQ %llu", sep, (unsigned long long)mb->highest_modseq);
		sep = " ";
	}
	if (items & IMAP_STATUS_SIZE) {
		buf_printf(o, "%sSIZE %llu", sep, (unsigned long long)mb->size);
		sep = " ";
	}
	/* RFC 9208 4.2: \Deleted messages and, in the STORAGE resource's units of 1024
	 * octets, the space an EXPUNGE would give back (rounded up as usage is). */
	if (items & IMAP_STATUS_DELETED) {
		buf_printf(o, "%sDELETED %u", sep, mb->deleted);
		sep = " ";
	}
	if (items & IMAP_STATUS_DELETED_STORAGE) {
		buf_printf(o, "%sDELETED-STORAGE %llu", sep,
		           (unsigned long long)((mb->deleted_size + 1023) / 1024));
		sep = " ";
	}
	if (items & IMAP_STATUS_MAILBOXID) {
		buf_printf(o, "%sMAILBOXID (", sep);
		imap_fmt_objectid(o, 'F', mb->objectid);
		buf_append_str(o, ")");
	}
	buf_append_str(o, ")\r\n");
}

void imap_fmt_status(struct imap_client *cl, struct buf *o, const struct store_mailbox *mb,
                     unsigned items)
{
	fmt_status(cl, o, mb, items);
}

static void status_got(void *ctx, int rc, struct store_mailboxes *res)
{
	struct mbox_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n != 1) {
		imap_done(cl, "NO", imap_mailbox_error(rc < 0 ? rc : -ENOENT));
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	fmt_status(cl, &o, &res->v[0], op->status_items);
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
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		imap_condstore_enable(cl); /* RFC 7162 3.1: an enabling command */
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

static bool any_match(const struct mbox_op *op, const char *name)
{
	for (size_t i = 0; i < op->n_patterns; i++)
		if (name_match(op->patterns[i], name))
			return true;
	return false;
}

static const struct store_mailbox *mailbox_find(const struct store_mailboxes *res, const char *name,
                                                size_t len)
{
	for (size_t i = 0; i < res->n; i++)
		if (strlen(res->v[i].name) == len && strncmp(res->v[i].name, name, len) == 0)
			return &res->v[i];
	return NULL;
}

static bool missing_sub(const struct store_mailboxes *res, const char *name)
{
	for (size_t i = 0; i < res->n_missing; i++)
		if (strcmp(res->missing[i], name) == 0)
			return true;
	return false;
}

static void name_add(char ***v, size_t *n, size_t *cap, const char *name, size_t len)
{
	for (size_t k = 0; k < *n; k++)
		if (strlen((*v)[k]) == len && strncmp((*v)[k], name, len) == 0)
			return;
	if (*n == *cap) {
		*cap *= 2;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = xstrndup(name, len);
}

/* The names LIST can return: every mailbox, then once each parent that is not a mailbox
 * itself ("a" of "a/b"), in the order they first appear; with subs, also the subscribed
 * names that are no mailbox and their parents. */
static char **list_names(const struct store_mailboxes *res, bool subs, size_t *n_r)
{
	size_t n = 0, cap = res->n + res->n_missing + 1;
	char **v = xcalloc(cap, sizeof(*v));
	for (size_t i = 0; i < res->n; i++)
		v[n++] = xstrdup(res->v[i].name);
	for (size_t i = 0; subs && i < res->n_missing; i++)
		name_add(&v, &n, &cap, res->missing[i], strlen(res->missing[i]));
	size_t whole = n;
	for (size_t i = 0; i < whole; i++)
		for (const char *sl = strchr(v[i], '/'); sl != NULL; sl = strchr(sl + 1, '/'))
			name_add(&v, &n, &cap, v[i], (size_t)(sl - v[i]));
	*n_r = n;
	return v;
}

static bool is_below(const char *child, const char *name, size_t nl)
{
	return strncmp(child, name, nl) == 0 && child[nl] == '/';
}

/* RECURSIVEMATCH (RFC 5258) and LSUB with "%" (RFC 3501 6.3.9): name has a subscribed
 * descendant the patterns do not return themselves. */
static bool subscribed_below(const struct mbox_op *op, const struct store_mailboxes *res,
                             const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < res->n; i++) {
		const struct store_mailbox *d = &res->v[i];
		if (d->subscribed && is_below(d->name, name, nl) && !any_match(op, d->name))
			return true;
	}
	for (size_t i = 0; i < res->n_missing; i++)
		if (is_below(res->missing[i], name, nl) && !any_match(op, res->missing[i]))
			return true;
	return false;
}

static void fmt_attrs(struct buf *o, const struct mbox_op *op, const struct store_mailbox *mb,
                      bool subscribed, bool children)
{
	const char *sep = "";
	if (mb == NULL && !(op->lsub && subscribed)) {
		/* Not a mailbox: RFC 5258 calls it \NonExistent where its rules apply. LSUB
		 * keeps \Noselect for the parents it adds (RFC 3501 6.3.9) and shows a
		 * subscribed name as the subscription it is. */
		bool ext = op->subscribed_only && !op->lsub;
		buf_append_str(o, ext ? "\\NonExistent" : "\\Noselect");
		sep = " ";
	}
	buf_printf(o, "%s%s", sep, children ? "\\HasChildren" : "\\HasNoChildren");
	if (mb == NULL && subscribed && op->subscribed_only && !op->lsub)
		buf_append_str(o, " \\Subscribed");
	if (mb == NULL || op->lsub)
		return;
	if ((op->subscribed_only || op->ret_subscribed) && mb->subscribed)
		buf_append_str(o, " \\Subscribed");
	if (mb->special_use & STORE_SU_SENT)
		buf_append_str(o, " \\Sent");
	if (mb->special_use & STORE_SU_DRAFTS)
		buf_append_str(o, " \\Drafts");
	if (mb->special_use & STORE_SU_TRASH)
		buf_append_str(o, " \\Trash");
	if (mb->special_use & STORE_SU_JUNK)
		buf_append_str(o, " \\Junk");
	if (mb->special_use & STORE_SU_ARCHIVE)
		buf_append_str(o, " \\Archive");
}

static void list_one(struct imap_client *cl, const struct mbox_op *op,
                     const struct store_mailboxes *res, const char *name, struct buf *o)
{
	if (!any_match(op, name))
		return;
	const struct store_mailbox *mb = mailbox_find(res, name, strlen(name));
	if (op->special_only && (mb == NULL || mb->special_use == 0))
		return;
	bool selected = true, childinfo = false;
	bool subscribed = mb != NULL ? mb->subscribed : missing_sub(res, name);
	if (op->lsub || op->subscribed_only) {
		selected = subscribed;
		if (op->lsub || op->recursive)
			childinfo = subscribed_below(op, res, name);
		if (!selected && !childinfo)
			return;
	}
	bool children = false;
	size_t nl = strlen(name);
	for (size_t k = 0; k < res->n && !children; k++)
		children = is_below(res->v[k].name, name, nl);
	buf_append_str(o, op->lsub ? "* LSUB (" : "* LIST (");
	if (op->lsub && !selected && mb != NULL) /* RFC 3501 6.3.9: a subscribed name's parent */
		buf_append_str(o, "\\Noselect ");
	fmt_attrs(o, op, mb, subscribed, children);
	buf_append_str(o, ") \"/\" ");
	char *cname = imap_mailbox_to_client(name, cl->utf8);
	imap_fmt_cstring(o, cname, true);
	free(cname);
	if (childinfo && !op->lsub)
		buf_append_str(o, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_append_str(o, "\r\n");
	/* RFC 5819: STATUS right after the LIST of each selectable mailbox, none otherwise. */
	if (op->status_items != 0 && mb != NULL && selected)
		fmt_status(cl, o, mb, op->status_items);
}

static void list_got(void *ctx, int rc, struct store_mailboxes *res)
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
	size_t n;
	char **names = list_names(res, op->lsub || op->subscribed_only, &n);
	for (size_t i = 0; i < n; i++) {
		list_one(cl, op, res, names[i], &o);
		free(names[i]);
	}
	free(names);
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", op->lsub ? "LSUB completed" : "LIST completed");
}

/* RFC 5258 selection options; BAD for one we do not know and for RECURSIVEMATCH without
 * an option it could modify. REMOTE changes nothing: there are no remote mailboxes. */
static int parse_select_opts(struct mbox_op *op, const struct imap_arg *l)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct imap_arg *o = &l->list[k];
		if (imap_arg_is(o, "SUBSCRIBED"))
			op->subscribed_only = true;
		else if (imap_arg_is(o, "RECURSIVEMATCH"))
			op->recursive = true;
		else if (imap_arg_is(o, "SPECIAL-USE"))
			op->special_only = true;
		else if (!imap_arg_is(o, "REMOTE"))
			return -EINVAL;
	}
	if (op->recursive && !op->subscribed_only)
		return -EINVAL;
	return 0;
}

/* RFC 5258 return options, RFC 5819 STATUS, RFC 6154 SPECIAL-USE. \HasChildren and the
 * special-use attributes are always returned, as RFC 5258 and RFC 6154 allow. */
static int parse_return_opts(struct mbox_op *op, const struct imap_arg *l)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct imap_arg *o = &l->list[k];
		if (imap_arg_is(o, "SUBSCRIBED")) {
			op->ret_subscribed = true;
		} else if (imap_arg_is(o, "STATUS")) {
			if (k + 1 >= l->n ||
			    parse_status_items(&l->list[k + 1], &op->status_items) < 0)
				return -EINVAL;
			k++;
		} else if (!imap_arg_is(o, "CHILDREN") && !imap_arg_is(o, "SPECIAL-USE")) {
			return -EINVAL;
		}
	}
	return 0;
}

static char *list_pattern(struct imap_client *cl, const char *ref, const struct imap_arg *pat)
{
	char *p = imap_arg_dup(pat);
	if (p == NULL)
		return NULL;
	char *full = xasprintf("%s%s", ref, p);
	free(p);
	if (!cl->utf8) {
		char *dec;
		if (imap_mutf7_to_utf8(full, strlen(full), &dec) == 0) {
			free(full);
			full = dec;
		}
	}
	return full;
}

static void list(struct imap_client *cl, const struct imap_arg *a, size_t n, bool lsub)
{
	struct mbox_op *op = mbox_op_new(cl);
	op->lsub = lsub;
	size_t i = 0;
	if (!lsub && n > 0 && a[0].type == IMAP_ARG_LIST) {
		if (parse_select_opts(op, &a[0]) < 0) {
			imap_done(cl, "BAD", "Unknown or incomplete LIST selection options");
			return;
		}
		i = 1;
	}
	if (n < i + 2 || !imap_arg_is_astring(&a[i]) ||
	    !(imap_arg_is_astring(&a[i + 1]) || (!lsub && a[i + 1].type == IMAP_ARG_LIST))) {
		imap_done(cl, "BAD", "LIST needs a reference and a pattern");
		return;
	}
	if (n != i + 2 && (lsub || n != i + 4 || !imap_arg_is(&a[i + 2], "RETURN") ||
	                   a[i + 3].type != IMAP_ARG_LIST)) {
		imap_done(cl, "BAD", "Unexpected LIST arguments");
		return;
	}
	if (n == i + 4 && parse_return_opts(op, &a[i + 3]) < 0) {
		imap_done(cl, "BAD", "Unknown or malformed LIST return options");
		return;
	}
	const struct imap_arg *pats = &a[i + 1];
	size_t np = pats->type == IMAP_ARG_LIST ? pats->n : 1;
	if (np == 0) {
		imap_done(cl, "BAD", "Bad pattern");
		return;
	}
	for (size_t k = 0; k < np; k++)
		if (!imap_arg_is_astring(pats->type == IMAP_ARG_LIST ? &pats->list[k] : pats)) {
			imap_done(cl, "BAD", "Bad pattern");
			return;
		}
	char *ref = imap_arg_dup(&a[i]);
	if (ref == NULL) {
		imap_done(cl, "BAD", "Bad reference");
		return;
	}
	if (pats->type != IMAP_ARG_LIST && pats->len == 0) {
		free(ref);
		conn_printf(cl->c, "* %s (\\Noselect) \"/\" \"\"\r\n", lsub ? "LSUB" : "LIST");
		imap_done(cl, "OK", lsub ? "LSUB completed" : "LIST completed");
		return;
	}
	op->patterns = xcalloc(np, sizeof(*op->patterns));
	for (size_t k = 0; k < np; k++) {
		char *full =
		    list_pattern(cl, ref, pats->type == IMAP_ARG_LIST ? &pats->list[k] : pats);
		if (full == NULL) {
			free(ref);
			imap_done(cl, "BAD", "Bad pattern");
			return;
		}
		op->patterns[op->n_patterns++] = full;
	}
	free(ref);
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
