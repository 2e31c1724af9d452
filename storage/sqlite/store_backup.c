/*
 * store_backup: a consistent copy of the live database with SQLite's online backup API.
 * It runs as a read job on a worker connection: one sqlite3_backup_step(-1) copies every
 * page inside one read transaction, which in WAL mode holds up no writer, so the copy is
 * the store as of one instant and deliveries go on meanwhile. The copy is then switched to
 * a rollback journal (one self-contained file), checked, fsynced and renamed into place,
 * so a crash leaves either the old file at path or none, never half a copy.
 *
 * An encrypted store's backup is written through a sealing VFS of the same data key (its
 * rollback journal kept in memory: the copy is thrown away unless complete) and carries the
 * wrapped data key in path.key (docs/encryption.md): reading it needs the key-encryption
 * key, as the store does.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"
#include "storage/sqlite/store_vfs.h"
#include "storage/store_key.h"

struct backup_job {
	struct store_job job;
	char *path;
};

static void backup_job_free(struct store_job *job)
{
	free(((struct backup_job *)job)->path);
}

/* A backup's (or restored copy's) database: through a sealing VFS of the data key wrapped
 * in key_hdr when there is one (kek needed), else plain. *vfs_r to unregister after
 * closing. SQLITE_OK, or an SQLite code with msg. */
