/*
 * GETMETADATA and SETMETADATA (RFC 5464, METADATA): annotations on the server (the mailbox
 * name "") and on the user's own mailboxes, /private and /shared entries alike.
 *
 * This server shares no mailbox between users, so a /shared entry is the user's own like a
 * /private one, kept apart from it by its name; server annotations are per user too. Two
 * entries are computed, never stored, and refused to SETMETADATA (NO [NOPERM]): the
 * server's /shared/admin (mailto: the postmaster of the first domain, as SMTP's
 * <Postmaster>) and a mailbox's /private/specialuse (its special-use attributes, RFC 6154).
 *
 * Limits (config limits.metadata_size, limits.metadata_entries): a value over the size is
 * NO [METADATA MAXSIZE n], refused before its literal is sent when it comes as one
 * (imap_metadata_literal_refused); an entry past the user's count is NO [METADATA
 * TOOMANY]. Private annotations are supported everywhere, so NO [METADATA NOPRIVATE] is
 * never sent. A SETMETADATA changes all its entries or none (one store transaction).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"

#define META_NAME_MAX  1024 /* bytes of one entry name */
#define META_NAMES_MAX 1000 /* entries one command may name */
#define META_ADMIN     "/shared/admin"
#define META_SPECIAL   "/private/specialuse"

enum meta_kind { META_GET, META_SET };

struct meta_op {
	struct imap_client *cl;
	enum meta_kind kind;
	char *mailbox;      /* the store's name, NULL for the server */
	char *shown;        /* the mailbox as the client is shown it ("" for the server) */
	int64_t mailbox_id; /* 0: the server */
	unsigned special_use;
	char **names; /* lower case */
	size_t n_names;
	int depth;
	bool has_maxsize;
	uint64_t maxsize;
	struct store_meta_change *changes; /* SET: names from names[], values views into args */
	size_t n_changes;
	void (*then)(struct meta_op *op);
};

static void meta_free(void *p)
{
	struct meta_op *op = p;
	free(op->mailbox);
	free(op->shown);
	for (size_t i = 0; i < op->n_names; i++)
		free(op->names[i]);
	free(op->names);
	free(op->changes);
	free(op);
}

static struct meta_op *meta_op_new(struct imap_client *cl, enum meta_kind kind)
{
	struct meta_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->kind = kind;
	cl->op = op;
	cl->op_free = meta_free;
	return op;
}

/*
 * An entry name (RFC 5464 3.2): "/private" or "/shared" then "/" components; printable
 * ASCII without "*" or "%", no "//", no trailing "/"; case-insensitive (kept lower case).
 * A scope alone ("/shared") and a vendor entry with fewer than four components name
 * entries below them, so only GETMETADATA takes them. 0 with *name_r, or -EINVAL (BAD).
 */
