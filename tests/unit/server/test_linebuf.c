/* The line reader, fed whole, byte by byte and in random chunks (house rules, docs/hacking.md). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/linebuf.h"

/* Runs input through a linebuf of the given limit, feeding chunks of the sizes chosen by
 * next_chunk, and renders what came out: "[line]" for CRLF lines, "<line>" for bare-LF
 * lines, "!" for an over-long line. Bytes are drained after every feed, as conn.c does. */
static char *render(const char *in, size_t len, size_t limit, size_t (*next_chunk)(size_t))
{
	struct linebuf lb;
	struct buf out;
	buf_init(&out, 1 << 20);
	linebuf_init(&lb, limit, 64);
	size_t off = 0;
	while (off < len) {
		size_t n = next_chunk(len - off);
		size_t taken = linebuf_feed(&lb, in + off, n);
		off += taken;
		for (;;) {
			char *line;
			size_t l;
			bool cr;
			int r = linebuf_next(&lb, &line, &l, &cr);
			if (r == 0)
				break;
			if (r < 0) {
				buf_append_str(&out, "!");
				continue;
			}
			cr_assert_eq(line[l], '\0');
			buf_append(&out, cr ? "[" : "<", 1);
			buf_append(&out, line, l);
			buf_append(&out, cr ? "]" : ">", 1);
			linebuf_consume_line(&lb);
		}
	}
	linebuf_free(&lb);
	char *s = calloc(1, out.len + 1);
	if (out.len > 0)
		memcpy(s, out.data, out.len);
	buf_free(&out);
	return s;
}

static size_t whole(size_t left)
{
	return left;
}

static size_t one(size_t left)
{
	(void)left;
	return 1;
}

static size_t random_chunk(size_t left)
{
	size_t n = 1 + (size_t)(rand() % 7);
	return n < left ? n : left;
}

struct lb_case {
	const char *in;
	size_t limit;
	const char *want;
};

static const struct lb_case cases[] = {
    {"EHLO x\r\n", 100, "[EHLO x]"},
    {"a\r\nb\r\nc\r\n", 100, "[a][b][c]"},
    {"bare\nlf\r\n", 100, "<bare>[lf]"},
    {"\r\n\r\n", 100, "[][]"},
    {"no end", 100, ""},
    {"cr\rinside\r\n", 100, "[cr\rinside]"},
    {"12345\r\n", 5, "[12345]"},
    {"123456\r\nok\r\n", 5, "![ok]"},
    {"1234567890abcdef\r\nok\r\n", 5, "![ok]"},
    {"1234567890abcdef\nok\n", 5, "!<ok>"},
    {"x\r\n1234567890\r\n1234567890\r\ny\r\n", 4, "[x]!![y]"},
    {"nul\0byte\r\n", 100, "[nul\0byte]"},
};

static void check_case(const struct lb_case *c, size_t (*chunk)(size_t), const char *how)
{
	size_t len = strlen(c->in);
	if (strstr(c->want, "nul") != NULL)
		len = 10; /* the NUL case */
	char *got = render(c->in, len, c->limit, chunk);
	size_t wlen = strstr(c->want, "nul") ? 10 : strlen(c->want);
	cr_expect(memcmp(got, c->want, wlen) == 0, "%s: input %s: got %s want %s", how, c->in, got,
	          c->want);
	free(got);
}

Test(linebuf, table_whole_bytewise_random)
{
	srand(12345);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_case(&cases[i], whole, "whole");
		check_case(&cases[i], one, "bytewise");
		for (int k = 0; k < 20; k++)
			check_case(&cases[i], random_chunk, "random");
	}
}

Test(linebuf, buffer_is_bounded)
{
	struct linebuf lb;
	linebuf_init(&lb, 10, 20);
	/* Many short lines that nobody takes out: the buffer stops taking at its bound. */
	const char *lines = "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\nh\r\ni\r\nj\r\nk\r\nl\r\n";
	size_t taken = linebuf_feed(&lb, lines, strlen(lines));
	cr_assert_leq(taken, 32);
	cr_assert_leq(lb.buf.len, lb.buf.max);
	linebuf_free(&lb);
}

Test(linebuf, overlong_line_never_buffered_whole)
{
	struct linebuf lb;
	linebuf_init(&lb, 100, 0);
	char big[1000];
	memset(big, 'x', sizeof(big));
	int reported = 0;
	for (int round = 0; round < 100; round++) {
		size_t off = 0;
		while (off < sizeof(big)) {
			off += linebuf_feed(&lb, big + off, sizeof(big) - off);
			char *l;
			size_t n;
			bool cr;
			int r;
			while ((r = linebuf_next(&lb, &l, &n, &cr)) != 0)
				if (r < 0)
					reported++;
			cr_assert_leq(lb.buf.len, 102);
		}
	}
	cr_assert_eq(reported, 1, "one report per over-long line, got %d", reported);
	/* The end of the line arrives: the next line is whole again. */
	linebuf_feed(&lb, "tail\r\nnext\r\n", 12);
	char *l;
	size_t n;
	bool cr;
	cr_assert_eq(linebuf_next(&lb, &l, &n, &cr), 1);
	cr_assert_str_eq(l, "next");
	linebuf_free(&lb);
}

Test(linebuf, discard_drops_pipelined_plaintext)
{
	struct linebuf lb;
	linebuf_init(&lb, 100, 100);
	linebuf_feed(&lb, "STARTTLS\r\nMAIL FROM:<evil>\r\n", 28);
	char *l;
	size_t n;
	bool cr;
	cr_assert_eq(linebuf_next(&lb, &l, &n, &cr), 1);
	cr_assert_str_eq(l, "STARTTLS");
	linebuf_consume_line(&lb);
	linebuf_discard(&lb);
	cr_assert_eq(linebuf_next(&lb, &l, &n, &cr), 0);
	linebuf_free(&lb);
}

Test(linebuf, raw_bytes_then_lines)
{
	struct linebuf lb;
	linebuf_init(&lb, 100, 100);
	linebuf_feed(&lb, "abc\r\nX\r\n", 8);
	const char *d;
	size_t n = linebuf_peek_raw(&lb, &d, 5);
	cr_assert_eq(n, 5);
	cr_assert(memcmp(d, "abc\r\n", 5) == 0);
	linebuf_consume_raw(&lb, 5);
	char *l;
	size_t len;
	bool cr;
	cr_assert_eq(linebuf_next(&lb, &l, &len, &cr), 1);
	cr_assert_str_eq(l, "X");
	linebuf_free(&lb);
}
