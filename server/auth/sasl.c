/* SASL PLAIN (RFC 4616) and LOGIN decoding: pure, bounded, strict. */
#include <errno.h>
#include <string.h>

#include "common/base64.h"
#include "server/auth/auth.h"

static int auth_copy_field(char *dst, const unsigned char *src, size_t len)
{
	if (len > AUTH_FIELD_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (src[i] < 0x20 || src[i] == 0x7f)
			return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

int auth_plain_decode(const char *b64, size_t len, struct auth_plain *out)
{
	unsigned char raw[3 * AUTH_FIELD_MAX + 8];
	int r = -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len > base64_encoded_len(sizeof(raw) - 3))
		return -EINVAL;
	long n = base64_decode(b64, len, raw);
	if (n < 0)
		goto out;
	const unsigned char *p = raw, *end = raw + n;
	const unsigned char *nul1 = memchr(p, '\0', (size_t)(end - p));
	if (nul1 == NULL)
		goto out;
	const unsigned char *nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL)
		goto out;
	if (nul2 == nul1 + 1 || nul2 + 1 == end)
		goto out; /* empty authcid or password */
	if (auth_copy_field(out->authzid, p, (size_t)(nul1 - p)) < 0 ||
	    auth_copy_field(out->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1)) < 0 ||
	    auth_copy_field(out->password, nul2 + 1, (size_t)(end - nul2 - 1)) < 0)
		goto out;
	r = 0;
out:
	explicit_bzero(raw, sizeof(raw));
	if (r < 0)
		auth_plain_wipe(out);
	return r;
}

void auth_plain_wipe(struct auth_plain *p)
{
	explicit_bzero(p, sizeof(*p));
}

int auth_login_decode(const char *b64, size_t len, char *out, size_t outlen)
{
	unsigned char raw[AUTH_FIELD_MAX + 4];
	if (len > base64_encoded_len(AUTH_FIELD_MAX) || outlen == 0)
		return -EINVAL;
	long n = base64_decode(b64, len, raw);
	int r = -EINVAL;
	if (n > 0 && (size_t)n < outlen && memchr(raw, '\0', (size_t)n) == NULL)
		r = auth_copy_field(out, raw, (size_t)n);
	explicit_bzero(raw, sizeof(raw));
	return r;
}
