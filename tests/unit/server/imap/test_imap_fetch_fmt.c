/*
 * ENVELOPE, BODYSTRUCTURE and BODY[section] formatting from the structure delivery stores:
 * each message goes through store_mime_parse_mem (GMime, as delivery) and imap_bs_parse
 * (as FETCH), so these cases check the stored form end to end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_bodystruct.h"
#include "storage/sqlite/store_private.h"

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

/* msg's stored structure, parsed back; asserts that both steps work. */
static void stored(struct imap_bs *bs, const char *msg, size_t len)
{
	struct store_mime_info info;
	cr_assert_eq(store_mime_parse_mem(msg, len, &info), 0);
	cr_assert_not_null(info.json);
	cr_assert_eq(imap_bs_parse(bs, info.json, strlen(info.json)), 0, "%s", info.json);
	store_mime_info_clear(&info);
}

static char *fmt(void (*f)(struct buf *, const struct imap_bs *), const char *msg)
{
	struct imap_bs bs = {0};
	struct buf o;
	buf_init(&o, 1 << 20);
	stored(&bs, msg, strlen(msg));
	f(&o, &bs);
	imap_bs_free(&bs);
	char *s = strdup(o.data);
	buf_free(&o);
	return s;
}

static void env(struct buf *o, const struct imap_bs *bs)
{
	imap_fmt_envelope(o, bs->root, false);
}
static void env8(struct buf *o, const struct imap_bs *bs)
{
	imap_fmt_envelope(o, bs->root, true);
}
static void bs(struct buf *o, const struct imap_bs *b)
{
	imap_fmt_bodystructure(o, b->root, true, false);
}
static void body(struct buf *o, const struct imap_bs *b)
{
	imap_fmt_bodystructure(o, b->root, false, false);
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

/* Encoded words stay as they are in ENVELOPE, in names as in the subject. */
Test(imap_fetch_fmt, envelope_encoded_words_raw)
{
	const char *msg = "From: =?utf-8?q?J=C3=BCrgen?= <j@x.org>\r\n"
	                  "To: \"=?iso-8859-1?q?Ren=E9?=\" <r@y.org>\r\n"
	                  "Subject: =?utf-8?b?w6TDtsO8?=\r\n"
	                  "\r\nx\r\n";
	char *s = fmt(env, msg);
	cr_assert_str_eq(s, "(NIL \"=?utf-8?b?w6TDtsO8?=\" "
	                    "((\"=?utf-8?q?J=C3=BCrgen?=\" NIL \"j\" \"x.org\")) "
	                    "((\"=?utf-8?q?J=C3=BCrgen?=\" NIL \"j\" \"x.org\")) "
	                    "((\"=?utf-8?q?J=C3=BCrgen?=\" NIL \"j\" \"x.org\")) "
	                    "((\"=?iso-8859-1?q?Ren=E9?=\" NIL \"r\" \"y.org\")) NIL NIL NIL NIL)");
	free(s);
}

/* A message without any of the fields: every member NIL. */
Test(imap_fetch_fmt, envelope_missing_headers)
{
	char *s = fmt(env, "X-Other: 1\r\n\r\nbody\r\n");
	cr_assert_str_eq(s, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(s);
	/* Empty Sender and Reply-To fall back to From. */
	s = fmt(env, "From: a@b.c\r\nSender:\r\nReply-To: \r\nSubject:\r\n\r\nx\r\n");
	cr_assert_str_eq(s, "(NIL NIL ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) "
	                    "((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)");
	free(s);
}

/* 8-bit header values: a literal, or quoted with UTF8=ACCEPT. */
Test(imap_fetch_fmt, envelope_utf8)
{
	const char *msg = "From: J\xc3\xbcrgen <j@x.org>\r\nSubject: caf\xc3\xa9\r\n\r\nx\r\n";
	char *s = fmt(env, msg);
	cr_assert(strstr(s, "{5}\r\ncaf\xc3\xa9 (({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"x.org\"))") !=
	              NULL,
	          "%s", s);
	free(s);
	s = fmt(env8, msg);
	cr_assert(strstr(s, "\"caf\xc3\xa9\" ((\"J\xc3\xbcrgen\" NIL \"j\" \"x.org\"))") != NULL,
	          "%s", s);
	free(s);
}

/* Found by fuzz/fuzz_store_mime.c: a raw value that is not UTF-8 made a stored form FETCH
 * could not read. Such bytes are stored as U+FFFD. */
Test(imap_fetch_fmt, envelope_not_utf8)
{
	char *s = fmt(env8, "Subject: caf\xe9 \xff\r\n\r\nx\r\n");
	cr_assert_str_eq(s,
	                 "(NIL \"caf\xef\xbf\xbd \xef\xbf\xbd\" NIL NIL NIL NIL NIL NIL NIL NIL)");
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

/* Multipart inside multipart inside an embedded message, with every extension field. */
Test(imap_fetch_fmt, nested_bodystructure)
{
	const char *msg = "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	                  "--o\r\n"
	                  "Content-Type: message/rfc822\r\n"
	                  "Content-Description: fwd\r\n\r\n"
	                  "Subject: in\r\n"
	                  "Content-Type: multipart/alternative; boundary=i\r\n\r\n"
	                  "--i\r\n"
	                  "Content-Type: text/plain\r\n"
	                  "Content-ID: <c1@x>\r\n"
	                  "Content-MD5: Q2hlY2s=\r\n"
	                  "Content-Language: de\r\n"
	                  "Content-Location: http://x/y\r\n"
	                  "Content-Disposition: inline\r\n\r\n"
	                  "a\r\nb\r\n"
	                  "--i\r\n"
	                  "Content-Type: text/html\r\n\r\n"
	                  "<p>\r\n"
	                  "--i--\r\n"
	                  "--o--\r\n";
	char *s = fmt(bs, msg);
	cr_assert_str_eq(
	    s, "((\"message\" \"rfc822\" NIL NIL \"fwd\" \"7bit\" 269 "
	       "(NIL \"in\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	       "((\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<c1@x>\" NIL \"7bit\" 4 2 "
	       "\"Q2hlY2s=\" (\"inline\" NIL) \"de\" \"http://x/y\")"
	       "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1 NIL NIL NIL "
	       "NIL) \"alternative\" (\"boundary\" \"i\") NIL NIL NIL) 18 NIL NIL NIL NIL) "
	       "\"mixed\" (\"boundary\" \"o\") NIL NIL NIL)");
	free(s);
}

static char *section(const char *msg, const char *spec)
{
	struct imap_bs b = {0};
	struct imap_section sec;
	struct buf o;
	buf_init(&o, 1 << 20);
	stored(&b, msg, strlen(msg));
	char *r;
	uint64_t off, len;
	if (imap_section_parse(spec, strlen(spec), &sec) < 0) {
		r = strdup("BAD");
	} else {
		if (imap_section_range(&b, &sec, strlen(msg), &off, &len) < 0) {
			r = strdup("NOENT");
		} else {
			cr_assert_leq(off + len, strlen(msg));
			imap_section_finish(&sec, msg + off, (size_t)len, &o);
			r = strdup(o.data != NULL ? o.data : "");
		}
		imap_section_free(&sec);
	}
	imap_bs_free(&b);
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

/* The ENVELOPE From of a message whose From field is value. */
static char *from_of(const char *value)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "From:%s\r\n\r\nx\r\n", value);
	char *s = fmt(env, msg);
	/* "(NIL NIL " then the From list up to the Sender list that repeats it. */
	cr_assert(strncmp(s, "(NIL NIL ", 9) == 0, "%s", s);
	char *from = s + 9;
	size_t n = strlen(from);
	char *out = NULL;
	for (size_t len = 3; len < n && out == NULL; len++)
		if (from[len] == ' ' && strncmp(from + len + 1, from, len) == 0)
			out = strndup(from, len);
	cr_assert_not_null(out, "%s", s);
	free(s);
	return out;
}

Test(imap_fetch_fmt, groups_and_junk)
{
	char *s = from_of(" undisclosed-recipients:;");
	cr_assert_str_eq(s, "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))");
	free(s);
	s = from_of(" team: a@b.c, (comment) d@e.f;, g@h.i");
	cr_assert_str_eq(s, "((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"b.c\")(NIL NIL \"d\" "
	                    "\"e.f\")(NIL NIL NIL NIL)(NIL NIL \"g\" \"h.i\"))");
	free(s);
	/* GMime drops source routes: the address stays, its adl is NIL. */
	s = from_of(" <@r1,@r2:x@y>");
	cr_assert_str_eq(s, "((NIL NIL \"x\" \"y\"))");
	free(s);
	s = fmt(env, "From: ,,, \r\n\r\nx\r\n");
	cr_assert_str_eq(s, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	free(s);
}

Test(imap_fetch_fmt, deep_nesting_bounded)
{
	/* 200 nested multiparts: the stored tree is cut, never an error. */
	struct buf msg;
	buf_init(&msg, 1 << 22);
	for (int i = 0; i < 200; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i,
		           i);
	buf_append_str(&msg, "\r\nx\r\n");
	struct imap_bs b = {0};
	stored(&b, msg.data, msg.len);
	struct buf o;
	buf_init(&o, 1 << 22);
	imap_fmt_bodystructure(&o, b.root, true, false);
	cr_assert_gt(o.len, 0);
	size_t open = 0, close = 0;
	for (size_t i = 0; i < o.len; i++)
		open += o.data[i] == '(', close += o.data[i] == ')';
	cr_assert_eq(open, close, "%s", o.data);
	buf_free(&o);
	imap_bs_free(&b);
	buf_free(&msg);
}

/* Found by fuzzing the old parser: a parameter with a value but no name ("; =12") hung
 * FETCH BODYSTRUCTURE. GMime parses parameters now; the case stays. */
Test(imap_fetch_fmt, nameless_parameter, .timeout = 10)
{
	const char *msg = "Content-Type: text/plain; =12; charset=utf-8\r\n"
	                  "Content-Disposition: attachment; =\"a;b\"; filename=x.txt\r\n"
	                  "\r\n"
	                  "x\r\n";
	char *s = fmt(bs, msg);
	cr_assert_not_null(strstr(s, "\"attachment\""), "%s", s);
	cr_assert_not_null(strstr(s, "\"text\" \"plain\""), "%s", s);
	free(s);
}

/* Found by fuzzing the old address parser: a value ending in '<' read past it. */
Test(imap_fetch_fmt, address_ends_in_angle)
{
	static const char *const values[] = {" \xe4 <", " Fred <", " <", " a@b, <"};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char msg[128];
		snprintf(msg, sizeof(msg), "From:%s\r\n\r\nx\r\n", values[i]);
		char *s = fmt(env, msg);
		cr_assert(s[0] == '(', "%s", s);
		free(s);
	}
}

/* A stored form this version did not write, or not JSON at all, is refused. */
Test(imap_fetch_fmt, stored_form_refused)
{
	static const char *const bad[] = {
	    "", "{", "[]", "{\"type\":\"text\"}", "{\"v\":1}", "{\"v\":\"2\"}", "nul"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_bs b = {0};
		cr_expect_lt(imap_bs_parse(&b, bad[i], strlen(bad[i])), 0, "%s", bad[i]);
		imap_bs_free(&b);
	}
	/* Wrong types read as missing. */
	struct imap_bs b = {0};
	const char *odd = "{\"v\":2,\"type\":3,\"parts\":{},\"envelope\":[],\"body_length\":-4}";
	cr_assert_eq(imap_bs_parse(&b, odd, strlen(odd)), 0);
	struct buf o;
	buf_init(&o, 1 << 20);
	imap_fmt_bodystructure(&o, b.root, true, false);
	imap_fmt_envelope(&o, b.root, false);
	cr_assert_str_eq(o.data, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 NIL NIL NIL NIL)"
	                         "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_free(&o);
	imap_bs_free(&b);
}

/* Display names survive in every RFC 5322 form; a trailing comment becomes the name. */
Test(imap_fetch_fmt, envelope_display_name_forms)
{
	static const char *const msgs[][2] = {
	    {"From: \"Real Name\" <user@example.com>\r\n\r\nx\r\n",
	     "((\"Real Name\" NIL \"user\" \"example.com\"))"},
	    {"From: Real Name <user@example.com>\r\n\r\nx\r\n",
	     "((\"Real Name\" NIL \"user\" \"example.com\"))"},
	    {"From: user@example.com (Real Name)\r\n\r\nx\r\n",
	     "((\"Real Name\" NIL \"user\" \"example.com\"))"},
	    {"From: user@example.com\r\n\r\nx\r\n", "((NIL NIL \"user\" \"example.com\"))"},
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		char *s = fmt(env, msgs[i][0]);
		cr_expect(strstr(s, msgs[i][1]) != NULL, "%s -> %s", msgs[i][0], s);
		free(s);
	}
}
