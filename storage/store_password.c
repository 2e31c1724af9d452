/*
 * Password hashes, SCRAM material and address syntax: shared by the backends (no SQL here).
 * Hashing is yescrypt through libcrypt (about 40 ms): backends run it on worker threads.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/xmalloc.h"
#include "storage/store_backend.h"

#define SCRAM_ITERATIONS 4096
#define SCRAM_SALT_LEN   16

/* ---- Addresses ---- */

static bool local_char(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+/=?^_`{|}~-.", ch) != NULL);
}

int store_address_normalize(const char *address, char **out_r)
{
	size_t len = address != NULL ? strlen(address) : 0;
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	*out_r = NULL;
	if (len == 0 || len > 254 || at == NULL || at == address || at - address > 64)
		return -EINVAL;
	/* Local part: dot-atom. */
	for (const char *p = address; p < at; p++) {
		if (!local_char((unsigned char)*p))
			return -EINVAL;
		if (*p == '.' && (p == address || p + 1 == at || p[1] == '.'))
			return -EINVAL;
	}
	/* Domain: LDH labels of 1..63. */
	const char *label = at + 1;
	if (*label == '\0')
		return -EINVAL;
	for (const char *p = label;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);
			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return -EINVAL;
			if (*p == '\0')
				break;
			label = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '-') {
			return -EINVAL;
		}
	}
	char *out = xstrdup(address);
	for (char *p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	*out_r = out;
	return 0;
}

/* ---- Hashes ---- */

int store_password_hash(const char *password, char **hash_r)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	int rc = -EIO;

	*hash_r = NULL;
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) != NULL) {
		const char *h = crypt_rn(password, salt, cd, sizeof(*cd));
		if (h != NULL && h[0] != '*') {
			*hash_r = xstrdup(h);
			rc = 0;
		}
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

static char *dummy_hash;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void dummy_init(void)
{
	unsigned char rnd[16];
	char pw[33];
	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++) {
		pw[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
		pw[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
	}
	pw[32] = '\0';
	if (store_password_hash(pw, &dummy_hash) < 0)
		dummy_hash = xstrdup("$6$saltsalt$invalid");
	explicit_bzero(pw, sizeof(pw));
}

const char *store_password_dummy_hash(void)
{
	pthread_once(&dummy_once, dummy_init);
	return dummy_hash;
}

/* True when password matches hash (yescrypt, $6$, $2b$), in time independent of where the
 * strings differ. */
bool store_password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *h = crypt_rn(password, hash, cd, sizeof(*cd));
	bool ok = false;
	if (h != NULL && h[0] != '*') {
		size_t a = strlen(h), b = strlen(hash);
		unsigned char diff = a != b;
		for (size_t i = 0; i < a && i < b; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		ok = diff == 0;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static char *b64(const void *data, size_t len)
{
	gnutls_datum_t in = {.data = (unsigned char *)data, .size = (unsigned)len}, out;
	if (gnutls_base64_encode2(&in, &out) < 0)
		return NULL;
	char *s = xstrndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

/* RFC 5802: SaltedPassword = PBKDF2(password, salt, i); StoredKey = H(HMAC(SP, "Client
 * Key")); ServerKey = HMAC(SP, "Server Key"). */
int store_scram_derive(const char *password, struct store_scram *out)
{
	unsigned char salt[SCRAM_SALT_LEN], sp[32], ck[32], sk[32], stored[32];
	gnutls_datum_t key = {.data = (unsigned char *)password,
	                      .size = (unsigned)strlen(password)};
	gnutls_datum_t sd = {.data = salt, .size = sizeof(salt)};
	int rc = -EIO;

	memset(out, 0, sizeof(*out));
	if (gnutls_rnd(GNUTLS_RND_NONCE, salt, sizeof(salt)) < 0 ||
	    gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &sd, SCRAM_ITERATIONS, sp, sizeof(sp)) < 0 ||
	    gnutls_hmac_fast(GNUTLS_MAC_SHA256, sp, sizeof(sp), "Client Key", 10, ck) < 0 ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, ck, sizeof(ck), stored) < 0 ||
	    gnutls_hmac_fast(GNUTLS_MAC_SHA256, sp, sizeof(sp), "Server Key", 10, sk) < 0)
		goto out;
	out->salt = b64(salt, sizeof(salt));
	out->stored_key = b64(stored, sizeof(stored));
	out->server_key = b64(sk, sizeof(sk));
	out->iterations = SCRAM_ITERATIONS;
	rc = out->salt != NULL && out->stored_key != NULL && out->server_key != NULL ? 0 : -EIO;
out:
	explicit_bzero(sp, sizeof(sp));
	explicit_bzero(ck, sizeof(ck));
	return rc;
}

char *store_password_tag(const char *hash, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, hash, len, d) != 0)
		return NULL;
	char *tag = xmalloc(65);
	for (size_t i = 0; i < 32; i++) {
		tag[2 * i] = hex[d[i] >> 4];
		tag[2 * i + 1] = hex[d[i] & 15];
	}
	tag[64] = '\0';
	return tag;
}
