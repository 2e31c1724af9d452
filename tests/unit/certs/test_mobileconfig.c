/*
 * certs/mobileconfig: the property list's shape and escaping, refusals, and a signature
 * GnuTLS verifies over the exact bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "certs/mobileconfig.h"

static char *build(const struct mobileconfig *mc)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	const char *err = NULL;
	cr_assert_eq(mobileconfig_build(mc, &o, &err), 0, "%s", err);
	char *s = strndup(o.data, o.len);
	buf_free(&o);
	return s;
}

Test(mobileconfig, account_without_identity)
{
	struct mobileconfig mc = {.address = "a&b<c>@corp.example",
	                          .host = "mail.corp.example",
	                          .imap_port = 993,
	                          .smtp_port = 465};
	char *s = build(&mc);
	cr_assert(strstr(s, "<string>a&amp;b&lt;c&gt;@corp.example</string>") != NULL, "%s", s);
	cr_assert_null(strstr(s, "a&b"));
	cr_assert(strstr(s, "<key>IncomingMailServerPortNumber</key>\n\t<integer>993</integer>") !=
	          NULL);
	cr_assert(strstr(s, "<key>OutgoingMailServerPortNumber</key>\n\t<integer>465</integer>") !=
	          NULL);
	cr_assert_null(strstr(s, "com.apple.security.pkcs12"));
	cr_assert(strstr(s, "<string>example.corp.mail.sealmail.") != NULL, "%s", s);
	free(s);
}

Test(mobileconfig, identity_payload_and_no_smtp)
{
	static const unsigned char p12[] = {0x30, 0x82, 0x01, 0x00, 0xff, 0x00, 0x41};
	struct mobileconfig mc = {.address = "u@x.example",
	                          .host = "h.x.example",
	                          .imap_port = 143,
	                          .p12 = p12,
	                          .p12_len = sizeof(p12)};
	char *s = build(&mc);
	cr_assert(strstr(s, "<string>com.apple.security.pkcs12</string>") != NULL);
	cr_assert(strstr(s, "<data>\n\tMIIBAP8AQQ==\n\t</data>") != NULL, "%s", s);
	cr_assert_null(strstr(s, "OutgoingMailServer"));
	cr_assert_null(strstr(s, "<key>Password</key>"));
	free(s);
}

Test(mobileconfig, refusals)
{
	struct buf o;
	buf_init(&o, 4096);
	const char *err = NULL;
	struct mobileconfig no_imap = {.address = "u@x", .host = "h"};
	cr_assert_eq(mobileconfig_build(&no_imap, &o, &err), -EINVAL);
	struct mobileconfig no_at = {.address = "ux", .host = "h", .imap_port = 993};
	cr_assert_eq(mobileconfig_build(&no_at, &o, &err), -EINVAL);
	struct mobileconfig no_host = {.address = "u@x", .host = "", .imap_port = 993};
	cr_assert_eq(mobileconfig_build(&no_host, &o, &err), -EINVAL);
	unsigned char *der = NULL;
	size_t len = 0;
	cr_assert_lt(mobileconfig_sign("not pem", 7, "no", 2, "x", 1, &der, &len, &err), 0);
	cr_assert_not_null(err);
	buf_free(&o);
}
