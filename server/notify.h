#ifndef SEALMAIL_NOTIFY_H
#define SEALMAIL_NOTIFY_H
/*
 * In-process change notification: "mailbox M reached modseq N" (IMAP IDLE, NOOP updates,
 * POP3 maildrop locks). The store reports every committed change; the server publishes it
 * here on the loop thread; sessions watching that mailbox get a callback. No polling, no
 * per-connection thread: a watcher is a small struct in the session's own memory.
 *
 * Beside the watchers of one mailbox there are watchers of one user (IMAP NOTIFY): they get
 * every change of any of that user's mailboxes, and the mailbox events (create, delete,
 * rename, subscribe, unsubscribe, IMAP METADATA changes) that the session which made one
 * publishes after it succeeded. Those events do not pass through the store: the store reports
 * message changes only.
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

enum notify_mailbox_kind {
	NOTIFY_MAILBOX_CREATED = 1,
	NOTIFY_MAILBOX_DELETED,
	NOTIFY_MAILBOX_RENAMED, /* old_name -> name */
	NOTIFY_MAILBOX_SUBSCRIBED,
	NOTIFY_MAILBOX_UNSUBSCRIBED,
	NOTIFY_METADATA_CHANGED, /* IMAP METADATA entries of name ("" for the server) */
};

/* A mailbox event: names are the store's (UTF-8), borrowed for the callback only. */
struct notify_mailbox_event {
	int64_t user_id;
	enum notify_mailbox_kind kind;
	const char *name;
	const char *old_name; /* RENAMED only, else NULL */
	const char *entries;  /* METADATA_CHANGED only: the entries, an IMAP entry-list */
	const void *origin;   /* who made it (a session), so it can tell its own; may be NULL */
};

struct notify_user_watcher {
	/* Set by the session: */
	int64_t user_id;
	void (*change_fn)(struct notify_user_watcher *w, const struct store_change *change);
	void (*mailbox_fn)(struct notify_user_watcher *w, const struct notify_mailbox_event *ev);
	void *ctx;
	/* Owned by notify.c: */
	struct notify_user_watcher *prev, *next;
	bool linked;
};

struct notify *notify_new(void);
void notify_free(struct notify *n);
/* Starts delivering changes of w->mailbox_id to w->fn. w is borrowed until unsubscribe. */
void notify_subscribe(struct notify *n, struct notify_watcher *w);
void notify_unsubscribe(struct notify *n, struct notify_watcher *w);
/* Calls every watcher of change->mailbox_id, then every watcher of change->user_id. */
void notify_publish(struct notify *n, const struct store_change *change);
/* Starts delivering the changes and mailbox events of w->user_id to w's callbacks (either
 * may be NULL). w is borrowed until notify_unsubscribe_user. */
void notify_subscribe_user(struct notify *n, struct notify_user_watcher *w);
void notify_unsubscribe_user(struct notify *n, struct notify_user_watcher *w);
/* Calls mailbox_fn of every watcher of ev->user_id. */
void notify_publish_mailbox(struct notify *n, const struct notify_mailbox_event *ev);
/* How many watchers a user has (tests). */
unsigned notify_user_count(struct notify *n, int64_t user_id);
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
