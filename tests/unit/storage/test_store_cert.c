/*
 * storage/sqlite/store_cert.c: the records of issued certificates and the CRL number, on a
 * real SQLite file through the blocking face. Revocation by serial and by address, the
 * "already revoked" and "nothing to revoke" answers, CRL numbers that only grow, records
 * that outlive their user.
 */
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

TestSuite(store_cert, .init = setup, .fini = teardown, .timeout = 60);

#define NOW ((int64_t)1700000000)
#define DAY ((int64_t)86400)

static int64_t add_user(const char *address)
{
	int rc = FX_CALL(&fx, store_user_add(fx.s, address, "pw", store_sync_users, &fx.w));
	cr_assert_eq(rc, 0, "user_add %s: %s", address, store_strerror(rc));
	return fx.w.users.v[0].id;
}

static int add_cert(const char *serial, const char *address, enum store_cert_kind kind,
                    int64_t not_after)
{
	struct store_cert_new c = {
	    .serial = serial,
	    .address = address,
	    .kind = kind,
	    .not_before = NOW - DAY,
	    .not_after = not_after,
	};
	return FX_CALL(&fx, store_cert_add(fx.s, &c, store_sync_certs, &fx.w));
}

Test(store_cert, add_get_and_link_to_user)
{
	int64_t alice = add_user("alice@corp.example");
	cr_assert_eq(add_cert("0a1b", "alice@corp.example", STORE_CERT_CLIENT, NOW + 30 * DAY), 0);
	cr_assert_eq(fx.w.certs.n, 1);
	const struct store_cert *c = &fx.w.certs.v[0];
	cr_expect_str_eq(c->serial, "0a1b");
	cr_expect_str_eq(c->address, "alice@corp.example");
	cr_expect_eq(c->user_id, alice);
	cr_expect_eq(c->kind, STORE_CERT_CLIENT);
	cr_expect_eq(c->not_before, NOW - DAY);
	cr_expect_eq(c->not_after, NOW + 30 * DAY);
	cr_expect_eq(c->revoked_at, 0);
	cr_expect_gt(c->created, 0);

	/* A server certificate is never linked, even if a user has that name. */
	cr_assert_eq(add_cert("0c", "mail.corp.example", STORE_CERT_SERVER, NOW + DAY), 0);
	cr_expect_eq(fx.w.certs.v[0].user_id, 0);
	cr_expect_eq(fx.w.certs.v[0].kind, STORE_CERT_SERVER);

	cr_assert_eq(FX_CALL(&fx, store_cert_get(fx.s, "0a1b", store_sync_certs, &fx.w)), 0);
	cr_assert_eq(fx.w.certs.n, 1);
	cr_expect_str_eq(fx.w.certs.v[0].address, "alice@corp.example");
	cr_expect_eq(FX_CALL(&fx, store_cert_get(fx.s, "ffff", store_sync_certs, &fx.w)), -ENOENT);
	/* Serials are unique. */
	cr_expect_eq(add_cert("0a1b", "alice@corp.example", STORE_CERT_CLIENT, NOW + DAY), -EEXIST);
}

Test(store_cert, refuses_bad_arguments)
{
	fx_pg_todo("store_cert_add");
	struct store_cert_new c = {.serial = "0A1B", .address = "a@b.c", .not_after = NOW};
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL); /* upper case */
	c.serial = "";
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL);
	c.serial = "12:34";
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL);
	c.serial = "11111111111111111111111111111111111111111"; /* 41 digits */
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL);
	c.serial = "12";
	c.address = "";
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL);
	c.address = "a@b.c";
	c.not_before = NOW + 1;
	cr_expect_eq(store_cert_add(fx.s, &c, store_sync_certs, &fx.w), -EINVAL);
	cr_expect_eq(store_cert_get(fx.s, "xyz", store_sync_certs, &fx.w), -EINVAL);
	cr_expect_eq(store_cert_revoke(fx.s, NULL, NULL, NOW, store_sync_certs, &fx.w), -EINVAL);
	cr_expect_eq(store_cert_revoke(fx.s, "12", "a@b.c", NOW, store_sync_certs, &fx.w), -EINVAL);
	cr_expect_eq(store_cert_revoke(fx.s, NULL, "not an address", NOW, store_sync_certs, &fx.w),
	             -EINVAL);
	cr_expect_eq(store_cert_list(fx.s, -1, store_sync_certs, &fx.w), -EINVAL);
}

