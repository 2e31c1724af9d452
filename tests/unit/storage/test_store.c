/*
 * storage/: every operation on a real SQLite file, through the blocking face. UIDs strictly
 * increase and are never reused, modseq grows on every change, shared content is stored
 * once and freed with its last reference, passwords check right/wrong/unknown alike.
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

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

static int64_t add_user(const char *address, const char *password)
{
	return fx_add_user(&fx, address, password);
}

static int64_t mailbox_id(int64_t user, const char *name)
{
	return fx_mailbox_id(&fx, user, name);
}

static int deliver(const char *msg, const struct store_target *t, size_t n)
{
	return fx_deliver(&fx, msg, t, n);
}

/* SELECT count(*) ... on the database file, beside the store, is n: what the SQLite
 * backend keeps, not checked on another. */
static void assert_rows(const char *sql, long long n)
{
	const char *b = getenv("SEALMAIL_STORE_BACKEND");
	if (b != NULL && b[0] != '\0' && strcmp(b, "sqlite") != 0)
		return;
	cr_assert_eq(fx_count_rows(&fx, sql), n, "%s", sql);
}

static const char msg1[] = "From: a@corp.example\r\nTo: b@corp.example\r\nSubject: hi\r\n\r\n"
                           "Hello there.\r\n";

Test(store, address_normalize)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"Alice@Corp.Example", "alice@corp.example"},
	    {"a.b+tag@x.y", "a.b+tag@x.y"},
	    {"@corp.example", NULL},
	    {"alice@", NULL},
	    {".a@x.y", NULL},
	    {"a..b@x.y", NULL},
	    {"a b@x.y", NULL},
	    {"a@-x.y", NULL},
	    {"a@x..y", NULL},
	    {"noat", NULL},
	    {"", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int rc = store_address_normalize(cases[i].in, &out);
		if (cases[i].out == NULL) {
			cr_expect_eq(rc, -EINVAL, "%s", cases[i].in);
		} else {
			cr_expect_eq(rc, 0, "%s", cases[i].in);
			cr_expect_str_eq(out, cases[i].out);
		}
		free(out);
	}
}

Test(store, user_lifecycle)
{
	int64_t id = add_user("Alice@Corp.Example", "secret one");
	cr_assert_gt(id, 0);
	cr_assert_str_eq(fx.w.users.v[0].address, "alice@corp.example");
	cr_assert_eq(
	    FX_CALL(&fx, store_user_add(fx.s, "alice@corp.example", "x", store_sync_users, &fx.w)),
	    -EEXIST);
	cr_assert_eq(store_user_add(fx.s, "not an address", "x", store_sync_users, &fx.w), -EINVAL);
	cr_assert_eq(store_user_add(fx.s, "b@corp.example", "", store_sync_users, &fx.w), -EINVAL);
	add_user("bob@corp.example", "pw");

	cr_assert_eq(FX_CALL(&fx, store_user_list(fx.s, store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.n, 2);
	cr_assert_str_eq(fx.w.users.v[0].address, "alice@corp.example");
	cr_assert_str_eq(fx.w.users.v[1].address, "bob@corp.example");

	cr_assert_eq(FX_CALL(&fx, store_user_set_require_cert(fx.s, "alice@corp.example", true,
	                                                      store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_user_set_quota(fx.s, "alice@corp.example", 12345,
	                                               store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "ALICE@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert(fx.w.users.v[0].require_client_certificate);
	cr_assert_eq(fx.w.users.v[0].quota_bytes, 12345);
	cr_assert_eq(FX_CALL(&fx, store_user_set_require_cert(fx.s, "nobody@corp.example", true,
	                                                      store_sync_done_cb, &fx.w)),
	             -ENOENT);

	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "alice@corp.example", store_sync_done_cb, &fx.w)), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "alice@corp.example", store_sync_done_cb, &fx.w)),
	    -ENOENT);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)),
	    -ENOENT);
	assert_rows("SELECT count(*) FROM mailboxes", 6);
}

Test(store, default_mailboxes)
{
	int64_t id = add_user("alice@corp.example", "pw");
	cr_assert_eq(FX_CALL(&fx, store_mailbox_list(fx.s, id, store_sync_mailboxes, &fx.w)), 0);
	cr_assert_eq(fx.w.mailboxes.n, 6);
	static const struct {
		const char *name;
		unsigned su;
	} want[] = {{"INBOX", 0},
	            {"Archive", STORE_SU_ARCHIVE},
	            {"Drafts", STORE_SU_DRAFTS},
	            {"Junk", STORE_SU_JUNK},
	            {"Sent", STORE_SU_SENT},
	            {"Trash", STORE_SU_TRASH}};
	for (size_t i = 0; i < 6; i++) {
		struct store_mailbox *mb = &fx.w.mailboxes.v[i];
		cr_expect_str_eq(mb->name, want[i].name);
		cr_expect_eq(mb->special_use, want[i].su, "%s", mb->name);
		cr_expect_eq(mb->uidnext, 1);
		cr_expect_gt(mb->uidvalidity, 0);
		cr_expect(mb->subscribed);
	}
	cr_assert_eq(FX_CALL(&fx, store_mailbox_list(fx.s, 999, store_sync_mailboxes, &fx.w)),
	             -ENOENT);
	/* INBOX in any case is INBOX. */
	cr_assert_eq(mailbox_id(id, "inbox"), mailbox_id(id, "INBOX"));
}

Test(store, passwords)
{
	add_user("alice@corp.example", "correct horse");
	int64_t uid = fx.w.users.v[0].id;
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "correct horse",
	                                     store_sync_login, &fx.w)),
	             0);
	cr_assert_eq(fx.w.login.user_id, uid);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "Alice@corp.example", "correct horse",
	                                     store_sync_login, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "wrong", store_sync_login, &fx.w)),
	    -EACCES);
	cr_assert_eq(fx.w.login.user_id, 0);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "nobody@corp.example", "correct horse",
	                                     store_sync_login, &fx.w)),
	             -EACCES);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "garbage", "x", store_sync_login, &fx.w)),
	             -EACCES);

	/* The hash is yescrypt; the password itself is nowhere in the file. */
	assert_rows("SELECT count(*) FROM users WHERE password_hash LIKE '$y$%'", 1);
	assert_rows("SELECT count(*) FROM users WHERE password_hash LIKE "
	            "'%correct horse%' OR scram_salt LIKE '%correct%'",
	            0);

	cr_assert_eq(
	    FX_CALL(&fx, store_user_scram(fx.s, "alice@corp.example", store_sync_scram, &fx.w)), 0);
	cr_assert_eq(fx.w.scram.scram.iterations, 4096);
	cr_assert_eq(strlen(fx.w.scram.scram.stored_key), 44); /* base64 of 32 bytes */
	cr_assert_eq(strlen(fx.w.scram.scram.server_key), 44);
	cr_assert_eq(strlen(fx.w.scram.scram.salt), 24);
	char *old_salt = strdup(fx.w.scram.scram.salt);

	cr_assert_eq(FX_CALL(&fx, store_user_passwd(fx.s, "alice@corp.example", "new one",
	                                            store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "correct horse",
	                                     store_sync_login, &fx.w)),
	             -EACCES);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "new one",
	                                     store_sync_login, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_scram(fx.s, "alice@corp.example", store_sync_scram, &fx.w)), 0);
	cr_assert_str_neq(fx.w.scram.scram.salt, old_salt);
	free(old_salt);

	/* Disabled: the same answer as a wrong password. */
	cr_assert_eq(FX_CALL(&fx, store_user_set_disabled(fx.s, "alice@corp.example", true,
	                                                  store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "new one",
	                                     store_sync_login, &fx.w)),
	             -EACCES);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_scram(fx.s, "alice@corp.example", store_sync_scram, &fx.w)),
	    -ENOENT);
}

