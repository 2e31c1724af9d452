/*
 * The access audit (storage/sqlite/store_audit.c, storage/store_audit.c; the in-memory
 * backend runs the tests that are not about SQLite's files, storage/mem/store_mem_audit.c): records
 * written by the writer with their chain, read back by filter, the chain checked, and
 * every kind of tampering (edit, removal in the middle and at the end, reordering, a
 * forged anchor) named at the record where it happened. Retention removes the oldest
 * records and the chain still checks from its anchor.
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

TestSuite(store_audit, .init = setup, .fini = teardown, .timeout = 60);

static void append(const char *actor, const char *action, const char *mailbox, const char *uids,
                   int64_t time_ms)
{
	struct store_audit_record r = {
	    .time_ms = time_ms,
	    .actor = (char *)actor,
	    .ip = "192.0.2.7",
	    .session = "ab12cd34",
	    .proto = "imap",
	    .action = (char *)action,
	    .mailbox = (char *)mailbox,
	    .uids = (char *)uids,
	    .detail = "BODY.PEEK[]",
	};
	cr_assert_eq(store_audit_append(fx.s, &r), 0);
}

/* Closing the store writes what waits; the next open reads it. */
static void reopen(unsigned retention_days)
{
	store_sync_done(&fx.w);
	store_close(fx.s);
	struct store_options opt = {.audit_retention_days = retention_days};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	store_sync_init(&fx.w);
}

static struct store_audit_check verify(uint64_t anchor_seq, const unsigned char *anchor)
{
	cr_assert_eq(FX_CALL(&fx, store_audit_verify(fx.s, anchor_seq, anchor,
	                                             store_sync_audit_check, &fx.w)),
	             0);
	return fx.w.audit_check;
}

static void sql(const char *text)
{
	sqlite3 *db;
	fx_db_open(&fx, &db, SQLITE_OPEN_READWRITE);
	char *err = NULL;
	int rc = sqlite3_exec(db, text, NULL, NULL, &err);
	cr_assert_eq(rc, SQLITE_OK, "%s: %s", text, err != NULL ? err : "");
	sqlite3_close(db);
}

