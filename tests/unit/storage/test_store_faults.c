/*
 * storage/: what happens around the operations. Readers run beside the writer; async
 * completions run exactly once on the posting thread; change notifications; migrations;
 * a newer schema, a corrupt file and a locked file are refused; a full disk fails the
 * delivery and stores nothing.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "storage/sqlite/store_private.h"
#include "tests/unit/support/store_test_util.h"

static struct store_fixture fx;

/* The SQLite backend behind fx.s, for the tests that reach into its threads and files. */
static struct sqlite_store *sq(void)
{
	return store_backend_impl(fx.s);
}

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	store_sync_init(&fx.w);
}

static void teardown(void)
{
	store_sync_done(&fx.w);
	store_close(fx.s);
	fx_rmdir(&fx);
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 60);

static void exec_sql(const char *sql)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t add_user(const char *address)
{
	cr_assert_eq(FX_CALL(&fx, store_user_add(fx.s, address, "pw", store_sync_users, &fx.w)), 0);
	return fx.w.users.v[0].id;
}

/* ---- Readers beside the writer ---- */

struct reader_arg {
	struct store *s;
	int64_t inbox;
	volatile bool stop;
	size_t reads;
	size_t last_seen;
	int failures;
};

static void *reader_main(void *p)
{
	struct reader_arg *r = p;
	while (!r->stop) {
		struct store_sync w;
		store_sync_init(&w);
		int rc =
		    store_sync_wait(&w, store_message_list(r->s, r->inbox, 0, store_sync_msgs, &w));
		if (rc != 0 || w.msgs.n < r->last_seen)
			r->failures++;
		r->last_seen = w.msgs.n;
		r->reads++;
		store_sync_done(&w);
	}
	return NULL;
}

struct producer_arg {
	struct store *s;
	int64_t user;
	int id;
	int n;
	int failures;
};

static void *producer_main(void *p)
{
	struct producer_arg *a = p;
	for (int i = 0; i < a->n; i++) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Subject: p%d m%d\r\n\r\nbody %d %d\r\n", a->id, i,
		         a->id, i);
		struct store_target t = {.user_id = a->user};
		struct store_deliver_req req = {
		    .data = msg, .size = strlen(msg), .targets = &t, .n_targets = 1};
		struct store_sync w;
		store_sync_init(&w);
		if (store_sync_wait(&w, store_deliver(a->s, &req, store_sync_delivery, &w)) != 0)
			a->failures++;
		store_sync_done(&w);
	}
	return NULL;
}

Test(faults, readers_concurrent_with_writer)
{
	fx_open(&fx);
	int64_t a = add_user("alice@corp.example");
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	struct reader_arg r = {.s = fx.s, .inbox = fx.w.mailboxes.v[0].id};
	pthread_t rt, pt[4];
	struct producer_arg pa[4];
	pthread_create(&rt, NULL, reader_main, &r);
	for (int i = 0; i < 4; i++) {
		pa[i] = (struct producer_arg){.s = fx.s, .user = a, .id = i, .n = 50};
		pthread_create(&pt[i], NULL, producer_main, &pa[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(pt[i], NULL);
		cr_assert_eq(pa[i].failures, 0);
	}
	r.stop = true;
	pthread_join(rt, NULL);
	cr_assert_eq(r.failures, 0);
	cr_assert_gt(r.reads, 0);
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, r.inbox, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 200);
	for (size_t i = 0; i < 200; i++)
		cr_assert_eq(fx.w.msgs.v[i].uid, i + 1);
}

/* ---- Async completions through a poster ---- */

struct test_poster {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct item {
		void (*fn)(void *);
		void *arg;
	} items[256];
	size_t n;
};

static void test_post(void *ctx, void (*fn)(void *arg), void *arg)
{
	struct test_poster *p = ctx;
	pthread_mutex_lock(&p->lock);
	cr_assert_lt(p->n, 256);
	p->items[p->n++] = (struct item){fn, arg};
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
}

/* Runs what was posted, on this (the "loop") thread. */
static size_t poster_drain(struct test_poster *p)
{
	struct item items[256];
	pthread_mutex_lock(&p->lock);
	size_t n = p->n;
	memcpy(items, p->items, n * sizeof(items[0]));
	p->n = 0;
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < n; i++)
		items[i].fn(items[i].arg);
	return n;
}

