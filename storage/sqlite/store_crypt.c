/*
 * Whether a store is encrypted, decided before any file is touched: data_dir/store.key (the
 * wrapped data key) beside mail.db says it is. A key given for a plaintext store, no key for
 * an encrypted one, and a key that is not the store's are refused with what to do; none of
 * them creates, modifies or removes a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "storage/sqlite/store_private.h"
#include "storage/sqlite/store_vfs.h"
#include "storage/store_key.h"

static _Thread_local char crypt_error[768];

char *store_key_path(const char *db_path)
{
	const char *slash = strrchr(db_path, '/');
	if (slash == NULL)
		return xstrdup(STORE_KEY_FILE);
	return xasprintf("%.*s/%s", (int)(slash - db_path), db_path, STORE_KEY_FILE);
}

static bool file_has_bytes(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size > 0;
}

int store_crypt_open(const char *db_path, const uint8_t *kek, struct store_vfs **vfs_r,
                     const char **error_r)
{
	char *hdr = store_key_path(db_path);
	struct stat st;
	bool has_hdr = stat(hdr, &st) == 0;
	int rc = 0;
	*vfs_r = NULL;
	if (kek == NULL) {
		if (has_hdr) {
			snprintf(crypt_error, sizeof(crypt_error),
			         "the store %s is encrypted (%s exists): configure its key "
			         "(encryption: key_file or credential)",
			         db_path, hdr);
			*error_r = crypt_error;
			rc = -EPERM;
		}
		free(hdr);
		return rc;
	}
	uint8_t dek[STORE_KEK_LEN];
	const char *err = NULL;
	if (store_crypt_recover(db_path, kek) == 0)
		has_hdr = stat(hdr, &st) == 0;
	if (has_hdr) {
		rc = store_key_unwrap(hdr, kek, dek, &err);
	} else if (file_has_bytes(db_path)) {
		snprintf(crypt_error, sizeof(crypt_error),
		         "the store %s is not encrypted but a key is configured: stop sealmaild "
		         "and run `sealctl store encrypt`, or remove the encryption key",
		         db_path);
		err = crypt_error;
		rc = -EPERM;
	} else {
		rc = store_key_create(hdr, kek, dek, &err);
	}
	if (rc == 0)
		rc = store_vfs_register(dek, vfs_r);
	gnutls_memset(dek, 0, sizeof(dek));
	if (rc < 0 && err == NULL) {
		snprintf(crypt_error, sizeof(crypt_error), "cannot set up the encrypted store %s",
		         db_path);
		err = crypt_error;
	}
	if (rc < 0)
		*error_r = err;
	free(hdr);
	return rc;
}

/* ---- Conversion of a plaintext store (sealctl store encrypt) ---- */

static void crash_point(const char *name)
{
	/* Tests kill the conversion at each step (test_encryption_at_rest.py). */
	const char *at = getenv("SEALMAIL_TEST_CRASH_AT");
	if (at != NULL && strcmp(at, name) == 0)
		raise(SIGKILL);
}

static int fsync_file(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int fsync_dir(const char *db_path)
{
	char *d = xstrdup(db_path);
	char *slash = strrchr(d, '/');
	if (slash != NULL)
		*slash = '\0';
	int rc = fsync_file(slash != NULL ? d : ".", O_RDONLY | O_DIRECTORY);
	free(d);
	return rc;
}

/* Page 1's clear bytes say whether a database file is sealed (its reserved bytes). */
static int file_is_sealed(const char *path)
{
	uint8_t h[24];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h))
		return 0;
	return h[20] == STORE_VFS_RESERVE;
}

int store_crypt_recover(const char *db_path, const uint8_t *kek)
{
	char *hdr = store_key_path(db_path);
	char *fresh = xasprintf("%s.new", hdr);
	int rc = 0;
	if (access(fresh, F_OK) == 0) {
		/* An interrupted conversion or restore: the rename of mail.db decided it, and the
		 * header that opens mail.db is the one to keep. */
		int sealed = file_is_sealed(db_path);
		if (sealed != 1) {
			unlink(fresh);
		} else if (kek != NULL) {
			uint8_t dek[STORE_KEK_LEN];
			const char *err = NULL;
			/* A key that does not unwrap the new header decides nothing (and a wrong
			 * key must change nothing). */
			int unwrapped = store_key_unwrap(fresh, kek, dek, &err) == 0;
			bool takes = unwrapped && store_vfs_check_file(db_path, dek) == 1;
			gnutls_memset(dek, 0, sizeof(dek));
			if (!unwrapped) {
				/* left for the right key */
			} else if (takes) {
				rc = rename(fresh, hdr) < 0 ? -errno : fsync_dir(db_path);
				log_event(LOGL_INFO,
				          "event=store_key_header_completed path=\"%s\" rc=%d", hdr,
				          rc);
			} else {
				unlink(fresh);
			}
		}
	}
	free(fresh);
	free(hdr);
	return rc;
}

static int count_of(sqlite3 *db, const char *sql, long long *n_r)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		*n_r = sqlite3_column_int64(st, 0);
	else
		rc = SQLITE_ERROR;
	sqlite3_finalize(st);
	return rc;
}

static int check_ok(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int ok = sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL) == SQLITE_OK &&
	         sqlite3_step(st) == SQLITE_ROW &&
	         strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	return ok ? 0 : -EIO;
}

