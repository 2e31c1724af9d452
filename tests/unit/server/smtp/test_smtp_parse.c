#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/smtp/smtp_parse.h"

struct mail_case {
	const char *in;
	int rc;
	const char *addr; /* expected address, or the reply prefix when rc < 0 */
};

static const struct mail_case mail_cases[] = {
    {"FROM:<alice@corp.example>", 0, "alice@corp.example"},
    {"from:<alice@corp.example>", 0, "alice@corp.example"},
    {"FROM: <alice@corp.example>", 0, "alice@corp.example"},
    {"FROM:<>", 0, ""},
    {"FROM:<> SIZE=100", 0, ""},
    {"FROM:<@a.example,@b.example:alice@corp.example>", 0, "alice@corp.example"},
    {"FROM:<\"alice\"@corp.example>", 0, "alice@corp.example"},
    {"FROM:<\"a b\"@corp.example>", 0, "\"a b\"@corp.example"},
    {"FROM:<\"a\\\"b\"@corp.example>", 0, "\"a\\\"b\"@corp.example"},
    {"FROM:<a.b+tag@[192.0.2.1]>", 0, "a.b+tag@[192.0.2.1]"},
    {"FROM:<x@[IPv6:::1]>", 0, "x@[IPv6:::1]"},
    {"FROM:<alice@corp.example> BODY=8BITMIME", 0, "alice@corp.example"},
    {"FROM:<alice@corp.example>  SIZE=5  ", 0, "alice@corp.example"},
    {"FROM:<alice@corp.example> AUTH=<>", 0, "alice@corp.example"},
    {"FROM:<alice@corp.example> AUTH=alice+40corp.example", 0, "alice@corp.example"},
    {"FROM:<j\xc3\xb6rg@corp.example> SMTPUTF8", 0, "j\xc3\xb6rg@corp.example"},
    {"FROM:<j\xc3\xb6rg@b\xc3\xbc"
     "cher.example> SMTPUTF8",
     0,
     "j\xc3\xb6rg@b\xc3\xbc"
     "cher.example"},
    /* errors */
    {"FROM:<j\xc3\xb6rg@corp.example>", -EINVAL, "553 5.6.7"},
    {"FROM:<j\xc3(rg@corp.example> SMTPUTF8", -EINVAL, "501 5.1.7"},
    {"FROM:<j\xed\xa0\x80rg@corp.example> SMTPUTF8", -EINVAL, "501 5.1.7"},
    {"FROM:<j\xc0\xafrg@corp.example> SMTPUTF8", -EINVAL, "501 5.1.7"},
    {"FROM alice@corp.example", -EINVAL, "501 5.5.4"},
    {"TO:<alice@corp.example>", -EINVAL, "501 5.5.4"},
    {"", -EINVAL, "501 5.5.4"},
    {"FROM:", -EINVAL, "501 5.1.7"},
    {"FROM:alice@corp.example", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@corp.example", -EINVAL, "501 5.1.7"},
    {"FROM:<alice>", -EINVAL, "501 5.1.7"},
    {"FROM:<Postmaster>", -EINVAL, "501 5.1.7"},
    {"FROM:<@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@>", -EINVAL, "501 5.1.7"},
    {"FROM:<.alice@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice.@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<al..ice@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@corp..example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@-corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@corp-.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@corp.example.>", -EINVAL, "501 5.1.7"},
    {"FROM:<al ice@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@corp.example>x", -EINVAL, "501 5.1.7"},
    {"FROM:<alice@co\rrp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<\"unterminated@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<\"a\x01\"@corp.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<a@[]>", -EINVAL, "501 5.1.7"},
    {"FROM:<a@[1.2.3.4>", -EINVAL, "501 5.1.7"},
    {"FROM:<@a.example:>", -EINVAL, "501 5.1.7"},
    {"FROM:<@a.example,b.example:x@y.example>", -EINVAL, "501 5.1.7"},
    {"FROM:<a@b.example> FOO=bar", -EINVAL, "555 5.5.4"},
    {"FROM:<a@b.example> NOTIFY=NEVER", -EINVAL, "555 5.5.4"},
    {"FROM:<a@b.example> SIZE", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=12a", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=-1", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=1 SIZE=2", -EINVAL, "501 5.5.4 Duplicate"},
    {"FROM:<a@b.example> BODY=9BIT", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SMTPUTF8=yes", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> RET=ALL", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> ENVID=a+2", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> ENVID=a+2b", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> ENVID=a+00", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> =x", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SIZE=1=2", -EINVAL, "501 5.5.4"},
    {"FROM:<a@b.example> SI\x01ZE=1", -EINVAL, "501 5.5.4"},
};

Test(smtp_parse, mail_table)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *tc = &mail_cases[i];
		struct smtp_mail_args m;
		const char *reply = NULL;
		int rc = smtp_parse_mail(tc->in, strlen(tc->in), &m, &reply);
		cr_assert_eq(rc, tc->rc, "case %zu (%s): rc %d", i, tc->in, rc);
		if (rc == 0)
			cr_assert_str_eq(m.address, tc->addr, "case %zu", i);
		else
			cr_assert(strncmp(reply, tc->addr, strlen(tc->addr)) == 0,
			          "case %zu (%s): reply %s", i, tc->in, reply);
	}
}

Test(smtp_parse, mail_params)
{
	struct smtp_mail_args m;
	const char *reply;
	const char *in = "FROM:<a@b.example> size=12345 body=8bitmime smtputf8 requiretls ret=hdrs "
	                 "envid=QQ+2B1";
	cr_assert_eq(smtp_parse_mail(in, strlen(in), &m, &reply), 0);
	cr_assert(m.has_size);
	cr_assert_eq(m.size, 12345);
	cr_assert_eq(m.body, SMTP_BODY_8BITMIME);
	cr_assert(m.smtputf8);
	cr_assert(m.requiretls);
	cr_assert_eq(m.ret, SMTP_RET_HDRS);
	cr_assert_str_eq(m.envid, "QQ+2B1");
	cr_assert_eq(m.at, 1);

	in = "FROM:<a@b.example> SIZE=99999999999999999999";
	cr_assert_eq(smtp_parse_mail(in, strlen(in), &m, &reply), 0);
	cr_assert_eq(m.size, UINT64_MAX);
	in = "FROM:<a@b.example> SIZE=999999999999999999999";
	cr_assert_eq(smtp_parse_mail(in, strlen(in), &m, &reply), -EINVAL);
	in = "FROM:<a@b.example> BODY=BINARYMIME";
	cr_assert_eq(smtp_parse_mail(in, strlen(in), &m, &reply), 0);
	cr_assert_eq(m.body, SMTP_BODY_BINARYMIME);
}

Test(smtp_parse, mail_nul_and_length)
{
	struct smtp_mail_args m;
	const char *reply;
	const char in[] = "FROM:<a\0b@c.example>";
	cr_assert_eq(smtp_parse_mail(in, sizeof(in) - 1, &m, &reply), -EINVAL);

	/* A path at the bound is accepted, one byte more is not. */
	char buf[600];
	size_t n = 0;
	memcpy(buf, "FROM:<", 6);
	n = 6;
	size_t local = SMTP_PATH_MAX - strlen("@b.example");
	memset(buf + n, 'x', local);
	n += local;
	memcpy(buf + n, "@b.example>", 11);
	n += 11;
	cr_assert_eq(smtp_parse_mail(buf, n, &m, &reply), 0);
	cr_assert_eq(strlen(m.address), SMTP_PATH_MAX);
	memmove(buf + 7, buf + 6, n - 6);
	n++;
	cr_assert_eq(smtp_parse_mail(buf, n, &m, &reply), -EINVAL);

	/* A 64-byte domain label is too long. */
	char lab[200] = "FROM:<a@";
	n = strlen(lab);
	memset(lab + n, 'd', 64);
	n += 64;
	memcpy(lab + n, ".example>", 9);
	n += 9;
	cr_assert_eq(smtp_parse_mail(lab, n, &m, &reply), -EINVAL);
}

struct rcpt_case {
	const char *in;
	bool utf8;
	int rc;
	const char *addr;
};

static const struct rcpt_case rcpt_cases[] = {
    {"TO:<bob@corp.example>", false, 0, "bob@corp.example"},
    {"to: <bob@corp.example>", false, 0, "bob@corp.example"},
    {"TO:<Postmaster>", false, 0, "Postmaster"},
    {"TO:<postmaster>", false, 0, "postmaster"},
    {"TO:<bob@corp.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40corp.example", false, 0,
     "bob@corp.example"},
    {"TO:<b\xc3\xb6@corp.example>", true, 0, "b\xc3\xb6@corp.example"},
    {"TO:<b\xc3\xb6@corp.example>", false, -EINVAL, "553 5.6.7"},
    {"TO:<>", false, -EINVAL, "501 5.1.3"},
    {"TO:<bob>", false, -EINVAL, "501 5.1.3"},
    {"FROM:<bob@corp.example>", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> SIZE=1", false, -EINVAL, "555 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=NEVER,SUCCESS", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=SUCCESS,", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=SUCCESS,SUCCESS", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=LATER", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> ORCPT=bob@corp.example", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> ORCPT=;bob", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> ORCPT=rfc822;", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> ORCPT=rfc822;a+zz", false, -EINVAL, "501 5.5.4"},
    {"TO:<bob@corp.example> NOTIFY=DELAY NOTIFY=DELAY", false, -EINVAL, "501 5.5.4"},
};

Test(smtp_parse, rcpt_table)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *tc = &rcpt_cases[i];
		struct smtp_rcpt_args r;
		const char *reply = NULL;
		int rc = smtp_parse_rcpt(tc->in, strlen(tc->in), tc->utf8, &r, &reply);
		cr_assert_eq(rc, tc->rc, "case %zu (%s): rc %d", i, tc->in, rc);
		if (rc == 0)
			cr_assert_str_eq(r.address, tc->addr, "case %zu", i);
		else
			cr_assert(strncmp(reply, tc->addr, strlen(tc->addr)) == 0,
			          "case %zu (%s): reply %s", i, tc->in, reply);
	}
}

