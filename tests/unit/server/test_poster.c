/*
 * server/poster.c: functions posted from other threads run exactly once, on the loop
 * thread, in posting order; poster_close runs what is still queued before the handle goes.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/poster.h"

#define MAX_THREADS 8

/* What the posted functions saw. Only the loop thread (the test's own) writes it. */
static struct {
	uv_thread_t loop_thread;
	uint64_t next[MAX_THREADS]; /* the sequence number each posting thread is due */
	uint64_t total;
	uint64_t wrong_thread;
	uint64_t out_of_order;
	uint64_t bad_arg;
} seen;

static uv_loop_t loop;
static struct poster *poster;

/* arg: the posting thread in the top bits, its sequence number in the low 40. */
static void *tag(unsigned thread, uint64_t seq)
{
	return (void *)(uintptr_t)(((uint64_t)thread << 40) | seq);
}

static void record(void *arg)
{
	uint64_t v = (uint64_t)(uintptr_t)arg;
	unsigned thread = (unsigned)(v >> 40);
	uint64_t seq = v & ((UINT64_C(1) << 40) - 1);
	uv_thread_t self = uv_thread_self();
	if (!uv_thread_equal(&self, &seen.loop_thread))
		seen.wrong_thread++;
	if (thread >= MAX_THREADS) {
		seen.bad_arg++;
		return;
	}
	if (seq != seen.next[thread])
		seen.out_of_order++;
	seen.next[thread] = seq + 1;
	seen.total++;
}

struct poster_thread {
	uv_thread_t tid;
	unsigned index;
	uint64_t count;
};

static void post_many(void *arg)
{
	struct poster_thread *t = arg;
	for (uint64_t i = 0; i < t->count; i++)
		poster_post(poster, record, tag(t->index, i));
}

static void start_threads(struct poster_thread *t, unsigned n, uint64_t count)
{
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct poster_thread){.index = i, .count = count};
		cr_assert_eq(uv_thread_create(&t[i].tid, post_many, &t[i]), 0);
	}
}

static void join_threads(struct poster_thread *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(uv_thread_join(&t[i].tid), 0);
}

static void expect_all_ran(unsigned threads, uint64_t count, const char *what)
{
	cr_expect_eq(seen.total, threads * count, "%s: %llu of %llu ran", what,
	             (unsigned long long)seen.total, (unsigned long long)(threads * count));
	for (unsigned i = 0; i < threads; i++)
		cr_expect_eq(seen.next[i], count, "%s: thread %u: %llu of %llu ran", what, i,
		             (unsigned long long)seen.next[i], (unsigned long long)count);
	cr_expect_eq(seen.wrong_thread, 0, "%s: %llu ran off the loop thread", what,
	             (unsigned long long)seen.wrong_thread);
	cr_expect_eq(seen.out_of_order, 0, "%s: %llu out of posting order", what,
	             (unsigned long long)seen.out_of_order);
	cr_expect_eq(seen.bad_arg, 0, "%s: an argument changed on the way", what);
}

/* A lost post would keep the loop waiting for ever: the watchdog ends the wait instead. */
static bool watchdog_fired;
static uv_timer_t watchdog;

static void watchdog_cb(uv_timer_t *t)
{
	(void)t;
	watchdog_fired = true;
}

static void run_until(uint64_t total)
{
	uv_timer_init(&loop, &watchdog);
	uv_timer_start(&watchdog, watchdog_cb, 60 * 1000, 0);
	uv_unref((uv_handle_t *)&watchdog);
	while (seen.total < total && !watchdog_fired)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_run(&loop, UV_RUN_NOWAIT); /* the close callback: the timer is used again */
	cr_expect_not(watchdog_fired, "posts lost: %llu of %llu ran",
	              (unsigned long long)seen.total, (unsigned long long)total);
}

/* The poster is freed in its close callback: after it the loop has nothing left. */
static void close_and_finish(void)
{
	poster_close(poster);
	poster = NULL;
	cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	cr_expect_eq(uv_loop_close(&loop), 0, "a handle is left open");
}

static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	watchdog_fired = false;
	seen.loop_thread = uv_thread_self();
	cr_assert_eq(uv_loop_init(&loop), 0);
	poster = poster_new(&loop);
	cr_assert_not_null(poster);
}

TestSuite(poster, .init = setup, .timeout = 100);

Test(poster, posts_from_threads_run_once_on_the_loop_in_order)
{
	enum when {
		LOOP_WHILE_POSTING, /* the loop drains while the threads still post */
		LOOP_AFTER_JOIN,    /* everything is queued before the loop first runs */
	};
	static const struct {
		unsigned threads;
		uint64_t count;
		enum when when;
	} cases[] = {
	    {1, 1, LOOP_WHILE_POSTING},      {1, 1, LOOP_AFTER_JOIN},
	    {1, 1000, LOOP_WHILE_POSTING},   {2, 3, LOOP_AFTER_JOIN},
	    {4, 100000, LOOP_WHILE_POSTING}, {4, 100000, LOOP_AFTER_JOIN},
	    {8, 20000, LOOP_WHILE_POSTING},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(seen.next, 0, sizeof(seen.next));
		seen.total = 0;
		struct poster_thread t[MAX_THREADS];
		uint64_t want = cases[i].threads * cases[i].count;
		start_threads(t, cases[i].threads, cases[i].count);
		if (cases[i].when == LOOP_AFTER_JOIN) {
			join_threads(t, cases[i].threads);
			cr_expect_eq(seen.total, 0, "case %zu: ran before the loop did", i);
			run_until(want);
		} else {
			run_until(want);
			join_threads(t, cases[i].threads);
		}
		char what[64];
		snprintf(what, sizeof(what), "case %zu (%u threads x %llu)", i, cases[i].threads,
		         (unsigned long long)cases[i].count);
		expect_all_ran(cases[i].threads, cases[i].count, what);
		/* Nothing runs twice: another turn of the loop adds nothing. */
		uv_run(&loop, UV_RUN_NOWAIT);
		cr_expect_eq(seen.total, want, "%s: ran again", what);
	}
	close_and_finish();
}

