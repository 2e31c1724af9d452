/*
 * The KEK file and the wrapped-DEK header (store_key.h). Everything secret is wiped with
 * gnutls_memset once used.
 */
#include "storage/store_key.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xmalloc.h"

#define HDR_MAGIC "SEALMKEY"
#define HDR_AD    20
#define HDR_CHECK 12
#define HDR_NONCE 20
#define HDR_DEK   32
#define HDR_TAG   64

static _Thread_local char key_error[512];

__attribute__((format(printf, 3, 4))) static int fail(const char **error_r, int rc, const char *fmt,
                                                      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key_error, sizeof(key_error), fmt, ap);
	va_end(ap);
	*error_r = key_error;
	return rc;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int kek_load(const char *path, bool check_mode, uint8_t kek[STORE_KEK_LEN],
                    const char **error_r)
{
	uint8_t buf[80];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail(error_r, -errno, "cannot read the key %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(error_r, -EINVAL, "the key %s is not a regular file", path);
	}
	if (check_mode && (st.st_mode & 077) != 0) {
		close(fd);
		return fail(error_r, -EPERM,
		            "the key %s may be read by group or others: chmod 0400 it", path);
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	int rc = 0;
	if (n == STORE_KEK_LEN) {
		memcpy(kek, buf, STORE_KEK_LEN);
	} else if (n == 64 || (n == 65 && buf[64] == '\n')) {
		for (int i = 0; i < STORE_KEK_LEN && rc == 0; i++) {
			int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
			if (hi < 0 || lo < 0)
				rc = -EINVAL;
			else
				kek[i] = (uint8_t)(hi << 4 | lo);
		}
	} else {
		rc = -EINVAL;
	}
	gnutls_memset(buf, 0, sizeof(buf));
	if (rc < 0) {
		gnutls_memset(kek, 0, STORE_KEK_LEN);
		return fail(error_r, rc,
		            "the key %s is neither 32 bytes nor 64 hex digits: make one with "
		            "`sealctl store genkey %s`",
		            path, path);
	}
	return 0;
}

int store_kek_load(const char *path, uint8_t kek[STORE_KEK_LEN], const char **error_r)
{
	return kek_load(path, true, kek, error_r);
}

int store_kek_generate(const char *path, const char **error_r)
{
	uint8_t k[STORE_KEK_LEN];
	char hex[2 * STORE_KEK_LEN + 2];
	if (gnutls_rnd(GNUTLS_RND_KEY, k, sizeof(k)) < 0)
		return fail(error_r, -EIO, "no random bytes for %s", path);
	for (int i = 0; i < STORE_KEK_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	hex[2 * STORE_KEK_LEN] = '\n';
	gnutls_memset(k, 0, sizeof(k));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0) {
		gnutls_memset(hex, 0, sizeof(hex));
		return fail(error_r, -errno, "cannot create the key %s: %s", path, strerror(errno));
	}
	ssize_t w = write(fd, hex, 2 * STORE_KEK_LEN + 1);
	gnutls_memset(hex, 0, sizeof(hex));
	int rc = (w == 2 * STORE_KEK_LEN + 1 && fsync(fd) == 0) ? 0 : -EIO;
	close(fd);
	if (rc < 0) {
		unlink(path);
		return fail(error_r, rc, "cannot write the key %s", path);
	}
	return 0;
}

static int kek_check(const uint8_t kek[STORE_KEK_LEN], uint8_t out[8])
{
	static const char label[] = "sealmail kek check";
	uint8_t mac[32];
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, kek, STORE_KEK_LEN, label, sizeof(label) - 1, mac) <
	    0)
		return -EIO;
	memcpy(out, mac, 8);
	return 0;
}

static int wrap_cipher(const uint8_t kek[STORE_KEK_LEN], gnutls_aead_cipher_hd_t *h)
{
	gnutls_datum_t k = {(unsigned char *)kek, STORE_KEK_LEN};
	return gnutls_aead_cipher_init(h, GNUTLS_CIPHER_AES_256_GCM, &k) < 0 ? -EIO : 0;
}

