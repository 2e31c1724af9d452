/*
 * store_deliver_batch (IMAP APPEND / MULTIAPPEND): every message stored in request order in
 * one commit, or none when one is refused, on SQLite and (as test_store_batch_on_mem) on
 * the in-memory backend.
 */
#include <pthread.h>

#include "tests/unit/support/store_test_util.h"

static struct store_fixture fx;

static void setup(void)
{
	fx_setup(&fx);
}

static void teardown(void)
{
	fx_teardown(&fx);
}

TestSuite(store_batch, .init = setup, .fini = teardown, .timeout = 60);

static int64_t add_user(const char *address)
{
	return fx_add_user(&fx, address, "pw one two");
}

static int64_t mailbox_id(int64_t user, const char *name)
{
	return fx_mailbox_id(&fx, user, name);
}

static size_t count(int64_t mailbox)
{
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, mailbox, 0, store_sync_msgs, &fx.w)), 0);
	return fx.w.msgs.n;
}

#define N 5

static char bodies[N][128];
static struct store_target targets[N];
static struct store_deliver_req reqs[N];

static void batch_init(int64_t user, int64_t mailbox, const char *keywords)
{
	for (size_t i = 0; i < N; i++) {
		snprintf(bodies[i], sizeof(bodies[i]),
		         "From: a@corp.example\r\nSubject: batch %zu\r\n\r\nmessage %zu\r\n", i, i);
		targets[i] = (struct store_target){
		    .user_id = user, .mailbox_id = mailbox, .flags = i == 1 ? STORE_SEEN : 0};
		targets[i].keywords = i == 2 ? keywords : NULL;
		reqs[i] = (struct store_deliver_req){.data = bodies[i],
		                                     .size = strlen(bodies[i]),
		                                     .targets = &targets[i],
		                                     .n_targets = 1,
		                                     .sender = ""};
	}
}

Test(store_batch, stores_all_in_order_in_one_commit)
{
	int64_t u = add_user("alice@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	batch_init(u, inbox, "$Forwarded");
	uint64_t commits0, writes0, commits1, writes1;
	store_stats(fx.s, &commits0, &writes0);
	int rc = FX_CALL(&fx, store_deliver_batch(fx.s, reqs, N, store_sync_delivery, &fx.w));
	cr_assert_eq(rc, 0, "%s", store_strerror(rc));
	store_stats(fx.s, &commits1, &writes1);
	cr_assert_eq(commits1 - commits0, 1);
	cr_assert_eq(fx.w.delivery.n, N);
	for (uint32_t i = 0; i < N; i++) {
		cr_assert_eq(fx.w.delivery.v[i].rc, 0);
		cr_assert_eq(fx.w.delivery.v[i].uid, i + 1);
		cr_assert_eq(fx.w.delivery.v[i].mailbox_id, inbox);
		cr_assert_neq(fx.w.delivery.v[i].uidvalidity, 0);
	}
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, N);
	cr_assert_eq(fx.w.msgs.v[1].flags, STORE_SEEN);
	cr_assert_str_eq(fx.w.msgs.v[2].keywords, "$Forwarded");
	cr_assert_eq(
	    FX_CALL(&fx, store_content_read(fx.s, inbox, 4, 0, 4096, store_sync_content, &fx.w)),
	    0);
	cr_assert_eq(fx.w.content.len, strlen(bodies[3]));
	cr_assert(memcmp(fx.w.content.data, bodies[3], fx.w.content.len) == 0);
}