Test(store, imported_hashes)
{
	fx_sqlite_only();
	add_user("alice@corp.example", "x");
	sqlite3 *db;
	fx_db_open(&fx, &db, SQLITE_OPEN_READWRITE);
	sqlite3_busy_timeout(db, 5000);
	/* "pw" as SHA-512 crypt and bcrypt. */
	cr_assert_eq(sqlite3_exec(db,
	                          "UPDATE users SET password_hash = "
	                          "'$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
	                          "jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/'",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "password",
	                                     store_sync_login, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_auth(fx.s, "alice@corp.example", "pw", store_sync_login, &fx.w)),
	    -EACCES);
}

Test(store, deliver_shared_content)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t b = add_user("bob@corp.example", "pw");
	struct store_target t[] = {{.user_id = a}, {.user_id = b}, {.user_id = 4242}};
	cr_assert_eq(deliver(msg1, t, 3), 0);
	cr_assert_eq(fx.w.delivery.n, 3);
	cr_assert_eq(fx.w.delivery.v[0].rc, 0);
	cr_assert_eq(fx.w.delivery.v[0].uid, 1);
	cr_assert_eq(fx.w.delivery.v[1].rc, 0);
	cr_assert_eq(fx.w.delivery.v[1].uid, 1);
	cr_assert_eq(fx.w.delivery.v[2].rc, -ENOENT);
	int64_t inbox_a = fx.w.delivery.v[0].mailbox_id;
	assert_rows("SELECT count(*) FROM contents", 1);
	assert_rows("SELECT refs FROM contents", 2);

	/* The same bytes again: still one content row. */
	cr_assert_eq(deliver(msg1, t, 1), 0);
	cr_assert_eq(fx.w.delivery.v[0].uid, 2);
	assert_rows("SELECT count(*) FROM contents", 1);
	assert_rows("SELECT refs FROM contents", 3);

	/* Read back by ranges. */
	size_t len = strlen(msg1);
	cr_assert_eq(
	    FX_CALL(&fx, store_content_read(fx.s, inbox_a, 1, 0, 10, store_sync_content, &fx.w)),
	    0);
	cr_assert_eq(fx.w.content.total_size, len);
	cr_assert_eq(fx.w.content.len, 10);
	cr_assert_eq(memcmp(fx.w.content.data, msg1, 10), 0);
	cr_assert_eq(FX_CALL(&fx, store_content_read(fx.s, inbox_a, 1, 10, 1 << 20,
	                                             store_sync_content, &fx.w)),
	             0);
	cr_assert_eq(fx.w.content.len, len - 10);
	cr_assert_eq(memcmp(fx.w.content.data, msg1 + 10, len - 10), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_content_read(fx.s, inbox_a, 99, 0, 10, store_sync_content, &fx.w)),
	    -ENOENT);

	/* Deleting users drops references; the last one frees the content. */
	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "alice@corp.example", store_sync_done_cb, &fx.w)), 0);
	assert_rows("SELECT refs FROM contents", 1);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_del(fx.s, "bob@corp.example", store_sync_done_cb, &fx.w)), 0);
	assert_rows("SELECT count(*) FROM contents", 0);
	assert_rows("SELECT count(*) FROM fts", 0);
}

Test(store, uids_never_reused_and_modseq_grows)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a};
	uint64_t last_modseq = fx.w.mailboxes.v[0].highest_modseq;
	uint32_t last_uid = 0;
	char msg[128];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 5; i++) {
			snprintf(msg, sizeof(msg), "Subject: %d.%d\r\n\r\nbody\r\n", round, i);
			cr_assert_eq(deliver(msg, &t, 1), 0);
			cr_assert_gt(fx.w.delivery.v[0].uid, last_uid);
			last_uid = fx.w.delivery.v[0].uid;
			cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, 0,
			                                             store_sync_msgs, &fx.w)),
			             0);
			cr_assert_gt(fx.w.msgs.modseq, last_modseq);
			last_modseq = fx.w.msgs.modseq;
		}
		/* Flag everything \Deleted, expunge: modseq grows each time. */
		struct store_uid_range all = {1, UINT32_MAX};
		cr_assert_eq(FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_ADD,
		                                            STORE_DELETED, NULL, 0,
		                                            store_sync_flags, &fx.w)),
		             0);
		cr_assert_eq(fx.w.flags.n, 5);
		cr_assert_gt(fx.w.flags.modseq, last_modseq);
		last_modseq = fx.w.flags.modseq;
		cr_assert_eq(
		    FX_CALL(&fx, store_expunge(fx.s, inbox, NULL, 0, store_sync_uids, &fx.w)), 0);
		cr_assert_eq(fx.w.uids.n, 5);
		cr_assert_gt(fx.w.uids.modseq, last_modseq);
		last_modseq = fx.w.uids.modseq;
		cr_assert_eq(fx.w.uids.v[4], last_uid);
		/* VANISHED since the previous modseq lists them. */
		cr_assert_eq(FX_CALL(&fx, store_vanished(fx.s, inbox, last_modseq - 1,
		                                         store_sync_uids, &fx.w)),
		             0);
		cr_assert_eq(fx.w.uids.n, 5);
	}
	cr_assert_eq(last_uid, 15);
	assert_rows("SELECT count(*) FROM contents", 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].uidnext, 16);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 0);
}

