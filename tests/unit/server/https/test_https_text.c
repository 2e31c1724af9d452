/*
 * The HTTPS side's pure helpers: XML escaping (every byte a client can send), address
 * validation, query parameters, the POX request's address and the query names logged.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "server/https/https_private.h"

static char *escape(const char *in, size_t len)
{
	static char out[512];
	struct buf b;
	buf_init(&b, 400);
	cr_assert_eq(https_xml_escape(&b, in, len), 0);
	snprintf(out, sizeof(out), "%s", b.data != NULL ? b.data : "");
	buf_free(&b);
	return out;
}

Test(https_text, xml_escape)
{
	cr_assert_str_eq(escape("plain", 5), "plain");
	cr_assert_str_eq(escape("a<b>&\"c'", 8), "a&lt;b&gt;&amp;&quot;c&apos;");
	cr_assert_str_eq(escape("</x><script>", 12), "&lt;/x&gt;&lt;script&gt;");
	cr_assert_str_eq(escape("&amp;", 5), "&amp;amp;");
	/* NUL and other controls cannot be written in XML 1.0 at all. */
	cr_assert_str_eq(escape("a\0b\x01\x7f", 5), "a\xef\xbf\xbd"
	                                            "b\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(escape("t\tn\nr\r", 6), "t\tn\nr\r");
	cr_assert_str_eq(escape("", 0), "");
	/* UTF-8 passes unchanged. */
	cr_assert_str_eq(escape("\xc3\xa9", 2), "\xc3\xa9");
}

Test(https_text, xml_escape_every_byte)
{
	/* No byte ever comes out as a raw markup character. */
	for (int ch = 0; ch < 256; ch++) {
		char in = (char)ch;
		const char *out = escape(&in, 1);
		cr_assert(strpbrk(out, "<>\"'") == NULL, "byte %d gave %s", ch, out);
		cr_assert(out[0] != '&' || strchr(out, ';') != NULL);
	}
}

Test(https_text, xml_escape_bounded)
{
	struct buf b;
	buf_init(&b, 8);
	cr_assert_eq(https_xml_escape(&b, "<<<", 3), -ENOBUFS);
	buf_free(&b);
}

struct addr_case {
	const char *addr;
	bool ok;
};

Test(https_text, address_valid)
{
	static const struct addr_case cases[] = {
	    {"alice@corp.example", true},
	    {"Bob.Smith+tag@Corp.Example", true},
	    {"a!#$%&'*+-/=?^_`{|}~@x.y", true},
	    {"x@localhost", true},
	    {"", false},
	    {"alice", false},
	    {"@corp.example", false},
	    {"alice@", false},
	    {".alice@corp.example", false},
	    {"alice.@corp.example", false},
	    {"al..ice@corp.example", false},
	    {"a b@corp.example", false},
	    {"a<b@corp.example", false},
	    {"a\"b@corp.example", false},
	    {"alice@corp..example", false},
	    {"alice@-corp.example", false},
	    {"alice@corp-.example", false},
	    {"alice@corp_x.example", false},
	    {"alice@corp.example.", false},
	    {"alice@b@corp.example", false},
	    {"\xc3\xa9@corp.example", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(https_address_valid(cases[i].addr, strlen(cases[i].addr)), cases[i].ok,
		             "%s", cases[i].addr);
	/* Length: a 64-byte local part is the most; 254 bytes in all. */
	char buf[300];
	memset(buf, 'a', 65);
	memcpy(buf + 65, "@x.example", 11);
	cr_assert(!https_address_valid(buf, strlen(buf)));
	cr_assert(https_address_valid(buf + 1, strlen(buf + 1)));
	/* An embedded NUL is never valid (len is the truth). */
	cr_assert(!https_address_valid("a\0b@x.example", 13));
}

Test(https_text, query_param)
{
	char out[64];
	cr_assert_eq(https_query_param("emailaddress=alice%40corp.example", "emailaddress", out,
	                               sizeof(out)),
	             1);
	cr_assert_str_eq(out, "alice@corp.example");
	cr_assert_eq(
	    https_query_param("a=1&EmailAddress=b%2bc+d&x", "emailaddress", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "b+c d");
	cr_assert_eq(https_query_param("x&emailaddress", "emailaddress", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "");
	cr_assert_eq(https_query_param("emailaddressx=1", "emailaddress", out, sizeof(out)), 0);
	cr_assert_eq(https_query_param(NULL, "emailaddress", out, sizeof(out)), 0);
	cr_assert_eq(https_query_param("", "emailaddress", out, sizeof(out)), 0);
	cr_assert_eq(https_query_param("e=%4", "e", out, sizeof(out)), -EINVAL);
	cr_assert_eq(https_query_param("e=%", "e", out, sizeof(out)), -EINVAL);
	cr_assert_eq(https_query_param("e=%zz", "e", out, sizeof(out)), -EINVAL);
	cr_assert_eq(https_query_param("e=a%00b", "e", out, sizeof(out)), -EINVAL);
	cr_assert_eq(https_query_param("e=12345", "e", out, 5), -EINVAL);
	cr_assert_eq(https_query_param("e=1234", "e", out, 5), 1);
}

Test(https_text, pox_email)
{
	const char *at;
	size_t len;
	const char *body = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>"
	                   "<EMailAddress> alice@corp.example\n</EMailAddress>"
	                   "<EMailAddress>second@x</EMailAddress></Request></Autodiscover>";
	cr_assert_eq(https_pox_email(body, strlen(body), &at, &len), 0);
	cr_assert_eq(len, strlen("alice@corp.example"));
	cr_assert_eq(memcmp(at, "alice@corp.example", len), 0);
	const char *pfx = "<a:Request><a:EMailAddress>b@c.d</a:EMailAddress></a:Request>";
	cr_assert_eq(https_pox_email(pfx, strlen(pfx), &at, &len), 0);
	cr_assert_eq(len, 5);
	const char *none[] = {"", "<Request/>", "<EMailAddress>unterminated", "<EMailAddress",
	                      "<EMailAddressX>a@b</EMailAddressX>"};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		cr_assert_eq(https_pox_email(none[i], strlen(none[i]), &at, &len), -ENOENT, "%s",
		             none[i]);
	/* The bound is len, not the NUL: a truncated body finds nothing past it. */
	const char *cut = "<EMailAddress>a@b.c</EMailAddress>";
	cr_assert_eq(https_pox_email(cut, 10, &at, &len), -ENOENT);
}

Test(https_text, query_names_drop_values)
{
	char out[64];
	https_query_names("emailaddress=alice%40corp.example&password=secret&flag", out,
	                  sizeof(out));
	cr_assert_str_eq(out, "emailaddress,password,flag");
	https_query_names(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "-");
	https_query_names("", out, sizeof(out));
	cr_assert_str_eq(out, "-");
	https_query_names("a\"b=1", out, sizeof(out));
	cr_assert_str_eq(out, "a\\x22b");
}
