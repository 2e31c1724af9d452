/*
 * GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208): one quota root per user, "" for the
 * user's own, with the resources STORAGE (in units of 1024 octets) and MESSAGE (messages
 * in all the user's mailboxes), both from the store's user record.
 *
 * Administrators (auth.admins) name another user's root by that user's address and may
 * SETQUOTA; nobody else may (NO [NOPERM]). A root a user cannot see does not exist for
 * them (NO [NONEXISTENT]), so a non-administrator learns nothing about other users.
 *
 * A resource without a limit is left out of the QUOTA response. A user without any limit
 * has no quota root: RFC 9208's quota-list holds at least one resource, and GETQUOTA and
 * GETQUOTAROOT must answer a QUOTA response for every root they name. So GETQUOTAROOT
 * lists no root and GETQUOTA answers NO [NONEXISTENT] until a limit is set; SETQUOTA
 * creates the root by setting one (and SETQUOTA with no limits removes it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"

/* RFC 9208 number64 limits; STORAGE is in KiB, so its bytes must fit the store's int64. */
#define QUOTA_NUMBER64_MAX ((uint64_t)INT64_MAX)

enum quota_kind { QUOTA_GET, QUOTA_GETROOT, QUOTA_SET };

struct quota_op {
	struct imap_client *cl;
	enum quota_kind kind;
	char *mailbox;            /* GETQUOTAROOT: as the client is shown it */
	char *root;               /* the root's name as shown: "" or an address */
	char *address;            /* the user whose root it is */
	uint64_t bytes, messages; /* SETQUOTA: the new limits, 0 = none */
};

static void quota_free(void *p)
{
	struct quota_op *op = p;
	free(op->mailbox);
	free(op->root);
	free(op->address);
	free(op);
}

static struct quota_op *quota_op_new(struct imap_client *cl, enum quota_kind kind)
{
	struct quota_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	op->kind = kind;
	cl->op = op;
	cl->op_free = quota_free;
	return op;
}

static bool quota_is_admin(struct imap_client *cl)
{
	const struct config *cfg = conn_config(cl->c);
	return cfg != NULL && cfg_is_admin(cfg, cl->user);
}

/*
 * The root named by a: "" is the user's own; an administrator may name any user by address.
 * 0 with op->root and op->address set; else the command has been answered.
 */
static int quota_root_resolve(struct imap_client *cl, struct quota_op *op, const struct imap_arg *a)
{
	char *name = imap_arg_dup(a);
	if (name == NULL) {
		imap_done(cl, "BAD", "Bad quota root name");
		return -EINVAL;
	}
	if (name[0] == '\0') {
		op->root = name;
		op->address = xstrdup(cl->user);
		return 0;
	}
	char *address = NULL;
	if (!quota_is_admin(cl) || store_address_normalize(name, &address) < 0) {
		free(name);
		imap_done(cl, "NO", "[NONEXISTENT] No such quota root");
		return -ENOENT;
	}
	free(name);
	op->root = xstrdup(address);
	op->address = address;
	return 0;
}

static bool quota_has_root(const struct store_user *u)
{
	return u->quota_bytes != 0 || u->quota_messages != 0;
}

/* "* QUOTA root (...)" for u, which has a limit. */
static void quota_write(struct buf *o, const char *root, const struct store_user *u)
{
	buf_append_str(o, "* QUOTA ");
	imap_fmt_cstring(o, root, false);
	buf_append_str(o, " (");
	if (u->quota_bytes > 0)
		buf_printf(o, "STORAGE %llu %llu",
		           (unsigned long long)((u->used_bytes + 1023) / 1024),
		           (unsigned long long)(u->quota_bytes / 1024));
	if (u->quota_messages > 0)
		buf_printf(o, "%sMESSAGE %llu %llu", u->quota_bytes > 0 ? " " : "",
		           (unsigned long long)u->used_messages,
		           (unsigned long long)u->quota_messages);
	buf_append_str(o, ")\r\n");
}

static void quota_got(void *ctx, int rc, struct store_users *res)
{
	struct quota_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc == -ENOENT || (rc == 0 && res->n != 1)) {
		imap_done(cl, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	if (rc < 0) {
		imap_done(cl, "NO", "[SERVERBUG] Cannot read the quota");
		return;
	}
	bool has_root = quota_has_root(&res->v[0]);
	if (op->kind == QUOTA_GET && !has_root) {
		imap_done(cl, "NO", "[NONEXISTENT] No such quota root (no limit is set)");
		return;
	}
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (op->kind == QUOTA_GETROOT) {
		buf_append_str(&o, "* QUOTAROOT ");
		imap_fmt_cstring(&o, op->mailbox, true);
		buf_append_str(&o, has_root ? " \"\"\r\n" : "\r\n");
	}
	if (has_root)
		quota_write(&o, op->root, &res->v[0]);
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK",
	          op->kind == QUOTA_GETROOT ? "GETQUOTAROOT completed"
	          : op->kind == QUOTA_SET   ? "SETQUOTA completed"
	                                    : "GETQUOTA completed");
}

