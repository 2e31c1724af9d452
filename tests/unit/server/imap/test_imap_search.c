/* SEARCH key parsing and evaluation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/imap/imap_parser.h"
#include "server/imap/imap_search.h"
#include "storage/store.h"

static const char hdr[] = "From: Alice <alice@x.org>\r\nSubject: Quarterly report\r\n"
                          "Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\n";

static const struct imap_search_msg msgs[] = {
    {1, 10, STORE_SEEN, "", 100, 5, 1704067200, hdr, sizeof(hdr) - 1, false, NULL, NULL, NULL, NULL,
     NULL, 0, 0xa1, 0x71, 1704240000}, /* 1 Jan, saved 3 Jan */
    {2, 11, 0, "$Work", 5000, 6, 1704153600, hdr, sizeof(hdr) - 1, false, NULL, NULL, NULL, NULL,
     NULL, 0, 0xa2, 0x71, 1704153600}, /* 2 Jan, saved 2 Jan */
    {3, 15, STORE_DELETED | STORE_FLAGGED, "", 300, 9, 1704240000, "To: b@y\r\n\r\n", 11, false,
     NULL, NULL, NULL, NULL, NULL, 0, 0xa3, 0, 1704067200}, /* 3 Jan, saved 1 Jan */
};

/* The decoded fields the store keeps answer header keys when loaded. */
static const struct imap_search_msg decoded_msg = {1,
                                                   20,
                                                   0,
                                                   "",
                                                   100,
                                                   1,
                                                   0,
                                                   NULL,
                                                   0,
                                                   true,
                                                   "=?x?= Jürgen <j@example.org>",
                                                   "bob@corp.example",
                                                   NULL,
                                                   "Quartalsbericht Q3",
                                                   "mp-1@example.org",
                                                   1733216400,
                                                   0,
                                                   0,
                                                   0};

/* Returns the matching sequence numbers as "1 3", or "BAD". */
static char *run(const char *query)
{
	char *cmd = NULL;
	size_t l = (size_t)asprintf(&cmd, "%s\r\n", query);
	struct imap_args args;
	const char *err;
	struct buf o;
	buf_init(&o, 4096);
	if (imap_parse(cmd, l, &args, &err) < 0) {
		buf_append_str(&o, "PARSE");
	} else {
		struct imap_search s;
		if (imap_search_parse(args.v, args.n, &s, &err) < 0) {
			buf_append_str(&o, "BAD");
		} else {
			for (size_t i = 0; i < 3; i++)
				if (imap_search_match(&s.root, &msgs[i], 3, 15))
					buf_printf(&o, "%s%u", o.len > 0 ? " " : "", msgs[i].seq);
			imap_search_free(&s);
		}
	}
	imap_args_free(&args);
	free(cmd);
	char *r = strdup(o.data != NULL ? o.data : "");
	buf_free(&o);
	return r;
}

