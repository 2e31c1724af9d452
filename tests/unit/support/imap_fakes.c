/*
 * The spool of the IMAP engine's APPEND for session tests (server/spool.c lives in
 * sealmaild): weak, so a test linking the real spool gets it. The store is not faked here:
 * tests link the real one (mem_store.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "server/spool.h"

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