static pthread_t loop_thread;
static int calls[64];
static int changes;
static uint64_t last_change_modseq;

static void async_seen(void *ctx)
{
	int *slot = ctx;
	cr_assert(pthread_equal(pthread_self(), loop_thread), "callback off the loop thread");
	(*slot)++;
}

static void async_delivery(void *ctx, int rc, struct store_delivery_result *res)
{
	(void)rc;
	(void)res;
	async_seen(ctx);
}

static void async_users(void *ctx, int rc, struct store_users *res)
{
	(void)rc;
	(void)res;
	async_seen(ctx);
}

static void async_login(void *ctx, int rc, struct store_login *res)
{
	(void)rc;
	(void)res;
	async_seen(ctx);
}

static void on_change(void *ctx, const struct store_change *ch)
{
	cr_assert(pthread_equal(pthread_self(), loop_thread));
	cr_assert_geq(ch->highest_modseq, last_change_modseq);
	last_change_modseq = ch->highest_modseq;
	changes++;
	(void)ctx;
}

Test(faults, async_completions_run_once_on_the_loop)
{
	struct test_poster p = {.n = 0};
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cv, NULL);
	struct store_poster poster = {.post = test_post, .ctx = &p};
	struct store_options opt = {.poster = &poster, .on_change = on_change};
	loop_thread = pthread_self();
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);

	cr_assert_eq(store_user_add(fx.s, "alice@corp.example", "pw", async_users, &calls[0]), 0);
	/* A call that fails to start never calls back. */
	cr_assert_eq(store_user_add(fx.s, "bad address", "pw", async_users, &calls[1]), -EINVAL);
	while (calls[0] == 0) {
		pthread_mutex_lock(&p.lock);
		while (p.n == 0)
			pthread_cond_wait(&p.cv, &p.lock);
		pthread_mutex_unlock(&p.lock);
		poster_drain(&p);
	}
	struct store_target t = {.mailbox_id = 1};
	static const char msg[] = "Subject: x\r\n\r\ny\r\n";
	struct store_deliver_req req = {
	    .data = msg, .size = sizeof(msg) - 1, .targets = &t, .n_targets = 1};
	for (int i = 2; i < 42; i++)
		cr_assert_eq(store_deliver(fx.s, &req, async_delivery, &calls[i]), 0);
	cr_assert_eq(store_user_list(fx.s, async_users, &calls[42]), 0);
	cr_assert_eq(store_auth(fx.s, "alice@corp.example", "pw", async_login, &calls[43]), 0);
	/* Completions that are queued run only when the loop drains them: then all at once. */
	store_close(fx.s);
	fx.s = NULL;
	poster_drain(&p);
	cr_assert_eq(calls[0], 1);
	cr_assert_eq(calls[1], 0);
	for (int i = 2; i < 44; i++)
		cr_assert_eq(calls[i], 1, "call %d ran %d times", i, calls[i]);
	cr_assert_eq(changes, 40);
	cr_assert_eq(last_change_modseq, 41);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cv);
}

/* ---- Schema ---- */

