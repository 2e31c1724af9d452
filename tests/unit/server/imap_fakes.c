/*
 * Store calls of the IMAP engine that tests/unit/server/conn_fake.c does not fake (added
 * after it): weak, aborting, like the fakes there. A test linking the real store gets the
 * real ones.
 */
#include <stdio.h>
#include <stdlib.h>

#include "storage/store.h"

__attribute__((weak)) int store_message_headers(struct store *s, int64_t mailbox_id, store_cb *cb,
                                                void *ctx)
{
	(void)s, (void)mailbox_id, (void)cb, (void)ctx;
	fprintf(stderr, "imap_fakes: %s reached\n", __func__);
	abort();
}

__attribute__((weak)) int store_content_read_batch(struct store *s, int64_t mailbox_id,
                                                   const uint32_t *uids, size_t n, size_t max_total,
                                                   store_cb *cb, void *ctx)
{
	(void)s, (void)mailbox_id, (void)uids, (void)n, (void)max_total, (void)cb, (void)ctx;
	fprintf(stderr, "imap_fakes: %s reached\n", __func__);
	abort();
}
