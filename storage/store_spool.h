#ifndef SEALMAIL_STORE_SPOOL_H
#define SEALMAIL_STORE_SPOOL_H
/*
 * Sealed spool files (docs/encryption.md): a message in transit on disk is AES-256-GCM in
 * chunks. The file key is HMAC-SHA256 of a random key held only in this process's memory
 * and the file's random salt, so a spool file is noise to anyone without the running
 * process, and after a restart (when spool files are removed anyway).
 *
 *   header (32): "SEALSPL1" | salt (24)
 *   chunk i:     ciphertext of up to STORE_SPOOL_CHUNK bytes | tag (16)
 *
 * The nonce of chunk i is i (96 bits, each file has its own key); its additional data is i
 * and whether it is the last chunk, so a cut, reordered or extended file fails to open
 * instead of reading as a shorter message. The writer (server/spool.c) seals, the store
 * reads (store_deliver.c, the MIME parser).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_SPOOL_HDR   32
#define STORE_SPOOL_CHUNK (64 * 1024)
#define STORE_SPOOL_TAG   16

struct store_spool_sealer {
	void *aead; /* gnutls_aead_cipher_hd_t */
	uint64_t index;
};

/* Starts a sealed file: its header into hdr. 0 or -EIO. */
int store_spool_seal_begin(struct store_spool_sealer *s, uint8_t hdr[STORE_SPOOL_HDR]);
/* Seals len (<= STORE_SPOOL_CHUNK) bytes as the next chunk into out (len +
 * STORE_SPOOL_TAG bytes); final for the last one (which may be empty). 0 or -EIO. */
int store_spool_seal_chunk(struct store_spool_sealer *s, const void *in, size_t len, bool final,
                           uint8_t *out);
/* Frees the sealer's key (safe twice). */
void store_spool_seal_end(struct store_spool_sealer *s);

struct store_spool_reader;
/* Opens a spool file for reading its plain bytes: sealed ones are checked chunk by chunk as
 * they are read; !sealed reads the file as it is. 0 with *r_r and *size_r (plain bytes),
 * -EBADMSG for a file that is not sealed by this process or was cut, or -errno. */
int store_spool_open(const char *path, bool sealed, struct store_spool_reader **r_r,
                     uint64_t *size_r);
/* Up to len plain bytes at off: the count (0 at the end), or -EBADMSG when a chunk fails
 * its tag, or -errno. */
ssize_t store_spool_pread(struct store_spool_reader *r, void *buf, size_t len, uint64_t off);
/* References: open gives one; close drops one and frees at zero. */
void store_spool_ref(struct store_spool_reader *r);
void store_spool_close(struct store_spool_reader *r);

#endif