Test(faults, migrations_from_version_1)
{
	sqlite3 *db;
	const char *err = NULL;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(store_schema_migrate_to(db, 1, &err), 0);
	sqlite3_close(db);
	exec_sql("INSERT INTO users (address, password_hash, created) VALUES ('old@x.y', 'h', 0)");

	fx_open(&fx);
	cr_assert_eq(FX_CALL(&fx, store_user_get(fx.s, "old@x.y", store_sync_users, &fx.w)), 0);
	store_close(fx.s);
	fx.s = NULL;
	exec_sql("SELECT count(*) FROM fts"); /* version 2 added it */
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The step that added message limits and \Deleted counts counts what was already there. */
Test(faults, migration_counts_deleted_messages)
{
	sqlite3 *db;
	const char *err = NULL;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(store_schema_migrate_to(db, STORE_SCHEMA_VERSION - 1, &err), 0);
	sqlite3_close(db);
	exec_sql(
	    "INSERT INTO users (id, address, password_hash, created) VALUES (1, 'old@x.y', 'h', 0);"
	    "INSERT INTO mailboxes (id, user_id, name, uidvalidity, uidnext) "
	    "VALUES (1, 1, 'INBOX', 1, 4);"
	    "INSERT INTO contents (id, sha256, size, body) VALUES (1, x'01', 10, x'00'),"
	    " (2, x'02', 20, x'00'), (3, x'03', 40, x'00');"
	    "INSERT INTO entries (mailbox_id, uid, content_id, modseq, flags, internal_date, size)"
	    " VALUES (1, 1, 1, 1, 8, 0, 10), (1, 2, 2, 1, 9, 0, 20), (1, 3, 3, 1, 1, 0, 40);");

	fx_open(&fx);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, 1, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 3);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 2);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, 30);
	cr_assert_eq(FX_CALL(&fx, store_user_get(fx.s, "old@x.y", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].quota_messages, 0);
	cr_assert_eq(fx.w.users.v[0].used_messages, 3);
	/* The new triggers keep them from here on. */
	struct store_uid_range r3 = {3, 3};
	cr_assert_eq(FX_CALL(&fx, store_flags_store(fx.s, 1, &r3, 1, STORE_FLAGS_ADD, STORE_DELETED,
	                                            NULL, 0, store_sync_flags, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, 1, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 3);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, 70);
}

Test(faults, newer_schema_refused)
{
	fx_open(&fx);
	add_user("alice@corp.example");
	store_close(fx.s);
	fx.s = NULL;
	exec_sql("PRAGMA user_version = 99");
	const char *err = NULL;
	struct store_options opt = {.path = fx.path};
	cr_assert_eq(store_open(&opt, &fx.s, &err), -EPROTO);
	cr_assert_null(fx.s);
	cr_assert(strstr(err, "99") != NULL && strstr(err, "newer") != NULL, "%s", err);
	/* Untouched: the user is still there. */
	char restore[64];
	snprintf(restore, sizeof(restore), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	exec_sql(restore);
	fx_open(&fx);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
}

Test(faults, corrupt_file_refused)
{
	FILE *fp = fopen(fx.path, "wb");
	for (int i = 0; i < 512; i++)
		fputs("this is not a database ", fp);
	fclose(fp);
	const char *err = NULL;
	struct store_options opt = {.path = fx.path};
	cr_assert_eq(store_open(&opt, &fx.s, &err), -EIO);
	cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
	/* Never reset. */
	fp = fopen(fx.path, "rb");
	char head[24];
	cr_assert_eq(fread(head, 1, sizeof(head), fp), sizeof(head));
	fclose(fp);
	cr_assert_eq(memcmp(head, "this is not a database ", 23), 0);
}

Test(faults, unreadable_path_refused)
{
	const char *err = NULL;
	struct store_options opt = {.path = "/nonexistent-dir/sub/mail.db"};
	cr_assert_lt(store_open(&opt, &fx.s, &err), 0);
	cr_assert(strstr(err, "/nonexistent-dir") != NULL, "%s", err);
}

Test(faults, locked_database_refused)
{
	fx_open(&fx);
	store_close(fx.s);
	fx.s = NULL;
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(
	    sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;", NULL, NULL, NULL),
	    SQLITE_OK);
	const char *err = NULL;
	struct store_options opt = {.path = fx.path, .busy_ms = 200};
	int rc = store_open(&opt, &fx.s, &err);
	cr_assert_eq(rc, -EBUSY, "%d %s", rc, err);
	cr_assert(strstr(err, "locked") != NULL, "%s", err);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

Test(faults, disk_full_fails_delivery)
{
	fx_open(&fx);
	int64_t a = add_user("alice@corp.example");
	/* Simulate a full disk: the writer's file may not grow. Safe here: the writer is idle. */
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_prepare_v2(sq()->wconn.db, "PRAGMA page_count", -1, &st, NULL), 0);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	char *pragma = sqlite3_mprintf("PRAGMA max_page_count = %d", sqlite3_column_int(st, 0) + 8);
	sqlite3_finalize(st);
	cr_assert_eq(sqlite3_exec(sq()->wconn.db, pragma, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(pragma);
	size_t size = 512 * 1024;
	char *big = malloc(size);
	memset(big, 'x', size);
	memcpy(big, "Subject: big\r\n\r\n", 16);
	struct store_target t = {.user_id = a};
	struct store_deliver_req req = {.data = big, .size = size, .targets = &t, .n_targets = 1};
	int rc = FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w));
	free(big);
	cr_assert_eq(rc, -ENOSPC, "%d", rc);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 0);
	cr_assert_eq(fx.w.mailboxes.v[0].uidnext, 1);
	/* While the disk is full new mail is refused at once, even a small message that
	 * would fit: it must not eat the room kept for what frees room. */
	req.data = "Subject: s\r\n\r\ns\r\n";
	req.size = strlen(req.data);
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), -ENOSPC);
	/* The file system itself has room (only the page count was capped): a second later
	 * the store looks again and takes mail. */
	cr_assert_eq(
	    sqlite3_exec(sq()->wconn.db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL),
	    SQLITE_OK);
	usleep(1100 * 1000);
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
}