Test(store, remove_takes_exactly_the_ranges_whatever_their_flags)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a};
	char msg[64];
	for (int i = 1; i <= 4; i++) {
		snprintf(msg, sizeof(msg), "Subject: %d\r\n\r\nbody\r\n", i);
		cr_assert_eq(deliver(msg, &t, 1), 0);
	}
	/* 4 is \Deleted by someone else: it is not in the ranges, so it stays. */
	struct store_uid_range four = {4, 4};
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &four, 1, STORE_FLAGS_ADD, STORE_DELETED,
	                                   NULL, 0, store_sync_flags, &fx.w)),
	    0);
	struct store_uid_range r[] = {{1, 1}, {3, 3}};
	cr_assert_eq(FX_CALL(&fx, store_remove(fx.s, inbox, r, 2, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 2);
	cr_assert_eq(fx.w.uids.v[0], 1);
	cr_assert_eq(fx.w.uids.v[1], 3);
	uint64_t modseq = fx.w.uids.modseq;
	cr_assert_gt(modseq, 0);
	cr_assert_eq(FX_CALL(&fx, store_vanished(fx.s, inbox, modseq - 1, store_sync_uids, &fx.w)),
	             0);
	cr_assert_eq(fx.w.uids.n, 2);
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(fx.w.msgs.v[0].uid, 2);
	cr_assert_eq(fx.w.msgs.v[1].uid, 4);
	/* No ranges is a caller's mistake, not "everything". */
	cr_assert_eq(store_remove(fx.s, inbox, NULL, 0, store_sync_uids, &fx.w), -EINVAL);
}

Test(store, rename_inbox_moves_its_messages_and_keeps_inbox)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a, .flags = STORE_SEEN};
	cr_assert_eq(deliver("Subject: 1\r\n\r\none\r\n", &t, 1), 0);
	cr_assert_eq(deliver("Subject: 2\r\n\r\ntwo\r\n", &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_create(fx.s, a, "INBOX/Sub", 0,
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	int64_t sub = fx.w.mailboxes.v[0].id;
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "inbox", "Old",
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 2);
	cr_assert_eq(fx.w.mailboxes.v[0].unseen, 0);
	cr_assert_neq(fx.w.mailboxes.v[0].id, inbox);
	/* INBOX is the same mailbox, now empty; its children stay where they were. */
	cr_assert_eq(mailbox_id(a, "INBOX"), inbox);
	cr_assert_eq(mailbox_id(a, "INBOX/Sub"), sub);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 0);
	cr_assert_eq(fx.w.mailboxes.v[0].uidnext, 3); /* UIDs are never reused */
	int64_t old = mailbox_id(a, "Old");
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, old, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert(fx.w.msgs.v[0].flags & STORE_SEEN);
	/* Content is shared, not copied: still one row per message. */
	assert_rows("SELECT count(*) FROM contents", 2);
	/* A taken name fails and moves nothing; nothing can become INBOX. */
	cr_assert_eq(deliver("Subject: 3\r\n\r\nthree\r\n", &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "INBOX", "Old",
	                                               store_sync_mailboxes, &fx.w)),
	             -EEXIST);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 1);
	cr_assert_eq(store_mailbox_rename(fx.s, a, "Old", "inbox", store_sync_mailboxes, &fx.w),
	             -EINVAL);
}

Test(store, uidvalidity_never_given_twice)
{
	int64_t a = add_user("alice@corp.example", "pw");
	uint32_t seen[8];
	for (int i = 0; i < 8; i++) {
		/* Created and deleted again within the same second, eight times over. */
		cr_assert_eq(FX_CALL(&fx, store_mailbox_create(fx.s, a, "Again", 0,
		                                               store_sync_mailboxes, &fx.w)),
		             0);
		seen[i] = fx.w.mailboxes.v[0].uidvalidity;
		for (int k = 0; k < i; k++)
			cr_assert_gt(seen[i], seen[k], "UIDVALIDITY %u given again", seen[i]);
		cr_assert_eq(
		    FX_CALL(&fx, store_mailbox_delete(fx.s, a, "Again", store_sync_done_cb, &fx.w)),
		    0);
	}
}

Test(store, flags_and_keywords)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a, .flags = STORE_SEEN, .keywords = "work $Junk"};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(deliver("Subject: 2\r\n\r\nx\r\n", &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(fx.w.msgs.v[0].flags, STORE_SEEN);
	cr_assert_str_eq(fx.w.msgs.v[0].keywords, "$Junk work");
	uint64_t m1 = fx.w.msgs.v[0].modseq, m2 = fx.w.msgs.v[1].modseq;
	cr_assert_gt(m2, m1);

	struct store_uid_range r1 = {1, 1}, all = {1, UINT32_MAX};
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &r1, 1, STORE_FLAGS_ADD, STORE_FLAGGED,
	                                   "home", 0, store_sync_flags, &fx.w)),
	    0);
	cr_assert_eq(fx.w.flags.n, 1);
	cr_assert_eq(fx.w.flags.v[0].flags, STORE_SEEN | STORE_FLAGGED);
	cr_assert_str_eq(fx.w.flags.v[0].keywords, "$Junk home work");
	cr_assert_gt(fx.w.flags.v[0].modseq, m2);
	uint64_t m3 = fx.w.flags.v[0].modseq;

	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_REMOVE, STORE_SEEN,
	                                   "work", 0, store_sync_flags, &fx.w)),
	    0);
	cr_assert_eq(fx.w.flags.n, 2);
	cr_assert_eq(fx.w.flags.v[0].flags, STORE_FLAGGED);
	cr_assert_str_eq(fx.w.flags.v[0].keywords, "$Junk home");
	cr_assert_str_eq(fx.w.flags.v[1].keywords, "$Junk");

	/* No change, no new modseq. */
	uint64_t m4 = fx.w.flags.modseq;
	cr_assert_eq(FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_REMOVE,
	                                            STORE_SEEN, NULL, 0, store_sync_flags, &fx.w)),
	             0);
	cr_assert_eq(fx.w.flags.n, 0);

	/* CONDSTORE: UNCHANGEDSINCE older than message 1's modseq skips it. */
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_SET, STORE_ANSWERED,
	                                   NULL, m3 - 1, store_sync_flags, &fx.w)),
	    -0);
	cr_assert_eq(fx.w.flags.n, 0);
	cr_assert_eq(fx.w.flags.n_skipped, 2);
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_SET, STORE_ANSWERED,
	                                   NULL, m4, store_sync_flags, &fx.w)),
	    0);
	cr_assert_eq(fx.w.flags.n, 2);
	cr_assert_eq(fx.w.flags.v[1].flags, STORE_ANSWERED);
	cr_assert_str_eq(fx.w.flags.v[1].keywords, "");

	/* CHANGEDSINCE listing. */
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, m4, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_SET, 0, "bad\\kw", 0,
	                               store_sync_flags, &fx.w),
	             -EINVAL);
}

