/*
 * The IMAP session's calls into the access audit (server/audit.h): the UIDs a command
 * touches, taken from the session's snapshot, and the command's own words as the detail.
 * Each is called before the command's store call, so the record is written in the same
 * transaction as the change or an earlier one.
 */
#include <stdlib.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/imap/imap_private.h"

void imap_audit_args(struct buf *b, const struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b->len > 0)
			buf_append_str(b, " ");
		if (a[i].type != IMAP_ARG_LIST) {
			buf_append(b, a[i].s, a[i].len);
			continue;
		}
		/* The list's own words go after "(" without a space. */
		struct buf inner;
		buf_init(&inner, b->max);
		imap_audit_args(&inner, a[i].list, a[i].n);
		buf_append_str(b, "(");
		if (inner.len > 0)
			buf_append(b, inner.data, inner.len);
		buf_append_str(b, ")");
		buf_free(&inner);
	}
}

bool imap_audit_seqs(struct imap_client *cl, const char *action, const uint32_t *seqs, size_t n,
                     const char *detail)
{
	uint32_t *uids = xcalloc(n + 1, sizeof(*uids));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (seqs[i] >= 1 && seqs[i] <= cl->n_msgs)
			uids[k++] = cl->msgs[seqs[i] - 1].uid;
	bool ok = audit_session(cl->c, action, cl->mailbox_name, uids, k, detail);
	free(uids);
	return ok;
}

bool imap_audit_ranges(struct imap_client *cl, const char *action, const struct store_uid_range *r,
                       size_t nr, const char *detail)
{
	uint32_t *uids = xcalloc(cl->n_msgs + 1, sizeof(*uids));
	size_t k = 0;
	for (size_t s = 0; s < cl->n_msgs; s++) {
		uint32_t u = cl->msgs[s].uid;
		for (size_t i = 0; i < nr; i++)
			if (u >= r[i].first && u <= r[i].last) {
				uids[k++] = u;
				break;
			}
	}
	bool ok = audit_session(cl->c, action, cl->mailbox_name, uids, k, detail);
	free(uids);
	return ok;
}

bool imap_audit_deleted(struct imap_client *cl, const char *action, const char *detail)
{
	uint32_t *uids = xcalloc(cl->n_msgs + 1, sizeof(*uids));
	size_t k = 0;
	for (size_t s = 0; s < cl->n_msgs; s++)
		if (cl->msgs[s].flags & STORE_DELETED)
			uids[k++] = cl->msgs[s].uid;
	bool ok = audit_session(cl->c, action, cl->mailbox_name, uids, k, detail);
	free(uids);
	return ok;
}
