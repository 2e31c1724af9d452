#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "server/pop3/pop3_dotstuff.h"

struct ds_case {
	const char *in;
	long top; /* -1: RETR */
	const char *out;
};

static const struct ds_case cases[] = {
    {"", -1, ".\r\n"},
    {"a\r\n", -1, "a\r\n.\r\n"},
    {"a", -1, "a\r\n.\r\n"},
    {"a\r", -1, "a\r\n.\r\n"},
    {"a\n", -1, "a\r\n.\r\n"},
    {".\r\n", -1, "..\r\n.\r\n"},
    {".", -1, "..\r\n.\r\n"},
    {"..x\r\n.\r\n", -1, "...x\r\n..\r\n.\r\n"},
    {"a\r\n.b\r\nc.\r\n", -1, "a\r\n..b\r\nc.\r\n.\r\n"},
    {"a\n.b\nc", -1, "a\r\n..b\r\nc\r\n.\r\n"},
    {"a\r.b\r\n", -1, "a\r.b\r\n.\r\n"},
    {"\r\n\r\n", -1, "\r\n\r\n.\r\n"},
    {"\n.\n", -1, "\r\n..\r\n.\r\n"},
    {"x\r\r\n", -1, "x\r\r\n.\r\n"},
    /* TOP */
    {"H: 1\r\n\r\nb1\r\nb2\r\n", 0, "H: 1\r\n\r\n.\r\n"},
    {"H: 1\r\n\r\nb1\r\nb2\r\n", 1, "H: 1\r\n\r\nb1\r\n.\r\n"},
    {"H: 1\r\n\r\nb1\r\nb2\r\n", 2, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"},
    {"H: 1\r\n\r\nb1\r\nb2\r\n", 9, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"},
    {"H: 1\r\n\r\nb1\r\nb2", 9, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"},
    {"H: 1\n\n.b1\n.b2\n", 1, "H: 1\r\n\r\n..b1\r\n.\r\n"},
    {"H: 1\r\nH: 2\r\n", 0, "H: 1\r\nH: 2\r\n.\r\n"},
    {"H: 1", 0, "H: 1\r\n.\r\n"},
    {"H: 1\r\n\r\n", 0, "H: 1\r\n\r\n.\r\n"},
    {"H: 1\r\n\r\n\r\n\r\nx\r\n", 1, "H: 1\r\n\r\n\r\n.\r\n"},
    {"\r\nbody\r\nmore\r\n", 1, "\r\nbody\r\n.\r\n"},
    {"H:\r\n \r\nb\r\n", 0, "H:\r\n \r\nb\r\n.\r\n"},
};

static void ds_init(struct pop3_dotstuff *ds, long top)
{
	if (top < 0)
		pop3_dotstuff_init(ds);
	else
		pop3_dotstuff_init_top(ds, (uint64_t)top);
}

/* Encodes in, split at the given cut points (sorted), into out; returns the length. */
static size_t encode_cuts(const char *in, size_t len, long top, const size_t *cuts, size_t n_cuts,
                          char *out)
{
	struct pop3_dotstuff ds;
	ds_init(&ds, top);
	size_t o = 0, from = 0;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t to = i < n_cuts ? cuts[i] : len;
		o += pop3_dotstuff_feed(&ds, in + from, to - from, out + o);
		from = to;
	}
	o += pop3_dotstuff_finish(&ds, out + o);
	return o;
}

static void check(const struct ds_case *tc, const char *got, size_t got_len, const char *how)
{
	cr_assert_eq(got_len, strlen(tc->out), "%s: in=%s top=%ld: length %zu, expected %zu", how,
	             tc->in, tc->top, got_len, strlen(tc->out));
	cr_assert(memcmp(got, tc->out, got_len) == 0, "%s: in=%s top=%ld: wrong bytes", how, tc->in,
	          tc->top);
}

Test(pop3_dotstuff, whole)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256];
		size_t n =
		    encode_cuts(cases[i].in, strlen(cases[i].in), cases[i].top, NULL, 0, out);
		check(&cases[i], out, n, "whole");
	}
}