Test(store, mailboxes_copy_move)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	cr_assert_eq(FX_CALL(&fx, store_mailbox_create(fx.s, a, "Projects/2026", 0,
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	int64_t proj = fx.w.mailboxes.v[0].id;
	cr_assert_eq(FX_CALL(&fx, store_mailbox_create(fx.s, a, "Projects/2026", 0,
	                                               store_sync_mailboxes, &fx.w)),
	             -EEXIST);
	cr_assert_eq(store_mailbox_create(fx.s, a, "../etc", 0, store_sync_mailboxes, &fx.w),
	             -EINVAL);
	cr_assert_eq(store_mailbox_create(fx.s, a, "a\nb", 0, store_sync_mailboxes, &fx.w),
	             -EINVAL);
	cr_assert_eq(store_mailbox_create(fx.s, a, "/abs", 0, store_sync_mailboxes, &fx.w),
	             -EINVAL);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, 777, "X", 0, store_sync_mailboxes, &fx.w)),
	    -ENOENT);

	struct store_target t = {.user_id = a, .flags = STORE_SEEN};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(deliver("Subject: 2\r\n\r\nx\r\n", &t, 1), 0);
	struct store_uid_range all = {1, UINT32_MAX};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &all, 1, proj, false, store_sync_copied, &fx.w)),
	    0);
	cr_assert_eq(fx.w.copied.n, 2);
	cr_assert_eq(fx.w.copied.dst[0], 1);
	cr_assert_eq(fx.w.copied.dst[1], 2);
	assert_rows("SELECT sum(refs) FROM contents", 4);

	int64_t trash = mailbox_id(a, "Trash");
	struct store_uid_range one = {2, 2};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &one, 1, trash, true, store_sync_copied, &fx.w)),
	    0);
	cr_assert_eq(fx.w.copied.n, 1);
	cr_assert_eq(fx.w.copied.src[0], 2);
	cr_assert_eq(fx.w.copied.dst[0], 1);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 1);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "Trash", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 1);
	cr_assert_eq(fx.w.mailboxes.v[0].unseen, 0);

	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "Projects", "Old",
	                                               store_sync_mailboxes, &fx.w)),
	             -ENOENT);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Projects", 0, store_sync_mailboxes, &fx.w)),
	    0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "Projects", "Old",
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(mailbox_id(a, "Old/2026"), proj);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_subscribe(fx.s, a, "Old", false, store_sync_done_cb, &fx.w)),
	    0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "Old", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert(!fx.w.mailboxes.v[0].subscribed);
	cr_assert_eq(store_mailbox_delete(fx.s, a, "inbox", store_sync_done_cb, &fx.w), -EINVAL);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_delete(fx.s, a, "Old/2026", store_sync_done_cb, &fx.w)), 0);
	assert_rows("SELECT sum(refs) FROM contents", 2);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].used_bytes, strlen(msg1) + strlen("Subject: 2\r\n\r\nx\r\n"));
}

Test(store, copy_move_into_same_mailbox)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a, .flags = STORE_SEEN};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(deliver("Subject: 2\r\n\r\nx\r\n", &t, 1), 0);

	/* Only what was there is copied, once, under new UIDs. */
	struct store_uid_range all = {1, UINT32_MAX};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &all, 1, inbox, false, store_sync_copied, &fx.w)),
	    0);
	cr_assert_eq(fx.w.copied.n, 2);
	cr_assert_eq(fx.w.copied.src[0], 1);
	cr_assert_eq(fx.w.copied.src[1], 2);
	cr_assert_eq(fx.w.copied.dst[0], 3);
	cr_assert_eq(fx.w.copied.dst[1], 4);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 4);
	cr_assert_eq(fx.w.mailboxes.v[0].uidnext, 5);

	/* MOVE there: new UIDs, the old ones expunged. */
	struct store_uid_range two = {1, 2};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &two, 1, inbox, true, store_sync_copied, &fx.w)),
	    0);
	cr_assert_eq(fx.w.copied.n, 2);
	cr_assert_eq(fx.w.copied.dst[0], 5);
	cr_assert_eq(fx.w.copied.dst[1], 6);
	cr_assert_eq(FX_CALL(&fx, store_message_list(fx.s, inbox, 0, store_sync_msgs, &fx.w)), 0);
	cr_assert_eq(fx.w.msgs.n, 4);
	cr_assert_eq(fx.w.msgs.v[0].uid, 3);
	cr_assert_eq(fx.w.msgs.v[3].uid, 6);
	cr_assert_eq(fx.w.msgs.v[3].flags, STORE_SEEN);
	cr_assert_eq(FX_CALL(&fx, store_vanished(fx.s, inbox, 0, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 2);
	cr_assert_eq(fx.w.uids.v[0], 1);
	cr_assert_eq(fx.w.uids.v[1], 2);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].used_bytes,
	             2 * (strlen(msg1) + strlen("Subject: 2\r\n\r\nx\r\n")));
}

Test(store, quota)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t b = add_user("bob@corp.example", "pw");
	cr_assert_eq(FX_CALL(&fx, store_user_set_quota(fx.s, "alice@corp.example", 100,
	                                               store_sync_done_cb, &fx.w)),
	             0);
	struct store_target t[] = {{.user_id = a}, {.user_id = b}};
	cr_assert_eq(deliver(msg1, t, 2), 0); /* 70 bytes fit */
	cr_assert_eq(fx.w.delivery.v[0].rc, 0);
	cr_assert_eq(deliver("Subject: second\r\n\r\nsecond body\r\n", t, 2), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, -EDQUOT);
	cr_assert_eq(fx.w.delivery.v[1].rc, 0);
	/* Every target over quota or unknown: the delivery fails (-EDQUOT: a quota was the
	 * reason) and nothing is stored. */
	cr_assert_eq(deliver("Subject: third\r\n\r\nthird body\r\n", t, 1), -EDQUOT);
	assert_rows("SELECT count(*) FROM contents", 2);
}

/* The message-count limit refuses what would pass it wherever messages are added:
 * delivery (one target among others), APPEND (batch: all or none), COPY (MOVE stays). */
