/*
 * storage/fault/: the fault-injecting backend fails the calls its rules name (by operation
 * and by count, at submit or in the callback), passes every other call to the store it
 * wraps (mem or SQLite), and keeps the callback contract of store.h. Also the registry:
 * an unknown backend is refused by name.
 */
#include <pthread.h>

#include "storage/fault/store_fault.h"
#include "tests/unit/support/store_test_util.h"

static struct store_fixture fx;

static void open_with(const char *backend)
{
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	struct store_options opt = {.backend = backend};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	store_sync_init(&fx.w);
}

static void teardown(void)
{
	fx_teardown(&fx);
}

TestSuite(store_fault, .fini = teardown, .timeout = 60);

static int add_user(const char *address)
{
	return FX_CALL(&fx, store_user_add(fx.s, address, "pw", store_sync_users, &fx.w));
}

static int get_user(const char *address)
{
	return FX_CALL(&fx, store_user_get(fx.s, address, store_sync_users, &fx.w));
}

Test(store_fault, passes_calls_through_without_rules)
{
	open_with("fault");
	cr_assert_eq(add_user("alice@corp.example"), 0);
	cr_assert_eq(get_user("alice@corp.example"), 0);
	cr_assert_str_eq(fx.w.users.v[0].address, "alice@corp.example");
	cr_assert_eq(get_user("bob@corp.example"), -ENOENT);
	cr_assert_eq(store_fault_calls(fx.s, "user_get"), 2);
	cr_assert_eq(store_fault_calls(fx.s, NULL), 3);
	cr_assert_eq(store_fault_failed(fx.s), 0);
}

Test(store_fault, fails_the_nth_call_in_the_callback)
{
	open_with("fault");
	cr_assert_eq(add_user("alice@corp.example"), 0);
	struct store_fault_rule r = {.op = "user_get", .nth = 3, .rc = -EIO};
	cr_assert_eq(store_fault_add(fx.s, &r), 0);
	cr_assert_eq(get_user("alice@corp.example"), 0);
	cr_assert_eq(get_user("alice@corp.example"), 0);
	cr_assert_eq(get_user("alice@corp.example"), -EIO);
	cr_assert_eq(fx.w.users.n, 0);
	cr_assert_eq(get_user("alice@corp.example"), 0);
	cr_assert_eq(store_fault_failed(fx.s), 1);
}

Test(store_fault, fails_every_call_to_one_operation_at_submit)
{
	open_with("fault");
	cr_assert_eq(add_user("alice@corp.example"), 0);
	struct store_fault_rule r = {.op = "deliver", .rc = -EIO, .at_submit = true};
	cr_assert_eq(store_fault_add(fx.s, &r), 0);
	static const char msg[] = "Subject: x\r\n\r\nbody\r\n";
	struct store_target t = {.user_id = 0};
	cr_assert_eq(get_user("alice@corp.example"), 0);
	t.user_id = fx.w.users.v[0].id;
	struct store_deliver_req req = {
	    .data = msg, .size = sizeof(msg) - 1, .targets = &t, .n_targets = 1};
	for (int i = 0; i < 3; i++) {
		/* At submit: the error comes back at once and the callback never runs. */
		store_sync_done(&fx.w);
		store_sync_init(&fx.w);
		cr_assert_eq(store_deliver(fx.s, &req, store_sync_delivery, &fx.w), -EIO);
		cr_assert(!fx.w.done);
	}
	cr_assert_eq(get_user("alice@corp.example"), 0);
	cr_assert_eq(fx.w.users.v[0].used_bytes, 0);
	store_fault_clear(fx.s);
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, 0);
}

Test(store_fault, fails_everything)
{
	open_with("fault:mem");
	struct store_fault_rule r = {.rc = -ENOSPC};
	cr_assert_eq(store_fault_add(fx.s, &r), 0);
	cr_assert_eq(add_user("alice@corp.example"), -ENOSPC);
	cr_assert_eq(get_user("alice@corp.example"), -ENOSPC);
	cr_assert_eq(FX_CALL(&fx, store_user_list(fx.s, store_sync_users, &fx.w)), -ENOSPC);
	cr_assert_eq(FX_CALL(&fx, store_queue_list(fx.s, store_sync_queue, &fx.w)), -ENOSPC);
	store_fault_clear(fx.s);
	/* Nothing reached the inner store. */
	cr_assert_eq(get_user("alice@corp.example"), -ENOENT);
}

Test(store_fault, wraps_sqlite)
{
	open_with("fault:sqlite");
	cr_assert_eq(add_user("alice@corp.example"), 0);
	struct store_fault_rule r = {.op = "auth", .nth = 1, .rc = -EBUSY};
	cr_assert_eq(store_fault_add(fx.s, &r), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "pw", store_sync_login, &fx.w)),
	    -EBUSY);
	cr_assert_eq(
	    FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "pw", store_sync_login, &fx.w)), 0);
	cr_assert_gt(fx.w.login.user_id, 0);
	/* The SQLite file is there: the inner store is the real one. */
	cr_assert_eq(access(fx.path, F_OK), 0);
}

struct thread_seen {
	pthread_t submitter;
	bool same_thread;
	int calls;
	struct store_sync *w;
};

static void thread_cb(void *ctx, int rc, struct store_users *res)
{
	struct thread_seen *t = ctx;
	t->same_thread = pthread_equal(pthread_self(), t->submitter);
	t->calls++;
	store_sync_users(t->w, rc, res);
}

Test(store_fault, callback_failure_runs_once_on_another_thread)
{
	open_with("fault");
	struct store_fault_rule r = {.op = "user_list", .rc = -EIO};
	cr_assert_eq(store_fault_add(fx.s, &r), 0);
	struct thread_seen t = {.submitter = pthread_self(), .w = &fx.w};
	store_sync_done(&fx.w);
	store_sync_init(&fx.w);
	int rc = store_user_list(fx.s, thread_cb, &t);
	cr_assert_eq(rc, 0);
	cr_assert_eq(store_sync_wait(&fx.w, rc), -EIO);
	cr_assert(!t.same_thread);
	usleep(20 * 1000);
	cr_assert_eq(t.calls, 1);
}

Test(store_fault, refuses_what_it_cannot_do)
{
	open_with("mem");
	struct store_fault_rule r = {.rc = -EIO};
	cr_assert_eq(store_fault_add(fx.s, &r), -EINVAL); /* not a fault store */
	struct store *s2 = NULL;
	const char *err = NULL;
	struct store_options opt = {.backend = "postgres", .path = fx.path};
	cr_assert_eq(store_open(&opt, &s2, &err), -EINVAL);
	cr_assert_not_null(strstr(err, "postgres"));
	cr_assert_not_null(strstr(err, "sqlite"));
	opt.backend = "fault:fault";
	cr_assert_eq(store_open(&opt, &s2, &err), -EINVAL);
	cr_assert_null(s2);
}
