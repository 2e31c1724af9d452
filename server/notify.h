#ifndef SEALMAIL_NOTIFY_H
#define SEALMAIL_NOTIFY_H
/*
 * In-process change notification: "mailbox M reached modseq N" (IMAP IDLE, NOOP updates,
 * POP3 maildrop locks). The store reports every committed change; the server publishes it
 * here on the loop thread; sessions watching that mailbox get a callback. No polling, no
 * per-connection thread: a watcher is a small struct in the session's own memory.
 *
 * Loop thread only. A watcher may unsubscribe itself (or others) from inside a callback.
 */
#include <stdbool.h>
#include <stdint.h>

struct notify;
struct store_change;

struct notify_watcher {
	/* Set by the session: */
	int64_t mailbox_id;
	void (*fn)(struct notify_watcher *w, const struct store_change *change);
	void *ctx;
	/* Owned by notify.c: */
	struct notify_watcher *prev, *next;
	bool linked;
};

struct notify *notify_new(void);
void notify_free(struct notify *n);
/* Starts delivering changes of w->mailbox_id to w->fn. w is borrowed until unsubscribe. */
void notify_subscribe(struct notify *n, struct notify_watcher *w);
void notify_unsubscribe(struct notify *n, struct notify_watcher *w);
/* Calls every watcher of change->mailbox_id. */
void notify_publish(struct notify *n, const struct store_change *change);
/* Counts every publish. A session that reads a mailbox before it starts watching it
 * compares this around the read: a change may have been published in between, to nobody. */
uint64_t notify_generation(const struct notify *n);
/* How many watchers a mailbox has (POP3 uses its own lock table; this is for tests). */
unsigned notify_count(struct notify *n, int64_t mailbox_id);

/* Maildrop locks for POP3 ([IN-USE], RFC 2449): true when taken, false when another
 * session holds the lock on that mailbox. */
bool notify_lock_mailbox(struct notify *n, int64_t mailbox_id);
void notify_unlock_mailbox(struct notify *n, int64_t mailbox_id);

#endif
