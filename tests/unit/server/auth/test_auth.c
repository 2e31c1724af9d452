#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/base64.h"
#include "server/auth/auth.h"

static void b64(const void *raw, size_t len, char *out)
{
	base64_encode(raw, len, out);
}

Test(auth_plain, decodes_with_and_without_authzid)
{
	char enc[256];
	struct auth_plain p;
	b64("\0alice@corp.example\0s3cret", 26, enc);
	cr_assert_eq(auth_plain_decode(enc, strlen(enc), &p), 0);
	cr_assert_str_eq(p.authzid, "");
	cr_assert_str_eq(p.authcid, "alice@corp.example");
	cr_assert_str_eq(p.password, "s3cret");
	b64("admin\0alice\0pw", 14, enc);
	cr_assert_eq(auth_plain_decode(enc, strlen(enc), &p), 0);
	cr_assert_str_eq(p.authzid, "admin");
	auth_plain_wipe(&p);
	cr_assert_eq(p.password[0], '\0');
}

Test(auth_plain, refuses_malformed)
{
	struct {
		const char *raw;
		size_t len;
	} bad[] = {
	    {"alice\0pw", 8},       /* one NUL */
	    {"\0alice\0pw\0x", 11}, /* three NULs */
	    {"\0\0pw", 4},          /* empty authcid */
	    {"\0alice\0", 7},       /* empty password */
	    {"\0al\nice\0pw", 10},  /* control byte */
	    {"", 0},
	};
	char enc[256];
	struct auth_plain p;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b64(bad[i].raw, bad[i].len, enc);
		cr_expect_lt(auth_plain_decode(enc, strlen(enc), &p), 0, "case %zu", i);
	}
	cr_expect_lt(auth_plain_decode("not base64!", 11, &p), 0);
	/* Over-long field. */
	char raw[700];
	memset(raw, 'a', sizeof(raw));
	raw[0] = '\0';
	raw[10] = '\0';
	char big[1024];
	b64(raw, sizeof(raw), big);
	cr_expect_lt(auth_plain_decode(big, strlen(big), &p), 0);
	/* Huge input is refused before decoding. */
	static char huge[100000];
	memset(huge, 'A', sizeof(huge) - 1);
	cr_expect_lt(auth_plain_decode(huge, sizeof(huge) - 1, &p), 0);
}

Test(auth_login, decodes_a_field)
{
	char out[AUTH_FIELD_MAX + 1];
	cr_assert_eq(auth_login_decode("Ym9i", 4, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "bob");
	cr_assert_lt(auth_login_decode("", 0, out, sizeof(out)), 0);
	cr_assert_lt(auth_login_decode("AA==", 4, out, sizeof(out)), 0); /* a NUL */
}

Test(authcache, hits_expires_and_follows_the_stored_hash)
{
	struct authcache *ac = authcache_new(60000);
	uint64_t t = 5000;
	cr_assert(!authcache_hit(ac, "bob", "pw", "$y$hash1", t));
	authcache_add(ac, "bob", "pw", "$y$hash1", t);
	cr_assert(authcache_hit(ac, "bob", "pw", "$y$hash1", t + 1));
	cr_assert(!authcache_hit(ac, "bob", "wrong", "$y$hash1", t + 1));
	cr_assert(!authcache_hit(ac, "alice", "pw", "$y$hash1", t + 1));
	/* The password was changed elsewhere: the stored hash differs. */
	cr_assert(!authcache_hit(ac, "bob", "pw", "$y$hash2", t + 1));
	/* Expired. */
	cr_assert(!authcache_hit(ac, "bob", "pw", "$y$hash1", t + 60000));
	authcache_add(ac, "bob", "pw", "$y$hash1", t);
	authcache_forget(ac, "bob");
	cr_assert(!authcache_hit(ac, "bob", "pw", "$y$hash1", t + 1));
	authcache_free(ac);
}
