/*
 * Sealed spool files (store_spool.h). The process key is drawn once, on first use, and
 * never leaves memory.
 */
#include "storage/store_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"

#define SPOOL_MAGIC  "SEALSPL1"
#define SPOOL_SALT   24
#define SPOOL_RECORD (STORE_SPOOL_CHUNK + STORE_SPOOL_TAG)

static pthread_once_t spool_key_once = PTHREAD_ONCE_INIT;
static uint8_t spool_key[32];
static bool spool_key_ok;

static void spool_key_init(void)
{
	spool_key_ok = gnutls_rnd(GNUTLS_RND_KEY, spool_key, sizeof(spool_key)) == 0;
}

static int file_cipher(const uint8_t salt[SPOOL_SALT], gnutls_aead_cipher_hd_t *h)
{
	pthread_once(&spool_key_once, spool_key_init);
	if (!spool_key_ok)
		return -EIO;
	uint8_t k[32];
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, spool_key, sizeof(spool_key), salt, SPOOL_SALT, k) <
	    0)
		return -EIO;
	gnutls_datum_t d = {k, sizeof(k)};
	int rc = gnutls_aead_cipher_init(h, GNUTLS_CIPHER_AES_256_GCM, &d) < 0 ? -EIO : 0;
	gnutls_memset(k, 0, sizeof(k));
	return rc;
}

static void chunk_nonce_ad(uint64_t index, bool final, uint8_t nonce[12], uint8_t ad[9])
{
	memset(nonce, 0, 12);
	for (int i = 0; i < 8; i++) {
		nonce[11 - i] = (uint8_t)(index >> (8 * i));
		ad[7 - i] = (uint8_t)(index >> (8 * i));
	}
	ad[8] = final ? 1 : 0;
}

int store_spool_seal_begin(struct store_spool_sealer *s, uint8_t hdr[STORE_SPOOL_HDR])
{
	memset(s, 0, sizeof(*s));
	memcpy(hdr, SPOOL_MAGIC, 8);
	if (gnutls_rnd(GNUTLS_RND_NONCE, hdr + 8, SPOOL_SALT) < 0)
		return -EIO;
	gnutls_aead_cipher_hd_t h;
	if (file_cipher(hdr + 8, &h) < 0)
		return -EIO;
	s->aead = h;
	return 0;
}

int store_spool_seal_chunk(struct store_spool_sealer *s, const void *in, size_t len, bool final,
                           uint8_t *out)
{
	uint8_t nonce[12], ad[9];
	if (s->aead == NULL || len > STORE_SPOOL_CHUNK)
		return -EIO;
	chunk_nonce_ad(s->index, final, nonce, ad);
	size_t out_len = len + STORE_SPOOL_TAG;
	if (gnutls_aead_cipher_encrypt(s->aead, nonce, sizeof(nonce), ad, sizeof(ad),
	                               STORE_SPOOL_TAG, in, len, out, &out_len) < 0 ||
	    out_len != len + STORE_SPOOL_TAG)
		return -EIO;
	s->index++;
	return 0;
}

void store_spool_seal_end(struct store_spool_sealer *s)
{
	if (s->aead != NULL)
		gnutls_aead_cipher_deinit(s->aead);
	s->aead = NULL;
}

struct store_spool_reader {
	int refs;
	int fd;
	bool sealed;
	gnutls_aead_cipher_hd_t aead;
	uint64_t size;    /* plain bytes */
	uint64_t records; /* sealed: chunks in the file */
	int64_t cached;   /* index of the chunk in plain, -1 for none */
	size_t cached_len;
	uint8_t *plain;
	uint8_t *rec;
};

int store_spool_open(const char *path, bool sealed, struct store_spool_reader **r_r,
                     uint64_t *size_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct store_spool_reader *r = xcalloc(1, sizeof(*r));
	r->refs = 1;
	r->fd = fd;
	r->sealed = sealed;
	r->cached = -1;
	if (!sealed) {
		r->size = (uint64_t)st.st_size;
	} else {
		uint8_t hdr[STORE_SPOOL_HDR];
		uint64_t body =
		    st.st_size > STORE_SPOOL_HDR ? (uint64_t)st.st_size - STORE_SPOOL_HDR : 0;
		r->records = (body + SPOOL_RECORD - 1) / SPOOL_RECORD;
		uint64_t last = r->records > 0 ? body - (r->records - 1) * SPOOL_RECORD : 0;
		if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) ||
		    memcmp(hdr, SPOOL_MAGIC, 8) != 0 || r->records == 0 || last < STORE_SPOOL_TAG ||
		    file_cipher(hdr + 8, &r->aead) < 0) {
			log_event(LOGL_ERROR,
			          "event=store_integrity_error file=\"%s\" reason=\"not a spool "
			          "file sealed by this process\"",
			          path);
			r->aead = NULL;
			store_spool_close(r);
			return -EBADMSG;
		}
		r->size = body - r->records * STORE_SPOOL_TAG;
		r->plain = xmalloc(STORE_SPOOL_CHUNK);
		r->rec = xmalloc(SPOOL_RECORD);
	}
	*r_r = r;
	*size_r = r->size;
	return 0;
}

static int load_chunk(struct store_spool_reader *r, uint64_t index)
{
	if ((int64_t)index == r->cached)
		return 0;
	bool final = index + 1 == r->records;
	uint64_t off = STORE_SPOOL_HDR + index * SPOOL_RECORD;
	size_t want =
	    final ? (size_t)(r->size - index * STORE_SPOOL_CHUNK) + STORE_SPOOL_TAG : SPOOL_RECORD;
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(r->fd, r->rec + got, want - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	uint8_t nonce[12], ad[9];
	chunk_nonce_ad(index, final, nonce, ad);
	size_t out_len = want - STORE_SPOOL_TAG;
	r->cached = -1;
	if (gnutls_aead_cipher_decrypt(r->aead, nonce, sizeof(nonce), ad, sizeof(ad),
	                               STORE_SPOOL_TAG, r->rec, want, r->plain, &out_len) < 0) {
		log_event(LOGL_ERROR,
		          "event=store_integrity_error file=spool chunk=%llu reason=\"spool chunk "
		          "fails its tag: cut, reordered or modified\"",
		          (unsigned long long)index);
		return -EBADMSG;
	}
	r->cached = (int64_t)index;
	r->cached_len = out_len;
	return 0;
}

ssize_t store_spool_pread(struct store_spool_reader *r, void *buf, size_t len, uint64_t off)
{
	if (off >= r->size || len == 0)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	if (!r->sealed) {
		for (;;) {
			ssize_t n = pread(r->fd, buf, len, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			return n < 0 ? -errno : n;
		}
	}
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t index = pos / STORE_SPOOL_CHUNK;
		int rc = load_chunk(r, index);
		if (rc < 0)
			return rc;
		size_t in = (size_t)(pos - index * STORE_SPOOL_CHUNK);
		size_t n = r->cached_len - in;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)buf + done, r->plain + in, n);
		done += n;
	}
	return (ssize_t)done;
}

void store_spool_ref(struct store_spool_reader *r)
{
	r->refs++;
}

void store_spool_close(struct store_spool_reader *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	if (r->aead != NULL)
		gnutls_aead_cipher_deinit(r->aead);
	if (r->plain != NULL) {
		gnutls_memset(r->plain, 0, STORE_SPOOL_CHUNK);
		free(r->plain);
	}
	free(r->rec);
	close(r->fd);
	free(r);
}