static int meta_entry(const struct imap_arg *a, bool set, char **name_r)
{
	/* entry = astring: a literal8 is a value only. */
	if (!imap_arg_is_astring(a) || a->literal8 || a->len == 0 || a->len > META_NAME_MAX)
		return -EINVAL;
	char *name = xmalloc(a->len + 1);
	for (size_t i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->s[i];
		if (c < 0x20 || c >= 0x7f || c == '*' || c == '%') {
			free(name);
			return -EINVAL;
		}
		name[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	name[a->len] = '\0';
	const char *rest = NULL;
	bool scope = strcmp(name, "/private") == 0 || strcmp(name, "/shared") == 0;
	if (strncmp(name, "/private/", 9) == 0)
		rest = name + 9;
	else if (strncmp(name, "/shared/", 8) == 0)
		rest = name + 8;
	bool ok =
	    scope ? !set : rest != NULL && strstr(name, "//") == NULL && name[a->len - 1] != '/';
	if (ok && !scope && set && strncmp(rest, "vendor", 6) == 0 &&
	    (rest[6] == '\0' || rest[6] == '/')) {
		/* /shared/vendor/<vendor-token>/...: at least four components (RFC 5464 3.2). */
		const char *token = rest[6] == '/' ? strchr(rest + 7, '/') : NULL;
		ok = token != NULL;
	}
	if (!ok) {
		free(name);
		return -EINVAL;
	}
	*name_r = name;
	return 0;
}

static void meta_add_name(struct meta_op *op, char *name)
{
	op->names = xreallocarray(op->names, op->n_names + 1, sizeof(*op->names));
	op->names[op->n_names++] = name;
}

/* A number (RFC 3501: 0 to 2^32 - 1). */
static bool meta_number(const struct imap_arg *a, uint64_t *v_r)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (a->s[i] < '0' || a->s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(a->s[i] - '0');
	}
	*v_r = v;
	return v <= UINT32_MAX;
}

/* GETMETADATA options: MAXSIZE n and DEPTH 0|1|infinity, each at most once, any order. */
static int meta_options(struct meta_op *op, const struct imap_arg *list)
{
	bool has_depth = false;
	if (list->n == 0)
		return -EINVAL;
	for (size_t i = 0; i < list->n; i += 2) {
		const struct imap_arg *k = &list->list[i];
		const struct imap_arg *v = i + 1 < list->n ? &list->list[i + 1] : NULL;
		if (v == NULL)
			return -EINVAL;
		if (imap_arg_is(k, "MAXSIZE") && !op->has_maxsize) {
			if (!meta_number(v, &op->maxsize))
				return -EINVAL;
			op->has_maxsize = true;
		} else if (imap_arg_is(k, "DEPTH") && !has_depth) {
			has_depth = true;
			op->depth = imap_arg_is(v, "0")          ? 0
			            : imap_arg_is(v, "1")        ? 1
			            : imap_arg_is(v, "infinity") ? STORE_META_DEPTH_INFINITY
			                                         : 2;
			if (op->depth == 2)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- the mailbox ---- */

static void meta_got_mailbox(void *ctx, int rc, struct store_mailboxes *res)
{
	struct meta_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc == 0 && res->n != 1)
		rc = -ENOENT;
	if (rc < 0) {
		imap_done(cl, "NO", imap_mailbox_error(rc));
		return;
	}
	op->mailbox_id = res->v[0].id;
	op->special_use = res->v[0].special_use;
	op->then(op);
}

/* Resolves the mailbox argument ("" is the server), then op->then(op); or answers. */
static void meta_mailbox(struct meta_op *op, const struct imap_arg *a)
{
	struct imap_client *cl = op->cl;
	if (a->type == IMAP_ARG_STRING && a->len == 0) {
		op->shown = xstrdup("");
		op->then(op);
		return;
	}
	char *name = imap_mailbox_arg(cl, a);
	if (name == NULL)
		return;
	op->shown = imap_mailbox_to_client(name, cl->utf8);
	op->mailbox = name;
	imap_async_begin(cl);
	if (store_mailbox_get(imap_store(cl), cl->user_id, name, meta_got_mailbox, op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}

/* ---- GETMETADATA ---- */

/* A value as an IMAP string: quoted when short and plain, a literal when it holds line
 * ends or 8-bit bytes, a literal8 (RFC 3516, allowed by RFC 5464's value) when NUL. */
static void meta_fmt_value(struct buf *o, const unsigned char *v, size_t len)
{
	bool quoted = len <= 1024, nul = false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '\0')
			nul = true;
		if (v[i] < 0x20 || v[i] >= 0x7f)
			quoted = false;
	}
	if (!quoted) {
		buf_printf(o, "%s{%zu}\r\n", nul ? "~" : "", len);
		buf_append(o, v, len);
		return;
	}
	buf_append(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '"' || v[i] == '\\')
			buf_append(o, "\\", 1);
		buf_append(o, v + i, 1);
	}
	buf_append(o, "\"", 1);
}

/* An entry name as an astring: an atom when it can be one, else quoted (names are
 * printable ASCII, so never a literal). */
static void meta_fmt_name(struct buf *o, const char *name)
{
	if (strpbrk(name, "(){ \"\\") == NULL) {
		buf_append_str(o, name);
		return;
	}
	imap_fmt_cstring(o, name, false);
}

static bool meta_requested(const struct meta_op *op, const char *name)
{
	return store_meta_matches(name, (const char *const *)op->names, op->n_names, op->depth);
}

/* The computed entries of the target, in *e (names and values static or owned by *own). */
static size_t meta_computed(struct meta_op *op, struct store_meta_entry e[2], char **own)
{
	size_t n = 0;
	*own = NULL;
	if (op->mailbox_id == 0) {
		const struct config *cfg = conn_config(op->cl->c);
		if (cfg != NULL && cfg->n_domains > 0 && meta_requested(op, META_ADMIN)) {
			*own = xasprintf("mailto:postmaster@%s", cfg->domains[0]);
			e[n++] = (struct store_meta_entry){.name = (char *)META_ADMIN,
			                                   .value = (unsigned char *)*own,
			                                   .len = strlen(*own)};
		}
		return n;
	}
	static const struct {
		unsigned bit;
		const char *flag;
	} su[] = {{STORE_SU_SENT, "\\Sent"},
	          {STORE_SU_DRAFTS, "\\Drafts"},
	          {STORE_SU_TRASH, "\\Trash"},
	          {STORE_SU_JUNK, "\\Junk"},
	          {STORE_SU_ARCHIVE, "\\Archive"}};
	if (op->special_use == 0 || !meta_requested(op, META_SPECIAL))
		return 0;
	struct buf b;
	buf_init(&b, SIZE_MAX);
	for (size_t i = 0; i < sizeof(su) / sizeof(su[0]); i++)
		if (op->special_use & su[i].bit)
			buf_printf(&b, "%s%s", b.len > 0 ? " " : "", su[i].flag);
	*own = xstrndup((const char *)b.data, b.len);
	buf_free(&b);
	e[n++] = (struct store_meta_entry){
	    .name = (char *)META_SPECIAL, .value = (unsigned char *)*own, .len = strlen(*own)};
	return n;
}

/* Appends " name value" for e unless MAXSIZE hides it (then *longest grows). */
static void meta_fmt_entry(struct buf *o, const struct meta_op *op,
                           const struct store_meta_entry *e, uint64_t *longest, size_t *shown)
{
	if (op->has_maxsize && e->len > op->maxsize) {
		if (e->len > *longest)
			*longest = e->len;
		return;
	}
	buf_append_str(o, *shown == 0 ? "" : " ");
	meta_fmt_name(o, e->name);
	buf_append_str(o, " ");
	meta_fmt_value(o, e->value, e->len);
	(*shown)++;
}

static bool meta_listed(const struct store_metadata *res, const struct store_meta_entry *c,
                        size_t n_c, const char *name)
{
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->v[i].name, name) == 0)
			return true;
	for (size_t i = 0; i < n_c; i++)
		if (strcmp(c[i].name, name) == 0)
			return true;
	return false;
}