Test(store_batch, third_over_quota_stores_none)
{
	int64_t u = add_user("bob@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	batch_init(u, inbox, NULL);
	/* Room for two of them: the third is refused after the first two were written. */
	uint64_t quota = reqs[0].size + reqs[1].size + reqs[2].size - 1;
	cr_assert_eq(FX_CALL(&fx, store_user_set_quota(fx.s, "bob@corp.example", quota,
	                                               store_sync_done_cb, &fx.w)),
	             0);
	int rc = FX_CALL(&fx, store_deliver_batch(fx.s, reqs, N, store_sync_delivery, &fx.w));
	cr_assert_eq(rc, -EDQUOT, "%s", store_strerror(rc));
	cr_assert_eq(count(inbox), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "bob@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].used_bytes, 0);
	/* Nothing of it stays behind, and the next batch gets the first UIDs. */
	rc = FX_CALL(&fx, store_deliver_batch(fx.s, reqs, 2, store_sync_delivery, &fx.w));
	cr_assert_eq(rc, 0, "%s", store_strerror(rc));
	cr_assert_eq(fx.w.delivery.v[0].uid, 1);
	cr_assert_eq(fx.w.delivery.v[1].uid, 2);
	cr_assert_eq(count(inbox), 2);
}

Test(store_batch, third_target_unknown_stores_none)
{
	int64_t u = add_user("carol@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	batch_init(u, inbox, NULL);
	targets[2].mailbox_id = inbox + 1000;
	int rc = FX_CALL(&fx, store_deliver_batch(fx.s, reqs, N, store_sync_delivery, &fx.w));
	cr_assert_eq(rc, -ENOENT, "%s", store_strerror(rc));
	cr_assert_eq(count(inbox), 0);
}

/* Batches on several threads at once join group commits and keep their own order. */
struct concurrent {
	int64_t user, mailbox;
	int rc;
	uint32_t uids[N];
};

static void *batch_thread(void *arg)
{
	struct concurrent *c = arg;
	char body[N][96];
	struct store_target t[N];
	struct store_deliver_req r[N];
	for (size_t i = 0; i < N; i++) {
		snprintf(body[i], sizeof(body[i]), "Subject: t%p %zu\r\n\r\nx\r\n", arg, i);
		t[i] = (struct store_target){.user_id = c->user, .mailbox_id = c->mailbox};
		r[i] = (struct store_deliver_req){
		    .data = body[i], .size = strlen(body[i]), .targets = &t[i], .n_targets = 1};
	}
	struct store_sync w;
	store_sync_init(&w);
	c->rc = store_sync_wait(&w, store_deliver_batch(fx.s, r, N, store_sync_delivery, &w));
	for (size_t i = 0; c->rc == 0 && i < N; i++)
		c->uids[i] = w.delivery.v[i].uid;
	store_sync_done(&w);
	return NULL;
}

Test(store_batch, concurrent_batches_keep_their_order)
{
	int64_t u = add_user("dave@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	struct concurrent c[4];
	pthread_t th[4];
	for (int k = 0; k < 4; k++) {
		c[k] = (struct concurrent){.user = u, .mailbox = inbox};
		pthread_create(&th[k], NULL, batch_thread, &c[k]);
	}
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	for (int k = 0; k < 4; k++) {
		cr_assert_eq(c[k].rc, 0);
		for (size_t i = 1; i < N; i++)
			cr_assert_eq(c[k].uids[i], c[k].uids[i - 1] + 1);
	}
	cr_assert_eq(count(inbox), 4 * N);
}

Test(store_batch, refused_at_submit)
{
	int64_t u = add_user("erin@corp.example");
	batch_init(u, mailbox_id(u, "INBOX"), NULL);
	cr_assert_eq(store_deliver_batch(fx.s, reqs, 0, store_sync_delivery, &fx.w), -EINVAL);
	reqs[1].n_targets = 0;
	cr_assert_eq(store_deliver_batch(fx.s, reqs, N, store_sync_delivery, &fx.w), -EINVAL);
	reqs[1].n_targets = 1;
	struct store_relay_rcpt rcpt = {.address = "x@example.org"};
	reqs[3].relay = &rcpt;
	reqs[3].n_relay = 1;
	cr_assert_eq(store_deliver_batch(fx.s, reqs, N, store_sync_delivery, &fx.w), -EINVAL);
}

/* A batch larger than what its prepared messages may hold at once (32 MiB of index text):
 * the rest are prepared on the writer, and are stored and found by SEARCH all the same. */
Test(store_batch, larger_than_prepared_bound)
{
	enum { BIG_N = 36, BIG_SIZE = (1024 + 64) * 1024 };
	int64_t u = add_user("frank@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	char *big[BIG_N];
	struct store_target t[BIG_N];
	struct store_deliver_req r[BIG_N];
	for (size_t i = 0; i < BIG_N; i++) {
		big[i] = malloc(BIG_SIZE + 1);
		cr_assert_not_null(big[i]);
		int h = snprintf(big[i], BIG_SIZE, "Subject: big %zu\r\n\r\nword%zu ", i, i);
		for (size_t k = (size_t)h; k < BIG_SIZE; k++)
			big[i][k] = k % 70 == 68 ? '\r' : k % 70 == 69 ? '\n' : "abcdefg "[k % 8];
		big[i][BIG_SIZE] = '\0';
		t[i] = (struct store_target){.user_id = u, .mailbox_id = inbox};
		r[i] = (struct store_deliver_req){
		    .data = big[i], .size = BIG_SIZE, .targets = &t[i], .n_targets = 1};
	}
	int rc = FX_CALL(&fx, store_deliver_batch(fx.s, r, BIG_N, store_sync_delivery, &fx.w));
	cr_assert_eq(rc, 0, "%s", store_strerror(rc));
	cr_assert_eq(fx.w.delivery.v[BIG_N - 1].uid, BIG_N);
	cr_assert_eq(count(inbox), BIG_N);
	rc = FX_CALL(&fx, store_search_text(fx.s, inbox, "word35", store_sync_uids, &fx.w));
	cr_assert_eq(rc, 0);
	cr_assert_eq(fx.w.uids.n, 1);
	cr_assert_eq(fx.w.uids.v[0], BIG_N);
	for (size_t i = 0; i < BIG_N; i++)
		free(big[i]);
}
