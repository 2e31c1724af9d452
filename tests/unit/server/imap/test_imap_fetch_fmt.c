/* MIME structure, ENVELOPE, BODYSTRUCTURE and BODY[section] formatting. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mime.h"

static const char simple[] = "From: \"Doe, John\" <john@example.com>\r\n"
                             "To: a@x.org, Bob <bob@y.org>\r\n"
                             "Subject: =?UTF-8?Q?caf=C3=A9?=\r\n"
                             "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
                             "Message-ID: <1@x>\r\n"
                             "\r\n"
                             "line1\r\nline2\r\n";

static const char multi[] = "From: a@x.org\r\n"
                            "Subject: multi\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: multipart/mixed; boundary=\"BB\"\r\n"
                            "\r\n"
                            "preamble\r\n"
                            "--BB\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "\r\n"
                            "hello\r\n"
                            "--BB\r\n"
                            "Content-Type: message/rfc822\r\n"
                            "\r\n"
                            "From: inner@x.org\r\n"
                            "Subject: inner\r\n"
                            "\r\n"
                            "inner body\r\n"
                            "--BB\r\n"
                            "Content-Type: application/pdf; name=\"a.pdf\"\r\n"
                            "Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "\r\n"
                            "QUJD\r\n"
                            "--BB--\r\n"
                            "epilogue\r\n";

static char *fmt(void (*f)(struct buf *, const struct imap_mime *), const char *msg)
{
	struct imap_mime m;
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_mime_parse(&m, msg, strlen(msg));
	f(&o, &m);
	imap_mime_free(&m);
	char *s = strdup(o.data);
	buf_free(&o);
	return s;
}

static void env(struct buf *o, const struct imap_mime *m)
{
	imap_fmt_envelope(o, m, &m->root, false);
}
static void bs(struct buf *o, const struct imap_mime *m)
{
	imap_fmt_bodystructure(o, m, &m->root, true, false);
}
static void body(struct buf *o, const struct imap_mime *m)
{
	imap_fmt_bodystructure(o, m, &m->root, false, false);
}

Test(imap_fetch_fmt, envelope)
{
	char *s = fmt(env, simple);
	cr_assert_str_eq(s,
	                 "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"=?UTF-8?Q?caf=C3=A9?=\" "
	                 "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	                 "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	                 "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	                 "((NIL NIL \"a\" \"x.org\")(\"Bob\" NIL \"bob\" \"y.org\")) NIL NIL NIL "
	                 "\"<1@x>\")");
	free(s);
}

Test(imap_fetch_fmt, simple_bodystructure)
{
	char *s = fmt(bs, simple);
	cr_assert_str_eq(s, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 "
	                    "NIL NIL NIL NIL)");
	free(s);
}

Test(imap_fetch_fmt, multipart_bodystructure)
{
	char *s = fmt(body, multi);
	cr_assert_str_eq(
	    s, "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 1)"
	       "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 47 "
	       "(NIL \"inner\" ((NIL NIL \"inner\" \"x.org\")) ((NIL NIL \"inner\" \"x.org\")) "
	       "((NIL NIL \"inner\" \"x.org\")) NIL NIL NIL NIL NIL) "
	       "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1) 4)"
	       "(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 4) \"mixed\")");
	free(s);
	s = fmt(bs, multi);
	cr_assert(strstr(s, "(\"attachment\" (\"filename\" \"a.pdf\"))") != NULL, "%s", s);
	cr_assert(strstr(s, "\"mixed\" (\"boundary\" \"BB\") NIL NIL NIL)") != NULL, "%s", s);
	free(s);
}

static char *section(const char *msg, const char *spec)
{
	struct imap_mime m;
	struct imap_section sec;
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_mime_parse(&m, msg, strlen(msg));
	char *r;
	if (imap_section_parse(spec, strlen(spec), &sec) < 0) {
		r = strdup("BAD");
	} else {
		if (imap_section_extract(&m, &sec, &o) < 0)
			r = strdup("NOENT");
		else
			r = strdup(o.data != NULL ? o.data : "");
		imap_section_free(&sec);
	}
	imap_mime_free(&m);
	buf_free(&o);
	return r;
}

Test(imap_fetch_fmt, sections)
{
	struct {
		const char *spec, *want;
	} c[] = {
	    {"[]", multi},
	    {"[1]", "hello"},
	    {"[1.MIME]", "Content-Type: text/plain; charset=utf-8\r\n\r\n"},
	    {"[2.HEADER]", "From: inner@x.org\r\nSubject: inner\r\n\r\n"},
	    {"[2.TEXT]", "inner body"},
	    {"[2.1]", "inner body"},
	    {"[3]", "QUJD"},
	    {"[4]", "NOENT"},
	    {"[HEADER.FIELDS (SUBJECT from)]", "From: a@x.org\r\nSubject: multi\r\n\r\n"},
	    {"[HEADER.FIELDS.NOT (From Subject MIME-Version)]",
	     "Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"},
	    {"[1]<1.3>", "ell"},
	    {"[1]<100.3>", ""},
	    {"[HEADER]<0.5>", "From:"},
	    {"[1.]", "BAD"},
	    {"[FOO]", "BAD"},
	    {"[MIME]", "BAD"},
	    {"[1]<1.0>", "BAD"},
	    {"[HEADER.FIELDS ()]", "BAD"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *got = section(multi, c[i].spec);
		cr_expect_str_eq(got, c[i].want, "%s", c[i].spec);
		free(got);
	}
	char *got = section(simple, "[1]");
	cr_assert_str_eq(got, "line1\r\nline2\r\n");
	free(got);
	got = section(simple, "[TEXT]");
	cr_assert_str_eq(got, "line1\r\nline2\r\n");
	free(got);
}

Test(imap_fetch_fmt, strings)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_fmt_cstring(&o, "a\"b\\c", false);
	buf_append_str(&o, " ");
	imap_fmt_cstring(&o, NULL, false);
	buf_append_str(&o, " ");
	imap_fmt_cstring(&o, "caf\xc3\xa9", false);
	buf_append_str(&o, " ");
	imap_fmt_cstring(&o, "caf\xc3\xa9", true);
	cr_assert_str_eq(o.data, "\"a\\\"b\\\\c\" NIL {5}\r\ncaf\xc3\xa9 \"caf\xc3\xa9\"");
	buf_free(&o);
}

Test(imap_fetch_fmt, groups_and_junk)
{
	struct buf o;
	buf_init(&o, 1 << 20);
	const char *v = " undisclosed-recipients:;";
	imap_fmt_addresses(&o, v, strlen(v), false);
	cr_assert_str_eq(o.data, "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))");
	buf_reset(&o);
	v = " team: a@b.c, (comment) d@e.f;, g@h.i";
	imap_fmt_addresses(&o, v, strlen(v), false);
	cr_assert_str_eq(o.data, "((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"b.c\")(NIL NIL \"d\" "
	                         "\"e.f\")(NIL NIL NIL NIL)(NIL NIL \"g\" \"h.i\"))");
	buf_reset(&o);
	v = " <@r1,@r2:x@y>";
	imap_fmt_addresses(&o, v, strlen(v), false);
	cr_assert_str_eq(o.data, "((NIL \"@r1,@r2\" \"x\" \"y\"))");
	buf_reset(&o);
	v = " ,,, ";
	imap_fmt_addresses(&o, v, strlen(v), false);
	cr_assert_str_eq(o.data, "NIL");
	buf_free(&o);
}

Test(imap_fetch_fmt, deep_nesting_bounded)
{
	/* 200 nested multiparts with the same boundary: parsed without recursion blowing up. */
	struct buf msg;
	buf_init(&msg, 1 << 22);
	for (int i = 0; i < 200; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		           i);
	buf_append_str(&msg, "\r\nx\r\n");
	struct imap_mime m;
	imap_mime_parse(&m, msg.data, msg.len);
	cr_assert_leq(m.n_parts, IMAP_MIME_MAX_PARTS);
	struct buf o;
	buf_init(&o, 1 << 22);
	imap_fmt_bodystructure(&o, &m, &m.root, true, false);
	cr_assert_gt(o.len, 0);
	buf_free(&o);
	imap_mime_free(&m);
	buf_free(&msg);
}

