#ifndef SEALMAIL_SPOOL_H
#define SEALMAIL_SPOOL_H
/*
 * Spool files for messages too large to hold in memory while they arrive: one file per
 * message under data_dir/spool/ (created 0700 at startup, leftovers of a crash removed),
 * written asynchronously on the libuv thread pool so the loop thread never waits for the
 * disk. The path goes to store_deliver (spool_path), which reads it in chunks; the file is
 * removed with spool_free after the delivery callback. A spool file is never the durable
 * copy of a message (the store is), so it is not fsynced. Its bytes on disk are sealed
 * (storage/store_spool.h) under a key only this process holds: the store opens it with
 * spool_sealed set.
 *
 * Protocol code sees only this header (no uv.h): sealmaild implements it in spool.c, unit
 * tests of sessions link a fake.
 */
#include <stddef.h>
#include <stdint.h>

struct spool_file;

/* Once at startup, on the loop thread: loop is the server's uv_loop_t. Creates
 * data_dir/spool (0700) and removes files left there. 0 or -errno. Until it is called,
 * spool_create fails with -ENOTSUP (callers then keep messages in memory). */
int spool_setup(void *uv_loop, const char *data_dir);
/* Stops handing out files (shutdown). Files still open finish normally. */
void spool_teardown(void);

/* A new, empty spool file. Returns 0 and *f_r, or -errno. Opening runs in the background. */
int spool_create(struct spool_file **f_r);
/* Queues bytes (copied) to append. 0, or the first error a previous write met. */
int spool_write(struct spool_file *f, const void *data, size_t len);
/* Bytes queued and not yet written: callers stop reading input while it is large. */
size_t spool_pending(const struct spool_file *f);
/* drained(ctx) runs once, on the loop thread, the next time pending drops to zero (at
 * once if it is zero now is not guaranteed: check spool_pending first). */
void spool_on_drain(struct spool_file *f, void (*drained)(void *ctx), void *ctx);
/* After the last write: cb(ctx, rc) runs once on the loop thread when every byte is
 * written and the file closed (rc 0) or a write failed (rc <0). Not before returning. */
void spool_finish(struct spool_file *f, void (*cb)(void *ctx, int rc), void *ctx);
/* The file's absolute path (valid until spool_free). */
const char *spool_path(const struct spool_file *f);
/* Message bytes accepted so far (before sealing). */
uint64_t spool_size(const struct spool_file *f);
/* Removes the file and frees f, cancelling the callbacks not yet run. Safe at any time,
 * also while writes are in flight (the memory is freed when they complete). */
void spool_free(struct spool_file *f);

#endif
