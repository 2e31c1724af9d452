#ifndef SEALMAIL_POSTER_H
#define SEALMAIL_POSTER_H
/*
 * Runs functions on the loop thread on behalf of other threads (the store's writer and
 * readers post their completions here). A mutex-protected FIFO and one uv_async_t: every
 * posted function runs exactly once, in posting order, on the loop thread.
 */
#include <uv.h>

struct poster;

struct poster *poster_new(uv_loop_t *loop);
/* Thread-safe. fn(arg) runs on the loop thread. */
void poster_post(void *poster, void (*fn)(void *arg), void *arg);
/* Runs what is still queued, then closes the async handle; the poster is freed in its
 * close callback. Call on the loop thread once no other thread can post any more. */
void poster_close(struct poster *p);

#endif
