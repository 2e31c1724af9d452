/*
 * GETQUOTA and GETQUOTAROOT (RFC 9208): one quota root "" per user, STORAGE from the
 * store's user record.
 */
#include <stdlib.h>

#include "common/xmalloc.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mutf7.h"
#include "server/imap/imap_private.h"

struct quota_op {
	struct imap_client *cl;
	bool root; /* GETQUOTAROOT: also the QUOTAROOT line */
	char *mailbox;
};

static void quota_free(void *p)
{
	struct quota_op *op = p;
	free(op->mailbox);
	free(op);
}

static void quota_got(void *ctx, int rc, struct store_users *res)
{
	struct quota_op *op = ctx;
	struct imap_client *cl = op->cl;
	if (!imap_async_end(cl))
		return;
	if (rc < 0 || res->n != 1) {
		imap_done(cl, "NO", "[SERVERBUG] Cannot read the quota");
		return;
	}
	const struct store_user *u = &res->v[0];
	struct buf o;
	buf_init(&o, SIZE_MAX);
	if (op->root) {
		buf_append_str(&o, "* QUOTAROOT ");
		imap_fmt_cstring(&o, op->mailbox, true);
		buf_append_str(&o, " \"\"\r\n");
	}
	if (u->quota_bytes > 0)
		buf_printf(&o, "* QUOTA \"\" (STORAGE %llu %llu)\r\n",
		           (unsigned long long)((u->used_bytes + 1023) / 1024),
		           (unsigned long long)(u->quota_bytes / 1024));
	else
		buf_append_str(&o, "* QUOTA \"\" ()\r\n");
	conn_write(cl->c, o.data, o.len);
	buf_free(&o);
	imap_done(cl, "OK", op->root ? "GETQUOTAROOT completed" : "GETQUOTA completed");
}

static void quota_start(struct imap_client *cl, struct quota_op *op)
{
	imap_async_begin(cl);
	if (store_user_get(imap_store(cl), cl->user, quota_got, op) < 0) {
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
	if (a[0].len != 0) {
		imap_done(cl, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	struct quota_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = quota_free;
	quota_start(cl, op);
}

void imap_cmd_getquotaroot(struct imap_client *cl, const struct imap_arg *a, size_t n)
{
	if (n != 1 || !imap_arg_is_astring(&a[0])) {
		imap_done(cl, "BAD", "GETQUOTAROOT needs a mailbox");
		return;
	}
	struct quota_op *op = xcalloc(1, sizeof(*op));
	op->cl = cl;
	cl->op = op;
	cl->op_free = quota_free;
	char *name = imap_mailbox_arg(cl, &a[0]);
	if (name == NULL)
		return;
	op->root = true;
	op->mailbox = imap_mailbox_to_client(name, cl->utf8);
	free(name);
	quota_start(cl, op);
}
