#ifndef SEALMAIL_STORE_TEST_UTIL_H
#define SEALMAIL_STORE_TEST_UTIL_H
/* Shared by the store tests: a fresh database folder and blocking calls. The backend is
 * SQLite unless SEALMAIL_STORE_BACKEND names another (meson runs test_store on "mem" and
 * "postgresql" as well); tests of what only SQLite has call fx_sqlite_only() first. With
 * SEALMAIL_STORE_ENCRYPT=1 SQLite stores are opened encrypted under fx_test_kek (meson runs
 * test_store that way too); tests that read the file with plain SQLite call
 * fx_plain_only(). On "postgresql" (tests/tools/pg_harness.sh starts the server and
 * exports SEALMAIL_PG_CONNINFO) each fixture gets a schema of its own, dropped at the end,
 * and a call the backend does not have yet (-ENOTSUP) skips the test, naming the call. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include "storage/sqlite/store_vfs.h"
#include "storage/store.h"
#include "storage/store_key.h"

struct store_fixture {
	char dir[64];
	char path[128];
	char pg_schema[32]; /* postgresql: the fixture's schema, "" before the first open */
	char conninfo[512];
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

static inline bool fx_is_pg(void)
{
	const char *b = getenv("SEALMAIL_STORE_BACKEND");
	return b != NULL && strcmp(b, "postgresql") == 0;
}

/* Runs one statement on the harness's database: for creating and dropping schemas. */
static inline void fx_pg_exec(const char *sql)
{
	const char *ci = getenv("SEALMAIL_PG_CONNINFO");
	cr_assert(ci != NULL,
	          "SEALMAIL_PG_CONNINFO is not set: run under tests/tools/pg_harness.sh");
	PGconn *db = PQconnectdb(ci);
	cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
	PQclear(PQexec(db, "SET client_min_messages = warning")); /* DROP's NOTICEs */
	PGresult *r = PQexec(db, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(db));
	PQclear(r);
	PQfinish(db);
}

/* A schema of the fixture's own (named after its folder, which is unique) and the
 * conninfo that puts the store's tables in it. */
static inline void fx_pg_schema(struct store_fixture *fx)
{
	static const char hex[] = "0123456789abcdef";
	const char *tail = strrchr(fx->dir, '-') + 1;
	size_t n = 0;
	n += (size_t)snprintf(fx->pg_schema, sizeof(fx->pg_schema), "t_");
	for (const char *p = tail; *p != '\0' && n + 3 < sizeof(fx->pg_schema); p++) {
		fx->pg_schema[n++] = hex[(unsigned char)*p >> 4];
		fx->pg_schema[n++] = hex[(unsigned char)*p & 15];
	}
	fx->pg_schema[n] = '\0';
	char sql[96];
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", fx->pg_schema);
	fx_pg_exec(sql);
	snprintf(fx->conninfo, sizeof(fx->conninfo), "%s options='-c search_path=%s'",
	         getenv("SEALMAIL_PG_CONNINFO"), fx->pg_schema);
}

static inline int fx_open_opts(struct store_fixture *fx, struct store_options *opt)
{
	const char *err = NULL;
	opt->path = fx->path;
	if (opt->backend == NULL)
		opt->backend = getenv("SEALMAIL_STORE_BACKEND");
	if (opt->kek == NULL && fx_encrypted())
		opt->kek = fx_test_kek;
	if (opt->backend != NULL && strcmp(opt->backend, "postgresql") == 0) {
		if (fx->pg_schema[0] == '\0')
			fx_pg_schema(fx);
		if (opt->conninfo == NULL)
			opt->conninfo = fx->conninfo;
	}
	int rc = store_open(opt, &fx->s, &err);
	if (rc < 0)
		cr_log_info("store_open: %s", err);
	return rc;
}

/* Skips the test on postgresql, whose backend does not have op yet: for tests that call
 * it without FX_CALL (argument checks at submit, threads of their own). */
#define fx_pg_todo(op)                                                                             \
	do {                                                                                       \
		if (fx_is_pg())                                                                    \
			cr_skip_test("postgresql: not done yet: %s", op);                          \
	} while (0)

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
	if (fx->pg_schema[0] != '\0') {
		char sql[96];
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", fx->pg_schema);
		fx_pg_exec(sql);
		fx->pg_schema[0] = '\0';
	}
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

/* fx_wait for FX_CALL: on postgresql, an operation not done yet skips the test. */
static inline int fx_wait_call(struct store_fixture *fx, int submit_rc, const char *call)
{
	int rc = store_sync_wait(&fx->w, submit_rc);
	if (rc == -ENOTSUP && fx_is_pg())
		cr_skip_test("postgresql: not done yet: %.*s", (int)strcspn(call, "("), call);
	return rc;
}

#define FX_CALL(fx, call) fx_wait_call((fx), (fx_begin(fx), (call)), #call)

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
