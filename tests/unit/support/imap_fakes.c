/*
 * Store calls of the IMAP engine that tests/unit/support/conn_fake.c does not fake (added
 * after it): weak, aborting, like the fakes there. A test linking the real store gets the
 * real ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/spool.h"
#include "storage/store.h"

__attribute__((weak)) int store_message_headers(struct store *s, int64_t mailbox_id, store_cb *cb,
                                                void *ctx)
{
	(void)s, (void)mailbox_id, (void)cb, (void)ctx;
	fprintf(stderr, "imap_fakes: %s reached\n", __func__);
	abort();
}

__attribute__((weak)) int store_message_get(struct store *s, int64_t mailbox_id, uint32_t uid,
                                            store_cb *cb, void *ctx)
{
	(void)s, (void)mailbox_id, (void)uid, (void)cb, (void)ctx;
	fprintf(stderr, "imap_fakes: %s reached\n", __func__);
	abort();
}

__attribute__((weak)) int store_message_structures(struct store *s, int64_t mailbox_id,
                                                   const uint32_t *uids, size_t n, size_t max_total,
                                                   bool with_content, store_cb *cb, void *ctx)
{
	(void)s, (void)mailbox_id, (void)uids, (void)n, (void)max_total, (void)with_content;
	(void)cb, (void)ctx;
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

/* No spool in the session tests: spool_create says "not set up", so APPEND literals stay in
 * memory as before. The rest is never reached. */
__attribute__((weak)) int spool_create(struct spool_file **f_r)
{
	(void)f_r;
	return -ENOTSUP;
}

__attribute__((weak)) int spool_write(struct spool_file *f, const void *data, size_t len)
{
	(void)f, (void)data, (void)len;
	abort();
}

__attribute__((weak)) size_t spool_pending(const struct spool_file *f)
{
	(void)f;
	abort();
}

__attribute__((weak)) void spool_on_drain(struct spool_file *f, void (*drained)(void *ctx),
                                          void *ctx)
{
	(void)f, (void)drained, (void)ctx;
	abort();
}

__attribute__((weak)) void spool_finish(struct spool_file *f, void (*cb)(void *ctx, int rc),
                                        void *ctx)
{
	(void)f, (void)cb, (void)ctx;
	abort();
}

__attribute__((weak)) const char *spool_path(const struct spool_file *f)
{
	(void)f;
	abort();
}

__attribute__((weak)) uint64_t spool_size(const struct spool_file *f)
{
	(void)f;
	abort();
}

__attribute__((weak)) void spool_free(struct spool_file *f)
{
	(void)f;
	abort();
}
