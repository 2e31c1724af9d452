/*
 * Whether a store is encrypted, decided before any file is touched: data_dir/store.key (the
 * wrapped data key) beside mail.db says it is. A key given for a plaintext store, no key for
 * an encrypted one, and a key that is not the store's are refused with what to do; none of
 * them creates, modifies or removes a file.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