/* ---- Group commit ---- */

static long long count_rows(const char *sql)
{
	return fx_count_rows(&fx, sql);
}

#define BURST 60

struct burst {
	char msg[BURST][160];
	struct store_target t[BURST][2];
	struct store_deliver_req req[BURST];
	struct store_sync w[BURST];
	int rc[BURST];
};

/* Submits every delivery of b at once (so the writer groups them), then waits for all. */
static void burst_run(struct burst *b, size_t n)
{
	int submit[BURST];
	for (size_t i = 0; i < n; i++) {
		store_sync_init(&b->w[i]);
		submit[i] = store_deliver(fx.s, &b->req[i], store_sync_delivery, &b->w[i]);
	}
	for (size_t i = 0; i < n; i++)
		b->rc[i] = store_sync_wait(&b->w[i], submit[i]);
}

static void burst_done(struct burst *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_sync_done(&b->w[i]);
}

/* Waits (bounded) until n write jobs are queued for the writer, i.e. prepared. */
static void wait_queued(size_t n)
{
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&sq()->lock);
		size_t len = sq()->writes.len;
		pthread_mutex_unlock(&sq()->lock);
		if (len >= n)
			return;
		usleep(1000);
	}
	cr_assert_fail("%zu write jobs never queued", n);
}

/* Deliveries committed together (their FTS rows written once, before COMMIT) can each be
 * found by SEARCH the moment they complete; the ones that fail leave nothing behind, and a
 * user deleted in the middle of the group takes its contents and FTS rows with it, even
 * those delivered just before in the same transaction (no FTS row outlives its content). */
/* Without a poster, change notices come from whichever store thread completes a group:
 * still one at a time and in commit order. */
static pthread_mutex_t notice_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t notice_modseq[64];
static int notice_disorder;

static void on_change_ordered(void *ctx, const struct store_change *ch)
{
	pthread_mutex_lock(&notice_lock);
	size_t i = (size_t)ch->mailbox_id % 64;
	if (ch->highest_modseq <= notice_modseq[i])
		notice_disorder++;
	notice_modseq[i] = ch->highest_modseq;
	pthread_mutex_unlock(&notice_lock);
	(void)ctx;
}

