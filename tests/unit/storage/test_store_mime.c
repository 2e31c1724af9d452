/*
 * The MIME structure computed at delivery (storage/sqlite/store_mime.c): the byte ranges
 * FETCH reads, for odd messages too, and the schema 5 migration that recomputes it for
 * content stored before.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <string.h>

#include "storage/sqlite/store_private.h"
#include "tests/unit/support/store_test_util.h"

/* One integer of the stored structure of msg, by SQLite JSON path. */
static long long stored_int(const char *msg, const char *path)
{
	struct store_mime_info info;
	cr_assert_eq(store_mime_parse_mem(msg, strlen(msg), &info), 0);
	cr_assert_not_null(info.json);
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "SELECT coalesce(json_extract(?, ?), -1)", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, info.json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	store_mime_info_clear(&info);
	return v;
}

Test(store_mime, ranges_with_bare_lf)
{
	const char *msg = "Subject: x\n"
	                  "Content-Type: multipart/mixed; boundary=b\n\n"
	                  "--b\n\nno header\n"
	                  "--b\nContent-Type: text/plain\n\none\ntwo\n"
	                  "--b--\n";
	cr_assert_eq(stored_int(msg, "$.header_length"), 54);
	cr_assert_eq(stored_int(msg, "$.body_offset"), 54);
	/* A part without header fields: its header is the blank line. */
	cr_assert_eq(stored_int(msg, "$.parts[0].header_offset"), 58);
	cr_assert_eq(stored_int(msg, "$.parts[0].header_length"), 1);
	cr_assert_eq(stored_int(msg, "$.parts[0].body_length"), 9);
	cr_assert_eq(stored_int(msg, "$.parts[1].body_length"), 7);
	cr_assert_eq(stored_int(msg, "$.parts[1].lines"), 2);
}

Test(store_mime, header_without_body)
{
	const char *msg = "Subject: only a header\r\nFrom: a@b.c\r\n";
	cr_assert_eq(stored_int(msg, "$.header_length"), (long long)strlen(msg));
	cr_assert_eq(stored_int(msg, "$.body_length"), 0);
	cr_assert_eq(stored_int(msg, "$.v"), STORE_MIME_VERSION);
}

Test(store_mime, message_part_extent)
{
	const char *msg = "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	                  "--o\r\nContent-Type: message/rfc822\r\n\r\n"
	                  "Subject: in\r\n\r\nbody\r\n"
	                  "--o--\r\n";
	const char *inner = strstr(msg, "Subject: in");
	cr_assert_eq(stored_int(msg, "$.parts[0].body_offset"), inner - msg);
	cr_assert_eq(stored_int(msg, "$.parts[0].body_length"), 19);
	cr_assert_eq(stored_int(msg, "$.parts[0].lines"), 3);
	cr_assert_eq(stored_int(msg, "$.parts[0].message.header_offset"), inner - msg);
	cr_assert_eq(stored_int(msg, "$.parts[0].message.header_length"), 15);
	cr_assert_eq(stored_int(msg, "$.parts[0].message.body_length"), 4);
}

static struct store_fixture fx;

static void exec_sql(const char *sql)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
	sqlite3_close(db);
}

/* A store of schema 4 whose content has the structure of before (no "v", no ranges of
 * headers) gets the new form when it is opened. */
