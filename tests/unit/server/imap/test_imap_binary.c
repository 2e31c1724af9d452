/* Transfer decoding for FETCH BINARY (RFC 3516, RFC 2045 6.7 and 6.8). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "server/imap/imap_binary.h"

static char out_s[4096];
static size_t out_n;

static int dec(const char *cte, const char *in, size_t len)
{
	struct buf o;
	buf_init(&o, SIZE_MAX);
	int rc = imap_binary_decode(cte, in, len, &o);
	cr_assert(o.len < sizeof(out_s));
	memcpy(out_s, o.data != NULL ? o.data : "", o.len);
	out_n = o.len;
	buf_free(&o);
	return rc;
}

#define DEC(cte, lit) dec(cte, lit, sizeof(lit) - 1)
#define EXPECT(lit)                                                                                \
	do {                                                                                       \
		cr_assert_eq(out_n, sizeof(lit) - 1, "got %zu bytes", out_n);                      \
		cr_assert(memcmp(out_s, lit, sizeof(lit) - 1) == 0);                               \
	} while (0)

TestSuite(imap_binary);

Test(imap_binary, identities)
{
	cr_assert_eq(DEC(NULL, "a=41\r\n"), 0);
	EXPECT("a=41\r\n");
	cr_assert_eq(DEC("8bit", "caf\xc3\xa9"), 0);
	EXPECT("caf\xc3\xa9");
	cr_assert_eq(DEC(" Binary ", "x\0y"), 0);
	EXPECT("x\0y");
}

Test(imap_binary, base64_with_line_breaks_and_junk)
{
	cr_assert_eq(DEC("base64", "AAEC\r\nAwQF\r\n/w==\r\n"), 0);
	EXPECT("\x00\x01\x02\x03\x04\x05\xff");
	cr_assert_eq(DEC("BASE64 (comment)", "aGVs!bG8="), 0);
	EXPECT("hello");
	cr_assert_eq(DEC("base64", ""), 0);
	EXPECT("");
	/* Data after the padding is not part of the content. */
	cr_assert_eq(DEC("base64", "aGk=aGk="), 0);
	EXPECT("hi");
}

Test(imap_binary, quoted_printable)
{
	cr_assert_eq(DEC("quoted-printable", "caf=C3=A9 =3D ok\r\n"), 0);
	EXPECT("caf\xc3\xa9 = ok\r\n");
	/* A soft break joins lines; padding before a break goes. */
	cr_assert_eq(DEC("Quoted-Printable", "long=\r\nline  \r\nend=  \r\n!"), 0);
	EXPECT("longline\r\nend!");
	/* Not an escape: kept as written. */
	cr_assert_eq(DEC("quoted-printable", "a=zz=4"), 0);
	EXPECT("a=zz=4");
	cr_assert_eq(DEC("quoted-printable", "bare\nlf=\nx"), 0);
	EXPECT("bare\nlfx");
	cr_assert_eq(DEC("quoted-printable", "nul=00byte"), 0);
	EXPECT("nul\0byte");
}

Test(imap_binary, unknown_encoding)
{
	cr_assert_eq(DEC("x-uuencode", "begin 644 x\r\n"), -EPROTONOSUPPORT);
	cr_assert_eq(DEC("base64x", "aGk="), -EPROTONOSUPPORT);
	cr_assert_eq(DEC("", "x"), -EPROTONOSUPPORT);
}

Test(imap_binary, nul_detection)
{
	cr_assert(imap_binary_has_nul("a\0b", 3));
	cr_assert(!imap_binary_has_nul("abc", 3));
	cr_assert(!imap_binary_has_nul("", 0));
}
