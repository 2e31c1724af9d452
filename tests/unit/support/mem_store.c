/*
 * The mem store of the protocol session tests (mem_store.h). Each set-up call has its own
 * small callback that takes only what the test needs from the result.
 */
#include "tests/unit/support/mem_store.h"

#include <errno.h>
#include <string.h>

#include "tests/unit/support/pop3_fakes.h"

unsigned fake_conn_holds(const struct conn *c);

struct waited {
	bool done;
	int rc;
	int64_t id;
};

static bool waited_done(void *arg)
{
	return ((struct waited *)arg)->done;
}

/* Pumps the poster until the call submitted with submit_rc has answered. */
static int wait_for(struct waited *w, int submit_rc)
{
	if (submit_rc < 0)
		return submit_rc;
	if (!pop3_fake_run_until(waited_done, w))
		return -ETIMEDOUT;
	return w->rc;
}

static void user_added(void *ctx, int rc, struct store_users *res)
{
	struct waited *w = ctx;
	w->rc = rc;
	if (rc == 0)
		w->id = res->v[0].id;
	w->done = true;
}

static void mailbox_created(void *ctx, int rc, struct store_mailboxes *res)
{
	struct waited *w = ctx;
	w->rc = rc;
	if (rc == 0)
		w->id = res->v[0].id;
	w->done = true;
}

static void delivered(void *ctx, int rc, struct store_delivery_result *res)
{
	struct waited *w = ctx;
	w->rc = rc;
	/* One target: its own outcome is the delivery's. */
	if (rc == 0 && res->n == 1)
		w->rc = res->v[0].rc;
	w->done = true;
}

int support_mem_store_open(struct store **store_r)
{
	struct store_options opt = {.backend = "mem", .poster = &pop3_fake_poster};
	const char *error = NULL;
	return store_open(&opt, store_r, &error);
}

void support_mem_store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_close(s);
	pop3_fake_drop_posted();
}

int64_t support_mem_user_add(struct store *s, const char *address, const char *password)
{
	struct waited w = {0};
	int rc = wait_for(&w, store_user_add(s, address, password, user_added, &w));
	return rc < 0 ? rc : w.id;
}

int64_t support_mem_mailbox_create(struct store *s, int64_t user_id, const char *name)
{
	struct waited w = {0};
	int rc = wait_for(&w, store_mailbox_create(s, user_id, name, 0, mailbox_created, &w));
	return rc < 0 ? rc : w.id;
}

int support_mem_deliver(struct store *s, int64_t user_id, const char *msg)
{
	struct store_target t = {.user_id = user_id};
	struct store_deliver_req req = {
	    .data = msg, .size = strlen(msg), .targets = &t, .n_targets = 1};
	struct waited w = {0};
	return wait_for(&w, store_deliver(s, &req, delivered, &w));
}

static bool no_holds(void *arg)
{
	return fake_conn_holds(arg) == 0;
}

bool support_mem_settle(struct conn *c)
{
	if (!pop3_fake_run_until(no_holds, c))
		return false;
	/* Completions that hold nothing (a notification) run too. */
	while (pop3_fake_run_one(5))
		;
	return true;
}
