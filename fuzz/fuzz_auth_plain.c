/*
 * libFuzzer target: SASL PLAIN and AUTH LOGIN decoding (server/auth/auth.h). The input is
 * tried as base64 text, and also base64-encoded first so the decoder's field checks see
 * arbitrary bytes. Checks that accepted fields are bounded and free of control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/xmalloc.h"
#include "server/auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *f, bool may_be_empty)
{
	size_t n = strnlen(f, AUTH_FIELD_MAX + 1);
	if (n > AUTH_FIELD_MAX || (!may_be_empty && n == 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f)
			abort();
}

static void try_plain(const char *b64, size_t len)
{
	struct auth_plain p;
	if (auth_plain_decode(b64, len, &p) == 0) {
		check_field(p.authzid, true);
		check_field(p.authcid, false);
		check_field(p.password, false);
	}
	auth_plain_wipe(&p);
	char out[AUTH_FIELD_MAX + 1];
	if (auth_login_decode(b64, len, out, sizeof(out)) == 0 &&
	    strnlen(out, sizeof(out)) > AUTH_FIELD_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_plain((const char *)data, size);
	if (size > 3 * AUTH_FIELD_MAX + 8)
		return 0;
	char *b64 = xmalloc(base64_encoded_len(size) + 1);
	size_t n = base64_encode(data, size, b64);
	try_plain(b64, n);
	free(b64);
	return 0;
}