static int backup_open(const char *path, const char *key_hdr, const uint8_t *kek, int flags,
                       sqlite3 **db_r, struct store_vfs **vfs_r, char *msg, size_t cap)
{
	*db_r = NULL;
	*vfs_r = NULL;
	if (key_hdr != NULL && access(key_hdr, F_OK) == 0) {
		const char *err = NULL;
		uint8_t dek[STORE_KEK_LEN];
		if (kek == NULL) {
			snprintf(msg, cap,
			         "%s is encrypted (%s): configure the key it was made with", path,
			         key_hdr);
			return SQLITE_AUTH;
		}
		if (store_key_unwrap(key_hdr, kek, dek, &err) < 0) {
			snprintf(msg, cap, "%s", err);
			return SQLITE_AUTH;
		}
		int rc = store_vfs_register(dek, vfs_r);
		gnutls_memset(dek, 0, sizeof(dek));
		if (rc < 0) {
			snprintf(msg, cap, "cannot set up the sealing VFS");
			return SQLITE_ERROR;
		}
		store_vfs_memory_journals(*vfs_r);
	} else if (kek != NULL) {
		snprintf(msg, cap,
		         "%s is not encrypted but a key is configured: restore it without "
		         "encryption configured, then run `sealctl store encrypt`",
		         path);
		return SQLITE_AUTH;
	}
	int rc = sqlite3_open_v2(path, db_r, flags, *vfs_r != NULL ? store_vfs_name(*vfs_r) : NULL);
	if (rc == SQLITE_OK && *vfs_r != NULL)
		rc = sqlite3_exec(*db_r, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		snprintf(msg, cap, "%s: %s", path, sqlite3_errstr(rc));
	return rc;
}

static void backup_close(sqlite3 *db, struct store_vfs *vfs)
{
	if (db != NULL)
		sqlite3_close(db);
	store_vfs_unregister(vfs);
}

static char *key_path_of(const char *backup)
{
	return xasprintf("%s.key", backup);
}

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* "ok" from PRAGMA quick_check on db: 0, else -EIO. */
static int copy_check(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	const unsigned char *v = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	int out = v != NULL && strcmp((const char *)v, "ok") == 0 ? 0 : -EIO;
	sqlite3_finalize(st);
	return out;
}

/*
 * SQLite keeps no checksums of its pages: integrity_check finds a broken structure but not
 * changed bytes inside a row. A backup therefore carries the SHA-256 of its content (every
 * row of every table, in key order, each value with its type; the virtual text index is
 * covered by its shadow tables) in a table of its own, and restore recomputes it.
 */
#define SUM_TABLE "sealmail_backup_sum"

static void hash_u64(gnutls_hash_hd_t h, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	gnutls_hash(h, b, 8);
}

static int content_hash(sqlite3 *db, unsigned char out[32])
{
	sqlite3_stmt *tables = NULL;
	gnutls_hash_hd_t h = NULL;
	int rc =
	    sqlite3_prepare_v2(db,
	                       "SELECT name FROM sqlite_schema WHERE type = 'table' AND"
	                       " name <> '" SUM_TABLE "' AND substr(name, 1, 7) <> 'sqlite_' AND"
	                       " sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
	                       -1, &tables, NULL);
	if (rc != SQLITE_OK || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		sqlite3_finalize(tables);
		return -EIO;
	}
	while (rc == SQLITE_OK && sqlite3_step(tables) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(tables, 0);
		gnutls_hash(h, name, strlen(name) + 1);
		char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", name);
		sqlite3_stmt *st = NULL;
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		sqlite3_free(sql);
		while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
			int n = sqlite3_column_count(st);
			for (int i = 0; i < n; i++) {
				int t = sqlite3_column_type(st, i);
				unsigned char tag = (unsigned char)t;
				gnutls_hash(h, &tag, 1);
				if (t == SQLITE_INTEGER) {
					hash_u64(h, (uint64_t)sqlite3_column_int64(st, i));
				} else if (t == SQLITE_FLOAT) {
					double d = sqlite3_column_double(st, i);
					uint64_t u;
					memcpy(&u, &d, sizeof(u));
					hash_u64(h, u);
				} else if (t != SQLITE_NULL) {
					const void *v =
					    t == SQLITE_BLOB
					        ? sqlite3_column_blob(st, i)
					        : (const void *)sqlite3_column_text(st, i);
					size_t len = (size_t)sqlite3_column_bytes(st, i);
					hash_u64(h, len);
					if (len > 0)
						gnutls_hash(h, v, len);
				}
			}
		}
		sqlite3_finalize(st);
	}
	sqlite3_finalize(tables);
	gnutls_hash_deinit(h, out);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* Records the content's hash in the backup db (after any change to it). */
static int backup_seal(sqlite3 *db)
{
	unsigned char sum[32];
	if (content_hash(db, sum) < 0)
		return -EIO;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_exec(db,
	                      "CREATE TABLE IF NOT EXISTS " SUM_TABLE " (sha256 BLOB NOT NULL);"
	                      "DELETE FROM " SUM_TABLE,
	                      NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO " SUM_TABLE " (sha256) VALUES (?)", -1,
		                        &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, sum, sizeof(sum), SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* 0 when the backup's content has the hash it was sealed with; else -EIO and why. */
static int backup_verify(sqlite3 *db, char *msg, size_t cap)
{
	sqlite3_stmt *st = NULL;
	unsigned char want[32], got[32];
	bool have = false;
	if (sqlite3_prepare_v2(db, "SELECT sha256 FROM " SUM_TABLE, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(want, sqlite3_column_blob(st, 0), 32);
		have = true;
	}
	sqlite3_finalize(st);
	if (!have) {
		snprintf(msg, cap, "it is no sealctl backup (no content checksum)");
		return -EIO;
	}
	if (content_hash(db, got) < 0 || memcmp(want, got, 32) != 0) {
		snprintf(msg, cap,
		         "its content does not match its checksum: the file was changed "
		         "or damaged after the backup");
		return -EIO;
	}
	return 0;
}

static int backup_run(struct store_conn *c, struct store_job *job)
{
	struct backup_job *j = (struct backup_job *)job;
	struct sqlite_store *s = job->store;
	char *tmp = xasprintf("%s.tmp", j->path);
	char *key_tmp = NULL;
	sqlite3 *dst = NULL;
	struct store_vfs *vfs = NULL;
	int rc;
	unlink(tmp);
	if (s->vfs != NULL) {
		/* The data key goes along, wrapped as in data_dir/store.key. */
		if (store_vfs_clone(s->vfs, &vfs) < 0) {
			rc = -EIO;
			goto out;
		}
		store_vfs_memory_journals(vfs);
		char *hdr = store_key_path(s->path);
		char *key = key_path_of(j->path);
		key_tmp = xasprintf("%s.tmp", key);
		int in = open(hdr, O_RDONLY | O_CLOEXEC);
		int outf = open(key_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		unsigned char h[STORE_KEY_HDR_LEN];
		rc = (in >= 0 && outf >= 0 && read(in, h, sizeof(h)) == (ssize_t)sizeof(h) &&
		      write(outf, h, sizeof(h)) == (ssize_t)sizeof(h) && fsync(outf) == 0)
		         ? 0
		         : -EIO;
		if (in >= 0)
			close(in);
		if (outf >= 0)
			close(outf);
		if (rc == 0 && rename(key_tmp, key) < 0)
			rc = -errno;
		free(hdr);
		free(key);
		if (rc < 0)
			goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	close(fd);
	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE,
	                     vfs != NULL ? store_vfs_name(vfs) : NULL);
	if (rc == SQLITE_OK && vfs != NULL)
		rc = sqlite3_exec(dst, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_backup *b = sqlite3_backup_init(dst, "main", c->db, "main");
		if (b == NULL) {
			rc = sqlite3_errcode(dst);
		} else {
			rc = sqlite3_backup_step(b, -1);
			int frc = sqlite3_backup_finish(b);
			rc = rc == SQLITE_DONE ? frc : rc;
		}
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_event(LOGL_ERROR, "event=backup_failed path=\"%s\" sqlite_rc=%d msg=\"%s\"",
		          tmp, rc, dst != NULL ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		rc = rc == SQLITE_FULL ? -ENOSPC : -EIO;
		goto out;
	}
	rc = copy_check(dst);
	if (rc == 0)
		rc = backup_seal(dst);
	if (rc < 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	rc = fsync_path(tmp, O_RDONLY);
	if (rc == 0 && rename(tmp, j->path) < 0)
		rc = -errno;
	if (rc == 0) {
		char *d = xstrdup(j->path);
		rc = fsync_path(dirname(d), O_RDONLY | O_DIRECTORY);
		free(d);
	}
out:
	if (dst != NULL)
		sqlite3_close(dst);
	store_vfs_unregister(vfs);
	if (rc < 0)
		unlink(tmp);
	if (key_tmp != NULL)
		unlink(key_tmp);
	free(key_tmp);
	free(tmp);
	return rc;
}

int sqlite_store_backup(void *impl, const char *path, store_backend_cb *cb, void *ctx)
{
	struct sqlite_store *s = impl;
	struct backup_job *j = store_job_new(sizeof(*j), s, STORE_JOB_READ, backup_run, cb, ctx);
	j->path = xstrdup(path);
	j->job.free_args = backup_job_free;
	return store_job_submit(&j->job);
}

/* ---- Extras and restore: files, no open store ---- */

#define EXTRAS_TABLE "sealmail_backup_extras"

int store_backup_put_extra(const char *backup, const uint8_t *kek, const char *name,
                           const void *data, size_t len, const char **error_r)
{
	static _Thread_local char open_msg[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct store_vfs *vfs = NULL;
	char *key = key_path_of(backup);
	int rc = backup_open(backup, key, kek, SQLITE_OPEN_READWRITE, &db, &vfs, open_msg,
	                     sizeof(open_msg));
	free(key);
	if (rc != SQLITE_OK) {
		*error_r = open_msg;
		backup_close(db, vfs);
		return -EIO;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db,
		                  "CREATE TABLE IF NOT EXISTS " EXTRAS_TABLE
		                  " (name TEXT PRIMARY KEY, data BLOB NOT NULL)",
		                  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
		    db, "INSERT OR REPLACE INTO " EXTRAS_TABLE " (name, data) VALUES (?, ?)", -1,
		    &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	if (rc == SQLITE_OK && backup_seal(db) < 0)
		rc = SQLITE_ERROR;
	if (rc != SQLITE_OK)
		*error_r = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		static _Thread_local char msg[256];
		snprintf(msg, sizeof(msg), "%s", *error_r);
		*error_r = msg;
	}
	backup_close(db, vfs);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* The whole integrity check ("ok"): 0, else -EIO with the first problem in msg. */
static int integrity(sqlite3 *db, char *msg, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	const char *v = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	int out = v != NULL && strcmp(v, "ok") == 0 ? 0 : -EIO;
	if (out < 0)
		snprintf(msg, cap, "%s", v != NULL ? v : sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return out;
}

static int copy_file(const char *from, const char *to, char *msg, size_t cap)
{
	int in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		snprintf(msg, cap, "cannot read %s: %s", from, strerror(errno));
		return -errno;
	}
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		snprintf(msg, cap, "cannot write %s: %s", to, strerror(errno));
		close(in);
		return -errno;
	}
	char buf[1 << 16];
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				break;
			}
			off += w;
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	if (rc < 0)
		snprintf(msg, cap, "copying %s to %s: %s", from, to, strerror(-rc));
	close(in);
	close(out);
	return rc;
}

int store_restore(const char *backup, const char *db_path, const uint8_t *kek,
                  store_restore_extra_fn *extra, void *ctx, const char **error_r)
{
	static _Thread_local char msg[512];
	char *tmp = xasprintf("%s.restore", db_path);
	char *wal = xasprintf("%s-wal", db_path);
	char *shm = xasprintf("%s-shm", db_path);
	char *bkey = key_path_of(backup);
	char *hdr = store_key_path(db_path);
	char *hdr_new = xasprintf("%s.new", hdr);
	bool sealed = access(bkey, F_OK) == 0;
	sqlite3 *db = NULL;
	struct store_vfs *vfs = NULL;
	int rc;
	if (!sealed && access(hdr, F_OK) == 0) {
		snprintf(
		    msg, sizeof(msg),
		    "the backup is not encrypted but the store is (%s): restore into a data_dir "
		    "without it, or move it away first",
		    hdr);
		*error_r = msg;
		rc = -EPERM;
		goto out;
	}
	rc = backup_open(backup, bkey, kek, SQLITE_OPEN_READONLY, &db, &vfs, msg, sizeof(msg));
	if (rc != SQLITE_OK || integrity(db, msg, sizeof(msg)) < 0 ||
	    backup_verify(db, msg, sizeof(msg)) < 0) {
		*error_r = msg;
		rc = -EIO;
		goto out;
	}
	sqlite3_close(db);
	db = NULL;
	rc = copy_file(backup, tmp, msg, sizeof(msg));
	if (rc < 0) {
		*error_r = msg;
		goto out;
	}
	/* The extras go to the caller, then out of the copy: a store has no such table. */
	rc = sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE,
	                     vfs != NULL ? store_vfs_name(vfs) : NULL) == SQLITE_OK
	         ? 0
	         : -EIO;
	if (rc == 0 && vfs != NULL &&
	    sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	sqlite3_stmt *st = NULL;
	if (rc == 0 && sqlite3_prepare_v2(db, "SELECT name, data FROM " EXTRAS_TABLE, -1, &st,
	                                  NULL) == SQLITE_OK) {
		while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
			if (extra != NULL)
				rc = extra(ctx, (const char *)sqlite3_column_text(st, 0),
				           sqlite3_column_blob(st, 1),
				           (size_t)sqlite3_column_bytes(st, 1));
		sqlite3_finalize(st);
		if (rc == 0 &&
		    sqlite3_exec(db, "DROP TABLE " EXTRAS_TABLE, NULL, NULL, NULL) != SQLITE_OK)
			rc = -EIO;
	}
	if (rc == 0 &&
	    sqlite3_exec(db, "DROP TABLE IF EXISTS " SUM_TABLE, NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	/* The store's own connections never open a rollback journal: the sealed copy is put in
	 * WAL mode here, while its journal may still live in memory. */
	if (rc == 0 && vfs != NULL &&
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc == 0 && integrity(db, msg, sizeof(msg)) < 0)
		rc = -EIO;
	else if (rc < 0)
		snprintf(msg, sizeof(msg), "preparing the restored copy %s failed", tmp);
	sqlite3_close(db);
	db = NULL;
	if (rc == 0)
		rc = fsync_path(tmp, O_RDONLY);
	if (rc < 0) {
		*error_r = msg;
		goto out;
	}
	/* The data key wrapped under the configured key, beside store.key until the new file
	 * has the name (the next open keeps the header that opens mail.db). */
	if (vfs != NULL) {
		uint8_t dek[STORE_KEK_LEN];
		const char *err = NULL;
		rc = store_key_unwrap(bkey, kek, dek, &err);
		if (rc == 0)
			rc = store_key_write(hdr_new, kek, dek, &err);
		gnutls_memset(dek, 0, sizeof(dek));
		if (rc < 0) {
			snprintf(msg, sizeof(msg), "%s", err);
			*error_r = msg;
			goto out;
		}
	}
	/* The old store's WAL belongs to the old file: folded into it first (so that a crash
	 * from here on still leaves the old store whole, when it can be read at all), then
	 * removed before the new file takes the name, so it is never replayed into that. An
	 * encrypted old store is left to its own key: its WAL is folded in by the store's
	 * clean close, and a crash leaves the WAL to the old file's next open. */
	if (access(db_path, F_OK) == 0 && access(hdr, F_OK) != 0 &&
	    sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	db = NULL;
	if ((unlink(wal) < 0 && errno != ENOENT) || (unlink(shm) < 0 && errno != ENOENT) ||
	    rename(tmp, db_path) < 0) {
		rc = -errno;
		snprintf(msg, sizeof(msg), "putting the restored store in place at %s: %s", db_path,
		         strerror(-rc));
		*error_r = msg;
		goto out;
	}
	char *d = xstrdup(db_path);
	rc = fsync_path(dirname(d), O_RDONLY | O_DIRECTORY);
	free(d);
	if (rc == 0 && vfs != NULL)
		rc = store_crypt_recover(db_path, kek);
	/* After: the store as the daemon will open it. */
	if (rc == 0 && (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
	                                vfs != NULL ? store_vfs_name(vfs) : NULL) != SQLITE_OK ||
	                integrity(db, msg, sizeof(msg)) < 0)) {
		*error_r = msg;
		rc = -EIO;
	}
out:
	backup_close(db, vfs);
	unlink(tmp);
	if (access(hdr_new, F_OK) == 0 && rc < 0)
		unlink(hdr_new);
	free(hdr_new);
	free(hdr);
	free(bkey);
	free(tmp);
	free(wal);
	free(shm);
	return rc;
}