int store_key_unwrap(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                     uint8_t dek_r[STORE_KEK_LEN], const char **error_r)
{
	uint8_t h[STORE_KEY_HDR_LEN + 1], check[8];
	int fd = open(header_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(error_r, -errno, "cannot read %s: %s", header_path, strerror(errno));
	ssize_t n = read(fd, h, sizeof(h));
	close(fd);
	if (n != STORE_KEY_HDR_LEN || memcmp(h, HDR_MAGIC, 8) != 0 || h[8] != 1 || h[9] != 1)
		return fail(error_r, -EBADMSG,
		            "%s is not a sealmail key header (or of a newer version): restore it "
		            "from the backup of the store",
		            header_path);
	if (kek_check(kek, check) < 0)
		return fail(error_r, -EIO, "cannot compute the key check for %s", header_path);
	if (memcmp(check, h + HDR_CHECK, 8) != 0)
		return fail(error_r, -EKEYREJECTED,
		            "the configured key is not the key of this store (%s): configure the "
		            "key it was encrypted with",
		            header_path);
	gnutls_aead_cipher_hd_t c;
	if (wrap_cipher(kek, &c) < 0)
		return fail(error_r, -EIO, "cannot set up AES-256-GCM for %s", header_path);
	size_t out_len = STORE_KEK_LEN;
	int grc = gnutls_aead_cipher_decrypt(c, h + HDR_NONCE, 12, h, HDR_AD, 16, h + HDR_DEK,
	                                     STORE_KEK_LEN + 16, dek_r, &out_len);
	gnutls_aead_cipher_deinit(c);
	if (grc < 0 || out_len != STORE_KEK_LEN) {
		gnutls_memset(dek_r, 0, STORE_KEK_LEN);
		return fail(error_r, -EBADMSG,
		            "%s fails its authentication with the right key: it was modified; "
		            "restore it from the backup of the store",
		            header_path);
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int store_key_write(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                    const uint8_t dek[STORE_KEK_LEN], const char **error_r)
{
	uint8_t h[STORE_KEY_HDR_LEN] = {0};
	memcpy(h, HDR_MAGIC, 8);
	h[8] = 1; /* version */
	h[9] = 1; /* AES-256-GCM */
	if (kek_check(kek, h + HDR_CHECK) < 0 ||
	    gnutls_rnd(GNUTLS_RND_NONCE, h + HDR_NONCE, 12) < 0)
		return fail(error_r, -EIO, "no random bytes for %s", header_path);
	gnutls_aead_cipher_hd_t c;
	if (wrap_cipher(kek, &c) < 0)
		return fail(error_r, -EIO, "cannot set up AES-256-GCM for %s", header_path);
	size_t out_len = STORE_KEK_LEN + 16;
	int grc = gnutls_aead_cipher_encrypt(c, h + HDR_NONCE, 12, h, HDR_AD, 16, dek,
	                                     STORE_KEK_LEN, h + HDR_DEK, &out_len);
	gnutls_aead_cipher_deinit(c);
	if (grc < 0)
		return fail(error_r, -EIO, "cannot wrap the data key for %s", header_path);
	char *tmp = xasprintf("%s.tmp", header_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = 0;
	if (fd < 0) {
		rc = -errno;
	} else {
		if (write(fd, h, sizeof(h)) != (ssize_t)sizeof(h) || fsync(fd) < 0)
			rc = -EIO;
		close(fd);
		if (rc == 0 && rename(tmp, header_path) < 0)
			rc = -errno;
		if (rc == 0)
			rc = fsync_dir_of(header_path);
		if (rc < 0)
			unlink(tmp);
	}
	free(tmp);
	if (rc < 0)
		return fail(error_r, rc, "cannot write %s: %s", header_path, strerror(-rc));
	return 0;
}

int store_key_create(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                     uint8_t dek_r[STORE_KEK_LEN], const char **error_r)
{
	if (access(header_path, F_OK) == 0)
		return fail(error_r, -EEXIST, "%s exists already", header_path);
	if (gnutls_rnd(GNUTLS_RND_KEY, dek_r, STORE_KEK_LEN) < 0)
		return fail(error_r, -EIO, "no random bytes for %s", header_path);
	int rc = store_key_write(header_path, kek, dek_r, error_r);
	if (rc < 0)
		gnutls_memset(dek_r, 0, STORE_KEK_LEN);
	return rc;
}

int store_kek_resolve(const char *key_file, const char *credential, uint8_t kek[STORE_KEK_LEN],
                      bool *have_r, const char **error_r)
{
	*have_r = false;
	if (key_file == NULL && credential == NULL)
		return 0;
	if (key_file != NULL) {
		int rc = store_kek_load(key_file, kek, error_r);
		*have_r = rc == 0;
		return rc;
	}
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || dir[0] == '\0')
		return fail(error_r, -ENOENT,
		            "encryption.credential %s is set but $CREDENTIALS_DIRECTORY is not: "
		            "start sealmaild from its systemd unit with LoadCredentialEncrypted=%s "
		            "(docs/encryption.md)",
		            credential, credential);
	if (strchr(credential, '/') != NULL)
		return fail(error_r, -EINVAL, "encryption.credential %s is a name, not a path",
		            credential);
	/* systemd's credential folder is private to the unit (its files' modes are its own
	 * choice): no mode check there. */
	char *path = xasprintf("%s/%s", dir, credential);
	int rc = kek_load(path, false, kek, error_r);
	free(path);
	*have_r = rc == 0;
	return rc;
}

bool store_key_present(const char *data_dir)
{
	char *hdr = xasprintf("%s/%s", data_dir, STORE_KEY_FILE);
	bool present = access(hdr, F_OK) == 0;
	free(hdr);
	return present;
}

int store_key_verify(const char *data_dir, const uint8_t kek[STORE_KEK_LEN], const char **error_r)
{
	if (!store_key_present(data_dir))
		return 0;
	char *hdr = xasprintf("%s/%s", data_dir, STORE_KEY_FILE);
	uint8_t dek[STORE_KEK_LEN];
	int rc = store_key_unwrap(hdr, kek, dek, error_r);
	gnutls_memset(dek, 0, sizeof(dek));
	free(hdr);
	return rc;
}
