/*
 * libFuzzer target: strict base64 (common/base64.h). Whatever decodes must be canonical:
 * encoding the result gives the input back. Encoding arbitrary bytes and decoding them
 * must round-trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *dec = xmalloc(base64_decoded_max(size));
	long n = base64_decode((const char *)data, size, dec);
	if (n >= 0) {
		if ((size_t)n > base64_decoded_max(size))
			abort();
		char *enc = xmalloc(base64_encoded_len((size_t)n) + 1);
		size_t m = base64_encode(dec, (size_t)n, enc);
		if (m != size || memcmp(enc, data, size) != 0)
			abort();
		free(enc);
	}
	free(dec);

	char *enc = xmalloc(base64_encoded_len(size) + 1);
	size_t m = base64_encode(data, size, enc);
	if (m != base64_encoded_len(size) || enc[m] != '\0')
		abort();
	dec = xmalloc(base64_decoded_max(m));
	n = base64_decode(enc, m, dec);
	if (n < 0 || (size_t)n != size || memcmp(dec, data, size) != 0)
		abort();
	free(dec);
	free(enc);
	return 0;
}
