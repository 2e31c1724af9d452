#include <criterion/criterion.h>
#include <string.h>

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

/* ---- per-user watchers and mailbox events ---- */

static int ucalls[4], mcalls[4];
static struct notify_user_watcher g_uw[4];
static enum notify_mailbox_kind last_kind;
static const char *last_old;

static void uchange_fn(struct notify_user_watcher *w, const struct store_change *ch)
{
	cr_assert_eq(ch->user_id, w->user_id);
	ucalls[(intptr_t)w->ctx]++;
}

static void umailbox_fn(struct notify_user_watcher *w, const struct notify_mailbox_event *ev)
{
	cr_assert_eq(ev->user_id, w->user_id);
	mcalls[(intptr_t)w->ctx]++;
	last_kind = ev->kind;
	last_old = ev->old_name;
}

Test(notify_user, changes_reach_the_users_watchers_only)
{
	struct notify *n = notify_new();
	struct notify_user_watcher w[3] = {
	    {.user_id = 3, .change_fn = uchange_fn, .mailbox_fn = umailbox_fn, .ctx = (void *)0},
	    {.user_id = 3 + 4096 * 5, .change_fn = uchange_fn, .ctx = (void *)1}, /* same bucket */
	    {.user_id = 9, .change_fn = uchange_fn, .mailbox_fn = umailbox_fn, .ctx = (void *)2},
	};
	memset(ucalls, 0, sizeof(ucalls));
	memset(mcalls, 0, sizeof(mcalls));
	for (int i = 0; i < 3; i++)
		notify_subscribe_user(n, &w[i]);
	cr_assert_eq(notify_user_count(n, 3), 1);
	struct store_change ch = {.user_id = 3, .mailbox_id = 40, .highest_modseq = 2};
	notify_publish(n, &ch);
	cr_assert_eq(ucalls[0], 1);
	cr_assert_eq(ucalls[1], 0);
	cr_assert_eq(ucalls[2], 0);
	/* A mailbox watcher and a user watcher of the same change both hear it. */
	struct notify_watcher mw = {.mailbox_id = 40, .fn = count_fn, .ctx = (void *)3};
	calls[3] = 0;
	notify_subscribe(n, &mw);
	notify_publish(n, &ch);
	cr_assert_eq(calls[3], 1);
	cr_assert_eq(ucalls[0], 2);
	notify_unsubscribe(n, &mw);
	/* Mailbox events: only mailbox_fn, only that user; a NULL mailbox_fn is skipped. */
	struct notify_mailbox_event ev = {
	    .user_id = 9, .kind = NOTIFY_MAILBOX_RENAMED, .name = "b", .old_name = "a"};
	notify_publish_mailbox(n, &ev);
	cr_assert_eq(mcalls[2], 1);
	cr_assert_eq(mcalls[0], 0);
	cr_assert_eq(last_kind, NOTIFY_MAILBOX_RENAMED);
	cr_assert_str_eq(last_old, "a");
	ev.user_id = 3 + 4096 * 5;
	notify_publish_mailbox(n, &ev); /* w[1] has no mailbox_fn */
	cr_assert_eq(mcalls[1], 0);
	for (int i = 0; i < 3; i++)
		notify_unsubscribe_user(n, &w[i]);
	cr_assert_eq(notify_user_count(n, 3), 0);
	notify_unsubscribe_user(n, &w[0]); /* twice is harmless */
	notify_publish(n, &ch);
	cr_assert_eq(ucalls[0], 2);
	notify_free(n);
}

static void unsub_users_fn(struct notify_user_watcher *w, const struct notify_mailbox_event *ev)
{
	(void)ev;
	mcalls[(intptr_t)w->ctx]++;
	for (int i = 0; i < 4; i++)
		notify_unsubscribe_user(g_n, &g_uw[i]);
}

Test(notify_user, a_watcher_may_unsubscribe_others_during_publish)
{
	g_n = notify_new();
	memset(mcalls, 0, sizeof(mcalls));
	for (int i = 0; i < 4; i++) {
		g_uw[i] = (struct notify_user_watcher){
		    .user_id = 5, .mailbox_fn = unsub_users_fn, .ctx = (void *)(intptr_t)i};
		notify_subscribe_user(g_n, &g_uw[i]);
	}
	struct notify_mailbox_event ev = {
	    .user_id = 5, .kind = NOTIFY_MAILBOX_CREATED, .name = "x"};
	notify_publish_mailbox(g_n, &ev);
	int total = 0;
	for (int i = 0; i < 4; i++)
		total += mcalls[i];
	cr_assert_eq(total, 1);
	cr_assert_eq(notify_user_count(g_n, 5), 0);
	notify_free(g_n);
	g_n = NULL;
}