static int sql_rc(const char *text)
{
	sqlite3 *db;
	fx_db_open(&fx, &db, SQLITE_OPEN_READWRITE);
	int rc = sqlite3_exec(db, text, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

/* Five records, written: a write after them commits them too (on every backend). */
static void five_records(void)
{
	append("alice@corp.example", "login", "", "", 0);
	append("alice@corp.example", "fetch", "INBOX", "1:3", 0);
	append("bob@corp.example", "fetch", "INBOX", "7", 0);
	append("alice@corp.example", "flags", "Archive", "2", 0);
	append("alice@corp.example", "logout", "", "", 0);
	fx_add_user(&fx, "flush@corp.example", "pw");
}

Test(store_audit, written_chained_and_read_back)
{
	five_records();
	struct store_audit_filter f = {0};
	cr_assert_eq(FX_CALL(&fx, store_audit_query(fx.s, &f, store_sync_audit, &fx.w)), 0);
	cr_assert_eq(fx.w.audit.n, 5);
	const struct store_audit_record *r = fx.w.audit.v;
	for (size_t i = 0; i < 5; i++) {
		cr_expect_eq(r[i].seq, i + 1);
		cr_expect_gt(r[i].time_ms, 1700000000000LL);
		unsigned char h[32];
		store_audit_hash(r[i].prev, &r[i], h);
		cr_expect_eq(memcmp(h, r[i].hash, 32), 0);
		if (i > 0)
			cr_expect_eq(memcmp(r[i].prev, r[i - 1].hash, 32), 0);
	}
	cr_expect_str_eq(r[1].action, "fetch");
	cr_expect_str_eq(r[1].mailbox, "INBOX");
	cr_expect_str_eq(r[1].uids, "1:3");
	cr_expect_str_eq(r[1].ip, "192.0.2.7");
	cr_expect_str_eq(r[1].detail, "BODY.PEEK[]");

	struct store_audit_filter by_user = {.actor = "bob@corp.example"};
	cr_assert_eq(FX_CALL(&fx, store_audit_query(fx.s, &by_user, store_sync_audit, &fx.w)), 0);
	cr_assert_eq(fx.w.audit.n, 1);
	cr_expect_eq(fx.w.audit.v[0].seq, 3);
	struct store_audit_filter by_box = {.mailbox = "INBOX", .limit = 1};
	cr_assert_eq(FX_CALL(&fx, store_audit_query(fx.s, &by_box, store_sync_audit, &fx.w)), 0);
	cr_assert_eq(fx.w.audit.n, 1);
	cr_expect_eq(fx.w.audit.v[0].seq, 2);
	struct store_audit_filter page = {.mailbox = "INBOX", .after_seq = 2};
	cr_assert_eq(FX_CALL(&fx, store_audit_query(fx.s, &page, store_sync_audit, &fx.w)), 0);
	cr_assert_eq(fx.w.audit.n, 1);
	cr_expect_eq(fx.w.audit.v[0].seq, 3);

	struct store_audit_check c = verify(0, NULL);
	cr_expect_eq(c.bad_seq, 0, "%s", c.problem);
	cr_expect_eq(c.records, 5);
	cr_expect_eq(c.first_seq, 1);
	cr_expect_eq(c.last_seq, 5);
}

Test(store_audit, written_with_the_next_group_commit)
{
	fx_sqlite_only();
	append("alice@corp.example", "fetch", "INBOX", "1", 0);
	/* A write commits: the waiting record goes with it, long before its deadline. */
	fx_add_user(&fx, "alice@corp.example", "pw");
	cr_expect_eq(fx_count_rows(&fx, "SELECT count(*) FROM audit"), 1);
}

Test(store_audit, append_only_in_sql)
{
	fx_sqlite_only();
	five_records();
	cr_expect_neq(sql_rc("UPDATE audit SET actor = 'mallory' WHERE seq = 2"), SQLITE_OK);
	cr_expect_neq(sql_rc("DELETE FROM audit WHERE seq = 2"), SQLITE_OK);
	cr_expect_neq(sql_rc("UPDATE audit_state SET head_seq = 1"), SQLITE_OK);
	cr_expect_neq(sql_rc("DELETE FROM audit_state"), SQLITE_OK);
	cr_expect_eq(verify(0, NULL).bad_seq, 0);
}

/* Five records, then sql run on the file beside the store: verify names record bad, and
 * its problem says word (NULL: any). */
static void tampered(const char *text, uint64_t bad, const char *word)
{
	fx_sqlite_only();
	five_records();
	sql(text);
	struct store_audit_check c = verify(0, NULL);
	cr_expect_eq(c.bad_seq, bad, "%s", c.problem);
	if (word != NULL)
		cr_expect(strstr(c.problem, word) != NULL, "%s", c.problem);
}

Test(store_audit, an_edited_record_is_named)
{
	tampered("DROP TRIGGER audit_append_only; UPDATE audit SET uids = '1' WHERE seq = 2", 2,
	         "changed");
}

Test(store_audit, a_record_removed_from_the_middle_is_named)
{
	tampered("DROP TRIGGER audit_retention_only; DELETE FROM audit WHERE seq = 3", 3,
	         "missing");
}

Test(store_audit, renumbering_after_a_removal_is_caught)
{
	tampered("DROP TRIGGER audit_retention_only; DROP TRIGGER audit_append_only;"
	         "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3;"
	         "DROP TRIGGER audit_state_forward; UPDATE audit_state SET head_seq = 4",
	         3, NULL);
}

Test(store_audit, records_removed_from_the_end_are_named)
{
	tampered("DROP TRIGGER audit_retention_only; DELETE FROM audit WHERE seq >= 4", 4, "end");
}

Test(store_audit, a_rewritten_chain_fails_the_anchor_written_down)
{
	fx_sqlite_only();
	five_records();
	struct store_audit_check before = verify(0, NULL);
	unsigned char head[32];
	memcpy(head, before.head, 32);
	cr_expect_eq(verify(5, head).bad_seq, 0);
	/* Someone who recomputes every hash after an edit passes the chain itself, but not
	 * the head an auditor wrote down elsewhere. */
	sql("DROP TRIGGER audit_append_only; DROP TRIGGER audit_state_forward;"
	    "UPDATE audit SET actor = 'nobody' WHERE seq = 3");
	store_sync_done(&fx.w);
	store_close(fx.s);
	{
		sqlite3 *db;
		fx_db_open(&fx, &db, SQLITE_OPEN_READWRITE);
		sqlite3_stmt *st, *up;
		cr_assert_eq(
		    sqlite3_prepare_v2(db,
		                       "SELECT seq, ts, actor, ip, session, proto, action, "
		                       "mailbox, uids, detail FROM audit ORDER BY seq",
		                       -1, &st, NULL),
		    SQLITE_OK);
		cr_assert_eq(
		    sqlite3_prepare_v2(db, "UPDATE audit SET prev = ?1, hash = ?2 WHERE seq = ?3",
		                       -1, &up, NULL),
		    SQLITE_OK);
		unsigned char prev[32] = {0}, h[32];
		while (sqlite3_step(st) == SQLITE_ROW) {
			struct store_audit_record r = {
			    .seq = (uint64_t)sqlite3_column_int64(st, 0),
			    .time_ms = sqlite3_column_int64(st, 1),
			};
			char **f[] = {&r.actor,  &r.ip,      &r.session, &r.proto,
			              &r.action, &r.mailbox, &r.uids,    &r.detail};
			for (int i = 0; i < 8; i++)
				*f[i] = (char *)sqlite3_column_text(st, 2 + i);
			store_audit_hash(prev, &r, h);
			sqlite3_bind_blob(up, 1, prev, 32, SQLITE_TRANSIENT);
			sqlite3_bind_blob(up, 2, h, 32, SQLITE_TRANSIENT);
			sqlite3_bind_int64(up, 3, (sqlite3_int64)r.seq);
			cr_assert_eq(sqlite3_step(up), SQLITE_DONE);
			sqlite3_reset(up);
			memcpy(prev, h, 32);
		}
		sqlite3_finalize(st);
		sqlite3_finalize(up);
		sqlite3_stmt *hs;
		sqlite3_prepare_v2(db, "UPDATE audit_state SET head_hash = ?1", -1, &hs, NULL);
		sqlite3_bind_blob(hs, 1, prev, 32, SQLITE_TRANSIENT);
		cr_assert_eq(sqlite3_step(hs), SQLITE_DONE);
		sqlite3_finalize(hs);
		sqlite3_close(db);
	}
	struct store_options opt = {0};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	store_sync_init(&fx.w);
	cr_expect_eq(verify(0, NULL).bad_seq, 0); /* the chain alone cannot tell */
	struct store_audit_check c = verify(5, head);
	cr_expect_eq(c.bad_seq, 5, "%s", c.problem);
}

Test(store_audit, retention_removes_the_oldest_and_keeps_the_chain)
{
	fx_sqlite_only();
	int64_t old = 1000LL * 1000000000; /* 2001 */
	append("alice@corp.example", "fetch", "INBOX", "1", old);
	append("alice@corp.example", "fetch", "INBOX", "2", old + 1);
	reopen(0);
	append("alice@corp.example", "fetch", "INBOX", "3", 0);
	reopen(30); /* the first write with retention on prunes */
	append("alice@corp.example", "logout", "", "", 0);
	reopen(30);
	struct store_audit_filter f = {0};
	cr_assert_eq(FX_CALL(&fx, store_audit_query(fx.s, &f, store_sync_audit, &fx.w)), 0);
	cr_assert_geq(fx.w.audit.n, 2);
	cr_expect_eq(fx.w.audit.v[0].seq, 3);
	bool pruned = false;
	for (size_t i = 0; i < fx.w.audit.n; i++)
		if (strcmp(fx.w.audit.v[i].action, "audit_prune") == 0) {
			pruned = true;
			cr_expect(strstr(fx.w.audit.v[i].detail, "removed=2") != NULL, "%s",
			          fx.w.audit.v[i].detail);
		}
	cr_expect(pruned);
	struct store_audit_check c = verify(0, NULL);
	cr_expect_eq(c.bad_seq, 0, "%s", c.problem);
	cr_expect_eq(c.first_seq, 3);
	/* Removing the first record left now is still seen: the anchor says where the
	 * chain starts. */
	sql("DROP TRIGGER audit_retention_only; DELETE FROM audit WHERE seq = 3");
	cr_expect_eq(verify(0, NULL).bad_seq, 3);
}

Test(store_audit, many_records_wake_the_writer_and_all_arrive)
{
	fx_sqlite_only();
	for (int i = 0; i < 10000; i++)
		append("alice@corp.example", "fetch", "INBOX", "1", 0);
	reopen(0);
	cr_expect_eq(fx_count_rows(&fx, "SELECT count(*) FROM audit"), 10000);
	cr_expect_eq(fx_count_rows(&fx, "SELECT head_seq FROM audit_state"), 10000);
	cr_expect_eq(verify(0, NULL).bad_seq, 0);
}