Test(store, message_quota)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t b = add_user("bob@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	int64_t trash = mailbox_id(a, "Trash");
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "alice@corp.example", 2,
	                                                       store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "nobody@corp.example", 2,
	                                                       store_sync_done_cb, &fx.w)),
	             -ENOENT);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].quota_messages, 2);
	cr_assert_eq(fx.w.users.v[0].used_messages, 0);
	cr_assert_eq(fx.w.users.v[0].quota_bytes, 0);

	struct store_target t[] = {{.user_id = a}, {.user_id = b}};
	cr_assert_eq(deliver(msg1, t, 2), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, 0);
	cr_assert_eq(fx.w.delivery.v[0].quota_messages, 2);
	/* A batch of two where one fits: none is stored. */
	struct store_target ta = {.mailbox_id = inbox};
	struct store_deliver_req reqs[2] = {
	    {.data = "Subject: b1\r\n\r\nx\r\n", .size = 18, .targets = &ta, .n_targets = 1},
	    {.data = "Subject: b2\r\n\r\ny\r\n", .size = 18, .targets = &ta, .n_targets = 1},
	};
	cr_assert_eq(FX_CALL(&fx, store_deliver_batch(fx.s, reqs, 2, store_sync_delivery, &fx.w)),
	             -EDQUOT);
	cr_assert_eq(FX_CALL(&fx, store_deliver_batch(fx.s, reqs, 1, store_sync_delivery, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].used_messages, 2);
	/* Full: the delivery to alice is refused, bob's copy stands. */
	cr_assert_eq(deliver("Subject: third\r\n\r\nthird\r\n", t, 2), 0);
	cr_assert_eq(fx.w.delivery.v[0].rc, -EDQUOT);
	cr_assert_eq(fx.w.delivery.v[1].rc, 0);
	cr_assert_eq(deliver("Subject: fourth\r\n\r\nfourth\r\n", t, 1), -EDQUOT);
	/* COPY would make three; MOVE keeps two. */
	struct store_uid_range all = {1, UINT32_MAX};
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &all, 1, trash, false, store_sync_copied, &fx.w)),
	    -EDQUOT);
	cr_assert_eq(
	    FX_CALL(&fx, store_copy(fx.s, inbox, &all, 1, trash, true, store_sync_copied, &fx.w)),
	    0);
	/* Raised: room for one more. */
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "alice@corp.example", 3,
	                                                       store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(deliver("Subject: fifth\r\n\r\nfifth\r\n", t, 1), 0);
	cr_assert_eq(deliver("Subject: sixth\r\n\r\nsixth\r\n", t, 1), -EDQUOT);
	/* 0 is no limit. */
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "alice@corp.example", 0,
	                                                       store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(deliver("Subject: sixth\r\n\r\nsixth\r\n", t, 1), 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_user_get(fx.s, "alice@corp.example", store_sync_users, &fx.w)), 0);
	cr_assert_eq(fx.w.users.v[0].used_messages, 4);
}

/* A relay DSN to a local sender at its message limit is dropped, the outcome still
 * recorded; with room it is stored. */
Test(store, message_quota_drops_relay_dsn)
{
	int64_t a = add_user("alice@corp.example", "pw");
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_user_set_message_quota(fx.s, "alice@corp.example", 1,
	                                                       store_sync_done_cb, &fx.w)),
	             0);
	static const char dsn[] = "Subject: Undelivered\r\n\r\nreport\r\n";
	for (int round = 0; round < 2; round++) {
		struct store_relay_rcpt rr = {.address = "x@partner.example"};
		static const char outgoing[] = "Subject: out\r\n\r\nout\r\n";
		struct store_deliver_req req = {.data = outgoing,
		                                .size = strlen(outgoing),
		                                .sender = "alice@corp.example",
		                                .relay = &rr,
		                                .n_relay = 1};
		cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)),
		             0);
		int64_t qid = fx.w.delivery.queue_id;
		cr_assert_eq(FX_CALL(&fx, store_queue_list(fx.s, store_sync_queue, &fx.w)), 0);
		cr_assert_eq(fx.w.queue.n, 1);
		struct store_queue_outcome out = {.rcpt_id = fx.w.queue.v[0].rcpts[0].id,
		                                  .status = 2,
		                                  .error = "550 no such user"};
		struct store_queue_report rep = {.queue_id = qid,
		                                 .outcomes = &out,
		                                 .n_outcomes = 1,
		                                 .dsn = dsn,
		                                 .dsn_len = strlen(dsn),
		                                 .dsn_local = true};
		cr_assert_eq(
		    FX_CALL(&fx, store_queue_report(fx.s, &rep, store_sync_reported, &fx.w)), 0);
		cr_assert_eq(FX_CALL(&fx, store_queue_list(fx.s, store_sync_queue, &fx.w)), 0);
		cr_assert_eq(fx.w.queue.n, 0, "round %d: the entry is done", round);
		mailbox_id(a, "INBOX");
		cr_assert_eq(fx.w.mailboxes.v[0].messages, round == 0 ? 1 : 2, "round %d", round);
		/* Room for one more for the second round. */
		cr_assert_eq(
		    FX_CALL(&fx, store_user_set_message_quota(fx.s, "alice@corp.example", 2,
		                                              store_sync_done_cb, &fx.w)),
		    0);
	}
}

/* The \Deleted count and bytes of a mailbox follow STORE, EXPUNGE and new messages. */
Test(store, deleted_counts)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a};
	for (int i = 0; i < 3; i++)
		cr_assert_eq(deliver(i == 0   ? msg1
		                     : i == 1 ? "Subject: 2\r\n\r\nx\r\n"
		                              : "Subject: 3\r\n\r\nyy\r\n",
		                     &t, 1),
		             0);
	struct store_uid_range r12 = {1, 2}, r2 = {2, 2}, all = {1, UINT32_MAX};
	cr_assert_eq(mailbox_id(a, "INBOX"), inbox);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 0);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, 0);
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &r12, 1, STORE_FLAGS_ADD, STORE_DELETED,
	                                   NULL, 0, store_sync_flags, &fx.w)),
	    0);
	mailbox_id(a, "INBOX");
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 2);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, strlen(msg1) + 17);
	/* Setting other flags keeps it; removing \Deleted from one drops it. */
	cr_assert_eq(FX_CALL(&fx, store_flags_store(fx.s, inbox, &all, 1, STORE_FLAGS_ADD,
	                                            STORE_SEEN, NULL, 0, store_sync_flags, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_flags_store(fx.s, inbox, &r2, 1, STORE_FLAGS_REMOVE, STORE_DELETED,
	                                   NULL, 0, store_sync_flags, &fx.w)),
	    0);
	mailbox_id(a, "INBOX");
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 1);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, strlen(msg1));
	cr_assert_eq(FX_CALL(&fx, store_expunge(fx.s, inbox, NULL, 0, store_sync_uids, &fx.w)), 0);
	mailbox_id(a, "INBOX");
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 0);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, 0);
	cr_assert_eq(fx.w.mailboxes.v[0].messages, 2);
	/* A message appended with \Deleted counts from the start. */
	struct store_target td = {.mailbox_id = inbox, .flags = STORE_DELETED};
	cr_assert_eq(deliver("Subject: 4\r\n\r\nz\r\n", &td, 1), 0);
	mailbox_id(a, "INBOX");
	cr_assert_eq(fx.w.mailboxes.v[0].deleted, 1);
	cr_assert_eq(fx.w.mailboxes.v[0].deleted_size, 17);
}