Test(store_mime, migration_recomputes_old_rows)
{
	fx_plain_only();
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	sqlite3 *db;
	const char *err = NULL;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(store_schema_migrate_to(db, 4, &err), 0);
	sqlite3_close(db);
	exec_sql("INSERT INTO contents (sha256, size, refs, body, mime) VALUES (x'01', 30, 1,"
	         " CAST('Subject: old' || char(13, 10, 13, 10) || 'old body' || char(13, 10)"
	         " AS BLOB), '{\"type\":\"text\",\"subtype\":\"plain\",\"header_offset\":0}')");
	exec_sql("INSERT INTO contents (sha256, size, refs, body, mime) VALUES (x'02', 3, 1,"
	         " CAST('abc' AS BLOB), 'not json')");
	fx_open(&fx);
	store_close(fx.s);
	fx.s = NULL;
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM contents WHERE"
	                                " json_extract(mime, '$.v') = 2"),
	             2);
	cr_assert_eq(fx_count_rows(&fx, "SELECT json_extract(mime, '$.body_offset') FROM contents"
	                                " WHERE sha256 = x'01'"),
	             16);
	cr_assert_eq(fx_count_rows(&fx, "SELECT json_extract(mime, '$.lines') FROM contents"
	                                " WHERE sha256 = x'01'"),
	             1);
	cr_assert_eq(fx_count_rows(&fx, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	fx_rmdir(&fx);
}

/* A store of schema 5 (a word index of subject, addresses and text) gets the trigram index
 * of every content row's header and decoded text when it is opened: substrings are found,
 * base64 text decoded, the rows of the word index gone. */
Test(store_mime, migration_builds_the_trigram_index)
{
	fx_plain_only();
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	sqlite3 *db;
	const char *err = NULL;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(store_schema_migrate_to(db, 5, &err), 0);
	sqlite3_close(db);
	exec_sql("INSERT INTO contents (sha256, size, refs, body) VALUES (x'01', 30, 1,"
	         " CAST('Subject: oldsubject' || char(13, 10) || 'X-Ref: hdrpiece' ||"
	         " char(13, 10, 13, 10) || 'old bodytext' || char(13, 10) AS BLOB))");
	exec_sql("INSERT INTO contents (sha256, size, refs, body) VALUES (x'02', 30, 1,"
	         " CAST('Content-Transfer-Encoding: base64' || char(13, 10, 13, 10) ||"
	         " 'ZGVjb2RlZHdvcmQ=' || char(13, 10) AS BLOB))");
	exec_sql("INSERT INTO fts (rowid, subject, addresses, body) VALUES (1, 'oldsubject', '',"
	         " 'old bodytext')");
	fx_open(&fx);
	store_close(fx.s);
	fx.s = NULL;
	cr_assert_eq(fx_count_rows(&fx, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM fts"), 2);
	cr_assert_eq(fx_count_rows(&fx, "SELECT rowid FROM fts WHERE fts MATCH 'body : \"DYTEX\"'"),
	             1);
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM fts WHERE fts MATCH "
	                                "'body : \"ldsubj\"'"),
	             0);
	cr_assert_eq(
	    fx_count_rows(&fx, "SELECT rowid FROM fts WHERE fts MATCH 'header : \"dRPIE\"'"), 1);
	cr_assert_eq(
	    fx_count_rows(&fx, "SELECT rowid FROM fts WHERE fts MATCH 'body : \"codedwo\"'"), 2);
	fx_rmdir(&fx);
}

/* A store of schema 6 gets the SORT and THREAD keys of every content row stored before
 * when it is opened (schema 8). */
Test(store_mime, migration_fills_the_sort_keys)
{
	fx_plain_only();
	memset(&fx, 0, sizeof(fx));
	fx_dir(&fx);
	sqlite3 *db;
	const char *err = NULL;
	cr_assert_eq(sqlite3_open(fx.path, &db), SQLITE_OK);
	cr_assert_eq(store_schema_migrate_to(db, 6, &err), 0);
	sqlite3_close(db);
	exec_sql("INSERT INTO contents (sha256, size, refs, body) VALUES (x'01', 30, 1,"
	         " CAST('Subject: Re: [l] old' || char(13, 10) || 'From: Old <o@x>' ||"
	         " char(13, 10) || 'References: <a@x> <b@x>' ||"
	         " char(13, 10, 13, 10) || 'body' || char(13, 10) AS BLOB))");
	exec_sql("INSERT INTO contents (sha256, size, refs, body) VALUES (x'02', 3, 1,"
	         " CAST('abc' AS BLOB))");
	fx_open(&fx);
	store_close(fx.s);
	fx.s = NULL;
	cr_assert_eq(fx_count_rows(&fx, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM sortkeys"), 2);
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM sortkeys WHERE subject = 'OLD'"
	                                " AND reply = 1 AND from_mbox = 'O' AND from_name = 'OLD'"
	                                " AND refs = 'a@x b@x'"),
	             1);
	/* The keys go with their content. */
	exec_sql("DELETE FROM contents WHERE sha256 = x'02'");
	cr_assert_eq(fx_count_rows(&fx, "SELECT count(*) FROM sortkeys"), 1);
	fx_rmdir(&fx);
}
