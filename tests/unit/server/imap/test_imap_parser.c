/* The IMAP command reader and argument parser, fed whole, byte by byte, in random chunks
 * and with hostile input (house rules, docs/hacking.md). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_parser.h"

/* Renders args as text: atoms bare, strings "quoted", literals {n}quoted, NIL, (lists). */
static void render_args(struct buf *o, const struct imap_arg *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_append_str(o, " ");
		const struct imap_arg *a = &v[i];
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_append(o, a->s, a->len);
			break;
		case IMAP_ARG_NIL:
			buf_append_str(o, "NIL");
			break;
		case IMAP_ARG_STRING:
			buf_append_str(o, a->literal ? "{L}\"" : "\"");
			buf_append(o, a->s, a->len);
			buf_append_str(o, "\"");
			break;
		case IMAP_ARG_LIST:
			buf_append_str(o, "(");
			render_args(o, a->list, a->n);
			buf_append_str(o, ")");
			break;
		}
	}
}

/* Feeds a wire transcript (lines with CRLF, literals inline) to the reader in chunks,
 * the way conn.c would: lines split at LF, literal bytes as asked. Returns the rendering
 * of the parsed command, or "E<errno>" / "P:<error>". */
static char *run(const char *wire, size_t (*chunk)(size_t))
{
	struct imap_reader r;
	imap_reader_init(&r, 1000);
	struct buf line;
	buf_init(&line, 1 << 20);
	size_t len = strlen(wire), off = 0;
	uint64_t want = 0;
	char *result = NULL;
	while (off < len && result == NULL) {
		size_t n = chunk(len - off);
		if (n > len - off)
			n = len - off;
		for (size_t k = 0; k < n && result == NULL; k++) {
			char c = wire[off + k];
			if (want > 0) {
				cr_assert_eq(imap_reader_bytes(&r, &c, 1), 0);
				want--;
				continue;
			}
			if (c != '\n') {
				buf_append(&line, &c, 1);
				continue;
			}
			size_t l = line.len;
			if (l > 0 && line.data[l - 1] == '\r')
				l--;
			struct imap_literal lit;
			int rc = imap_reader_line(&r, line.data, l, &lit);
			buf_reset(&line);
			if (rc < 0) {
				char t[32];
				snprintf(t, sizeof(t), "E%d", -rc);
				result = strdup(t);
			} else if (rc == 0) {
				want = lit.size;
			} else {
				struct imap_args args;
				const char *err = NULL;
				struct buf o;
				buf_init(&o, 1 << 20);
				if (imap_parse(r.cmd.data, r.cmd.len, &args, &err) < 0) {
					buf_printf(&o, "P:%s", err);
				} else {
					render_args(&o, args.v, args.n);
				}
				imap_args_free(&args);
				result = strdup(o.data != NULL ? o.data : "");
				buf_free(&o);
			}
		}
		off += n;
	}
	buf_free(&line);
	imap_reader_free(&r);
	return result != NULL ? result : strdup("INCOMPLETE");
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
static size_t rnd(size_t left)
{
	return 1 + (size_t)rand() % (left < 7 ? left : 7);
}

struct pcase {
	const char *in, *out;
};

static const struct pcase cases[] = {
    {"a1 NOOP\r\n", "a1 NOOP"},
    {"a LOGIN \"us\\\"er\" {3}\r\np w\r\n", "a LOGIN \"us\"er\" {L}\"p w\""},
    {"a LOGIN x {3+}\r\nabc\r\n", "a LOGIN x {L}\"abc\""},
    {"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n",
     "a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)"},
    {"a LIST \"\" *\r\n", "a LIST \"\" *"},
    {"a SELECT NIL\r\n", "a SELECT NIL"},
    {"a X (a (b (c)) ())\r\n", "a X (a (b (c)) ())"},
    {"a APPEND INBOX (\\Seen) {5}\r\nhello {0}\r\n\r\n",
     "a APPEND INBOX (\\Seen) {L}\"hello\" {L}\"\""},
    {"a X \"caf\xc3\xa9\"\r\n", "a X \"caf\xc3\xa9\""},
    {"a X \"unterminated\r\n", "P:unterminated quoted string"},
    {"a X (a\r\n", "P:missing )"},
    {"a X a)\r\n", "P:unbalanced )"},
    {"a X a\"b\"\r\n", "P:missing space between arguments"},
    {"a X )\r\n", "P:unbalanced )"},
    {"a X \"bad\\escape\"\r\n", "P:bad escape in quoted string"},
    {"a X {99999}\r\n", "E7"},       /* E2BIG before any byte */
    {"a APPEND x {2000}\r\n", "E7"}, /* over the message limit (1000 here) */
    {"a X ((((((((((((((((((((((((((((((((((x))))))))))))))))))))))))))))))))))\r\n",
     "P:lists nested too deep"},
    /* "[" and "]" are ASTRING-CHARs: only a fetch-att's section is bracketed. */
    {"a SELECT !#$&'+,-.0123456789:;<=>?@^_|[}\r\n", "a SELECT !#$&'+,-.0123456789:;<=>?@^_|[}"},
    {"a SELECT a]b\r\n", "a SELECT a]b"},
    {"a RENAME x[ y]\r\n", "a RENAME x[ y]"},
    {"a LOGIN [user] p[w\r\n", "a LOGIN [user] p[w"},
    {"a FETCH 1 BINARY.PEEK[1]<0.10>\r\n", "a FETCH 1 BINARY.PEEK[1]<0.10>"},
    {"a FETCH 1 body[header.fields (X)] BODY[]\r\n", "a FETCH 1 body[header.fields (X)] BODY[]"},
    {"a FETCH 1 BODY.PEEK[HEADER\r\n", "P:missing ]"},
    {"a FETCH 1 (BODY[1 UID)\r\n", "P:missing ]"},
    /* A synchronising {0} is a literal like any other (the session sends its "+"). */
    {"a SELECT {0}\r\n\r\n", "a SELECT {L}\"\""},
    {"a LOGIN {0}\r\n {0}\r\n\r\n", "a LOGIN {L}\"\" {L}\"\""},
    {"a APPEND INBOX {0}\r\n\r\n", "a APPEND INBOX {L}\"\""},
};

static void check_all(size_t (*chunk)(size_t))
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = run(cases[i].in, chunk);
		cr_expect_str_eq(got, cases[i].out, "case %zu: %s", i, cases[i].in);
		free(got);
	}
}

