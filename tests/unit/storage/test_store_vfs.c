/*
 * The sealing VFS (storage/sqlite/store_vfs.c) on real files: nothing of the content on
 * disk, plain SQLite refuses the file, a changed, moved or foreign page is a read error
 * (never data), the WAL is sealed and survives recovery, and files that would hold pages in
 * clear (rollback journals) are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/sqlite/store_vfs.h"

#define MARK "VFSMARK-0123456789"

static char dir[] = "/tmp/sealmail-vfs-XXXXXX";
static char path[128];
static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static struct store_vfs *vfs;

static void setup(void)
{
	memcpy(dir, "/tmp/sealmail-vfs-XXXXXX", sizeof(dir));
	cr_assert(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	cr_assert_eq(store_vfs_register(key, &vfs), 0);
}

static void teardown(void)
{
	store_vfs_unregister(vfs);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(store_vfs, .init = setup, .fini = teardown);

static sqlite3 *open_sealed(struct store_vfs *v, bool create)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	cr_assert_eq(sqlite3_open_v2(path, &db, flags, store_vfs_name(v)), SQLITE_OK);
	sqlite3_extended_result_codes(db, 1);
	int reserve = STORE_VFS_RESERVE;
	sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL), SQLITE_OK);
	if (create)
		cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode = MEMORY", NULL, NULL, NULL),
		             SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	return db;
}

/* A table of 200 rows of about 1 KiB, each with MARK, in a closed (checkpointed) file. */
static void fill(void)
{
	sqlite3 *db = open_sealed(vfs, true);
	cr_assert_eq(sqlite3_exec(db,
	                          "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
	                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
	                          "WHERE i < 200) INSERT INTO t SELECT i, '" MARK
	                          "' || i || printf('%.1000c', 'x') FROM n",
	                          NULL, NULL, NULL),
	             SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

static bool file_contains(const char *p, const char *needle)
{
	FILE *f = fopen(p, "rb");
	if (f == NULL)
		return false;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	bool found = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
	free(buf);
	return found;
}

/* SELECT count(*), sum(length(v)) over the table: the SQLite code of the query. */
static int scan(sqlite3 *db, long long *count_r)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE v LIKE '" MARK "%'", -1, &st,
	                            NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count_r = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static void flip(long off)
{
	FILE *f = fopen(path, "r+b");
	fseek(f, off, SEEK_SET);
	int c = fgetc(f);
	fseek(f, off, SEEK_SET);
	fputc(c ^ 0x10, f);
	fclose(f);
}

Test(store_vfs, round_trip_and_nothing_in_clear)
{
	fill();
	cr_assert(!file_contains(path, MARK));
	cr_assert(!file_contains(path, "SQLite format 3"));
	sqlite3 *db = open_sealed(vfs, false);
	long long n = 0;
	cr_assert_eq(scan(db, &n), SQLITE_OK);
	cr_assert_eq(n, 200);
	sqlite3_close(db);

	/* Plain SQLite: not a database. */
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	int rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
	cr_assert_eq(rc, SQLITE_NOTADB, "%d", rc);
	sqlite3_close(db);
}

Test(store_vfs, changed_byte_is_an_integrity_error)
{
	fill();
	/* A byte inside page 5's sealed bytes (the table's leaves). */
	flip(4 * 4096 + 1000);
	sqlite3 *db = open_sealed(vfs, false);
	long long n = -1;
	int rc = scan(db, &n);
	cr_assert_eq(rc, SQLITE_IOERR_DATA, "rc %d, count %lld", rc, n);
	sqlite3_close(db);
}

Test(store_vfs, changed_tag_or_nonce_is_an_integrity_error)
{
	fill();
	flip(3 * 4096 + 4096 - STORE_VFS_RESERVE + 2); /* nonce of page 4 */
	sqlite3 *db = open_sealed(vfs, false);
	long long n = -1;
	cr_assert_eq(scan(db, &n), SQLITE_IOERR_DATA);
	sqlite3_close(db);
}

Test(store_vfs, swapped_pages_are_an_integrity_error)
{
	fill();
	/* Page 3 copied over page 4: a valid seal, for another page. */
	FILE *f = fopen(path, "r+b");
	char page[4096];
	fseek(f, 2 * 4096, SEEK_SET);
	cr_assert_eq(fread(page, 1, sizeof(page), f), sizeof(page));
	fseek(f, 3 * 4096, SEEK_SET);
	cr_assert_eq(fwrite(page, 1, sizeof(page), f), sizeof(page));
	fclose(f);
	sqlite3 *db = open_sealed(vfs, false);
	long long n = -1;
	cr_assert_eq(scan(db, &n), SQLITE_IOERR_DATA);
	sqlite3_close(db);
}

Test(store_vfs, wrong_key_reads_nothing)
{
	fill();
	uint8_t other[32];
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	struct store_vfs *v2;
	cr_assert_eq(store_vfs_register(other, &v2), 0);
	sqlite3 *db = NULL;
	/* Page 1 fails as soon as SQLite reads it: at the open or at the first query. */
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, store_vfs_name(v2));
	long long n = -1;
	if (rc == SQLITE_OK)
		rc = scan(db, &n);
	cr_assert_neq(rc, SQLITE_OK, "read %lld rows under the wrong key", n);
	sqlite3_close(db);
	store_vfs_unregister(v2);
	cr_assert_eq(store_vfs_check_file(path, key), 1);
	cr_assert_eq(store_vfs_check_file(path, other), 0);
}

Test(store_vfs, wal_is_sealed_and_recovers)
{
	fill();
	sqlite3 *db = open_sealed(vfs, false);
	cr_assert_eq(sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0", NULL, NULL, NULL),
	             SQLITE_OK);
	cr_assert_eq(
	    sqlite3_exec(db, "UPDATE t SET v = 'WALMARK' || v WHERE id <= 50", NULL, NULL, NULL),
	    SQLITE_OK);
	char wal[160];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	cr_assert(access(wal, F_OK) == 0);
	cr_assert(!file_contains(wal, "WALMARK"));
	cr_assert(!file_contains(wal, MARK));
	/* Copy the files as a crash would leave them (the WAL not checkpointed). */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cp %s %s/c.db && cp %s %s/c.db-wal", path, dir, wal, dir);
	cr_assert_eq(system(cmd), 0);
	sqlite3_close(db);
	snprintf(path, sizeof(path), "%s/c.db", dir);
	db = open_sealed(vfs, false);
	sqlite3_stmt *st;
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE v LIKE 'WALMARK%'", -1, &st, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(st, 0), 50);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

Test(store_vfs, rollback_journal_is_refused)
{
	fill();
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, store_vfs_name(vfs)),
	             SQLITE_OK);
	/* Out of WAL mode a write needs a journal on disk, which would hold pages in clear. */
	int rc = sqlite3_exec(db, "PRAGMA journal_mode = DELETE; DELETE FROM t WHERE id = 1", NULL,
	                      NULL, NULL);
	cr_assert_neq(rc, SQLITE_OK);
	sqlite3_close(db);
	char j[160];
	snprintf(j, sizeof(j), "%s-journal", path);
	cr_assert(access(j, F_OK) != 0);
}

Test(store_vfs, plain_database_is_refused)
{
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	             SQLITE_OK);
	cr_assert_eq(
	    sqlite3_exec(db, "CREATE TABLE p (x); INSERT INTO p VALUES (1)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, store_vfs_name(vfs));
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "SELECT * FROM p", NULL, NULL, NULL);
	cr_assert_neq(rc, SQLITE_OK);
	sqlite3_close(db);
}
