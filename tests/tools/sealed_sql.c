/*
 * A test-only tool: runs SQL on an encrypted store (docs/encryption.md) through the sealing
 * VFS, for integration tests that check the database file itself (sqlite3 cannot read it):
 *
 *   sealed_sql DB KEY_FILE SQL     prints each row, columns separated by tabs
 *
 * The data key is unwrapped from store.key beside DB with the key in KEY_FILE. Exit 0, or 1
 * with one line on standard error.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/sqlite/store_vfs.h"
#include "storage/store_key.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sealed_sql DB KEY_FILE SQL\n");
		return 1;
	}
	uint8_t kek[STORE_KEK_LEN], dek[STORE_KEK_LEN];
	const char *err = NULL;
	char hdr[4200];
	const char *slash = strrchr(argv[1], '/');
	snprintf(hdr, sizeof(hdr), "%.*s%s", slash != NULL ? (int)(slash - argv[1] + 1) : 0,
	         argv[1], STORE_KEY_FILE);
	if (store_kek_load(argv[2], kek, &err) < 0 || store_key_unwrap(hdr, kek, dek, &err) < 0) {
		fprintf(stderr, "sealed_sql: %s\n", err);
		return 1;
	}
	struct store_vfs *vfs;
	if (store_vfs_register(dek, &vfs) < 0) {
		fprintf(stderr, "sealed_sql: no VFS\n");
		return 1;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, store_vfs_name(vfs));
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(db, 10000);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, argv[3], -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);
			printf("%s%s", i > 0 ? "\t" : "", v != NULL ? (const char *)v : "");
		}
		putchar('\n');
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "sealed_sql: %s\n", db != NULL ? sqlite3_errmsg(db) : "no memory");
		rc = 1;
	} else {
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	store_vfs_unregister(vfs);
	return rc;
}