Test(store, relay_queue)
{
	int64_t a = add_user("alice@corp.example", "pw");
	struct store_target t = {.user_id = a};
	struct store_relay_rcpt rr[] = {
	    {.address = "x@partner.example", .notify = "FAILURE,DELAY", .orcpt = "rfc822;x@p"},
	    {.address = "y@partner.example"},
	};
	struct store_deliver_req req = {.data = msg1,
	                                .size = strlen(msg1),
	                                .targets = &t,
	                                .n_targets = 1,
	                                .sender = "alice@corp.example",
	                                .relay = rr,
	                                .n_relay = 2,
	                                .requiretls = true,
	                                .ret = "HDRS",
	                                .envid = "abc"};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	cr_assert_gt(fx.w.delivery.queue_id, 0);
	int64_t qid = fx.w.delivery.queue_id;
	assert_rows("SELECT refs FROM contents", 2);

	cr_assert_eq(FX_CALL(&fx, store_queue_list(fx.s, store_sync_queue, &fx.w)), 0);
	cr_assert_eq(fx.w.queue.n, 1);
	struct store_queue_entry *q = &fx.w.queue.v[0];
	cr_assert_eq(q->id, qid);
	cr_assert_str_eq(q->sender, "alice@corp.example");
	cr_assert(q->requiretls);
	cr_assert_str_eq(q->ret, "HDRS");
	cr_assert_str_eq(q->envid, "abc");
	cr_assert_eq(q->size, strlen(msg1));
	cr_assert_eq(q->n_rcpts, 2);
	cr_assert_str_eq(q->rcpts[0].notify, "FAILURE,DELAY");
	cr_assert_str_eq(q->rcpts[0].orcpt, "rfc822;x@p");
	cr_assert_null(q->rcpts[1].notify);
	cr_assert_eq(q->rcpts[1].status, 0);
	int64_t created = q->created; /* fx.w's results go with the next call */
	struct store_queue_summary summary = fx_queue_summary(&fx);
	cr_assert_eq(summary.messages, 1);
	cr_assert_eq(summary.recipients, 2);
	cr_assert_eq(summary.oldest, created);

	/* Relay only (no local target) is a delivery too. */
	req.n_targets = 0;
	req.data = "Subject: r\r\n\r\nr\r\n";
	req.size = strlen(req.data);
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	int64_t qid2 = fx.w.delivery.queue_id;
	cr_assert_eq(FX_CALL(&fx, store_queue_delete(fx.s, qid2, store_sync_done_cb, &fx.w)), 0);
	cr_assert_eq(FX_CALL(&fx, store_queue_delete(fx.s, qid2, store_sync_done_cb, &fx.w)),
	             -ENOENT);
	cr_assert_eq(FX_CALL(&fx, store_queue_delete(fx.s, qid, store_sync_done_cb, &fx.w)), 0);
	assert_rows("SELECT count(*) FROM contents", 1);
	assert_rows("SELECT count(*) FROM queue_rcpts", 0);
	summary = fx_queue_summary(&fx);
	cr_assert_eq(summary.messages, 0);
	cr_assert_eq(summary.recipients, 0);
	cr_assert_eq(summary.oldest, 0);
}

Test(store, spooled_large_message)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	char spool[160];
	snprintf(spool, sizeof(spool), "%s/spool-1", fx.dir);
	FILE *fp = fopen(spool, "wb");
	cr_assert_not_null(fp);
	size_t size = 3 * 1024 * 1024 + 17;
	unsigned char *bytes = malloc(size);
	const char *head = "Subject: big\r\n\r\n";
	memcpy(bytes, head, strlen(head));
	for (size_t i = strlen(head); i < size; i++)
		bytes[i] = (i % 77 == 75)   ? '\r'
		           : (i % 77 == 76) ? '\n'
		                            : (unsigned char)('a' + i % 26);
	cr_assert_eq(fwrite(bytes, 1, size, fp), size);
	fclose(fp);

	struct store_target t = {.user_id = a};
	struct store_deliver_req req = {.spool_path = spool, .targets = &t, .n_targets = 1};
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), 0);
	uint32_t uid = fx.w.delivery.v[0].uid;
	size_t off = 0;
	while (off < size) {
		cr_assert_eq(FX_CALL(&fx, store_content_read(fx.s, inbox, uid, off, 1 << 20,
		                                             store_sync_content, &fx.w)),
		             0);
		cr_assert_eq(fx.w.content.total_size, size);
		cr_assert_gt(fx.w.content.len, 0);
		cr_assert_eq(memcmp(fx.w.content.data, bytes + off, fx.w.content.len), 0, "at %zu",
		             off);
		off += fx.w.content.len;
	}
	free(bytes);

	/* Over the store's limit. */
	store_close(fx.s);
	struct store_options opt = {.max_message_size = 1024 * 1024};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	cr_assert_eq(FX_CALL(&fx, store_deliver(fx.s, &req, store_sync_delivery, &fx.w)), -EFBIG);
}

Test(store, mime_fields_and_search)
{
	fx_sqlite_only();
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	static const char mime[] = "From: =?UTF-8?Q?J=C3=BCrgen?= <j@corp.example>\r\n"
	                           "To: alice@corp.example\r\n"
	                           "Subject: =?UTF-8?Q?=C3=9Cberweisung?= heute\r\n"
	                           "Message-ID: <m1@corp.example>\r\n"
	                           "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
	                           "MIME-Version: 1.0\r\n"
	                           "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
	                           "\r\n"
	                           "--b1\r\n"
	                           "Content-Type: text/plain; charset=iso-8859-1\r\n"
	                           "Content-Transfer-Encoding: quoted-printable\r\n"
	                           "\r\n"
	                           "Die Gr=FC=DFe und die Rechnung.\r\n"
	                           "--b1\r\n"
	                           "Content-Type: application/pdf; name=r.pdf\r\n"
	                           "Content-Disposition: attachment; filename=r.pdf\r\n"
	                           "Content-Transfer-Encoding: base64\r\n"
	                           "\r\n"
	                           "JVBERi0xLjQK\r\n"
	                           "--b1--\r\n";
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(mime, &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_message_get(fx.s, inbox, 1, store_sync_msgs, &fx.w)), 0);
	struct store_msg *m = &fx.w.msgs.v[0];
	cr_assert_str_eq(m->hdr_subject, "\xc3\x9c"
	                                 "berweisung heute");
	cr_assert(strstr(m->hdr_from, "J\xc3\xbcrgen") != NULL, "%s", m->hdr_from);
	cr_assert_str_eq(m->hdr_message_id, "m1@corp.example");
	cr_assert_eq(m->hdr_date, 1795860000);
	cr_assert_not_null(m->mime_json);
	cr_assert(strstr(m->mime_json, "\"type\":\"multipart\",\"subtype\":\"mixed\"") != NULL,
	          "%s", m->mime_json);
	cr_assert(strstr(m->mime_json, "[\"filename\",\"r.pdf\"]") != NULL, "%s", m->mime_json);
	cr_assert(strstr(m->mime_json, "\"encoding\":\"base64\"") != NULL, "%s", m->mime_json);
	/* The pdf part's body offset points at its bytes in the stored message. */
	const char *bo = strstr(strstr(m->mime_json, "application"), "\"body_offset\":");
	cr_assert_not_null(bo);
	long off = strtol(bo + 14, NULL, 10);
	cr_assert_eq(memcmp(mime + off, "JVBERi0xLjQK", 12), 0, "offset %ld", off);

	/* TEXT: case-insensitive substrings of the header (encoded words decoded too) and of
	 * the decoded text; BODY: the decoded text only. Quoted, so no FTS syntax gets through;
	 * strings under three characters are scanned. */
	static const struct {
		const char *q;
		size_t text_hits, body_hits;
	} cases[] = {{"\xc3\xbc"
	              "berweisung",
	              1, 0},
	             {"uberweisung", 0, 0},
	             {"gr\xc3\xbc\xc3\x9f"
	              "e und",
	              1, 1},
	             {"ECHNUN", 1, 1},
	             {"m1@corp", 1, 0},
	             {"JVBERi0x", 0, 0},
	             {"nothing", 0, 0},
	             {"\"NEAR(", 0, 0},
	             {"rechnung OR x", 0, 0},
	             {"ie", 1, 1},
	             {"%", 0, 0},
	             {"Q?", 1, 0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(FX_CALL(&fx, store_search_text(fx.s, inbox, cases[i].q,
		                                            store_sync_uids, &fx.w)),
		             0, "%s", cases[i].q);
		cr_expect_eq(fx.w.uids.n, cases[i].text_hits, "TEXT %s", cases[i].q);
		cr_assert_eq(FX_CALL(&fx, store_search_body(fx.s, inbox, cases[i].q,
		                                            store_sync_uids, &fx.w)),
		             0, "%s", cases[i].q);
		cr_expect_eq(fx.w.uids.n, cases[i].body_hits, "BODY %s", cases[i].q);
	}
}

