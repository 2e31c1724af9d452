/*
 * storage/: annotations (IMAP METADATA, RFC 5464) through the blocking face, on SQLite and
 * (test_store_metadata_on_mem) the in-memory backend: set, replace, remove, DEPTH, the
 * all-or-none entry limit, server versus mailbox entries, and a mailbox's entries following
 * it through RENAME and going with DELETE.
 */
#include <sqlite3.h>

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

TestSuite(store_metadata, .init = setup, .fini = teardown, .timeout = 60);

static int64_t add_user(const char *address)
{
	int rc = FX_CALL(&fx, store_user_add(fx.s, address, "pw", store_sync_users, &fx.w));
	cr_assert_eq(rc, 0, "user_add %s: %s", address, store_strerror(rc));
	return fx.w.users.v[0].id;
}

static int64_t mailbox_id(int64_t user, const char *name)
{
	int rc = FX_CALL(&fx, store_mailbox_get(fx.s, user, name, store_sync_mailboxes, &fx.w));
	cr_assert_eq(rc, 0, "mailbox_get %s: %s", name, store_strerror(rc));
	return fx.w.mailboxes.v[0].id;
}

static int set1(int64_t user, int64_t mb, const char *name, const char *value, uint64_t max)
{
	struct store_meta_change ch = {
	    .name = name, .value = value, .len = value != NULL ? strlen(value) : 0};
	return FX_CALL(&fx,
	               store_metadata_set(fx.s, user, mb, &ch, 1, max, store_sync_done_cb, &fx.w));
}

/* Gets names (depth) and checks the result is exactly "name=value;..." in order. */
static void expect_get(int64_t user, int64_t mb, const char *const *names, size_t n, int depth,
                       const char *want)
{
	int rc = FX_CALL(
	    &fx, store_metadata_get(fx.s, user, mb, names, n, depth, store_sync_metadata, &fx.w));
	cr_assert_eq(rc, 0, "get: %s", store_strerror(rc));
	char got[1024] = "";
	for (size_t i = 0; i < fx.w.metadata.n; i++) {
		const struct store_meta_entry *e = &fx.w.metadata.v[i];
		size_t used = strlen(got);
		snprintf(got + used, sizeof(got) - used, "%s=%.*s;", e->name, (int)e->len,
		         (const char *)e->value);
	}
	cr_assert_str_eq(got, want);
}

