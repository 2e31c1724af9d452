#ifndef SEALMAIL_STORE_KEY_H
#define SEALMAIL_STORE_KEY_H
/*
 * Keys of an encrypted store (docs/encryption.md). The data key (DEK, 256 random bits)
 * seals every page; it is kept wrapped (AES-256-GCM) by the key-encryption key (KEK) in
 * data_dir/store.key, with a check value of the KEK so a wrong key is told apart from a
 * damaged header. The KEK comes from a file outside data_dir or a systemd credential and is
 * never stored by sealmail.
 *
 * Header (80 bytes): "SEALMKEY" | version 1 | algorithm 1 (AES-256-GCM) | 2 zero bytes |
 * KEK check (8: HMAC-SHA256(KEK, "sealmail kek check")) | nonce (12) | wrapped DEK (32) |
 * tag (16); the first 20 bytes are the additional data of the wrap.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_KEK_LEN     32
#define STORE_KEY_FILE    "store.key"
#define STORE_KEY_HDR_LEN 80

/* Reads a KEK file: 32 raw bytes, or 64 hex digits and an optional newline. Refuses a file
 * that group or others may read (-EPERM) or of another shape (-EINVAL). 0 and kek, or a
 * negative errno with *error_r set (valid until the next call on this thread). */
int store_kek_load(const char *path, uint8_t kek[STORE_KEK_LEN], const char **error_r);
/* The configured KEK: from key_file, or from the systemd credential name
 * ($CREDENTIALS_DIRECTORY/name). Both NULL: 0 with *have_r false (no encryption). A
 * credential without $CREDENTIALS_DIRECTORY is refused with what to do. */
int store_kek_resolve(const char *key_file, const char *credential, uint8_t kek[STORE_KEK_LEN],
                      bool *have_r, const char **error_r);
/* Whether data_dir holds an encrypted store (its store.key exists). */
bool store_key_present(const char *data_dir);
/* Checks kek against data_dir/store.key without touching anything: 0 (or no header yet),
 * -EKEYREJECTED, -EBADMSG, with *error_r. */
int store_key_verify(const char *data_dir, const uint8_t kek[STORE_KEK_LEN], const char **error_r);
/* Writes a new random KEK to path (created 0400, never overwritten: -EEXIST), as hex. */
int store_kek_generate(const char *path, const char **error_r);

/* The DEK wrapped in header_path under kek. -ENOENT: no header; -EKEYREJECTED: kek is not
 * the one the header was wrapped with; -EBADMSG: a damaged or unknown header. */
int store_key_unwrap(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                     uint8_t dek_r[STORE_KEK_LEN], const char **error_r);
/* A new random DEK wrapped under kek into header_path (written to a temporary file, fsynced
 * and renamed, then the folder fsynced). Refuses to replace a header (-EEXIST). */
int store_key_create(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                     uint8_t dek_r[STORE_KEK_LEN], const char **error_r);
/* Writes header_path holding dek wrapped under kek, replacing any header atomically (rekey,
 * restore, conversion). */
int store_key_write(const char *header_path, const uint8_t kek[STORE_KEK_LEN],
                    const uint8_t dek[STORE_KEK_LEN], const char **error_r);

#endif
