#ifndef SEALMAIL_STORE_TEST_UTIL_H
#define SEALMAIL_STORE_TEST_UTIL_H
/* Shared by the store tests: a fresh database folder and blocking calls. The backend is
 * SQLite unless SEALMAIL_STORE_BACKEND names another (meson runs test_store on "mem" as
 * well); tests of what only SQLite has call fx_sqlite_only() first. With
 * SEALMAIL_STORE_ENCRYPT=1 SQLite stores are opened encrypted under fx_test_kek (meson runs
 * test_store that way too); tests that read the file with plain SQLite call
 * fx_plain_only(). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "storage/sqlite/store_vfs.h"
#include "storage/store.h"
#include "storage/store_key.h"

struct store_fixture {
	char dir[64];
	char path[128];
	struct store *s;
	struct store_sync w;
};

static inline void fx_dir(struct store_fixture *fx)
{
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sealmail-store-XXXXXX");
	cr_assert(mkdtemp(fx->dir) != NULL);
	snprintf(fx->path, sizeof(fx->path), "%s/mail.db", fx->dir);
}

static const uint8_t fx_test_kek[32] = {
    0x5e, 0xa1, 0x6d, 0x41, 0x17, 0xe5, 0x7a, 0x11, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x01};

static inline bool fx_encrypted(void)
{
	const char *e = getenv("SEALMAIL_STORE_ENCRYPT");
	return e != NULL && strcmp(e, "1") == 0;
}

/* Skips a test that reads or writes the database file with plain SQLite. */
#define fx_plain_only()                                                                            \
	do {                                                                                       \
		if (fx_encrypted())                                                                \
			cr_skip_test("reads the file with plain SQLite");                          \
	} while (0)

static inline int fx_open_opts(struct store_fixture *fx, struct store_options *opt)
{
	const char *err = NULL;
	opt->path = fx->path;
	if (opt->backend == NULL)
		opt->backend = getenv("SEALMAIL_STORE_BACKEND");
	if (opt->kek == NULL && fx_encrypted())
		opt->kek = fx_test_kek;
	int rc = store_open(opt, &fx->s, &err);
	if (rc < 0)
		cr_log_info("store_open: %s", err);
	return rc;
}

/* Skips the test unless the store under test is SQLite (files, SQL, FTS, MIME parsing). */
#define fx_sqlite_only()                                                                           \
	do {                                                                                       \
		const char *b_ = getenv("SEALMAIL_STORE_BACKEND");                                 \
		if (b_ != NULL && b_[0] != '\0' && strcmp(b_, "sqlite") != 0)                      \
			cr_skip_test("SQLite only");                                               \
	} while (0)

static inline void fx_open(struct store_fixture *fx)
{
	struct store_options opt = {0};
	cr_assert_eq(fx_open_opts(fx, &opt), 0);
}

static inline void fx_rmdir(struct store_fixture *fx)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	cr_assert_eq(system(cmd), 0);
}

/* A fresh store in a new folder, ready for blocking calls (a suite's .init)... */
static inline void fx_setup(struct store_fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx_dir(fx);
	fx_open(fx);
	store_sync_init(&fx->w);
}

/* ...and gone again (its .fini). */
static inline void fx_teardown(struct store_fixture *fx)
{
	store_sync_done(&fx->w);
	store_close(fx->s);
	fx_rmdir(fx);
}

/* Starts a blocking call: fx->w is fresh; returns the call's rc after waiting. */
static inline struct store_sync *fx_begin(struct store_fixture *fx)
{
	store_sync_done(&fx->w);
	store_sync_init(&fx->w);
	return &fx->w;
}

static inline int fx_wait(struct store_fixture *fx, int submit_rc)
{
	return store_sync_wait(&fx->w, submit_rc);
}

#define FX_CALL(fx, call) fx_wait((fx), (fx_begin(fx), (call)))

/* A new user: its id. */
static inline int64_t fx_add_user(struct store_fixture *fx, const char *address,
                                  const char *password)
{
	int rc = FX_CALL(fx, store_user_add(fx->s, address, password, store_sync_users, &fx->w));
	cr_assert_eq(rc, 0, "user_add %s: %s", address, store_strerror(rc));
	cr_assert_eq(fx->w.users.n, 1);
	return fx->w.users.v[0].id;
}

/* The id of the user's mailbox name. */
static inline int64_t fx_mailbox_id(struct store_fixture *fx, int64_t user, const char *name)
{
	int rc = FX_CALL(fx, store_mailbox_get(fx->s, user, name, store_sync_mailboxes, &fx->w));
	cr_assert_eq(rc, 0, "mailbox_get %s: %s", name, store_strerror(rc));
	return fx->w.mailboxes.v[0].id;
}

/* Delivers msg to targets t[0..n): the call's rc; the result is in fx->w.delivery. */
static inline int fx_deliver(struct store_fixture *fx, const char *msg,
                             const struct store_target *t, size_t n)
{
	struct store_deliver_req req = {
	    .data = msg, .size = strlen(msg), .targets = t, .n_targets = n};
	return FX_CALL(fx, store_deliver(fx->s, &req, store_sync_delivery, &fx->w));
}

static struct store_queue_summary fx_summary;

static inline void fx_summary_got(void *ctx, int rc, const struct store_queue_summary *res)
{
	fx_summary = *res;
	store_sync_done_cb(ctx, rc);
}

/* The relay queue's counts (store_queue_summary), the call asserted to succeed. */
static inline struct store_queue_summary fx_queue_summary(struct store_fixture *fx)
{
	cr_assert_eq(FX_CALL(fx, store_queue_summary(fx->s, fx_summary_got, &fx->w)), 0);
	return fx_summary;
}

/* The database file opened beside the store, through a sealing VFS of its data key when it
 * is encrypted (one per process: the last is kept registered). */
static inline void fx_db_open(const struct store_fixture *fx, sqlite3 **db_r, int flags)
{
	static struct store_vfs *vfs;
	const char *name = NULL;
	if (fx_encrypted()) {
		char hdr[160];
		uint8_t dek[32];
		const char *err = NULL;
		snprintf(hdr, sizeof(hdr), "%s/%s", fx->dir, STORE_KEY_FILE);
		cr_assert_eq(store_key_unwrap(hdr, fx_test_kek, dek, &err), 0, "%s", err);
		struct store_vfs *old = vfs;
		cr_assert_eq(store_vfs_register(dek, &vfs), 0);
		(void)old; /* may still serve a connection of the caller: kept */
		name = store_vfs_name(vfs);
	}
	cr_assert_eq(sqlite3_open_v2(fx->path, db_r, flags, name), SQLITE_OK);
	if (name != NULL)
		sqlite3_exec(*db_r, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
}

/* One number (SELECT count(*) ...) read from the database file, beside the store. */
static inline long long fx_count_rows(const struct store_fixture *fx, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;
	fx_db_open(fx, &db, SQLITE_OPEN_READONLY);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

#endif