Test(imap_parser, whole)
{
	check_all(whole);
}

Test(imap_parser, byte_by_byte)
{
	check_all(one);
}

Test(imap_parser, random_chunks)
{
	srand(42);
	for (int k = 0; k < 20; k++)
		check_all(rnd);
}

Test(imap_parser, nul_outside_literal_refused)
{
	char cmd[] = "a X ab\0cd\r\n";
	struct imap_args args;
	const char *err;
	cr_assert_lt(imap_parse(cmd, sizeof(cmd) - 1, &args, &err), 0);
	imap_args_free(&args);
}

Test(imap_parser, nul_inside_literal_kept)
{
	char cmd[] = "a X {3}\r\na\0b\r\n";
	struct imap_args args;
	const char *err;
	cr_assert_eq(imap_parse(cmd, sizeof(cmd) - 1, &args, &err), 0);
	cr_assert_eq(args.n, 3);
	cr_assert_eq(args.v[2].len, 3);
	cr_assert_null(imap_arg_dup(&args.v[2]));
	imap_args_free(&args);
}

Test(imap_parser, literal_lying_about_size)
{
	char cmd[] = "a X {30}\r\nshort\r\n";
	struct imap_args args;
	const char *err;
	cr_assert_lt(imap_parse(cmd, sizeof(cmd) - 1, &args, &err), 0);
	cr_assert_str_eq(err, "bad literal");
	imap_args_free(&args);
}

Test(imap_parser, huge_literal_count)
{
	char *got = run("a X {99999999999999999999999}\r\n", whole);
	/* 23 digits: not an announcement; parsed as a command and refused. */
	cr_assert_eq(strncmp(got, "P:", 2), 0, "%s", got);
	free(got);
}

