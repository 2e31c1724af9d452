/* The failed-login table (server/auth/authfail.c): who waits, how long, and for what. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "server/auth/auth.h"

#define IP    "192.0.2.1"
#define T0    1000000u
#define ALICE "alice@corp.example"
#define BOB   "bob@corp.example"

/* One password check from ip for user, the way login.c does it: a slot, then a failure.
 * Returns the failure's reply delay; *t advances past it, as a client waiting for the
 * answer before its next attempt would. */
static unsigned fail_once(struct authfail *af, const char *ip, const char *user, uint64_t *t)
{
	bool held;
	cr_assert_eq(authfail_begin(af, ip, user, *t, &held), 0, "a sequential attempt waits");
	unsigned d = authfail_failed(af, ip, user, held, *t);
	*t += d;
	return d;
}

static void succeed_once(struct authfail *af, const char *ip, const char *user, uint64_t t)
{
	bool held;
	cr_assert_eq(authfail_begin(af, ip, user, t, &held), 0, "a good login was queued");
	authfail_succeeded(af, ip, user, held, t);
}

Test(authfail, first_failure_answers_at_once_then_doubles_up_to_the_caps)
{
	struct authfail *af = authfail_new();
	uint64_t t = T0;
	static const unsigned want[] = {0, 250, 500, 1000, 2000, 4000, 8000, 15000, 15000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(fail_once(af, IP, BOB, &t), want[i], "failure %zu", i + 1);
	/* Another address guessing the same account gets the account's (smaller) cap. */
	uint64_t t2 = t;
	cr_assert_eq(fail_once(af, "192.0.2.2", BOB, &t2), AUTHFAIL_USER_CAP);
	/* An unrelated address and account: the first failure answers at once. */
	cr_assert_eq(fail_once(af, "192.0.2.3", "carol@corp.example", &t2), 0);
	authfail_free(af);
}

Test(authfail, success_never_waits_and_forgives_only_its_own_pair)
{
	struct authfail *af = authfail_new();
	uint64_t t = T0;
	/* Alice mistypes five times. */
	for (int i = 0; i < 5; i++)
		fail_once(af, IP, ALICE, &t);
	/* Bob, behind the same address, is not queued, and a success has no delay to wait. */
	succeed_once(af, IP, BOB, t);
	/* Bob's success does not reset the address: the next guess there is still slow. */
	cr_assert_eq(fail_once(af, IP, "mallory@corp.example", &t), 4000);
	/* Alice's own success takes her five failures off the address (one guess stays),
	 * and clears her account's count everywhere. */
	succeed_once(af, IP, ALICE, t);
	cr_assert_eq(fail_once(af, IP, "carol@corp.example", &t), 250);
	uint64_t t2 = t;
	cr_assert_eq(fail_once(af, "198.51.100.7", ALICE, &t2), 0);
	authfail_free(af);
}

Test(authfail, unknown_and_known_names_wait_alike)
{
	/* The table never asks whether a name exists: the same history, the same delays. */
	struct authfail *a = authfail_new(), *b = authfail_new();
	uint64_t ta = T0, tb = T0;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(fail_once(a, IP, ALICE, &ta),
		             fail_once(b, IP, "nobody-here@corp.example", &tb));
	authfail_free(a);
	authfail_free(b);
}

Test(authfail, new_connections_do_not_bypass_the_delay)
{
	struct authfail *af = authfail_new();
	uint64_t t = T0;
	for (int i = 0; i < 5; i++)
		fail_once(af, IP, ALICE, &t);
	/* A guesser on fresh connections that never waits for the answers: each check
	 * holds a slot, in flight and then for its failure's delay. */
	bool held[AUTHFAIL_SLOTS + 1];
	for (int i = 0; i < AUTHFAIL_SLOTS; i++) {
		cr_assert_eq(authfail_begin(af, IP, ALICE, t, &held[i]), 0);
		cr_assert(held[i]);
	}
	cr_assert_gt(authfail_begin(af, IP, ALICE, t, &held[AUTHFAIL_SLOTS]), 0);
	cr_assert(!held[AUTHFAIL_SLOTS]);
	for (int i = 0; i < AUTHFAIL_SLOTS; i++)
		authfail_failed(af, IP, ALICE, held[i], t);
	/* The fifth waits until the first failure's delay (4 s after five failures) ends,
	 * and so does a colleague who has not logged in from here yet. */
	bool h;
	cr_assert_eq(authfail_begin(af, IP, ALICE, t, &h), 4000);
	cr_assert_eq(authfail_begin(af, IP, "carol@corp.example", t + 1000, &h), 3000);
	cr_assert_eq(authfail_begin(af, IP, ALICE, t + 4000, &h), 0);
	cr_assert(h);
	/* A check that could not decide (store error, closed connection) frees its slot. */
	authfail_abandoned(af, IP, h, t + 4000);
	cr_assert_eq(authfail_begin(af, IP, ALICE, t + 4000, &h), 0);
	authfail_free(af);
}

Test(authfail, an_account_that_logged_in_skips_the_queue_until_it_fails)
{
	struct authfail *af = authfail_new();
	uint64_t t = T0;
	fail_once(af, IP, ALICE, &t);
	succeed_once(af, IP, BOB, t);
	bool held[AUTHFAIL_SLOTS];
	for (int i = 0; i < AUTHFAIL_SLOTS; i++)
		cr_assert_eq(authfail_begin(af, IP, ALICE, t, &held[i]), 0);
	bool h;
	cr_assert_gt(authfail_begin(af, IP, ALICE, t, &h), 0);
	/* Bob logged in from here since his last failure here: not queued. */
	cr_assert_eq(authfail_begin(af, IP, BOB, t, &h), 0);
	cr_assert(!h);
	/* But a failure for bob ends that, so a guesser cannot ride on it. */
	authfail_failed(af, IP, BOB, h, t);
	cr_assert_gt(authfail_begin(af, IP, BOB, t, &h), 0);
	for (int i = 0; i < AUTHFAIL_SLOTS; i++)
		authfail_abandoned(af, IP, held[i], t);
	authfail_free(af);
}

Test(authfail, forgotten_after_fifteen_minutes)
{
	struct authfail *af = authfail_new();
	uint64_t t = T0;
	for (int i = 0; i < 8; i++)
		fail_once(af, IP, BOB, &t);
	t += 15 * 60 * 1000;
	cr_assert_eq(fail_once(af, IP, BOB, &t), 0);
	authfail_free(af);
}

Test(authfail, stays_bounded_under_a_flood)
{
	struct authfail *af = authfail_new();
	char ip[32], user[48];
	uint64_t t = T0;
	for (int i = 0; i < 200000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		authfail_failed(af, ip, NULL, false, t + (uint64_t)i);
	}
	/* The newest is still remembered. */
	cr_assert_gt(authfail_failed(af, ip, NULL, false, t + 200000), 0);
	/* One address spraying fresh names (three entries per failure): its own count
	 * survives the sweeps, so it stays at the cap. */
	for (int i = 0; i < 100000; i++) {
		snprintf(user, sizeof(user), "u%d@corp.example", i);
		authfail_failed(af, IP, user, false, t + 300000 + (uint64_t)i);
	}
	cr_assert_eq(authfail_failed(af, IP, "last@corp.example", false, t + 400000),
	             AUTHFAIL_IP_CAP);
	authfail_free(af);
}