int store_encrypt(const char *db_path, const uint8_t *kek, const char **error_r)
{
	char *hdr = store_key_path(db_path);
	char *fresh = xasprintf("%s.new", hdr);
	char *out = xasprintf("%s.encrypt", db_path);
	char *uri = NULL;
	struct store_vfs *vfs = NULL;
	sqlite3 *src = NULL, *dst = NULL;
	uint8_t dek[STORE_KEK_LEN];
	const char *err = NULL;
	long long msgs_src = -1, msgs_dst = -2;
	int rc;

	store_crypt_recover(db_path, kek);
	if (access(hdr, F_OK) == 0) {
		err = "the store is encrypted already";
		rc = -EEXIST;
		goto out;
	}
	if (!file_has_bytes(db_path)) {
		err = "there is no store to encrypt (a new store is created encrypted)";
		rc = -ENOENT;
		goto out;
	}
	unlink(out);
	unlink(fresh);
	/* The new key header waits beside store.key until the new file has taken the name. */
	rc = gnutls_rnd(GNUTLS_RND_KEY, dek, sizeof(dek)) < 0 ? -EIO : 0;
	if (rc == 0)
		rc = store_key_write(fresh, kek, dek, &err);
	if (rc < 0)
		goto out;
	crash_point("header");
	rc = store_vfs_register(dek, &vfs);
	if (rc < 0)
		goto out;
	store_vfs_memory_journals(vfs); /* out is discarded unless complete */
	rc = sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(src, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = count_of(src, "SELECT count(*) FROM entries", &msgs_src);
	if (rc != SQLITE_OK) {
		err = "the store cannot be read: is it a sealmail store?";
		rc = -EIO;
		goto out;
	}
	/* VACUUM INTO writes a fresh copy through the sealing VFS, with room for the nonce and
	 * tag in every page (the reserve asked for on the source is what the copy gets). */
	int reserve = STORE_VFS_RESERVE;
	sqlite3_file_control(src, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
	uri = sqlite3_mprintf("file:%s?vfs=%s", out, store_vfs_name(vfs));
	char *sql = sqlite3_mprintf("VACUUM INTO %Q", uri);
	rc = sqlite3_exec(src, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		static _Thread_local char m[512];
		snprintf(m, sizeof(m), "writing the encrypted copy %s: %s", out,
		         sqlite3_errmsg(src));
		err = m;
		rc = rc == SQLITE_FULL ? -ENOSPC : -EIO;
		goto out;
	}
	crash_point("copy");
	rc = fsync_file(out, O_RDONLY);
	if (rc == 0 &&
	    (sqlite3_open_v2(out, &dst, SQLITE_OPEN_READWRITE, store_vfs_name(vfs)) != SQLITE_OK ||
	     sqlite3_exec(dst, "PRAGMA temp_store = MEMORY; PRAGMA journal_mode = WAL", NULL, NULL,
	                  NULL) != SQLITE_OK ||
	     check_ok(dst) < 0 ||
	     count_of(dst, "SELECT count(*) FROM entries", &msgs_dst) != SQLITE_OK ||
	     msgs_dst != msgs_src)) {
		err = "the encrypted copy does not check out: the store was left as it was";
		rc = -EIO;
	}
	sqlite3_close(dst);
	dst = NULL;
	if (rc == 0)
		rc = fsync_file(out, O_RDONLY);
	if (rc < 0)
		goto out;
	crash_point("checked");
	/* The old WAL belongs to the old file: folded in, then removed before the new file
	 * takes the name. The rename is the step that decides: before it the old store is
	 * whole, after it the new one is and store_crypt_recover completes the header. */
	rc = sqlite3_exec(src, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(src);
	src = NULL;
	if (rc != SQLITE_OK) {
		err = "the store's WAL could not be folded in: is sealmaild stopped?";
		rc = -EBUSY;
		goto out;
	}
	char *wal = xasprintf("%s-wal", db_path), *shm = xasprintf("%s-shm", db_path);
	rc = ((unlink(wal) < 0 && errno != ENOENT) || (unlink(shm) < 0 && errno != ENOENT)) ? -errno
	                                                                                    : 0;
	free(wal);
	free(shm);
	crash_point("wal");
	if (rc == 0 && rename(out, db_path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(db_path);
	crash_point("renamed");
	if (rc == 0)
		rc = store_crypt_recover(db_path, kek);
	if (rc < 0)
		err = "putting the encrypted store in place failed";
out:
	gnutls_memset(dek, 0, sizeof(dek));
	if (src != NULL)
		sqlite3_close(src);
	if (dst != NULL)
		sqlite3_close(dst);
	store_vfs_unregister(vfs);
	if (rc < 0 && access(hdr, F_OK) < 0) {
		unlink(out);
		if (file_is_sealed(db_path) != 1)
			unlink(fresh);
	}
	sqlite3_free(uri);
	free(out);
	free(fresh);
	free(hdr);
	if (rc < 0)
		*error_r = err != NULL ? err : "the conversion failed";
	return rc;
}

int store_rekey(const char *db_path, const uint8_t *kek, const uint8_t *new_kek,
                const char **error_r)
{
	char *hdr = store_key_path(db_path);
	uint8_t dek[STORE_KEK_LEN];
	int rc = store_key_unwrap(hdr, kek, dek, error_r);
	if (rc == 0)
		rc = store_key_write(hdr, new_kek, dek, error_r);
	gnutls_memset(dek, 0, sizeof(dek));
	free(hdr);
	return rc;
}