/* The address fields SEARCH FROM/TO/CC match: display names kept, groups spelled out, an
 * internationalized domain kept as the message shows it (never turned into xn--). */
Test(store, address_fields_as_written)
{
	fx_sqlite_only();
	int64_t a = add_user("addr@corp.example", "pw-addr-1");
	int64_t inbox = mailbox_id(a, "INBOX");
	static const char msg[] = "From: =?UTF-8?Q?J=C3=BCrgen?= <j@m\xc3\xbcller.example>\r\n"
	                          "To: Team: a@x.example, \"B, C\" <b@x.example>;\r\n"
	                          "Cc: plain@x.example\r\n"
	                          "Subject: addresses\r\n\r\nbody\r\n";
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(msg, &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_message_get(fx.s, inbox, 1, store_sync_msgs, &fx.w)), 0);
	struct store_msg *m = &fx.w.msgs.v[0];
	cr_assert_str_eq(m->hdr_from, "J\xc3\xbcrgen <j@m\xc3\xbcller.example>");
	cr_assert_str_eq(m->hdr_to, "Team: a@x.example, B, C <b@x.example>;");
	cr_assert_str_eq(m->hdr_cc, "plain@x.example");
	cr_assert_eq(
	    FX_CALL(&fx, store_search_text(fx.s, inbox, "m\xc3\xbcller", store_sync_uids, &fx.w)),
	    0);
	cr_assert_eq(fx.w.uids.n, 1);
}

/* store_stats counts what the writer committed: one transaction per durable commit, and
 * every write job it carried (the blocking face sends one at a time, so one each here). */
Test(store, stats_count_commits_and_writes)
{
	uint64_t c0, w0, c1, w1;
	store_stats(fx.s, &c0, &w0);
	int64_t u = add_user("stats@corp.example", "pw-stats-1");
	struct store_target t = {.user_id = u};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	store_stats(fx.s, &c1, &w1);
	cr_assert_eq(w1 - w0, 3, "writes: %llu", (unsigned long long)(w1 - w0));
	cr_assert_geq(c1 - c0, 1);
	cr_assert_leq(c1 - c0, w1 - w0);
}

/* SEARCH BODY and TEXT on every backend: the string whole, a case-insensitive substring,
 * found inside words; TEXT looks in the header too, BODY only in the body. */
Test(store, search_body_and_text_are_substrings)
{
	int64_t a = add_user("substr@corp.example", "pw-substr-1");
	int64_t inbox = mailbox_id(a, "INBOX");
	static const char hit_msg[] =
	    "From: a@x.example\r\nX-Ref: hdrQWERTYuiop\r\nSubject: s\r\n\r\n"
	    "prefixasdfghjklsuffix two words\r\n";
	static const char miss_msg[] = "From: b@x.example\r\nSubject: other\r\n\r\nnothing\r\n";
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(hit_msg, &t, 1), 0);
	cr_assert_eq(deliver(miss_msg, &t, 1), 0);
	static const struct {
		const char *q;
		size_t text_hits, body_hits;
	} cases[] = {{"qwertyuiop", 1, 0}, {"ASDFGHJKL", 1, 1}, {"xasd", 1, 1},
	             {"two words", 1, 1},  {"words two", 0, 0}, {"x-ref: hdr", 1, 0},
	             {"nothing", 1, 1},    {"ing", 1, 1},       {"th", 1, 1},
	             {"s", 2, 1},          {"zzzz", 0, 0},      {"b@x", 1, 0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(FX_CALL(&fx, store_search_text(fx.s, inbox, cases[i].q,
		                                            store_sync_uids, &fx.w)),
		             0, "%s", cases[i].q);
		cr_expect_eq(fx.w.uids.n, cases[i].text_hits, "TEXT %s", cases[i].q);
		cr_assert_eq(FX_CALL(&fx, store_search_body(fx.s, inbox, cases[i].q,
		                                            store_sync_uids, &fx.w)),
		             0, "%s", cases[i].q);
		cr_expect_eq(fx.w.uids.n, cases[i].body_hits, "BODY %s", cases[i].q);
	}
}

/* RFC 3501 6.3.6: a subscription is a name; deleting its mailbox leaves it, and the list
 * names it among the missing ones. Any valid name may be subscribed. */
Test(store, subscriptions_outlive_their_mailbox)
{
	int64_t a = add_user("alice@corp.example", "pw");
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Lists", 0, store_sync_mailboxes, &fx.w)),
	    0);
	cr_assert(fx.w.mailboxes.v[0].subscribed, "a new mailbox is subscribed");
	cr_assert_eq(FX_CALL(&fx, store_mailbox_subscribe(fx.s, a, "Nowhere/Yet", true,
	                                                  store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_delete(fx.s, a, "Lists", store_sync_done_cb, &fx.w)), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_list(fx.s, a, store_sync_mailboxes, &fx.w)), 0);
	cr_assert_eq(fx.w.mailboxes.n_missing, 2);
	cr_assert_str_eq(fx.w.mailboxes.missing[0], "Lists");
	cr_assert_str_eq(fx.w.mailboxes.missing[1], "Nowhere/Yet");
	/* Created again, it is subscribed (still) and no longer missing. */
	cr_assert_eq(
	    FX_CALL(&fx, store_mailbox_create(fx.s, a, "Lists", 0, store_sync_mailboxes, &fx.w)),
	    0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_subscribe(fx.s, a, "Nowhere/Yet", false,
	                                                  store_sync_done_cb, &fx.w)),
	             0);
	/* Unsubscribing what is not subscribed is no error. */
	cr_assert_eq(FX_CALL(&fx, store_mailbox_subscribe(fx.s, a, "Nowhere/Yet", false,
	                                                  store_sync_done_cb, &fx.w)),
	             0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_list(fx.s, a, store_sync_mailboxes, &fx.w)), 0);
	cr_assert_eq(fx.w.mailboxes.n_missing, 0);
	bool found = false;
	for (size_t i = 0; i < fx.w.mailboxes.n; i++)
		if (strcmp(fx.w.mailboxes.v[i].name, "Lists") == 0)
			found = fx.w.mailboxes.v[i].subscribed;
	cr_assert(found);
	/* A rename carries the subscription along. */
	cr_assert_eq(FX_CALL(&fx, store_mailbox_rename(fx.s, a, "Lists", "Archive2",
	                                               store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert(fx.w.mailboxes.v[0].subscribed);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_subscribe(fx.s, a, "bad//name", true,
	                                                  store_sync_done_cb, &fx.w)),
	             -EINVAL);
}