static void quota_read(struct imap_client *cl, struct quota_op *op)
{
	imap_async_begin(cl);
	if (store_user_get(imap_store(cl), op->address, quota_got, op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}

void imap_cmd_getquota(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 1 || !imap_arg_is_astring(&a[0])) {
		imap_done(cl, "BAD", "GETQUOTA needs a quota root");
		return;
	}
	struct quota_op *op = quota_op_new(cl, QUOTA_GET);
	if (quota_root_resolve(cl, op, &a[0]) == 0)
		quota_read(cl, op);
}

void imap_cmd_getquotaroot(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 1 || !imap_arg_is_astring(&a[0])) {
		imap_done(cl, "BAD", "GETQUOTAROOT needs a mailbox");
		return;
	}
	struct quota_op *op = quota_op_new(cl, QUOTA_GETROOT);
	char *name = imap_mailbox_arg(cl, &a[0]);
	if (name == NULL)
		return;
	op->mailbox = imap_mailbox_to_client(name, cl->utf8);
	free(name);
	op->root = xstrdup("");
	op->address = xstrdup(cl->user);
	quota_read(cl, op);
}

/* ---- SETQUOTA ---- */

static void set_messages_done(void *ctx, int rc)
{
	struct quota_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO",
		          rc == -ENOENT ? "[NONEXISTENT] No such quota root"
		                        : "[SERVERBUG] Cannot set the quota");
		return;
	}
	/* Addresses here passed the store's syntax check: nothing to escape. */
	log_event(LOGL_INFO,
	          "session=%s proto=imap event=quota_set user=%s target=%s storage=%llu "
	          "messages=%llu",
	          conn_id(cl->c), cl->user, op->address, (unsigned long long)op->bytes,
	          (unsigned long long)op->messages);
	quota_read(cl, op); /* the untagged QUOTA with the new limits (RFC 9208 4.1.3) */
}

static void set_bytes_done(void *ctx, int rc)
{
	struct quota_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0) {
		imap_done(cl, "NO",
		          rc == -ENOENT ? "[NONEXISTENT] No such quota root"
		                        : "[SERVERBUG] Cannot set the quota");
		return;
	}
	imap_async_begin(cl);
	if (store_user_set_message_quota(imap_store(cl), op->address, op->messages,
	                                 set_messages_done, op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}

/* number64 (RFC 9051): digits only, at most 2^63 - 1. */
static bool quota_number(const struct imap_arg *a, uint64_t *v_r)
{
	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (a->s[i] < '0' || a->s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(a->s[i] - '0');
	}
	if (v > QUOTA_NUMBER64_MAX)
		return false;
	*v_r = v;
	return true;
}

void imap_cmd_setquota(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 2 || !imap_arg_is_astring(&a[0]) || a[1].type != IMAP_ARG_LIST ||
	    a[1].n % 2 != 0) {
		imap_done(cl, "BAD", "SETQUOTA needs a quota root and a list of resource limits");
		return;
	}
	/* Syntax first: a malformed command is BAD whoever sends it. */
	bool has_storage = false, has_messages = false;
	uint64_t storage = 0, messages = 0;
	for (size_t i = 0; i < a[1].n; i += 2) {
		const struct imap_arg *name = &a[1].list[i];
		uint64_t v;
		if (!quota_number(&a[1].list[i + 1], &v)) {
			imap_done(cl, "BAD", "A resource limit is a number up to 2^63-1");
			return;
		}
		if (imap_arg_is(name, "STORAGE") && !has_storage) {
			has_storage = true;
			storage = v;
		} else if (imap_arg_is(name, "MESSAGE") && !has_messages) {
			has_messages = true;
			messages = v;
		} else {
			/* RFC 9208 4.1.3: a resource the server does not support is an error. */
			imap_done(cl, "BAD",
			          "Unknown or repeated resource (supported: STORAGE MESSAGE)");
			return;
		}
	}
	if (!quota_is_admin(cl)) {
		imap_done(cl, "NO", "[NOPERM] Only administrators may set quotas");
		return;
	}
	if (storage > QUOTA_NUMBER64_MAX / 1024) {
		imap_done(cl, "NO", "[LIMIT] STORAGE limit too large");
		return;
	}
	/* The store keeps 0 as "no limit": a limit of nothing at all cannot be kept. */
	if ((has_storage && storage == 0) || (has_messages && messages == 0)) {
		imap_done(cl, "NO",
		          "[CANNOT] A limit of 0 is not supported: leave the resource out "
		          "for no limit");
		return;
	}
	struct quota_op *op = quota_op_new(cl, QUOTA_SET);
	if (quota_root_resolve(cl, op, &a[0]) < 0)
		return;
	/* RFC 9208 4.1.3: the listed limits replace every previous one of the root. */
	op->bytes = storage * 1024;
	op->messages = messages;
	imap_async_begin(cl);
	if (store_user_set_quota(imap_store(cl), op->address, op->bytes, set_bytes_done, op) < 0) {
		conn_release(cl->c);
		imap_done(cl, "NO", "[SERVERBUG] Store error");
	}
}