Test(imap_parser, many_args_bounded)
{
	size_t n = IMAP_PARSE_MAX_ARGS + 10;
	char *cmd = malloc(n * 2 + 8);
	size_t l = 0;
	memcpy(cmd, "a X", 3);
	l = 3;
	for (size_t i = 0; i < n; i++) {
		cmd[l++] = ' ';
		cmd[l++] = 'x';
	}
	cmd[l++] = '\r';
	cmd[l++] = '\n';
	struct imap_args args;
	const char *err;
	cr_assert_lt(imap_parse(cmd, l, &args, &err), 0);
	cr_assert_str_eq(err, "too many arguments");
	imap_args_free(&args);
	free(cmd);
}

/* "a X (y x x ... x) z" with n x's: n + 5 arguments, lists and their members alike. */
static size_t list_cmd(char *cmd, size_t n)
{
	size_t l = 6;
	memcpy(cmd, "a X (y", 6);
	for (size_t i = 0; i < n; i++) {
		cmd[l++] = ' ';
		cmd[l++] = 'x';
	}
	memcpy(cmd + l, ") z\r\n", 5);
	return l + 5;
}

/* The bound counts arguments (not the parser's internal copies): exactly the maximum
 * parses, one more does not. */
Test(imap_parser, max_args_accepted)
{
	size_t n = IMAP_PARSE_MAX_ARGS - 5;
	char *cmd = malloc(n * 2 + 32);
	size_t l = list_cmd(cmd, n);
	struct imap_args args;
	const char *err = NULL;
	cr_assert_eq(imap_parse(cmd, l, &args, &err), 0, "%s", err);
	cr_assert_eq(args.n, 4);
	cr_assert_eq(args.v[2].n, n + 1);
	cr_assert_eq(args.v[3].s[0], 'z');
	imap_args_free(&args);
	l = list_cmd(cmd, n + 1);
	cr_assert_lt(imap_parse(cmd, l, &args, &err), 0);
	cr_assert_str_eq(err, "too many arguments");
	imap_args_free(&args);
	free(cmd);
}

Test(imap_parser, nonsync_flag)
{
	struct imap_reader r;
	imap_reader_init(&r, 100);
	struct imap_literal lit;
	cr_assert_eq(imap_reader_line(&r, "a X {5+}", 8, &lit), 0);
	cr_assert(lit.nonsync);
	cr_assert_eq(lit.size, 5);
	imap_reader_reset(&r);
	cr_assert_eq(imap_reader_line(&r, "a X {70000+}", 12, &lit), -E2BIG);
	cr_assert(lit.nonsync);
	imap_reader_free(&r);
}

/* A diverted literal (spooled by the session) parses as an empty literal at the returned
 * offset and still counts towards the command's limit. */
Test(imap_parser, divert_literal)
{
	struct imap_reader r;
	imap_reader_init(&r, 1000);
	struct imap_literal lit;
	cr_assert_eq(imap_reader_line(&r, "a APPEND INBOX {600+}", 21, &lit), 0);
	size_t off = imap_reader_divert(&r);
	cr_assert_str_eq(r.cmd.data, "a APPEND INBOX {0}\r\n");
	cr_assert_eq(off, r.cmd.len);
	cr_assert_eq(imap_reader_line(&r, " {500}", 6, &lit), 0);
	off = imap_reader_divert(&r);
	cr_assert_eq(r.diverted, 1100); /* checked with cmd.len against the command limit */
	imap_reader_reset(&r);
	cr_assert_eq(imap_reader_line(&r, "a APPEND INBOX {600}", 20, &lit), 0);
	off = imap_reader_divert(&r);
	cr_assert_eq(imap_reader_line(&r, " (\\Seen) {2}", 12, &lit), 0);
	cr_assert_eq(imap_reader_bytes(&r, "hi", 2), 0);
	cr_assert_eq(imap_reader_line(&r, "", 0, &lit), 1);
	struct imap_args args;
	const char *err = NULL;
	cr_assert_eq(imap_parse(r.cmd.data, r.cmd.len, &args, &err), 0, "%s", err);
	cr_assert_eq(args.n, 6);
	cr_assert(args.v[3].literal);
	cr_assert_eq(args.v[3].len, 0);
	cr_assert_eq((size_t)(args.v[3].s - r.cmd.data), off);
	cr_assert_eq(args.v[5].len, 2);
	imap_args_free(&args);
	imap_reader_free(&r);
}

