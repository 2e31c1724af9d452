#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/smtp/smtp_data.h"

static int sink_buf(void *ctx, const void *data, size_t len)
{
	return buf_append(ctx, data, len);
}

static int sink_fail(void *ctx, const void *data, size_t len)
{
	return -EIO;
}

/* Splits wire bytes into lines the way the conn's line reader does (LF ends a line, a CR
 * right before it is stripped and reported) and feeds DATA until it ends. Returns the
 * number of wire bytes consumed, or (size_t)-1 when DATA did not end. */
static size_t run_data(struct smtp_data *d, const char *wire, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		const char *lf = memchr(wire + pos, '\n', len - pos);
		if (!lf)
			return (size_t)-1;
		size_t end = (size_t)(lf - wire);
		bool has_cr = end > pos && wire[end - 1] == '\r';
		size_t llen = end - pos - (has_cr ? 1 : 0);
		char *line = malloc(llen + 1);
		memcpy(line, wire + pos, llen);
		line[llen] = '\0';
		int r = smtp_data_line(d, line, llen, has_cr);
		free(line);
		pos = end + 1;
		if (r == 1)
			return pos;
	}
	return (size_t)-1;
}

struct data_case {
	const char *wire;
	enum smtp_data_status st;
	const char *out;  /* message when OK */
	const char *rest; /* wire bytes after the end of DATA */
};

static const struct data_case cases[] = {
    {"Subject: x\r\n\r\nhello\r\n.\r\n", SMTP_DATA_OK, "Subject: x\r\n\r\nhello\r\n", ""},
    {".\r\n", SMTP_DATA_OK, "", ""},
    {"a\r\n..\r\n...x\r\n.y\r\n.\r\nQUIT\r\n", SMTP_DATA_OK, "a\r\n.\r\n..x\r\ny\r\n", "QUIT\r\n"},
    {"8bit: \xc3\xa4\xff\x01\r\n\r\n\xe2\x82\xac\r\n.\r\n", SMTP_DATA_OK,
     "8bit: \xc3\xa4\xff\x01\r\n\r\n\xe2\x82\xac\r\n", ""},
    /* Smuggling: none of these end DATA; the message is refused once at the real end. */
    {"a\r\nb\n.\nMAIL FROM:<x@y>\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"a\r\nb\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"a\r\nb\r.\rMAIL FROM:<x@y>\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"a\r\nb\r\n.\rMAIL FROM:<x@y>\r\n.\r\nNOOP\r\n", SMTP_DATA_BARE_EOL, NULL, "NOOP\r\n"},
    {"a\r\nb\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"Subject: a\nb\r\n\r\nc\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"a\r\r\n.\r\n", SMTP_DATA_BARE_EOL, NULL, ""},
    {"\r\n.\r\n", SMTP_DATA_OK, "\r\n", ""},
    {"x\r\n. \r\n.\r\n", SMTP_DATA_OK, "x\r\n \r\n", ""},
};

Test(smtp_data, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out;
		buf_init(&out, 1 << 20);
		struct smtp_data d;
		struct smtp_data_opts o = {.max_size = 1000};
		struct smtp_sink s = {sink_buf, &out};
		smtp_data_init(&d, &o, &s);
		size_t len = strlen(cases[i].wire);
		size_t used = run_data(&d, cases[i].wire, len);
		cr_assert_neq(used, (size_t)-1, "case %zu: DATA did not end", i);
		cr_assert_str_eq(cases[i].wire + used, cases[i].rest, "case %zu: rest", i);
		enum smtp_data_status st = smtp_data_finish(&d);
		cr_assert_eq(st, cases[i].st, "case %zu: status %d", i, st);
		if (st == SMTP_DATA_OK) {
			cr_assert_eq(out.len, strlen(cases[i].out), "case %zu: len %zu", i,
			             out.len);
			cr_assert(out.len == 0 || memcmp(out.data, cases[i].out, out.len) == 0,
			          "case %zu", i);
		}
		buf_free(&out);
	}
}

Test(smtp_data, size_limit_reads_to_end)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {.max_size = 10};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	const char *wire = "0123456789\r\nmore\r\n.\r\nRSET\r\n";
	size_t used = run_data(&d, wire, strlen(wire));
	cr_assert_str_eq(wire + used, "RSET\r\n");
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_TOO_BIG);
	cr_assert(out.len <= 10);
	cr_assert_eq(d.size, 18);
	cr_assert(strncmp(smtp_data_reply(SMTP_DATA_TOO_BIG), "552 5.3.4", 9) == 0);
	buf_free(&out);

	/* exactly at the limit is fine */
	buf_init(&out, 1 << 20);
	o.max_size = 12;
	smtp_data_init(&d, &o, &s);
	wire = "0123456789\r\n.\r\n";
	run_data(&d, wire, strlen(wire));
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	buf_free(&out);
}