/* \Recent: each new UID is handed out once, to the first taker; later takers get none. */
Test(store, recent_is_taken_once)
{
	int64_t a = add_user("alice@corp.example", "pw");
	int64_t inbox = mailbox_id(a, "INBOX");
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(msg1, &t, 1), 0);
	cr_assert_eq(deliver("Subject: 2\r\n\r\nx\r\n", &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].recent, 2);
	cr_assert_eq(FX_CALL(&fx, store_recent_take(fx.s, inbox, 3, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 2);
	cr_assert_eq(fx.w.uids.v[0], 1);
	cr_assert_eq(fx.w.uids.v[1], 2);
	cr_assert_eq(FX_CALL(&fx, store_recent_take(fx.s, inbox, 3, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].recent, 0);
	cr_assert_eq(deliver("Subject: 3\r\n\r\nx\r\n", &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_mailbox_get(fx.s, a, "INBOX", store_sync_mailboxes, &fx.w)),
	             0);
	cr_assert_eq(fx.w.mailboxes.v[0].recent, 1);
	/* upto bounds what is taken: UID 3 only goes with upto 4. */
	cr_assert_eq(FX_CALL(&fx, store_recent_take(fx.s, inbox, 3, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 0);
	cr_assert_eq(FX_CALL(&fx, store_recent_take(fx.s, inbox, 4, store_sync_uids, &fx.w)), 0);
	cr_assert_eq(fx.w.uids.n, 1);
	cr_assert_eq(fx.w.uids.v[0], 3);
	cr_assert_eq(FX_CALL(&fx, store_recent_take(fx.s, 99999, 4, store_sync_uids, &fx.w)),
	             -ENOENT);
}

/* The SORT and THREAD keys come back for every message in UID order, as computed at
 * delivery: base subject, first addresses, display names, references (on every backend). */
Test(store, sortkeys)
{
	int64_t a = add_user("sortkeys@corp.example", "pw-sort-1");
	int64_t inbox = mailbox_id(a, "INBOX");
	static const char m1[] = "From: =?UTF-8?Q?J=C3=BCrgen?= <Juergen@corp.example>\r\n"
	                         "To: Team: t1@x.example, t2@x.example;\r\n"
	                         "Cc: \"quoted local\"@x.example, other@x.example\r\n"
	                         "Subject: =?UTF-8?Q?Re=3A_[list]_Gr=C3=BC=C3=9Fe?= (fwd)\r\n"
	                         "Message-ID: <m1@corp.example>\r\n"
	                         "References: <r0@x> <r1@x>\r\n"
	                         "In-Reply-To: <ignored@x>\r\n"
	                         "Date: Sat, 28 Nov 2026 11:00:00 +0100\r\n\r\nbody\r\n";
	static const char m2[] = "From: bare@corp.example\r\n"
	                         "To: \"a b\"@x.example\r\n"
	                         "Subject: plain\r\n"
	                         "In-Reply-To: <p1@x> <p2@x>\r\n\r\nbody\r\n";
	static const char m3[] = "no header at all\r\n";
	struct store_target t = {.user_id = a};
	cr_assert_eq(deliver(m1, &t, 1), 0);
	cr_assert_eq(deliver(m2, &t, 1), 0);
	cr_assert_eq(deliver(m3, &t, 1), 0);
	cr_assert_eq(FX_CALL(&fx, store_message_sortkeys(fx.s, inbox, 0, store_sync_msgs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.msgs.n, 3);
	const struct store_msg *m = &fx.w.msgs.v[0];
	cr_assert_eq(m->uid, 1);
	cr_assert_eq(m->size, sizeof(m1) - 1);
	/* i;unicode-casemap: titlecase, then NFKD ("ü" is "U" and a combining diaeresis; "ß"
	 * has no simple titlecase mapping). */
	cr_assert_str_eq(m->sort_subject, "GRU\xcc\x88\xc3\x9f"
	                                  "E");
	cr_assert(m->sort_reply);
	cr_assert_str_eq(m->sort_from, "JUERGEN");
	cr_assert_str_eq(m->sort_from_name, "JU\xcc\x88RGEN");
	/* A group first: its marker in the address structure, the group's name. */
	cr_assert_str_eq(m->sort_to, "TEAM");
	cr_assert_str_eq(m->sort_to_name, "TEAM");
	cr_assert_str_eq(m->sort_cc, "QUOTED LOCAL");
	cr_assert_str_eq(m->hdr_message_id, "m1@corp.example");
	cr_assert_str_eq(m->thread_refs, "r0@x r1@x");
	cr_assert_eq(m->hdr_date, 1795860000);
	m = &fx.w.msgs.v[1];
	cr_assert_str_eq(m->sort_subject, "PLAIN");
	cr_assert(!m->sort_reply);
	cr_assert_str_eq(m->sort_from, "BARE");
	cr_assert_str_eq(m->sort_from_name, "BARE@CORP.EXAMPLE");
	/* No display name: addr-mailbox "@" addr-host, the local part unquoted. */
	cr_assert_str_eq(m->sort_to, "A B");
	cr_assert_str_eq(m->sort_to_name, "A B@X.EXAMPLE");
	cr_assert_str_eq(m->thread_refs, "p1@x"); /* only the first of In-Reply-To */
	cr_assert_null(m->hdr_message_id);
	cr_assert_eq(m->hdr_date, 0);
	m = &fx.w.msgs.v[2];
	cr_assert_eq(m->uid, 3);
	cr_assert_null(m->sort_from);
	cr_assert_null(m->thread_refs);
	/* Only the newer ones. */
	cr_assert_eq(FX_CALL(&fx, store_message_sortkeys(fx.s, inbox, 1, store_sync_msgs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.msgs.n, 2);
	cr_assert_eq(fx.w.msgs.v[0].uid, 2);
	cr_assert_eq(FX_CALL(&fx, store_message_sortkeys(fx.s, inbox, 3, store_sync_msgs, &fx.w)),
	             0);
	cr_assert_eq(fx.w.msgs.n, 0);
}