Test(pop3_dotstuff, byte_by_byte)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		size_t cuts[64];
		for (size_t k = 0; k + 1 < len; k++)
			cuts[k] = k + 1;
		char out[256];
		size_t n =
		    encode_cuts(cases[i].in, len, cases[i].top, cuts, len ? len - 1 : 0, out);
		check(&cases[i], out, n, "byte by byte");
	}
}

Test(pop3_dotstuff, every_one_and_two_cut_positions)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t a = 0; a <= len; a++) {
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = {a, b};
				char out[256];
				size_t n =
				    encode_cuts(cases[i].in, len, cases[i].top, cuts, 2, out);
				check(&cases[i], out, n, "two cuts");
			}
		}
	}
}

Test(pop3_dotstuff, empty_chunks_change_nothing)
{
	struct pop3_dotstuff ds;
	pop3_dotstuff_init(&ds);
	char out[16];
	cr_assert_eq(pop3_dotstuff_feed(&ds, "", 0, out), 0);
	cr_assert_eq(pop3_dotstuff_feed(&ds, ".", 1, out), 2);
	cr_assert_eq(pop3_dotstuff_feed(&ds, "", 0, out), 0);
	cr_assert_eq(pop3_dotstuff_feed(&ds, ".", 1, out), 1);
}

Test(pop3_dotstuff, top_reports_done_and_ignores_the_rest)
{
	struct pop3_dotstuff ds;
	pop3_dotstuff_init_top(&ds, 1);
	char out[64];
	size_t n = pop3_dotstuff_feed(&ds, "A: b\r\n\r\nline1\r\n", 15, out);
	cr_assert_eq(n, 15);
	cr_assert(pop3_dotstuff_done(&ds));
	cr_assert_eq(pop3_dotstuff_feed(&ds, "line2\r\n", 7, out), 0);
	cr_assert_eq(pop3_dotstuff_finish(&ds, out), 3);
	cr_assert(memcmp(out, ".\r\n", 3) == 0);
}

/* Undoes the encoding as a client does: lines up to ".\r\n", leading dot removed. */
static size_t decode(const char *in, size_t len, char *out)
{
	size_t o = 0, i = 0;
	for (;;) {
		size_t e = i;
		while (e + 1 < len && !(in[e] == '\r' && in[e + 1] == '\n'))
			e++;
		cr_assert(e + 1 < len, "no terminator");
		if (e - i == 1 && in[i] == '.')
			break;
		if (in[i] == '.') {
			cr_assert(e > i + 1 && in[i + 1] == '.', "unstuffed dot");
			i++;
		}
		memcpy(out + o, in + i, e - i + 2);
		o += e - i + 2;
		i = e + 2;
	}
	cr_assert_eq(i + 3, len, "bytes after the terminator");
	return o;
}

Test(pop3_dotstuff, random_crlf_messages_round_trip_in_random_chunks)
{
	srand(1939);
	static char msg[20000], enc[2 * 20000 + 8], dec[20000 + 8];
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(rand() % 4000);
		static const char alphabet[] = "..ab\r\n \t";
		for (size_t i = 0; i < len; i++) {
			char ch = alphabet[rand() % (sizeof(alphabet) - 1)];
			/* CRLF-only messages so the round trip is exact. */
			if (ch == '\r' || ch == '\n') {
				if (i + 1 >= len)
					ch = 'z';
				else {
					msg[i++] = '\r';
					ch = '\n';
				}
			}
			msg[i] = ch;
		}
		struct pop3_dotstuff ds;
		pop3_dotstuff_init(&ds);
		size_t o = 0, at = 0;
		while (at < len) {
			size_t n = (size_t)(rand() % 50);
			if (n > len - at)
				n = len - at;
			o += pop3_dotstuff_feed(&ds, msg + at, n, enc + o);
			at += n;
		}
		o += pop3_dotstuff_finish(&ds, enc + o);
		size_t d = decode(enc, o, dec);
		bool crlf_end = len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n';
		if (len == 0 || crlf_end) {
			cr_assert_eq(d, len);
		} else {
			cr_assert_eq(d, len + 2);
			cr_assert(dec[len] == '\r' && dec[len + 1] == '\n');
		}
		cr_assert(memcmp(dec, msg, len) == 0, "round %d differs", round);
	}
}