Test(imap_seqset, parse_and_contains)
{
	struct imap_seqset s;
	cr_assert_eq(imap_seqset_parse("1,3:5,9:*", 9, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert(imap_seqset_contains(&s, 1, 20));
	cr_assert_not(imap_seqset_contains(&s, 2, 20));
	cr_assert(imap_seqset_contains(&s, 4, 20));
	cr_assert(imap_seqset_contains(&s, 20, 20));
	cr_assert_not(imap_seqset_contains(&s, 21, 20));
	imap_seqset_free(&s);
	cr_assert_eq(imap_seqset_parse("5:2", 3, &s), 0);
	cr_assert_eq(s.r[0].first, 2);
	imap_seqset_free(&s);
	cr_assert_eq(imap_seqset_parse("$", 1, &s), 0);
	cr_assert(s.dollar);
	const char *bad[] = {"", "0", "1,", ",1", "1::2", "a", "4294967296", "01", "1:0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(imap_seqset_parse(bad[i], strlen(bad[i]), &s), 0, "%s", bad[i]);
}

/* A synchronising {0} is announced to the caller (which owes the client a "+") and
 * needs no bytes: the next line continues the command. */
Test(imap_parser, empty_literal_announced)
{
	struct imap_reader r;
	imap_reader_init(&r, 100);
	struct imap_literal lit = {99, true};
	cr_assert_eq(imap_reader_line(&r, "a LOGIN {0}", 11, &lit), 0);
	cr_assert_eq(lit.size, 0);
	cr_assert_not(lit.nonsync);
	cr_assert_not(r.in_literal);
	cr_assert_eq(imap_reader_line(&r, " {0+}", 5, &lit), 0);
	cr_assert(lit.nonsync);
	cr_assert_eq(imap_reader_line(&r, "", 0, &lit), 1);
	imap_reader_free(&r);
}

/* "*" is not a number: 4294967295 is one, and only stands for itself. */
Test(imap_seqset, star_is_not_the_largest_number)
{
	struct imap_seqset s;
	cr_assert_eq(imap_seqset_parse("10:4294967295", 13, &s), 0);
	cr_assert_eq(s.r[0].first, 10);
	cr_assert_eq(s.r[0].last, 4294967295u);
	cr_assert_not(imap_seqset_contains(&s, 3, 3));
	cr_assert(imap_seqset_contains(&s, 4294967295u, 3));
	cr_assert(imap_seqset_contains(&s, 10, 3));
	imap_seqset_free(&s);

	/* 10:* is 10..* in either order: with * = 3 it is 3:10. */
	cr_assert_eq(imap_seqset_parse("10:*", 4, &s), 0);
	cr_assert_eq(s.r[0].first, 10);
	cr_assert_eq(s.r[0].last, IMAP_SEQ_STAR);
	cr_assert(imap_seqset_contains(&s, 3, 3));
	cr_assert_not(imap_seqset_contains(&s, 2, 3));
	cr_assert_not(imap_seqset_contains(&s, 11, 3));
	cr_assert(imap_seqset_contains(&s, 11, 20));
	imap_seqset_free(&s);

	/* "*" stays in last whichever side it was written on. */
	cr_assert_eq(imap_seqset_parse("*:5,*,4294967295", 16, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.r[0].first, 5);
	cr_assert_eq(s.r[0].last, IMAP_SEQ_STAR);
	cr_assert_eq(s.r[1].first, IMAP_SEQ_STAR);
	cr_assert_eq(s.r[1].last, IMAP_SEQ_STAR);
	cr_assert_eq(s.r[2].first, 4294967295u);
	cr_assert(imap_seqset_contains(&s, 7, 7));
	cr_assert(imap_seqset_contains(&s, 4294967295u, 7));
	cr_assert_not(imap_seqset_contains(&s, 4, 7));
	cr_assert_not(imap_seqset_contains(&s, 8, 7));
	cr_assert_eq(imap_seq_resolve(IMAP_SEQ_STAR, 9), 9);
	cr_assert_eq(imap_seq_resolve(4294967295u, 9), 4294967295u);
	imap_seqset_free(&s);
}