static void meta_got(void *ctx, int rc, struct store_metadata *res)
{
	struct meta_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO",
		          rc == -ENOENT ? imap_mailbox_error(rc)
		                        : "[SERVERBUG] Cannot read the annotations");
		return;
	}
	struct store_meta_entry computed[2];
	char *own;
	size_t n_c = meta_computed(op, computed, &own);
	struct buf o;
	buf_init(&o, SIZE_MAX);
	buf_append_str(&o, "* METADATA ");
	imap_fmt_cstring(&o, op->shown, true);
	buf_append_str(&o, " (");
	size_t shown = 0;
	uint64_t longest = 0;
	/* Both lists are in name order: merge them so the response is too. */
	size_t i = 0, k = 0;
	while (i < res->n || k < n_c) {
		bool stored =
		    k == n_c || (i < res->n && strcmp(res->v[i].name, computed[k].name) < 0);
		meta_fmt_entry(&o, op, stored ? &res->v[i++] : &computed[k++], &longest, &shown);
	}
	/* At DEPTH 0 an entry asked for by its name that does not exist is NIL (value =
	 * nstring), so the required METADATA response names it; scopes alone are no entry.
	 * With a DEPTH the names are where a tree starts: only what exists is listed. */
	for (size_t n = 0; op->depth == 0 && n < op->n_names; n++) {
		const char *name = op->names[n];
		bool again = false;
		for (size_t m = 0; m < n; m++)
			again = again || strcmp(op->names[m], name) == 0;
		if (again || strcmp(name, "/private") == 0 || strcmp(name, "/shared") == 0 ||
		    meta_listed(res, computed, n_c, name))
			continue;
		buf_append_str(&o, shown == 0 ? "" : " ");
		meta_fmt_name(&o, name);
		buf_append_str(&o, " NIL");
		shown++;
	}
	if (shown > 0) {
		buf_append_str(&o, ")\r\n");
		conn_write(cl->c, o.data, o.len);
	}
	buf_free(&o);
	free(own);
	if (longest > 0)
		imap_donef(cl, "OK", "[METADATA LONGENTRIES %llu] GETMETADATA completed",
		           (unsigned long long)longest);
	else
		imap_done(cl, "OK", "GETMETADATA completed");
}