Test(smtp_parse, rcpt_dsn)
{
	struct smtp_rcpt_args r;
	const char *reply;
	const char *in = "TO:<bob@corp.example> notify=failure,delay orcpt=rfc822;bob+40x";
	cr_assert_eq(smtp_parse_rcpt(in, strlen(in), false, &r, &reply), 0);
	cr_assert_eq(r.notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	cr_assert_str_eq(r.orcpt, "rfc822;bob+40x");
	char n[32];
	cr_assert_str_eq(smtp_notify_str(r.notify, n, sizeof(n)), "FAILURE,DELAY");
	cr_assert_str_eq(smtp_notify_str(SMTP_NOTIFY_NEVER, n, sizeof(n)), "NEVER");
	cr_assert_eq(r.at, 3);
	in = "TO:<Postmaster>";
	cr_assert_eq(smtp_parse_rcpt(in, strlen(in), false, &r, &reply), 0);
	cr_assert(r.postmaster);
}

Test(smtp_parse, xtext)
{
	char out[64];
	cr_assert_eq(smtp_xtext_decode("a+2Bb+3Dc", 9, out), 5);
	cr_assert_str_eq(out, "a+b=c");
	cr_assert_eq(smtp_xtext_decode("", 0, out), 0);
	cr_assert_eq(smtp_xtext_decode("a+2b", 4, out), -EINVAL);
	cr_assert_eq(smtp_xtext_decode("a+2", 3, out), -EINVAL);
	cr_assert_eq(smtp_xtext_decode("a=b", 3, out), -EINVAL);
	cr_assert_eq(smtp_xtext_decode("a b", 3, out), -EINVAL);
	cr_assert_eq(smtp_xtext_decode("+00", 3, out), -EINVAL);
	cr_assert_eq(smtp_xtext_decode("\x80", 1, out), -EINVAL);
}

Test(smtp_parse, utf8)
{
	cr_assert(smtp_utf8_valid("abc", 3));
	cr_assert(smtp_utf8_valid("\xc3\xb6", 2));
	cr_assert(smtp_utf8_valid("\xf0\x9f\x98\x80", 4));
	cr_assert(!smtp_utf8_valid("\xc3", 1));
	cr_assert(!smtp_utf8_valid("\xc0\x80", 2));
	cr_assert(!smtp_utf8_valid("\xe0\x80\x80", 3));
	cr_assert(!smtp_utf8_valid("\xed\xa0\x80", 3));
	cr_assert(!smtp_utf8_valid("\xf4\x90\x80\x80", 4));
	cr_assert(!smtp_utf8_valid("\xff", 1));
}

/* Every prefix of every case must parse without reading past its end (ASan checks), and
 * random bytes never crash. */
Test(smtp_parse, prefixes_and_noise)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		size_t len = strlen(mail_cases[i].in);
		for (size_t k = 0; k <= len; k++) {
			char *copy = malloc(k ? k : 1);
			memcpy(copy, mail_cases[i].in, k);
			struct smtp_mail_args m;
			struct smtp_rcpt_args r;
			const char *reply;
			(void)smtp_parse_mail(copy, k, &m, &reply);
			(void)smtp_parse_rcpt(copy, k, true, &r, &reply);
			free(copy);
		}
	}
	srand(42);
	static const char alphabet[] = "<>@.:,\"\\ =+;[]aZ9\x80\xc3\xb6\r\n\0";
	for (int iter = 0; iter < 20000; iter++) {
		char buf[64];
		size_t n = (size_t)(rand() % 60);
		memcpy(buf, iter % 2 ? "FROM:" : "TO:", 3);
		for (size_t k = 3; k < n; k++)
			buf[k] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		char *copy = malloc(n ? n : 1);
		memcpy(copy, buf, n);
		struct smtp_mail_args m;
		struct smtp_rcpt_args r;
		const char *reply;
		if (smtp_parse_mail(copy, n, &m, &reply) == 0)
			cr_assert(strlen(m.address) <= SMTP_PATH_MAX);
		if (smtp_parse_rcpt(copy, n, true, &r, &reply) == 0)
			cr_assert(r.postmaster || r.address[r.at] == '@');
		free(copy);
	}
}