/* ----- Functions that post ----- */

/* The order functions ran in, by name. */
static char order[256];

static void note(const char *name)
{
	size_t len = strlen(order);
	snprintf(order + len, sizeof(order) - len, "%s%s", len ? " " : "", name);
}

static void named(void *arg)
{
	note(arg);
}

/* Posts "c" from a thread of its own, the way a store thread would. */
static void post_c_thread(void *arg)
{
	(void)arg;
	poster_post(poster, named, "c");
}

static void post_c_from_thread(void)
{
	uv_thread_t t;
	cr_assert_eq(uv_thread_create(&t, post_c_thread, NULL), 0);
	cr_assert_eq(uv_thread_join(&t), 0);
}

static void a_posts_c(void *arg)
{
	note(arg);
	post_c_from_thread();
}

static void a_posts_c_from_loop(void *arg)
{
	note(arg);
	poster_post(poster, named, "c");
}

static bool closed_in_a;

/* The last thread is done: a completion may close the poster (on the loop thread). */
static void a_posts_c_and_closes(void *arg)
{
	note(arg);
	post_c_from_thread();
	poster_close(poster);
	closed_in_a = true;
}

Test(poster, functions_posted_while_running_keep_posting_order)
{
	static const struct {
		void (*a)(void *);
		const char *want;
	} cases[] = {
	    {named, "a b"},
	    {a_posts_c, "a b c"},
	    {a_posts_c_from_loop, "a b c"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		order[0] = '\0';
		poster_post(poster, cases[i].a, "a");
		poster_post(poster, named, "b");
		cr_expect_str_empty(order, "case %zu: ran inside poster_post", i);
		for (int turn = 0; turn < 4; turn++)
			uv_run(&loop, UV_RUN_NOWAIT);
		cr_expect_str_eq(order, cases[i].want, "case %zu: ran '%s'", i, order);
	}
	close_and_finish();
}

/* ----- poster_close ----- */

Test(poster, close_runs_what_is_still_queued)
{
	static const struct {
		unsigned threads;
		uint64_t count;
		bool loop_first; /* the loop ran some posts before the close */
	} cases[] = {
	    {0, 0, false}, {0, 0, true},      {1, 1, false},
	    {1, 5, true},  {4, 10000, false}, {4, 10000, true},
	};
	close_and_finish(); /* setup's; each case makes its own */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&seen, 0, sizeof(seen));
		seen.loop_thread = uv_thread_self();
		cr_assert_eq(uv_loop_init(&loop), 0);
		poster = poster_new(&loop);
		struct poster_thread t[MAX_THREADS];
		if (cases[i].loop_first)
			poster_post(poster, record, tag(MAX_THREADS - 1, 0));
		start_threads(t, cases[i].threads, cases[i].count);
		if (cases[i].loop_first)
			uv_run(&loop, UV_RUN_ONCE);
		/* No other thread can post any more. */
		join_threads(t, cases[i].threads);
		poster_close(poster);
		poster = NULL;
		char what[64];
		snprintf(what, sizeof(what), "case %zu: when poster_close returned", i);
		uint64_t extra = cases[i].loop_first ? 1 : 0;
		cr_expect_eq(seen.total, cases[i].threads * cases[i].count + extra, "%s: %llu ran",
		             what, (unsigned long long)seen.total);
		if (cases[i].loop_first)
			seen.total--;
		expect_all_ran(cases[i].threads, cases[i].count, what);
		cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
		cr_expect_eq(uv_loop_close(&loop), 0, "case %zu: a handle is left open", i);
	}
}

Test(poster, close_from_a_posted_function_keeps_posting_order)
{
	/* a runs, posts c from a thread it joins, then closes: b was posted before c. */
	closed_in_a = false;
	order[0] = '\0';
	poster_post(poster, a_posts_c_and_closes, "a");
	poster_post(poster, named, "b");
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(closed_in_a);
	poster = NULL;
	cr_expect_str_eq(order, "a b c", "ran '%s'", order);
	cr_expect_eq(uv_loop_close(&loop), 0, "a handle is left open");
}

Test(poster, function_posted_during_close_runs_once)
{
	order[0] = '\0';
	poster_post(poster, a_posts_c_from_loop, "a");
	poster_post(poster, named, "b");
	poster_close(poster);
	poster = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_str_eq(order, "a b c", "ran '%s'", order);
	cr_expect_eq(uv_loop_close(&loop), 0, "a handle is left open");
}