Test(imap_search, keys)
{
	struct {
		const char *q, *want;
	} c[] = {
	    {"ALL", "1 2 3"},
	    {"SEEN", "1"},
	    {"UNSEEN", "2 3"},
	    {"DELETED FLAGGED", "3"},
	    {"OR SEEN DELETED", "1 3"},
	    {"NOT SEEN", "2 3"},
	    {"(SEEN) (ALL)", "1"},
	    {"KEYWORD $Work", "2"},
	    {"UNKEYWORD $work", "1 3"},
	    {"LARGER 200", "2 3"},
	    {"SMALLER 200", "1"},
	    {"UID 11:*", "2 3"},
	    {"UID *", "3"},
	    {"2:*", "2 3"},
	    {"1,3", "1 3"},
	    {"SINCE 2-Jan-2024", "2 3"},
	    {"BEFORE 2-Jan-2024", "1"},
	    {"ON 3-Jan-2024", "3"},
	    {"FROM alice", "1 2"},
	    {"SUBJECT QUARTERLY", "1 2"},
	    {"HEADER To b@y", "3"},
	    {"SENTON 2-Jan-2024", "1 2"},
	    {"MODSEQ 6", "2 3"},
	    {"CHARSET UTF-8 SEEN", "1"},
	    {"CHARSET KOI8-R SEEN", "BAD"},
	    {"RETURN (COUNT) SEEN", "1"},
	    {"BOGUS", "BAD"},
	    {"OR SEEN", "BAD"},
	    {"OR OR SEEN DELETED KEYWORD $Work", "1 2 3"},
	    {"OR SEEN OR DELETED LARGER 10000", "1 3"},
	    {"OR OR SEEN OR UID 11 DELETED SMALLER 1", "1 2 3"},
	    {"OR SEEN OR DELETED", "BAD"},
	    {"OR OR SEEN DELETED", "BAD"},
	    {"SINCE 32-Jan-2024", "BAD"},
	    {"", "BAD"},
	    /* RFC 8514: the save date, not the internal date. */
	    {"SAVEDSINCE 2-Jan-2024", "1 2"},
	    {"SAVEDBEFORE 2-Jan-2024", "3"},
	    {"SAVEDON 3-Jan-2024", "1"},
	    {"SAVEDATESUPPORTED", "1 2 3"},
	    {"SAVEDON", "BAD"},
	    /* RFC 8474: ids as FETCH shows them; one never given matches nothing. */
	    {"EMAILID M00000000000000a2", "2"},
	    {"THREADID T0000000000000071", "1 2"},
	    {"THREADID T0000000000000000", ""},
	    {"EMAILID M00000000000000A2", ""},
	    {"EMAILID Xyz", ""},
	    {"EMAILID \"a b\"", "BAD"},
	    {"EMAILID", "BAD"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *got = run(c[i].q);
		cr_expect_str_eq(got, c[i].want, "%s", c[i].q);
		free(got);
	}
}

Test(imap_search, deep_nesting_refused)
{
	char q[400] = "";
	for (int i = 0; i < 40; i++)
		memcpy(q + 4 * i, "NOT ", 5);
	memcpy(q + 160, "ALL", 4);
	char *got = run(q);
	cr_assert_str_eq(got, "BAD");
	free(got);
}

/* Chains of OR as clients write them (OR a OR b ... and OR OR ... a b ...) are one
 * union however long, not a nesting that the depth bound would refuse. */
Test(imap_search, long_or_chains)
{
	for (int left = 0; left <= 1; left++) {
		struct buf q;
		buf_init(&q, SIZE_MAX);
		int n = 3000;
		if (left) {
			for (int i = 0; i < n - 1; i++)
				buf_append_str(&q, "OR ");
			for (int i = 0; i < n - 1; i++)
				buf_append_str(&q, "UID 99 ");
			buf_append_str(&q, "UID 15");
		} else {
			for (int i = 0; i < n - 1; i++)
				buf_append_str(&q, "OR UID 99 ");
			buf_append_str(&q, "UID 10");
		}
		char *got = run(q.data);
		cr_expect_str_eq(got, left ? "3" : "1", "%s chain", left ? "left" : "right");
		free(got);
		buf_free(&q);
	}
}

Test(imap_search, sequence_numbers_must_exist)
{
	static const struct {
		const char *q;
		uint32_t n;
		bool ok;
	} c[] = {
	    {"1:3", 3, true},        {"3:*", 3, true},     {"4", 3, false},     {"2:4", 3, false},
	    {"5:*", 3, false},       {"*", 0, false},      {"UID 99", 3, true}, {"NOT 4", 3, false},
	    {"OR 1 UID 9", 3, true}, {"UID 1:*", 0, true},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *cmd = NULL;
		size_t l = (size_t)asprintf(&cmd, "%s\r\n", c[i].q);
		struct imap_args args;
		const char *err;
		cr_assert_eq(imap_parse(cmd, l, &args, &err), 0);
		struct imap_search s;
		cr_assert_eq(imap_search_parse(args.v, args.n, &s, &err), 0, "%s", c[i].q);
		cr_expect_eq(imap_search_seqs_valid(&s.root, c[i].n), c[i].ok, "%s in %u", c[i].q,
		             c[i].n);
		imap_search_free(&s);
		imap_args_free(&args);
		free(cmd);
	}
}

Test(imap_search, seqset_format)
{
	uint32_t v[] = {1, 2, 3, 5, 7, 8};
	struct buf o;
	buf_init(&o, 100);
	buf_append_uidset(&o, v, 6);
	cr_assert_str_eq(o.data, "1:3,5,7:8");
	buf_free(&o);
}

Test(imap_search, decoded_header_fields)
{
	static const struct {
		const char *q;
		bool match;
	} cases[] = {
	    {"FROM j@example", true},
	    {"FROM nobody", false},
	    {"SUBJECT quartals", true},
	    {"TO bob", true},
	    {"CC x", false},
	    {"HEADER Message-ID mp-1", true},
	    {"HEADER X-Other y", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *cmd = xstrdup(cases[i].q);
		struct imap_args args = {0};
		const char *err = NULL;
		cr_assert_eq(imap_parse(cmd, strlen(cmd), &args, &err), 0);
		struct imap_search s;
		cr_assert_eq(imap_search_parse(args.v, args.n, &s, &err), 0, "%s", cases[i].q);
		cr_assert(s.needs_header, "%s", cases[i].q);
		cr_assert_eq(imap_search_match(&s.root, &decoded_msg, 1, 20), cases[i].match, "%s",
		             cases[i].q);
		cr_assert_eq(s.needs_raw_header, strstr(cases[i].q, "X-Other") != NULL);
		imap_search_free(&s);
		imap_args_free(&args);
		free(cmd);
	}
}

/* The SENT* keys take the day of Date: as written, in its own zone, time ignored
 * (RFC 3501 6.4.4): the decoded date (UTC seconds) would put these a day off. */
Test(imap_search, sent_date_day_as_written)
{
	static const struct {
		const char *v;
		int rc;
		int64_t day;
	} cases[] = {
	    {" Tue, 2 Jan 2024 23:30:00 -0800", 0, 1704153600},
	    {" Wed, 03 Jan 2024 00:30:00 +1400", 0, 1704240000},
	    {"2 Jan 2024 10:00 +0000", 0, 1704153600},
	    {" (comment) Tue (x) , 02 (y) jan 2024 10:00:00 GMT", 0, 1704153600},
	    {"\r\n Tue,\r\n 2 Jan\r\n 2024 10:00:00 +0000", 0, 1704153600},
	    {" Tue, 2 Jan 24 10:00:00 +0000", 0, 1704153600},
	    {" Sat, 1 Jan 99 10:00:00 +0000", 0, 915148800},
	    {" Thu, 29 Feb 2024 10:00:00 +0000", 0, 1709164800},
	    {" Thu, 29 Feb 2023 10:00:00 +0000", -EINVAL, 0},
	    {" Tue, 32 Jan 2024 10:00:00 +0000", -EINVAL, 0},
	    {" Tue, 2 Foo 2024 10:00:00 +0000", -EINVAL, 0},
	    {" Tue 2 Jan 2024", -EINVAL, 0},
	    {" Tue, 2 Jan 20245", -EINVAL, 0},
	    {" Tue, 2 Jan", -EINVAL, 0},
	    {"", -EINVAL, 0},
	    {"garbage", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t day = 0;
		int rc = imap_parse_sent_date(cases[i].v, strlen(cases[i].v), &day);
		cr_expect_eq(rc, cases[i].rc, "%s", cases[i].v);
		if (rc == 0)
			cr_expect_eq(day, cases[i].day, "%s: %lld", cases[i].v, (long long)day);
	}
}

static bool match_raw(const char *query, const char *header)
{
	char *cmd = xstrdup(query);
	struct imap_args args = {0};
	const char *err = NULL;
	cr_assert_eq(imap_parse(cmd, strlen(cmd), &args, &err), 0, "%s", query);
	struct imap_search s;
	cr_assert_eq(imap_search_parse(args.v, args.n, &s, &err), 0, "%s", query);
	cr_assert(s.needs_raw_header, "%s reads the raw header", query);
	struct imap_search_msg m = {.seq = 1,
	                            .uid = 1,
	                            .keywords = "",
	                            .hdr = header,
	                            .hdr_len = strlen(header),
	                            .decoded = true,
	                            .subject = "NIL report",
	                            .date = 1704240000 - 1800};
	bool r = imap_search_match(&s.root, &m, 1, 1);
	imap_search_free(&s);
	imap_args_free(&args);
	free(cmd);
	return r;
}

Test(imap_search, sent_keys_use_the_day_as_written)
{
	/* 23:30 on 2 Jan at -0800 is 3 Jan in UTC: SENTON 2-Jan matches, 3-Jan does not. */
	static const char west[] = "Date: Tue, 2 Jan 2024 23:30:00 -0800\r\n\r\n";
	cr_expect(match_raw("SENTON 2-Jan-2024", west));
	cr_expect(!match_raw("SENTON 3-Jan-2024", west));
	cr_expect(match_raw("SENTBEFORE 3-Jan-2024", west));
	cr_expect(!match_raw("SENTSINCE 3-Jan-2024", west));
	/* 00:30 on 3 Jan at +1400 is still 2 Jan in UTC. */
	static const char east[] = "Date: Wed, 3 Jan 2024 00:30:00 +1400\r\n\r\n";
	cr_expect(match_raw("SENTON 3-Jan-2024", east));
	cr_expect(!match_raw("SENTBEFORE 3-Jan-2024", east));
	cr_expect(match_raw("SENTSINCE 3-Jan-2024", east));
	cr_expect(!match_raw("SENTON 2-Jan-2024", east));
	/* No Date: or one that cannot be read matches no SENT* key. */
	cr_expect(!match_raw("SENTSINCE 1-Jan-1970", "Subject: x\r\n\r\n"));
	cr_expect(!match_raw("SENTBEFORE 1-Jan-2100", "Date: soon\r\n\r\n"));
}

Test(imap_search, empty_header_string_asks_for_the_field)
{
	static const char with[] = "Subject: \r\nX-Tag: a\r\nX-Tag: second\r\n\r\n";
	static const char without[] = "From: a@b\r\n\r\n";
	cr_expect(match_raw("HEADER X-Tag \"\"", with));
	cr_expect(!match_raw("HEADER X-Tag \"\"", without));
	cr_expect(match_raw("HEADER Subject \"\"", with));
	cr_expect(!match_raw("HEADER Subject \"\"", without));
	cr_expect(match_raw("SUBJECT \"\"", with));
	cr_expect(!match_raw("SUBJECT \"\"", without));
	/* Every field of the name counts, not only the first. */
	cr_expect(match_raw("HEADER X-Tag SECOND", with));
	cr_expect(!match_raw("HEADER X-Tag third", with));
}

Test(imap_search, nil_is_a_string)
{
	struct {
		const char *q, *want;
	} c[] = {
	    {"SUBJECT NIL", ""}, {"NOT SUBJECT NIL", "1 2 3"},
	    {"FROM nil", ""},    {"HEADER NIL NIL", ""},
	    {"BODY NIL", ""},    {"TEXT \"\"", "1 2 3"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *got = run(c[i].q);
		cr_expect_str_eq(got, c[i].want, "%s", c[i].q);
		free(got);
	}
	/* With the decoded subject loaded, SUBJECT NIL finds the three letters in it. */
	static const struct imap_search_msg m = {
	    .seq = 1, .uid = 1, .keywords = "", .decoded = true, .subject = "a NIL subject"};
	char cmd[] = "SUBJECT NIL";
	struct imap_args args = {0};
	const char *err = NULL;
	cr_assert_eq(imap_parse(cmd, strlen(cmd), &args, &err), 0);
	struct imap_search s;
	cr_assert_eq(imap_search_parse(args.v, args.n, &s, &err), 0);
	cr_expect(imap_search_match(&s.root, &m, 1, 1));
	imap_search_free(&s);
	imap_args_free(&args);
}

/* RETURN (...) of a "RETURN (...)" line: "opts lo hi" or "BAD". */
static char *ret(const char *line)
{
	char *cmd = NULL;
	size_t l = (size_t)asprintf(&cmd, "%s\r\n", line);
	struct imap_args args;
	const char *err;
	char *r = NULL;
	cr_assert_eq(imap_parse(cmd, l, &args, &err), 0);
	unsigned opts = 0;
	uint32_t lo = 0, hi = 0;
	if (imap_search_parse_return(&args.v[1], &opts, &lo, &hi, &err) < 0)
		r = strdup("BAD");
	else
		cr_assert(asprintf(&r, "%u %u %u", opts, lo, hi) > 0);
	imap_args_free(&args);
	free(cmd);
	return r;
}

Test(imap_search, return_options)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"RETURN ()", "8 0 0"},
	    {"RETURN (MIN MAX)", "3 0 0"},
	    {"RETURN (PARTIAL 1:10)", "32 1 10"},
	    {"RETURN (PARTIAL 10:1 COUNT)", "36 1 10"},
	    {"RETURN (PARTIAL 4294967295:4294967295)", "32 4294967295 4294967295"},
	    {"RETURN (PARTIAL 4294967296:1)", "BAD"},
	    {"RETURN (PARTIAL 0:10)", "BAD"},
	    {"RETURN (PARTIAL 01:10)", "BAD"},
	    {"RETURN (PARTIAL 1:)", "BAD"},
	    {"RETURN (PARTIAL :5)", "BAD"},
	    {"RETURN (PARTIAL 5)", "BAD"},
	    {"RETURN (PARTIAL -1:-10)", "BAD"},
	    {"RETURN (PARTIAL 1:2:3)", "BAD"},
	    {"RETURN (PARTIAL \"1:10\")", "BAD"},
	    {"RETURN (PARTIAL)", "BAD"},
	    {"RETURN (PARTIAL 1:5 PARTIAL 6:9)", "BAD"},
	    {"RETURN (ALL PARTIAL 1:5)", "BAD"},
	    {"RETURN (BOGUS)", "BAD"},
	    /* RFC 5267 4.2, 4.3: UPDATE and CONTEXT ask for no data; alone they mean ALL. */
	    {"RETURN (UPDATE)", "72 0 0"},
	    {"RETURN (CONTEXT)", "136 0 0"},
	    {"RETURN (UPDATE COUNT)", "68 0 0"},
	    {"RETURN (CONTEXT UPDATE PARTIAL 1:5)", "224 1 5"},
	    {"RETURN (UPDATE SAVE)", "80 0 0"},
	    {"RETURN (UPDATE ALL PARTIAL 1:5)", "BAD"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = ret(cases[i].in);
		cr_expect_str_eq(r, cases[i].out, "%s", cases[i].in);
		free(r);
	}
}

static char *esfmt(unsigned opts, const uint32_t *v, size_t n, uint32_t lo, uint32_t hi)
{
	struct buf o;
	buf_init(&o, 1000);
	imap_esearch_fmt(&o, opts, v, n, lo, hi);
	char *r = strdup(o.data != NULL ? o.data : "");
	buf_free(&o);
	return r;
}

Test(imap_search, esearch_format_in_result_order)
{
	/* A sort order: ranges only for ascending runs, never reordered. */
	uint32_t v[] = {5, 3, 2, 9, 12, 13, 14, 7};
	char *r = esfmt(IMAP_ES_MIN | IMAP_ES_MAX | IMAP_ES_COUNT | IMAP_ES_ALL, v, 8, 0, 0);
	cr_assert_str_eq(r, " MIN 5 MAX 7 COUNT 8 ALL 5,3,2,9,12:14,7");
	free(r);
	r = esfmt(IMAP_ES_PARTIAL, v, 8, 4, 6);
	cr_assert_str_eq(r, " PARTIAL (4:6 9,12:13)");
	free(r);
	r = esfmt(IMAP_ES_PARTIAL, v, 8, 7, 100);
	cr_assert_str_eq(r, " PARTIAL (7:100 14,7)");
	free(r);
	r = esfmt(IMAP_ES_PARTIAL, v, 8, 9, 10);
	cr_assert_str_eq(r, " PARTIAL (9:10 NIL)");
	free(r);
	r = esfmt(IMAP_ES_PARTIAL | IMAP_ES_MIN | IMAP_ES_COUNT, NULL, 0, 1, 10);
	cr_assert_str_eq(r, " COUNT 0 PARTIAL (1:10 NIL)");
	free(r);
	r = esfmt(IMAP_ES_SAVE, v, 8, 0, 0);
	cr_assert_str_eq(r, "");
	free(r);
}

/* "$" matches the SEARCHRES result it was given, and nothing without one. */
static char *run_saved(const char *query, const uint32_t *saved, size_t n_saved, bool give)
{
	char *cmd = NULL;
	size_t l = (size_t)asprintf(&cmd, "%s\r\n", query);
	struct imap_args args;
	const char *err;
	cr_assert_eq(imap_parse(cmd, l, &args, &err), 0);
	struct imap_search s;
	cr_assert_eq(imap_search_parse(args.v, args.n, &s, &err), 0, "%s", query);
	if (give)
		imap_search_set_saved(&s.root, saved, n_saved);
	struct buf o;
	buf_init(&o, 100);
	for (size_t i = 0; i < 3; i++)
		if (imap_search_match(&s.root, &msgs[i], 3, 15))
			buf_printf(&o, "%s%u", o.len > 0 ? " " : "", msgs[i].seq);
	char *r = strdup(o.data != NULL ? o.data : "");
	buf_free(&o);
	imap_search_free(&s);
	imap_args_free(&args);
	free(cmd);
	return r;
}

Test(imap_search, saved_result)
{
	static const uint32_t saved[] = {15, 10}; /* any order, as a sort saved it */
	char *r = run_saved("$", saved, 2, true);
	cr_expect_str_eq(r, "1 3");
	free(r);
	r = run_saved("NOT $", saved, 2, true);
	cr_expect_str_eq(r, "2");
	free(r);
	r = run_saved("OR $ UID 11", saved, 1, true);
	cr_expect_str_eq(r, "2 3");
	free(r);
	r = run_saved("$", NULL, 0, true);
	cr_expect_str_eq(r, "");
	free(r);
	r = run_saved("$", saved, 2, false);
	cr_expect_str_eq(r, "");
	free(r);
}