Test(smtp_data, long_lines_and_998)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {0};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	char line[999];
	memset(line, 'x', 998);
	line[0] = '.';
	line[998] = '\0';
	cr_assert_eq(smtp_data_line(&d, line, 998, true), 0);
	cr_assert_eq(smtp_data_line(&d, ".", 1, true), 1);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	cr_assert_eq(out.len, 997 + 2);

	buf_reset(&out);
	smtp_data_init(&d, &o, &s);
	smtp_data_line(&d, "a", 1, true);
	smtp_data_line_too_long(&d);
	cr_assert_eq(smtp_data_line(&d, ".", 1, true), 1);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_LINE_TOO_LONG);
	buf_free(&out);
}

Test(smtp_data, sink_error)
{
	struct smtp_data d;
	struct smtp_data_opts o = {0};
	struct smtp_sink s = {sink_fail, NULL};
	smtp_data_init(&d, &o, &s);
	smtp_data_line(&d, "a", 1, true);
	cr_assert_eq(smtp_data_line(&d, ".", 1, true), 1);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_SINK_ERROR);
	cr_assert(strncmp(smtp_data_reply(SMTP_DATA_SINK_ERROR), "451 4.3.0", 9) == 0);
}

Test(smtp_data, hops)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {0};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	for (int i = 0; i <= SMTP_DATA_MAX_HOPS; i++)
		smtp_data_line(&d, "Received: from x", 16, true);
	smtp_data_line(&d, "", 0, true);
	cr_assert_eq(smtp_data_line(&d, ".", 1, true), 1);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_HOPS);
	buf_free(&out);
}

/* ---- header additions, DATA and BDAT, chunked at every position ---- */

struct hdr_case {
	const char *msg; /* message bytes (as BDAT sends them) */
	const char *out; /* with M = Message-ID line, D = Date line substituted */
};

#define MID  "Message-ID: <1@h>\r\n"
#define DATE "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"

static const struct hdr_case hdr_cases[] = {
    {"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n" MID DATE "\r\nbody\r\n"},
    {"Subject: x\r\n folded\r\n\r\nbody\r\n", "Subject: x\r\n folded\r\n" MID DATE "\r\nbody\r\n"},
    {"message-id: <a@b>\r\nDATE: now\r\n\r\nb\r\n", "message-id: <a@b>\r\nDATE: now\r\n\r\nb\r\n"},
    {"Date: now\r\n\r\nb\r\n", "Date: now\r\n" MID "\r\nb\r\n"},
    {"hello world\r\n", MID DATE "\r\nhello world\r\n"},
    {"Subject: only\r\n", "Subject: only\r\n" MID DATE},
    {"Subject: no end", "Subject: no end\r\n" MID DATE},
    {"", MID DATE},
    {"\r\nbody\r\n", MID DATE "\r\nbody\r\n"},
    {"Subject : obs\r\n\r\n", "Subject : obs\r\n" MID DATE "\r\n"},
    {" leading space\r\n", MID DATE "\r\n leading space\r\n"},
    {"X-Body-Date: no\r\n\r\nDate: in body\r\nMessage-ID: body\r\n",
     "X-Body-Date: no\r\n" MID DATE "\r\nDate: in body\r\nMessage-ID: body\r\n"},
    /* A client's Return-Path: never reaches the store (final delivery writes its own). */
    {"Return-Path: <forged@corp.test>\r\nSubject: x\r\n\r\nb\r\n",
     "Subject: x\r\n" MID DATE "\r\nb\r\n"},
    {"Subject: x\r\nreturn-path :\r\n <a@b>\r\n\t<c>\r\nTo: y\r\n\r\nReturn-Path: <body>\r\n",
     "Subject: x\r\nTo: y\r\n" MID DATE "\r\nReturn-Path: <body>\r\n"},
    {"X-Return-Path: kept\r\nReturn-Path: <x>\r\n\r\n", "X-Return-Path: kept\r\n" MID DATE "\r\n"},
    {"Return-Path: "
     "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "a"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "a"
     "@corp.test>\r\n folded on\r\nSubject: long\r\n\r\n",
     "Subject: long\r\n" MID DATE "\r\n"},
};

