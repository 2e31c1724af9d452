#include "server/notify.h"

#include <stdlib.h>

#include "common/xmalloc.h"
#include "storage/store.h"

#define NOTIFY_BUCKETS 4096

struct notify_lock {
	struct notify_lock *next;
	int64_t mailbox_id;
};

struct notify {
	struct notify_watcher *buckets[NOTIFY_BUCKETS];
	struct notify_lock *locks[NOTIFY_BUCKETS];
	/* The watcher a publish loop will visit next: kept right if it unsubscribes. */
	struct notify_watcher *cursor;
	struct notify_user_watcher *users[NOTIFY_BUCKETS];
	struct notify_user_watcher *ucursor; /* the same, for the users' watchers */
	uint64_t generation;                 /* publishes so far */
};

static size_t notify_bucket(int64_t mailbox_id)
{
	uint64_t h = (uint64_t)mailbox_id * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 52) % NOTIFY_BUCKETS;
}

struct notify *notify_new(void)
{
	return xcalloc(1, sizeof(struct notify));
}

void notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < NOTIFY_BUCKETS; i++) {
		while (n->locks[i] != NULL) {
			struct notify_lock *l = n->locks[i];
			n->locks[i] = l->next;
			free(l);
		}
	}
	free(n);
}

void notify_subscribe(struct notify *n, struct notify_watcher *w)
{
	if (w->linked)
		notify_unsubscribe(n, w);
	struct notify_watcher **head = &n->buckets[notify_bucket(w->mailbox_id)];
	w->prev = NULL;
	w->next = *head;
	if (*head != NULL)
		(*head)->prev = w;
	*head = w;
	w->linked = true;
}

void notify_unsubscribe(struct notify *n, struct notify_watcher *w)
{
	if (!w->linked)
		return;
	if (n->cursor == w)
		n->cursor = w->next;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		n->buckets[notify_bucket(w->mailbox_id)] = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->linked = false;
}

void notify_publish(struct notify *n, const struct store_change *change)
{
	struct notify_watcher *saved = n->cursor; /* publish may nest */
	n->generation++;
	n->cursor = n->buckets[notify_bucket(change->mailbox_id)];
	while (n->cursor != NULL) {
		struct notify_watcher *w = n->cursor;
		n->cursor = w->next;
		if (w->mailbox_id == change->mailbox_id)
			w->fn(w, change);
	}
	n->cursor = saved;
	struct notify_user_watcher *usaved = n->ucursor;
	n->ucursor = n->users[notify_bucket(change->user_id)];
	while (n->ucursor != NULL) {
		struct notify_user_watcher *w = n->ucursor;
		n->ucursor = w->next;
		if (w->user_id == change->user_id && w->change_fn != NULL)
			w->change_fn(w, change);
	}
	n->ucursor = usaved;
}

void notify_subscribe_user(struct notify *n, struct notify_user_watcher *w)
{
	if (w->linked)
		notify_unsubscribe_user(n, w);
	struct notify_user_watcher **head = &n->users[notify_bucket(w->user_id)];
	w->prev = NULL;
	w->next = *head;
	if (*head != NULL)
		(*head)->prev = w;
	*head = w;
	w->linked = true;
}

void notify_unsubscribe_user(struct notify *n, struct notify_user_watcher *w)
{
	if (!w->linked)
		return;
	if (n->ucursor == w)
		n->ucursor = w->next;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		n->users[notify_bucket(w->user_id)] = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->linked = false;
}

void notify_publish_mailbox(struct notify *n, const struct notify_mailbox_event *ev)
{
	struct notify_user_watcher *usaved = n->ucursor;
	n->ucursor = n->users[notify_bucket(ev->user_id)];
	while (n->ucursor != NULL) {
		struct notify_user_watcher *w = n->ucursor;
		n->ucursor = w->next;
		if (w->user_id == ev->user_id && w->mailbox_fn != NULL)
			w->mailbox_fn(w, ev);
	}
	n->ucursor = usaved;
}

unsigned notify_user_count(struct notify *n, int64_t user_id)
{
	unsigned count = 0;
	for (struct notify_user_watcher *w = n->users[notify_bucket(user_id)]; w; w = w->next)
		if (w->user_id == user_id)
			count++;
	return count;
}

uint64_t notify_generation(const struct notify *n)
{
	return n->generation;
}

unsigned notify_count(struct notify *n, int64_t mailbox_id)
{
	unsigned count = 0;
	for (struct notify_watcher *w = n->buckets[notify_bucket(mailbox_id)]; w; w = w->next)
		if (w->mailbox_id == mailbox_id)
			count++;
	return count;
}

bool notify_lock_mailbox(struct notify *n, int64_t mailbox_id)
{
	struct notify_lock **head = &n->locks[notify_bucket(mailbox_id)];
	for (struct notify_lock *l = *head; l != NULL; l = l->next)
		if (l->mailbox_id == mailbox_id)
			return false;
	struct notify_lock *l = xmalloc(sizeof(*l));
	l->mailbox_id = mailbox_id;
	l->next = *head;
	*head = l;
	return true;
}

void notify_unlock_mailbox(struct notify *n, int64_t mailbox_id)
{
	for (struct notify_lock **pp = &n->locks[notify_bucket(mailbox_id)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if ((*pp)->mailbox_id == mailbox_id) {
			struct notify_lock *l = *pp;
			*pp = l->next;
			free(l);
			return;
		}
	}
}