/* Found by fuzz/fuzz_imap_mime.c: a parameter with a value but no name ("; =12") kept the
 * parameter loop at its '=' for ever, hanging FETCH BODYSTRUCTURE. */
Test(imap_fetch_fmt, nameless_parameter, .timeout = 10)
{
	const char *msg = "Content-Type: text/plain; =12; charset=utf-8\r\n"
	                  "Content-Disposition: attachment; =\"a;b\"; filename=x.txt\r\n"
	                  "\r\n"
	                  "x\r\n";
	struct imap_mime m;
	imap_mime_parse(&m, msg, strlen(msg));
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_fmt_bodystructure(&o, &m, &m.root, true, false);
	cr_assert_not_null(strstr(o.data, "(\"charset\" \"utf-8\")"), "%s", o.data);
	cr_assert_not_null(strstr(o.data, "(\"attachment\" (\"filename\" \"x.txt\"))"), "%s",
	                   o.data);
	buf_free(&o);
	imap_mime_free(&m);
}

/* Found by fuzz/fuzz_imap_address.c: an address value ending in '<' read the byte after
 * it. The value is copied to a buffer of its exact size so ASan builds see any such read. */
Test(imap_fetch_fmt, address_ends_in_angle)
{
	static const char *const values[] = {" \xe4 <", "Fred <", "<", " a@b, <"};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		size_t len = strlen(values[i]);
		char *v = malloc(len);
		cr_assert_not_null(v);
		memcpy(v, values[i], len);
		struct buf o;
		buf_init(&o, 1 << 20);
		imap_fmt_addresses(&o, v, len, false);
		cr_assert(o.len > 0 && (strcmp(o.data, "NIL") == 0 || o.data[0] == '('), "%s",
		          o.data);
		buf_free(&o);
		free(v);
	}
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_fmt_addresses(&o, "Fred <", 6, false);
	cr_assert_str_eq(o.data, "((\"Fred\" NIL \"\" NIL))");
	buf_free(&o);
}