Test(store_cert, list_and_expiring)
{
	add_user("alice@corp.example");
	cr_assert_eq(add_cert("01", "alice@corp.example", STORE_CERT_CLIENT, NOW + 300 * DAY), 0);
	cr_assert_eq(add_cert("02", "alice@corp.example", STORE_CERT_CLIENT, NOW + 10 * DAY), 0);
	cr_assert_eq(add_cert("03", "alice@corp.example", STORE_CERT_CLIENT, NOW - DAY / 2), 0);
	cr_assert_eq(add_cert("04", "alice@corp.example", STORE_CERT_CLIENT, NOW + 5 * DAY), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_cert_revoke(fx.s, "04", NULL, NOW, store_sync_certs, &fx.w)), 0);

	cr_assert_eq(FX_CALL(&fx, store_cert_list(fx.s, 0, store_sync_certs, &fx.w)), 0);
	cr_assert_eq(fx.w.certs.n, 4);
	/* Ordered by not_after. */
	cr_expect_str_eq(fx.w.certs.v[0].serial, "03");
	cr_expect_str_eq(fx.w.certs.v[1].serial, "04");
	cr_expect_str_eq(fx.w.certs.v[2].serial, "02");
	cr_expect_str_eq(fx.w.certs.v[3].serial, "01");

	/* Expiring within 30 days: not the revoked one, not the one good for 300 days. */
	cr_assert_eq(FX_CALL(&fx, store_cert_list(fx.s, NOW + 30 * DAY, store_sync_certs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.certs.n, 2);
	cr_expect_str_eq(fx.w.certs.v[0].serial, "03");
	cr_expect_str_eq(fx.w.certs.v[1].serial, "02");

	/* Valid at NOW: 01 and 02 (03 expired, 04 revoked). */
	cr_assert_eq(FX_CALL(&fx, store_cert_find_valid(fx.s, "Alice@Corp.Example", NOW,
	                                                store_sync_certs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.certs.n, 2);
	cr_expect_str_eq(fx.w.certs.v[0].serial, "01");
	cr_expect_str_eq(fx.w.certs.v[1].serial, "02");
	cr_assert_eq(FX_CALL(&fx, store_cert_find_valid(fx.s, "bob@corp.example", NOW,
	                                                store_sync_certs, &fx.w)),
	             0);
	cr_expect_eq(fx.w.certs.n, 0);
}

Test(store_cert, revoke_by_serial_and_crl_numbers)
{
	add_user("alice@corp.example");
	cr_assert_eq(add_cert("aa", "alice@corp.example", STORE_CERT_CLIENT, NOW + DAY), 0);

	cr_assert_eq(FX_CALL(&fx, store_cert_crl_next(fx.s, store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.crl_number, 1);

	cr_assert_eq(
	    FX_CALL(&fx, store_cert_revoke(fx.s, "aa", NULL, NOW, store_sync_certs, &fx.w)), 0);
	cr_assert_eq(fx.w.certs.n, 1);
	cr_expect_str_eq(fx.w.certs.v[0].serial, "aa");
	cr_expect_eq(fx.w.certs.v[0].revoked_at, NOW);
	cr_expect_eq(fx.w.certs.crl_number, 2);

	/* Again: nothing changes, no number is taken. */
	cr_expect_eq(
	    FX_CALL(&fx, store_cert_revoke(fx.s, "aa", NULL, NOW + 5, store_sync_certs, &fx.w)),
	    -EALREADY);
	cr_expect_eq(
	    FX_CALL(&fx, store_cert_revoke(fx.s, "bb", NULL, NOW, store_sync_certs, &fx.w)),
	    -ENOENT);
	cr_assert_eq(FX_CALL(&fx, store_cert_get(fx.s, "aa", store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.v[0].revoked_at, NOW);
	cr_assert_eq(FX_CALL(&fx, store_cert_crl_next(fx.s, store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.crl_number, 3);

	cr_assert_eq(FX_CALL(&fx, store_cert_list_revoked(fx.s, store_sync_certs, &fx.w)), 0);
	cr_assert_eq(fx.w.certs.n, 1);
	cr_expect_str_eq(fx.w.certs.v[0].serial, "aa");
}

Test(store_cert, revoke_by_address)
{
	add_user("alice@corp.example");
	add_user("bob@corp.example");
	cr_assert_eq(add_cert("a1", "alice@corp.example", STORE_CERT_CLIENT, NOW + DAY), 0);
	cr_assert_eq(add_cert("a2", "alice@corp.example", STORE_CERT_CLIENT, NOW + 2 * DAY), 0);
	cr_assert_eq(add_cert("a3", "alice@corp.example", STORE_CERT_CLIENT, NOW - DAY), 0);
	cr_assert_eq(add_cert("b1", "bob@corp.example", STORE_CERT_CLIENT, NOW + DAY), 0);

	cr_assert_eq(FX_CALL(&fx, store_cert_revoke(fx.s, NULL, "ALICE@corp.example", NOW,
	                                            store_sync_certs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.certs.n, 2);
	cr_expect_str_eq(fx.w.certs.v[0].serial, "a1");
	cr_expect_str_eq(fx.w.certs.v[1].serial, "a2");
	cr_expect_eq(fx.w.certs.crl_number, 1);
	/* Nothing valid is left. */
	cr_expect_eq(FX_CALL(&fx, store_cert_revoke(fx.s, NULL, "alice@corp.example", NOW,
	                                            store_sync_certs, &fx.w)),
	             -ENOENT);
	cr_assert_eq(FX_CALL(&fx, store_cert_list_revoked(fx.s, store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.n, 2);
	/* Bob's is untouched. */
	cr_assert_eq(FX_CALL(&fx, store_cert_find_valid(fx.s, "bob@corp.example", NOW,
	                                                store_sync_certs, &fx.w)),
	             0);
	cr_expect_eq(fx.w.certs.n, 1);
	cr_assert_eq(FX_CALL(&fx, store_cert_crl_next(fx.s, store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.crl_number, 2);
}

Test(store_cert, record_outlives_user)
{
	add_user("alice@corp.example");
	cr_assert_eq(add_cert("a1", "alice@corp.example", STORE_CERT_CLIENT, NOW + DAY), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "alice@corp.example", store_sync_done_cb, &fx.w)), 0);
	cr_assert_eq(FX_CALL(&fx, store_cert_get(fx.s, "a1", store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.v[0].user_id, 0);
	/* Still revocable by address after the user is gone. */
	cr_assert_eq(FX_CALL(&fx, store_cert_revoke(fx.s, NULL, "alice@corp.example", NOW,
	                                            store_sync_certs, &fx.w)),
	             0);
	cr_expect_eq(fx.w.certs.n, 1);
}

Test(store_cert, crl_number_survives_reopen)
{
	fx_sqlite_only(); /* a reopened mem store is a new one */
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(FX_CALL(&fx, store_cert_crl_next(fx.s, store_sync_certs, &fx.w)), 0);
		cr_expect_eq(fx.w.certs.crl_number, (uint64_t)i);
	}
	store_sync_done(&fx.w);
	store_sync_init(&fx.w);
	store_close(fx.s);
	fx_open(&fx);
	cr_assert_eq(FX_CALL(&fx, store_cert_crl_next(fx.s, store_sync_certs, &fx.w)), 0);
	cr_expect_eq(fx.w.certs.crl_number, 4);
}