Test(store_metadata, name_rule)
{
	static const struct {
		const char *name;
		bool ok;
	} cases[] = {
	    {"/private/comment", true},
	    {"/shared/comment", true},
	    {"/shared/vendor/x/y", true},
	    {"/private", false},
	    {"/private/", false},
	    {"/comment", false},
	    {"/private//x", false},
	    {"/private/x/", false},
	    {"/private/Comment", false},
	    {"/private/a*b", false},
	    {"/private/a%b", false},
	    {"/private/a b", true},
	    {"/private/a\tb", false},
	    {"/private/\x7f", false},
	    {"/private/\xc3\xa9", false},
	    {"private/x", false},
	    {"", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(store_meta_name_valid(cases[i].name), cases[i].ok, "%s",
		             cases[i].name);
}

Test(store_metadata, set_get_replace_remove)
{
	int64_t u = add_user("alice@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	const char *const both[] = {"/private/comment", "/shared/comment"};

	expect_get(u, inbox, both, 2, 0, "");
	cr_assert_eq(set1(u, inbox, "/private/comment", "mine", 0), 0);
	cr_assert_eq(set1(u, inbox, "/shared/comment", "ours", 0), 0);
	expect_get(u, inbox, both, 2, 0, "/private/comment=mine;/shared/comment=ours;");
	/* Server entries are apart from the mailbox's. */
	expect_get(u, 0, both, 2, 0, "");
	cr_assert_eq(set1(u, 0, "/shared/comment", "server", 0), 0);
	expect_get(u, 0, both, 2, 0, "/shared/comment=server;");
	expect_get(u, inbox, both + 1, 1, 0, "/shared/comment=ours;");

	cr_assert_eq(set1(u, inbox, "/private/comment", "changed", 0), 0);
	expect_get(u, inbox, both, 1, 0, "/private/comment=changed;");
	cr_assert_eq(set1(u, inbox, "/private/comment", NULL, 0), 0);
	expect_get(u, inbox, both, 2, 0, "/shared/comment=ours;");
	/* Removing what is not there is no error; an empty value is a value. */
	cr_assert_eq(set1(u, inbox, "/private/comment", NULL, 0), 0);
	cr_assert_eq(set1(u, inbox, "/private/comment", "", 0), 0);
	expect_get(u, inbox, both, 1, 0, "/private/comment=;");

	/* Another user sees none of it and cannot reach alice's mailbox. */
	int64_t b = add_user("bob@corp.example");
	expect_get(b, 0, both, 2, 0, "");
	cr_assert_eq(set1(b, inbox, "/private/comment", "x", 0), -ENOENT);
	cr_assert_eq(FX_CALL(&fx, store_metadata_get(fx.s, b, inbox, both, 2, 0,
	                                             store_sync_metadata, &fx.w)),
	             -ENOENT);
	/* Names the store does not keep are refused before anything is queued. */
	struct store_meta_change bad = {.name = "/private/A", .value = "x", .len = 1};
	cr_assert_eq(store_metadata_set(fx.s, u, 0, &bad, 1, 0, store_sync_done_cb, &fx.w),
	             -EINVAL);
}

Test(store_metadata, binary_value)
{
	int64_t u = add_user("alice@corp.example");
	static const unsigned char v[] = {'a', 0, 0xff, '\r', '\n', 'z'};
	struct store_meta_change ch = {.name = "/private/bin", .value = v, .len = sizeof(v)};
	cr_assert_eq(
	    FX_CALL(&fx, store_metadata_set(fx.s, u, 0, &ch, 1, 0, store_sync_done_cb, &fx.w)), 0);
	const char *const names[] = {"/private/bin"};
	cr_assert_eq(
	    FX_CALL(&fx, store_metadata_get(fx.s, u, 0, names, 1, 0, store_sync_metadata, &fx.w)),
	    0);
	cr_assert_eq(fx.w.metadata.n, 1);
	cr_assert_eq(fx.w.metadata.v[0].len, sizeof(v));
	cr_assert_eq(memcmp(fx.w.metadata.v[0].value, v, sizeof(v)), 0);
}

Test(store_metadata, depth)
{
	int64_t u = add_user("alice@corp.example");
	const char *const all[] = {"/private/a", "/private/a/b", "/private/a/b/c", "/private/ab",
	                           "/shared/a"};
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(set1(u, 0, all[i], "v", 0), 0);
	const char *const a[] = {"/private/a"};
	expect_get(u, 0, a, 1, 0, "/private/a=v;");
	expect_get(u, 0, a, 1, 1, "/private/a=v;/private/a/b=v;");
	expect_get(u, 0, a, 1, STORE_META_DEPTH_INFINITY,
	           "/private/a=v;/private/a/b=v;/private/a/b/c=v;");
	/* A scope as the name; overlapping names give each entry once. */
	const char *const scope[] = {"/private", "/private/a/b"};
	expect_get(u, 0, scope, 2, STORE_META_DEPTH_INFINITY,
	           "/private/a=v;/private/a/b=v;/private/a/b/c=v;/private/ab=v;");
	expect_get(u, 0, scope, 1, 1, "/private/a=v;/private/ab=v;");
	cr_assert_eq(store_metadata_get(fx.s, u, 0, a, 0, 0, store_sync_metadata, &fx.w), -EINVAL);
	cr_assert_eq(store_metadata_get(fx.s, u, 0, a, 1, 2, store_sync_metadata, &fx.w), -EINVAL);
}

Test(store_metadata, limit_all_or_none)
{
	int64_t u = add_user("alice@corp.example");
	int64_t inbox = mailbox_id(u, "INBOX");
	cr_assert_eq(set1(u, 0, "/private/one", "1", 3), 0);
	cr_assert_eq(set1(u, inbox, "/private/two", "2", 3), 0);
	struct store_meta_change ch[] = {
	    {.name = "/private/two", .value = "changed", .len = 7},
	    {.name = "/private/three", .value = "3", .len = 1},
	    {.name = "/private/four", .value = "4", .len = 1},
	};
	/* Four entries would pass the limit of 3: nothing changes, not even the update. */
	cr_assert_eq(
	    FX_CALL(&fx, store_metadata_set(fx.s, u, inbox, ch, 3, 3, store_sync_done_cb, &fx.w)),
	    -EDQUOT);
	const char *const names[] = {"/private"};
	expect_get(u, inbox, names, 1, STORE_META_DEPTH_INFINITY, "/private/two=2;");
	/* Replacing and removing never count against it. */
	cr_assert_eq(
	    FX_CALL(&fx, store_metadata_set(fx.s, u, inbox, ch, 2, 3, store_sync_done_cb, &fx.w)),
	    0);
	cr_assert_eq(set1(u, inbox, "/private/two", "again", 3), 0);
	cr_assert_eq(set1(u, inbox, "/private/five", "5", 3), -EDQUOT);
	cr_assert_eq(set1(u, inbox, "/private/three", NULL, 3), 0);
	cr_assert_eq(set1(u, inbox, "/private/five", "5", 3), 0);
	expect_get(u, inbox, names, 1, STORE_META_DEPTH_INFINITY,
	           "/private/five=5;/private/two=again;");
}

Test(store_metadata, follows_mailbox)
{
	int64_t u = add_user("alice@corp.example");
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, u, "Work", 0, store_sync_mailboxes, &fx.w)), 0);
	int64_t work = mailbox_id(u, "Work");
	cr_assert_eq(set1(u, work, "/shared/comment", "work", 0), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_rename(fx.s, u, "Work", "Job", store_sync_mailboxes, &fx.w)),
	    0);
	cr_assert_eq(mailbox_id(u, "Job"), work);
	const char *const names[] = {"/shared/comment"};
	expect_get(u, work, names, 1, 0, "/shared/comment=work;");

	cr_assert_eq(FX_CALL(&fx, store_mailbox_delete(fx.s, u, "Job", store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, u, "Job", 0, store_sync_mailboxes, &fx.w)), 0);
	int64_t again = mailbox_id(u, "Job");
	/* (SQLite may give the new mailbox the old id: its entries are gone all the same.) */
	expect_get(u, again, names, 1, 0, "");
	if (again != work)
		cr_assert_eq(set1(u, work, "/shared/comment", "x", 0), -ENOENT);

	/* Renaming INBOX: INBOX keeps its entries and the new mailbox gets a copy. */
	int64_t inbox = mailbox_id(u, "INBOX");
	cr_assert_eq(set1(u, inbox, "/shared/comment", "in", 0), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, u, "INBOX", "Old",
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	expect_get(u, inbox, names, 1, 0, "/shared/comment=in;");
	expect_get(u, mailbox_id(u, "Old"), names, 1, 0, "/shared/comment=in;");

	/* A deleted user's entries go with it. */
	cr_assert_eq(set1(u, 0, "/private/x", "y", 0), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "alice@corp.example", store_sync_done_cb, &fx.w)), 0);
	const char *b = getenv("SEALMAIL_STORE_BACKEND");
	if (b == NULL || b[0] == '\0' || strcmp(b, "sqlite") == 0)
		cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM annotations"), 0);
}
