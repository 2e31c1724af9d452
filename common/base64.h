#ifndef SEALMAIL_BASE64_H
#define SEALMAIL_BASE64_H
/*
 * Strict base64 (RFC 4648 section 4, with padding) for SASL exchanges. Pure.
 */
#include <stdbool.h>
#include <stddef.h>

/* Decodes len bytes at in into out (room for at least base64_decoded_max(len) bytes).
 * Returns the decoded length, or -EINVAL for anything that is not canonical base64
 * (bad characters, bad padding, whitespace, non-zero trailing bits). */
long base64_decode(const char *in, size_t len, unsigned char *out);
static inline size_t base64_decoded_max(size_t len)
{
	return len / 4 * 3 + 3;
}
/* Encodes len bytes into out (room for base64_encoded_len(len) + 1); NUL-terminates.
 * Returns the encoded length. */
size_t base64_encode(const void *in, size_t len, char *out);
static inline size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

#endif
