/*
 * Base64 for SASL (base64.h) on Nettle, the library GnuTLS itself is built on, so the
 * transform is not ours to get wrong. Nettle's decoder is lenient (it skips white space
 * and accepts unused trailing bits); SASL wants exactly one spelling per value (RFC 4648
 * section 3.5), so a decoded value is accepted only when encoding it gives back the input.
 */
#include "common/base64.h"

#include <errno.h>
#include <nettle/base64.h>
#include <string.h>

/* Whether in (len bytes) is what Nettle writes for out (n bytes), compared a group at a time
 * so no copy of the whole is needed. */
static bool base64_is_canonical(const char *in, size_t len, const unsigned char *out, size_t n)
{
	if (len != BASE64_ENCODE_RAW_LENGTH(n))
		return false;
	for (size_t i = 0, o = 0; i < n; i += 3, o += 4) {
		char group[4];
		base64_encode_raw(group, n - i < 3 ? n - i : 3, out + i);
		if (memcmp(group, in + o, 4) != 0)
			return false;
	}
	return true;
}

long base64_decode(const char *in, size_t len, unsigned char *out)
{
	struct base64_decode_ctx ctx;
	size_t n = base64_decoded_max(len);
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, out, len, in) || !base64_decode_final(&ctx))
		return -EINVAL;
	if (!base64_is_canonical(in, len, out, n))
		return -EINVAL;
	return (long)n;
}

size_t base64_encode(const void *in, size_t len, char *out)
{
	size_t n = BASE64_ENCODE_RAW_LENGTH(len);
	base64_encode_raw(out, len, in);
	out[n] = '\0';
	return n;
}
