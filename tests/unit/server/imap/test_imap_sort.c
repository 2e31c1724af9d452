/* SORT criteria parsing and ordering (RFC 5256 section 2, RFC 5957). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_parser.h"
#include "server/imap/imap_sort.h"

static int parse(const char *line, struct imap_sort_crit *c, size_t *n)
{
	char *buf = xstrdup(line);
	struct imap_args args = {0};
	const char *err = NULL;
	cr_assert_eq(imap_parse(buf, strlen(buf), &args, &err), 0, "%s", line);
	int rc = imap_sort_parse(args.n > 0 ? &args.v[0] : NULL, c, n, &err);
	imap_args_free(&args);
	free(buf);
	return rc;
}

Test(imap_sort, parse)
{
	struct imap_sort_crit c[IMAP_SORT_CRIT_MAX];
	size_t n = 0;
	cr_assert_eq(parse("(REVERSE date subject displayfrom)", c, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert(c[0].key == IMAP_SORT_DATE && c[0].reverse);
	cr_assert(c[1].key == IMAP_SORT_SUBJECT && !c[1].reverse);
	cr_assert(c[2].key == IMAP_SORT_DISPLAYFROM);
	static const char *const bad[] = {
	    "()",      "DATE",     "(REVERSE)",     "(DATE REVERSE)", "(REVERSE REVERSE DATE)",
	    "(DATES)", "((DATE))", "(\"DATE\" NIL)"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse(bad[i], c, &n), -EINVAL, "%s", bad[i]);
	/* One criterion more than the limit. */
	char many[1024];
	size_t len = 0;
	many[len++] = '(';
	for (int i = 0; i <= IMAP_SORT_CRIT_MAX; i++) {
		memcpy(many + len, "SIZE ", 5);
		len += 5;
	}
	memcpy(many + len, ")", 2);
	cr_expect_eq(parse(many, c, &n), -EINVAL);
	many[len - 5] = '\0'; /* at the limit: accepted */
	many[len - 6] = ')';
	cr_expect_eq(parse(many, c, &n), 0);
	cr_expect_eq(n, IMAP_SORT_CRIT_MAX);
}

/* Keys as the store keeps them: i;unicode-casemap form, compared as octets. */
static const struct imap_sort_msg msgs[] = {
    {.seq = 1,
     .size = 30,
     .arrival = 3,
     .date = 5,
     .subject = "BANANA",
     .from = "ZED",
     .display_from = "AARON",
     .to = NULL,
     .cc = "B"},
    {.seq = 2,
     .size = 10,
     .arrival = 1,
     .date = 5,
     .subject = "APPLE",
     .from = "ALICE",
     .display_from = "ALICE@X",
     .to = "X",
     .cc = NULL},
    {.seq = 3,
     .size = 20,
     .arrival = 2,
     .date = 1,
     .subject = "APPLE",
     .from = "BOB",
     .display_from = "_UNDER",
     .to = "",
     .cc = "A"},
};

static void expect_order(const char *crit, uint32_t a, uint32_t b, uint32_t c3)
{
	struct imap_sort_crit c[IMAP_SORT_CRIT_MAX];
	size_t n = 0;
	cr_assert_eq(parse(crit, c, &n), 0);
	const struct imap_sort_msg *v[3] = {&msgs[2], &msgs[0], &msgs[1]};
	imap_sort(v, 3, c, n);
	cr_expect(v[0]->seq == a && v[1]->seq == b && v[2]->seq == c3, "%s: %u %u %u", crit,
	          v[0]->seq, v[1]->seq, v[2]->seq);
}

Test(imap_sort, order)
{
	expect_order("(ARRIVAL)", 2, 3, 1);
	expect_order("(SIZE)", 2, 3, 1);
	expect_order("(REVERSE SIZE)", 1, 3, 2);
	expect_order("(DATE)", 3, 1, 2);         /* 1 and 2 tie: by sequence */
	expect_order("(REVERSE DATE)", 1, 2, 3); /* the tie-break is not reversed */
	expect_order("(SUBJECT)", 2, 3, 1);      /* APPLE APPLE BANANA */
	expect_order("(SUBJECT REVERSE DATE)", 2, 3, 1);
	expect_order("(SUBJECT DATE)", 3, 2, 1);
	expect_order("(FROM)", 2, 3, 1);        /* ALICE BOB ZED */
	expect_order("(DISPLAYFROM)", 1, 2, 3); /* "_" (0x5f) after capitals */
	expect_order("(TO)", 1, 3, 2);          /* NULL and "" are equal: sequence */
	expect_order("(CC)", 2, 3, 1);          /* "" A b */
}

Test(imap_sort, many_stable)
{
	size_t n = 10001;
	struct imap_sort_msg *m = xcalloc(n, sizeof(*m));
	const struct imap_sort_msg **v = xmalloc(n * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		m[i].seq = (uint32_t)i + 1;
		m[i].date = (int64_t)((i * 7919) % 13);
		v[n - 1 - i] = &m[i];
	}
	struct imap_sort_crit c = {IMAP_SORT_DATE, false};
	imap_sort(v, n, &c, 1);
	for (size_t i = 1; i < n; i++)
		cr_assert(v[i - 1]->date < v[i]->date ||
		          (v[i - 1]->date == v[i]->date && v[i - 1]->seq < v[i]->seq));
	free(v);
	free(m);
}
