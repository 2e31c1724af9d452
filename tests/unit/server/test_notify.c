#include <criterion/criterion.h>

#include "server/notify.h"
#include "storage/store.h"

static int calls[4];

static void count_fn(struct notify_watcher *w, const struct store_change *ch)
{
	calls[(intptr_t)w->ctx]++;
	cr_assert_eq(ch->mailbox_id, w->mailbox_id);
}

static struct notify *g_n;
static struct notify_watcher g_w[4];

static void unsub_other_fn(struct notify_watcher *w, const struct store_change *ch)
{
	(void)ch;
	calls[(intptr_t)w->ctx]++;
	/* Removes every other watcher while the publish loop is running. */
	for (int i = 0; i < 4; i++)
		notify_unsubscribe(g_n, &g_w[i]);
}

Test(notify, delivers_only_to_watchers_of_the_mailbox)
{
	struct notify *n = notify_new();
	struct notify_watcher w[3] = {
	    {.mailbox_id = 7, .fn = count_fn, .ctx = (void *)0},
	    {.mailbox_id = 7, .fn = count_fn, .ctx = (void *)1},
	    {.mailbox_id = 7 + 4096 * 17, .fn = count_fn, .ctx = (void *)2},
	};
	calls[0] = calls[1] = calls[2] = 0;
	for (int i = 0; i < 3; i++)
		notify_subscribe(n, &w[i]);
	struct store_change ch = {.mailbox_id = 7, .highest_modseq = 5};
	notify_publish(n, &ch);
	cr_assert_eq(calls[0], 1);
	cr_assert_eq(calls[1], 1);
	cr_assert_eq(calls[2], 0);
	cr_assert_eq(notify_count(n, 7), 2);
	notify_unsubscribe(n, &w[0]);
	notify_unsubscribe(n, &w[0]); /* twice is harmless */
	notify_publish(n, &ch);
	cr_assert_eq(calls[0], 1);
	cr_assert_eq(calls[1], 2);
	notify_unsubscribe(n, &w[1]);
	notify_unsubscribe(n, &w[2]);
	notify_free(n);
}

Test(notify, watchers_may_unsubscribe_during_publish)
{
	g_n = notify_new();
	for (int i = 0; i < 4; i++) {
		g_w[i] = (struct notify_watcher){.mailbox_id = 1,
		                                 .fn = i == 3 ? unsub_other_fn : count_fn,
		                                 .ctx = (void *)(intptr_t)i};
		calls[i] = 0;
		notify_subscribe(g_n, &g_w[i]);
	}
	struct store_change ch = {.mailbox_id = 1};
	notify_publish(g_n, &ch); /* g_w[3] is first (most recent) and removes all */
	cr_assert_eq(calls[3], 1);
	cr_assert_eq(calls[0] + calls[1] + calls[2], 0);
	cr_assert_eq(notify_count(g_n, 1), 0);
	notify_free(g_n);
}

Test(notify, maildrop_lock_is_exclusive)
{
	struct notify *n = notify_new();
	cr_assert(notify_lock_mailbox(n, 42));
	cr_assert_not(notify_lock_mailbox(n, 42));
	cr_assert(notify_lock_mailbox(n, 43));
	notify_unlock_mailbox(n, 42);
	cr_assert(notify_lock_mailbox(n, 42));
	notify_free(n);
}

Test(notify, generation_counts_every_publish_watched_or_not)
{
	struct notify *n = notify_new();
	cr_assert_eq(notify_generation(n), 0);
	struct store_change ch = {.mailbox_id = 9, .highest_modseq = 2};
	notify_publish(n, &ch); /* nobody watches 9: still counted */
	cr_assert_eq(notify_generation(n), 1);
	struct notify_watcher w = {.mailbox_id = 9, .fn = count_fn, .ctx = (void *)0};
	calls[0] = 0;
	notify_subscribe(n, &w);
	notify_publish(n, &ch);
	cr_assert_eq(notify_generation(n), 2);
	cr_assert_eq(calls[0], 1);
	notify_unsubscribe(n, &w);
	notify_free(n);
}