static void meta_get_run(struct meta_op *op)
{
	struct imap_client *cl = op->cl;
	imap_async_begin(cl);
	if (store_metadata_get(imap_store(cl), cl->user_id, op->mailbox_id,
	                       (const char *const *)op->names, op->n_names, op->depth, meta_got,
	                       op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}

void imap_cmd_getmetadata(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	struct meta_op *op = meta_op_new(cl, META_GET);
	size_t first = 0;
	if (n > 0 && a[0].type == IMAP_ARG_LIST) {
		if (meta_options(op, &a[0]) < 0) {
			imap_done(cl, "BAD", "Invalid GETMETADATA options");
			return;
		}
		first = 1;
	}
	if (n - first != 2 || !imap_arg_is_astring(&a[first])) {
		imap_done(cl, "BAD", "GETMETADATA needs a mailbox and entries");
		return;
	}
	const struct imap_arg *e = &a[first + 1];
	const struct imap_arg *list = e->type == IMAP_ARG_LIST ? e->list : e;
	size_t count = e->type == IMAP_ARG_LIST ? e->n : 1;
	if (count == 0 || count > META_NAMES_MAX) {
		imap_done(cl, "BAD", count == 0 ? "No entries" : "Too many entries");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		char *name;
		if (meta_entry(&list[i], false, &name) < 0) {
			imap_done(cl, "BAD", "Invalid entry name");
			return;
		}
		meta_add_name(op, name);
	}
	op->then = meta_get_run;
	meta_mailbox(op, &a[first]);
}

/* ---- SETMETADATA ---- */

static void meta_set_done(void *ctx, int rc)
{
	struct meta_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	switch (rc) {
	case 0: {
		/* The user's other sessions hear of it (NOTIFY); names once, as an entry-list. */
		struct buf list;
		buf_init(&list, SIZE_MAX);
		for (size_t i = 0; i < op->n_names; i++) {
			bool again = false;
			for (size_t k = 0; k < i; k++)
				again = again || strcmp(op->names[k], op->names[i]) == 0;
			if (again)
				continue;
			buf_append_str(&list, list.len > 0 ? " " : "");
			meta_fmt_name(&list, op->names[i]);
		}
		buf_append(&list, "", 1);
		imap_notify_metadata_event(cl, op->mailbox != NULL ? op->mailbox : "",
		                           (const char *)list.data);
		buf_free(&list);
		imap_done(cl, "OK", "SETMETADATA completed");
		return;
	}
	case -EDQUOT:
		imap_done(cl, "NO", "[METADATA TOOMANY] Too many annotations");
		return;
	case -ENOENT:
		imap_done(cl, "NO", imap_mailbox_error(rc));
		return;
	case -ENOSPC:
	case -EIO:
		imap_done(cl, "NO", imap_mailbox_error(rc));
		return;
	default:
		imap_done(cl, "NO", "[SERVERBUG] Cannot store the annotations");
	}
}

static void meta_set_run(struct meta_op *op)
{
	struct imap_client *cl = op->cl;
	/* Computed entries are read-only (RFC 5464 3.2.1.1: /shared/admin always is). */
	for (size_t i = 0; i < op->n_changes; i++) {
		const char *name = op->changes[i].name;
		if ((op->mailbox_id == 0 && strcmp(name, META_ADMIN) == 0) ||
		    (op->mailbox_id != 0 && strcmp(name, META_SPECIAL) == 0)) {
			imap_donef(cl, "NO", "[NOPERM] %s is read-only", name);
			return;
		}
	}
	const struct config *cfg = conn_config(cl->c);
	imap_async_begin(cl);
	if (store_metadata_set(imap_store(cl), cl->user_id, op->mailbox_id, op->changes,
	                       op->n_changes, cfg->limits.metadata_entries, meta_set_done,
	                       op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}

void imap_cmd_setmetadata(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 2 || !imap_arg_is_astring(&a[0]) || a[0].literal8 || a[1].type != IMAP_ARG_LIST ||
	    a[1].n == 0 || a[1].n % 2 != 0 || a[1].n / 2 > META_NAMES_MAX) {
		imap_done(cl, "BAD",
		          "SETMETADATA needs a mailbox and a list of entries and values");
		return;
	}
	struct meta_op *op = meta_op_new(cl, META_SET);
	const struct config *cfg = conn_config(cl->c);
	size_t pairs = a[1].n / 2;
	op->changes = xcalloc(pairs, sizeof(*op->changes));
	uint64_t too_big = 0;
	for (size_t i = 0; i < pairs; i++) {
		const struct imap_arg *e = &a[1].list[2 * i], *v = &a[1].list[2 * i + 1];
		char *name;
		/* value = nstring / literal8: no atom, no list; NUL only in a literal8. */
		if (meta_entry(e, true, &name) < 0) {
			imap_done(cl, "BAD", "Invalid entry name");
			return;
		}
		meta_add_name(op, name);
		if (v->type != IMAP_ARG_NIL &&
		    (v->type != IMAP_ARG_STRING || (!v->literal8 && memchr(v->s, '\0', v->len)))) {
			imap_done(cl, "BAD", "Invalid annotation value");
			return;
		}
		op->changes[i].name = name;
		if (v->type == IMAP_ARG_STRING) {
			op->changes[i].value = v->len > 0 ? (const void *)v->s : "";
			op->changes[i].len = v->len;
			if (v->len > cfg->limits.metadata_size)
				too_big = v->len;
		}
	}
	op->n_changes = pairs;
	if (too_big > 0) {
		imap_donef(cl, "NO", "[METADATA MAXSIZE %u] Annotation value too large",
		           cfg->limits.metadata_size);
		return;
	}
	op->then = meta_set_run;
	meta_mailbox(op, &a[0]);
}

bool imap_metadata_literal_refused(struct imap_client *cl, const char *tag, uint64_t size)
{
	const struct config *cfg = conn_config(cl->c);
	if (size <= cfg->limits.metadata_size)
		return false;
	conn_printf(cl->c, "%s NO [METADATA MAXSIZE %u] Annotation value too large\r\n", tag,
	            cfg->limits.metadata_size);
	return true;
}
