#include <criterion/criterion.h>
#include <string.h>

#include "common/base64.h"

struct b64_case {
	const char *plain;
	size_t plain_len;
	const char *enc;
};

static const struct b64_case good[] = {
    {"", 0, ""},        {"f", 1, "Zg=="},        {"fo", 2, "Zm8="},
    {"foo", 3, "Zm9v"}, {"foob", 4, "Zm9vYg=="}, {"\0alice\0secret", 13, "AGFsaWNlAHNlY3JldA=="},
};

Test(base64, round_trips_rfc4648_vectors)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char enc[64];
		unsigned char dec[64];
		base64_encode(good[i].plain, good[i].plain_len, enc);
		cr_expect_str_eq(enc, good[i].enc);
		long n = base64_decode(good[i].enc, strlen(good[i].enc), dec);
		cr_expect_eq(n, (long)good[i].plain_len);
		cr_expect(memcmp(dec, good[i].plain, good[i].plain_len) == 0);
	}
}

Test(base64, refuses_non_canonical_input)
{
	static const char *bad[] = {"Zg",     "Zg=",      "Z===", "Zh==", "Zm9=",     "Zm 9v",
	                            "Zm9v\n", "Zg==Zg==", "=Zg=", "Zm-v", "Zm9v====", "*"};
	unsigned char dec[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_lt(base64_decode(bad[i], strlen(bad[i]), dec), 0, "%s", bad[i]);
}
