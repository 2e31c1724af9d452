/*
 * The DSN on local copies refused after DATA (smtp_bounce.h). Runs on a store thread: it
 * reads only its context and the store's input, and shares no state.
 */
#include "server/smtp/smtp_bounce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/relay/relay_notice.h"
#include "server/smtp/smtp_quota.h"
#include "storage/store.h"

void smtp_bounce_status(int rc, uint64_t quota, uint64_t size, const char **status_r,
                        const char **diagnostic_r)
{
	switch (rc) {
	case -EDQUOT:
		*status_r = "5.2.2";
		*diagnostic_r =
		    smtp_quota_never_fits(quota, size)
		        ? "552 5.2.2 Mailbox full: message larger than the mailbox quota"
		        : "552 5.2.2 Mailbox full";
		return;
	case -ENOENT:
		*status_r = "5.1.1";
		*diagnostic_r = "550 5.1.1 Recipient address rejected: user unknown";
		return;
	default:
		*status_r = "5.0.0";
		*diagnostic_r = "554 5.0.0 Delivery to the mailbox failed";
		return;
	}
}

int smtp_bounce_format(void *ctx, const struct store_report_input *in, char **msg_r, size_t *len_r)
{
	const struct smtp_bounce *b = ctx;
	*msg_r = NULL;
	*len_r = 0;
	struct relay_notice_failed *failed = xcalloc(b->n_rcpts + 1, sizeof(*failed));
	size_t n = 0;
	for (size_t i = 0; i < b->n_rcpts; i++) {
		const struct smtp_bounce_rcpt *r = &b->rcpts[i];
		size_t k = 0;
		while (k < b->n_targets && k < in->n_targets && b->targets[k].user_id != r->user_id)
			k++;
		if (k >= b->n_targets || k >= in->n_targets || in->delivered[k].rc >= 0)
			continue;
		struct relay_notice_failed *f = &failed[n++];
		f->address = r->address;
		f->notify = r->notify;
		f->orcpt = r->orcpt;
		smtp_bounce_status(in->delivered[k].rc, in->delivered[k].quota_bytes, in->size,
		                   &f->status, &f->diagnostic);
	}
	struct relay_notice_failure nf = {
	    .reporting_mta = b->reporting_mta,
	    .sender = b->sender,
	    .envid = b->envid,
	    .ret = b->ret,
	    .requiretls = b->requiretls,
	    .arrival = b->arrival,
	    .now = (int64_t)time(NULL),
	    .boundary = b->boundary,
	    .rcpts = failed,
	    .n_rcpts = n,
	    .original = in->head,
	    .original_len = in->head_len,
	    .original_complete = in->head_complete,
	    .local = b->local,
	};
	struct buf out;
	buf_init(&out, b->max_size);
	int rc = relay_notice_format_failed(&nf, &out);
	free(failed);
	if (rc < 0 || out.len == 0) {
		buf_free(&out);
		return rc;
	}
	*msg_r = out.data; /* the store frees it */
	*len_r = out.len;
	return 0;
}