Test(faults, grouped_deliveries_searchable_at_completion)
{
	struct store_options opt = {.on_change = on_change_ordered};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	int64_t a = add_user("alice@corp.example");
	int64_t b = add_user("bob@corp.example");
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	int64_t inbox = fx.w.mailboxes.v[0].id;
	struct store_target tb = {.user_id = b};
	struct store_deliver_req rb = {
	    .data = "Subject: bob\r\n\r\nbobword\r\n", .size = 25, .targets = &tb, .n_targets = 1};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &rb, store_sync_delivery, &fx.w)), 0);

	static struct burst bu;
	memset(&bu, 0, sizeof(bu));
	for (size_t i = 0; i < BURST; i++) {
		snprintf(bu.msg[i], sizeof(bu.msg[i]), "Subject: m%zu\r\n\r\nword%zux here\r\n", i,
		         i);
		/* Every fifth one goes to nobody: it fails and must store nothing. Two go to
		 * bob, queued just before his deletion: stored, then gone with him. */
		bu.t[i][0].user_id = i % 5 == 4 ? 999 : a;
		if (i == 1 || i == 2)
			bu.t[i][0].user_id = b;
		bu.req[i] = (struct store_deliver_req){.data = bu.msg[i],
		                                       .size = strlen(bu.msg[i]),
		                                       .targets = bu.t[i],
		                                       .n_targets = 1};
	}
	/* Another connection holds the write lock: the writer waits in BEGIN with delivery 0
	 * while the rest queue up behind it in this order, to run as one transaction. */
	sqlite3 *lock;
	cr_assert_eq(sqlite3_open(fx.path, &lock), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	struct store_sync wd;
	store_sync_init(&wd);
	int submit[BURST];
	store_sync_init(&bu.w[0]);
	submit[0] = store_deliver(fx.s, &bu.req[0], store_sync_delivery, &bu.w[0]);
	usleep(50 * 1000);
	for (size_t i = 1; i < BURST; i++) {
		store_sync_init(&bu.w[i]);
		submit[i] = store_deliver(fx.s, &bu.req[i], store_sync_delivery, &bu.w[i]);
		if (i == 2) {
			wait_queued(2);
			cr_assert_eq(
			    store_user_del(fx.s, "bob@corp.example", store_sync_done_cb, &wd), 0);
		}
	}
	wait_queued(BURST);
	cr_assert_eq(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(lock);
	for (size_t i = 0; i < BURST; i++)
		bu.rc[i] = store_sync_wait(&bu.w[i], submit[i]);
	cr_assert_eq(store_sync_wait(&wd, 0), 0);
	store_sync_done(&wd);

	size_t ok = 0;
	for (size_t i = 0; i < BURST; i++) {
		if (i % 5 == 4) {
			cr_assert_eq(bu.rc[i], -ENOENT, "delivery %zu: %d", i, bu.rc[i]);
			continue;
		}
		cr_assert_eq(bu.rc[i], 0, "delivery %zu: %d", i, bu.rc[i]);
		if (bu.t[i][0].user_id == b)
			continue;
		uint32_t uid = bu.w[i].delivery.v[0].uid;
		char q[32];
		snprintf(q, sizeof(q), "word%zux", i);
		cr_assert_eq(
		    FX_CALL(&fx, store_search_text(fx.s, inbox, q, store_sync_uids, &fx.w)), 0);
		cr_assert_eq(fx.w.uids.n, 1, "%s", q);
		cr_assert_eq(fx.w.uids.v[0], uid, "%s", q);
		ok++;
	}
	burst_done(&bu, BURST);
	cr_assert_eq(count_rows("SELECT count(*) FROM contents"), (long long)ok);
	cr_assert_eq(count_rows("SELECT count(*) FROM fts"), (long long)ok);
	cr_assert_eq(count_rows("SELECT count(*) FROM entries"), (long long)ok);
	cr_assert_eq(
	    FX_CALL(&fx, store_search_text(fx.s, inbox, "bobword", store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 0);
	uint64_t commits, writes;
	store_stats(fx.s, &commits, &writes);
	cr_assert_lt(commits, writes, "no group was committed");
	cr_assert_eq(notice_disorder, 0);
}

/* A delivery that fails after its first write (here the second target has no UID left)
 * has no savepoint of its own: the writer rolls the whole group back and runs the others
 * again, so they succeed and the failed one leaves no content, entry or UID behind. */
Test(faults, delivery_failing_after_a_write_leaves_nothing)
{
	fx_open(&fx);
	int64_t a = add_user("alice@corp.example");
	int64_t b = add_user("bob@corp.example");
	/* Writer idle: change bob's INBOX beside it, as the disk-full test does. */
	char sql[128];
	snprintf(sql, sizeof(sql), "UPDATE mailboxes SET uidnext = 4294967295 WHERE user_id = %lld",
	         (long long)b);
	cr_assert_eq(sqlite3_exec(sq()->wconn.db, sql, NULL, NULL, NULL), SQLITE_OK);

	static struct burst bu;
	memset(&bu, 0, sizeof(bu));
	for (size_t i = 0; i < 20; i++) {
		snprintf(bu.msg[i], sizeof(bu.msg[i]), "Subject: m%zu\r\n\r\nbody%zu\r\n", i, i);
		bu.t[i][0].user_id = a;
		bu.t[i][1].user_id = b;
		bu.req[i] = (struct store_deliver_req){.data = bu.msg[i],
		                                       .size = strlen(bu.msg[i]),
		                                       .targets = bu.t[i],
		                                       .n_targets = i == 7 ? 2 : 1};
	}
	burst_run(&bu, 20);
	for (size_t i = 0; i < 20; i++)
		cr_assert_eq(bu.rc[i], i == 7 ? -EFBIG : 0, "delivery %zu: %d", i, bu.rc[i]);
	burst_done(&bu, 20);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 19);
	cr_assert_eq(fx.w.mailboxes.v[0].uidnext, 20);
	cr_assert_eq(count_rows("SELECT count(*) FROM contents"), 19);
	cr_assert_eq(count_rows("SELECT count(*) FROM fts"), 19);
	cr_assert_eq(count_rows("SELECT count(*) FROM contents WHERE body LIKE '%body7%'"), 0);
}

/* ---- Checkpoints ---- */

/* The checkpointer copies the WAL into the database file beside the writer, and the WAL
 * stays bounded even though a busy writer seldom lets it start over by itself. */
Test(faults, wal_checkpointed_beside_the_writer_and_bounded)
{
	fx_open(&fx);
	int64_t a = add_user("alice@corp.example");
	size_t size = 128 * 1024; /* ~33 frames each: 600 pass STORE_CKPT_MAX_PAGES */
	char *msg = malloc(size);
	memset(msg, 'x', size);
	memcpy(msg, "Subject: big\r\n\r\n", 16);
	struct store_target t = {.user_id = a};
	struct store_deliver_req req = {.data = msg, .size = size, .targets = &t, .n_targets = 1};
	char wal[160];
	snprintf(wal, sizeof(wal), "%s-wal", fx.path);
	off_t wal_max = 0;
	for (int i = 0; i < 600; i++) {
		snprintf(msg + 16, 32, "%d ", i); /* distinct content */
		cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)),
		             0);
		struct stat st;
		if (stat(wal, &st) == 0 && st.st_size > wal_max)
			wal_max = st.st_size;
		if (i != 300)
			continue;
		/* ~9,900 frames: past STORE_CKPT_PAGES, short of the writer's own checkpoint.
		 * The database file fills while the store is open and the writer is idle. */
		for (int w = 0; w < 500; w++) {
			cr_assert_eq(stat(fx.path, &st), 0);
			if (st.st_size >= 8 * 1024 * 1024)
				break;
			usleep(10 * 1000);
		}
		cr_assert_geq(st.st_size, 8 * 1024 * 1024, "database file %lld bytes",
		              (long long)st.st_size);
	}
	free(msg);
	cr_assert_leq(wal_max, (off_t)(STORE_CKPT_MAX_PAGES + 256) * (4096 + 24) + 32,
	              "WAL grew to %lld bytes", (long long)wal_max);
}