static void check_hdr(const struct hdr_case *tc, const size_t *cuts, size_t n_cuts, size_t idx)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {
	    .add_message_id = MID, .add_date = DATE, .drop_return_path = true};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	size_t len = strlen(tc->msg), from = 0;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : len;
		smtp_data_bytes(&d, tc->msg + from, to - from);
		from = to;
	}
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK, "case %zu", idx);
	cr_assert_eq(out.len, strlen(tc->out), "case %zu: got [%s]", idx, out.data ? out.data : "");
	cr_assert(memcmp(out.data, tc->out, out.len) == 0, "case %zu: got [%s]", idx, out.data);
	buf_free(&out);
}

Test(smtp_data, header_additions_chunked)
{
	for (size_t i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		size_t len = strlen(hdr_cases[i].msg);
		check_hdr(&hdr_cases[i], NULL, 0, i);
		for (size_t c = 0; c <= len; c++)
			check_hdr(&hdr_cases[i], &c, 1, i);
		size_t *all = malloc((len + 1) * sizeof(size_t));
		for (size_t c = 0; c < len; c++)
			all[c] = c + 1;
		check_hdr(&hdr_cases[i], all, len ? len - 1 : 0, i);
		free(all);
	}
}

Test(smtp_data, header_additions_via_data)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {.add_message_id = MID, .add_date = DATE};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	smtp_data_prepend(&d, "Received: x\r\n", 13);
	const char *wire = "Subject: hi\r\n\r\n.body\r\n.\r\n";
	run_data(&d, wire, strlen(wire));
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	const char *want = "Received: x\r\nSubject: hi\r\n" MID DATE "\r\nbody\r\n";
	cr_assert_eq(out.len, strlen(want));
	cr_assert(memcmp(out.data, want, out.len) == 0);
	cr_assert_eq(d.size, strlen("Subject: hi\r\n\r\nbody\r\n"));
	buf_free(&out);
}

Test(smtp_data, return_path_kept_unless_asked)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {0};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	const char *msg = "Return-Path: <a@b>\r\n\r\nx\r\n";
	smtp_data_bytes(&d, msg, strlen(msg));
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	cr_assert_eq(out.len, strlen(msg));
	cr_assert(memcmp(out.data, msg, out.len) == 0);
	buf_free(&out);
}

Test(smtp_data, long_header_line)
{
	/* A header line longer than the held prefix passes through intact. */
	struct buf out, want;
	buf_init(&out, 1 << 20);
	buf_init(&want, 1 << 20);
	buf_append_str(&want, "X-Long: ");
	for (int i = 0; i < 1000; i++)
		buf_append(&want, "y", 1);
	buf_append_str(&want, "\r\n\r\nb\r\n");
	struct smtp_data d;
	struct smtp_data_opts o = {.add_message_id = MID};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	for (size_t i = 0; i < want.len; i++)
		smtp_data_bytes(&d, want.data + i, 1);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	cr_assert_eq(out.len, want.len + strlen(MID));
	cr_assert(memcmp(out.data, want.data, 1010) == 0);
	cr_assert(memcmp(out.data + 1010, MID, strlen(MID)) == 0);
	buf_free(&out);
	buf_free(&want);
}

Test(smtp_data, bdat_bare_eol)
{
	static const char *bad[] = {"a\nb\r\n", "a\rb\r\n", "a\r\n\r", "\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf out;
		buf_init(&out, 1 << 20);
		struct smtp_data d;
		struct smtp_data_opts o = {0};
		struct smtp_sink s = {sink_buf, &out};
		smtp_data_init(&d, &o, &s);
		smtp_data_bytes(&d, bad[i], strlen(bad[i]));
		cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_BARE_EOL, "case %zu", i);
		buf_free(&out);
		/* BINARYMIME takes them as they are */
		buf_init(&out, 1 << 20);
		o.binary = true;
		smtp_data_init(&d, &o, &s);
		smtp_data_bytes(&d, bad[i], strlen(bad[i]));
		cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK, "binary case %zu", i);
		cr_assert_eq(out.len, strlen(bad[i]));
		buf_free(&out);
	}
}

Test(smtp_data, bdat_crlf_split_across_chunks)
{
	struct buf out;
	buf_init(&out, 1 << 20);
	struct smtp_data d;
	struct smtp_data_opts o = {0};
	struct smtp_sink s = {sink_buf, &out};
	smtp_data_init(&d, &o, &s);
	smtp_data_bytes(&d, "a: b\r", 5);
	smtp_data_bytes(&d, "\n\r", 2);
	smtp_data_bytes(&d, "\nx.\r\n", 5);
	cr_assert_eq(smtp_data_finish(&d), SMTP_DATA_OK);
	cr_assert_eq(out.len, 12);
	buf_free(&out);
}
