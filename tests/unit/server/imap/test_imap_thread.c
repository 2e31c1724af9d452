/* THREAD REFERENCES and ORDEREDSUBJECT (RFC 5256 section 3) on hand-made mailboxes (base
 * subjects already in the casemapped form the store keeps), and hostile ones: cycles, self
 * references, duplicate and missing Message-IDs, chains deep enough to overflow any recursion, and
 * 1,000 messages of tangled references. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/imap/imap_sort.h"

struct tm_msg {
	uint32_t seq;
	int64_t date;
	const char *id, *refs, *subject;
	bool reply;
};

/* Threads v[0..n) and returns the answer (owned). */
static char *thread_of(const struct tm_msg *v, size_t n, enum imap_thread_alg alg)
{
	struct imap_sort_msg *m = xcalloc(n + 1, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i].seq = v[i].seq;
		m[i].uid = v[i].seq + 100;
		m[i].date = v[i].date;
		m[i].message_id = v[i].id;
		m[i].refs = v[i].refs;
		m[i].subject = v[i].subject;
		m[i].reply = v[i].reply;
	}
	const struct imap_sort_msg **p = xmalloc((n + 1) * sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = &m[i];
	struct buf o;
	buf_init(&o, SIZE_MAX);
	imap_thread(p, n, alg, false, &o);
	free(p);
	char *s = xstrndup(o.data != NULL ? o.data : "", o.len);
	buf_free(&o);
	free(m);
	return s;
}

static void expect_refs(const struct tm_msg *v, size_t n, const char *want)
{
	char *got = thread_of(v, n, IMAP_THREAD_REFERENCES);
	cr_expect_str_eq(got, want);
	free(got);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(imap_thread, references_basic)
{
	const struct tm_msg v[] = {
	    {1, 10, "a", NULL, "A", false}, {2, 20, "b", "a", "A", true},
	    {3, 30, "c", "a b", "A", true}, {4, 15, "d", NULL, "B", false},
	    {5, 25, "e", "a", "A", true},
	};
	expect_refs(v, N(v), "(1 (2 3)(5))(4)");
}

/* The shape of RFC 5256's own example answer: (2)(3 6 (4 23)(44 7 96)). */
Test(imap_thread, rfc_example_shape)
{
	const struct tm_msg v[] = {
	    {2, 1, "m2", NULL, "two", false}, {3, 2, "m3", NULL, "three", false},
	    {4, 4, "m4", "m3 m6", "x", true}, {6, 3, "m6", "m3", "x", true},
	    {7, 7, "m7", "m44", "x", true},   {23, 5, "m23", "m4", "x", true},
	    {44, 6, "m44", "m6", "x", true},  {96, 8, "m96", "m3 m6 m44 m7", "x", true},
	};
	expect_refs(v, N(v), "(2)(3 6 (4 23)(44 7 96))");
}

Test(imap_thread, dummies)
{
	/* Two replies to a message not there: a dummy parent with both. */
	const struct tm_msg two[] = {{1, 1, "x", "gone", "X", false},
	                             {2, 2, "y", "gone", "Y", true}};
	expect_refs(two, N(two), "((1)(2))");
	/* One: the dummy goes and the reply is a thread of its own. */
	const struct tm_msg one[] = {{1, 1, "x", "gone", "X", false}};
	expect_refs(one, N(one), "(1)");
	/* A dummy below a message gives its children to the message. */
	const struct tm_msg mid[] = {{1, 1, "a", NULL, "A", false},
	                             {2, 2, "c", "a gone", "C", true},
	                             {3, 3, "d", "a gone", "D", true}};
	expect_refs(mid, N(mid), "(1 (2)(3))");
	/* Dummies in a row above a message all go. */
	const struct tm_msg chain[] = {{1, 1, "z", "g1 g2 g3", "Z", false}};
	expect_refs(chain, N(chain), "(1)");
}

Test(imap_thread, in_reply_to_precedence_and_truncation)
{
	/* Step 1.A keeps a parent once given (References may be cut short at the front):
	 * 4's "a c" does not move c from b to a. Step 1.B puts 4 under its last reference. */
	const struct tm_msg w[] = {{1, 1, "a", NULL, "A", false},
	                           {2, 2, "b", NULL, "B", false},
	                           {3, 3, "c", "b", "C", false},
	                           {4, 4, "d", "a c", "D", false}};
	/* 4 links a -> c (c already has parent b: kept), then c -> 4. */
	expect_refs(w, N(w), "(1)(2 3 4)");
	/* Step 1.B takes precedence: 3's References put c (4) under a, but c's own name b. */
	const struct tm_msg b[] = {{1, 1, "a", NULL, "A", false},
	                           {2, 2, "b", NULL, "B", false},
	                           {3, 3, "d", "a c", "D", false},
	                           {4, 4, "c", "b", "C", false}};
	expect_refs(b, N(b), "(1)(2 4 3)");
}

Test(imap_thread, cycles_and_self_references)
{
	const struct tm_msg cyc[] = {{1, 1, "a", "b", "A", false}, {2, 2, "b", "a", "B", false}};
	expect_refs(cyc, N(cyc), "(2 1)");
	const struct tm_msg self[] = {{1, 1, "a", "a", "A", false},
	                              {2, 2, "b", "b a b", "B", false}};
	/* 2's References "b a b" make a its child; naming itself changes nothing. */
	expect_refs(self, N(self), "(2 1)");
	/* A longer loop through References of three messages. */
	const struct tm_msg tri[] = {{1, 1, "a", "c", "A", false},
	                             {2, 2, "b", "a", "B", false},
	                             {3, 3, "c", "b", "C", false}};
	/* 1 under c and 2 under a; c under b would close the loop, so c stays on top. */
	expect_refs(tri, N(tri), "(3 1 2)");
}

Test(imap_thread, duplicate_and_missing_ids)
{
	/* The second "a" is a message of its own; references to "a" find the first. */
	const struct tm_msg dup[] = {{1, 1, "a", NULL, "A", false},
	                             {2, 2, "a", NULL, "Other", false},
	                             {3, 3, "c", "a", "A", true}};
	expect_refs(dup, N(dup), "(1 3)(2)");
	const struct tm_msg none[] = {{1, 1, NULL, NULL, "P", false},
	                              {2, 2, "", NULL, "Q", false},
	                              {3, 3, NULL, "zz", "R", false}};
	expect_refs(none, N(none), "(1)(2)(3)");
}

Test(imap_thread, subjects_merge)
{
	/* A reply by subject only goes under the original. */
	const struct tm_msg r[] = {{1, 1, "a", NULL, "TOPIC", false},
	                           {2, 2, "b", NULL, "TOPIC", true}};
	expect_refs(r, N(r), "(1 2)");
	/* The original after the reply in the mailbox: still the parent. */
	const struct tm_msg r2[] = {{1, 1, "b", NULL, "TOPIC", true},
	                            {2, 2, "a", NULL, "TOPIC", false}};
	expect_refs(r2, N(r2), "(2 1)");
	/* Two originals: a new dummy holds both. */
	const struct tm_msg o[] = {{1, 1, "a", NULL, "TOPIC", false},
	                           {2, 2, "b", NULL, "TOPIC", false}};
	expect_refs(o, N(o), "((1)(2))");
	/* A dummy thread takes a message of its subject as a child. */
	const struct tm_msg d[] = {{1, 1, "x", "gone", "S", true},
	                           {2, 2, "y", "gone", "S", true},
	                           {3, 3, "z", NULL, "S", false}};
	expect_refs(d, N(d), "((1)(2)(3))");
	/* Empty subjects never merge. */
	const struct tm_msg e[] = {{1, 1, "a", NULL, "", false}, {2, 2, "b", NULL, "", false}};
	expect_refs(e, N(e), "(1)(2)");
}

Test(imap_thread, sorting_by_sent_date_then_sequence)
{
	const struct tm_msg v[] = {{1, 50, "a", NULL, "A", false},
	                           {2, 10, "b", NULL, "B", false},
	                           {3, 10, "c", "a", "A", true},
	                           {4, 5, "d", "a", "A", true},
	                           {5, 10, "e", NULL, "E", false}};
	/* 2 and 5 tie on the date: the sequence number decides. */
	expect_refs(v, N(v), "(2)(5)(1 (4)(3))");
}

Test(imap_thread, orderedsubject)
{
	const struct tm_msg v[] = {{1, 10, "a", NULL, "A", false},
	                           {2, 5, "b", NULL, "A", true},
	                           {3, 1, "c", NULL, "B", false},
	                           {4, 20, "d", NULL, "A", false},
	                           {5, 30, "e", NULL, "C", false}};
	char *got = thread_of(v, N(v), IMAP_THREAD_ORDEREDSUBJECT);
	cr_expect_str_eq(got, "(3)(2 (1)(4))(5)");
	free(got);
	got = thread_of(v, 0, IMAP_THREAD_ORDEREDSUBJECT);
	cr_expect_str_eq(got, "");
	free(got);
}

/* Every number of 1..n exactly once, parentheses balanced. */
static void check_complete(const char *s, size_t n)
{
	char *seen = xcalloc(n + 1, 1);
	long depth = 0;
	for (const char *p = s; *p != '\0';) {
		if (*p == '(') {
			depth++;
			p++;
		} else if (*p == ')') {
			depth--;
			cr_assert_geq(depth, 0);
			p++;
		} else if (*p == ' ') {
			p++;
		} else {
			char *end;
			unsigned long v = strtoul(p, &end, 10);
			cr_assert(end != p, "junk at %.20s", p);
			cr_assert(v >= 1 && v <= n);
			cr_assert(!seen[v], "%lu twice", v);
			seen[v] = 1;
			p = end;
		}
	}
	cr_assert_eq(depth, 0);
	for (size_t i = 1; i <= n; i++)
		cr_assert(seen[i], "%zu missing", i);
	free(seen);
}

Test(imap_thread, deep_chain_no_recursion)
{
	size_t n = 200000;
	struct tm_msg *v = xcalloc(n, sizeof(*v));
	char(*ids)[16] = xcalloc(n, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%zu", i);
		v[i] = (struct tm_msg){(uint32_t)i + 1,           (int64_t)i, ids[i],
		                       i > 0 ? ids[i - 1] : NULL, "deep",     i > 0};
	}
	char *got = thread_of(v, n, IMAP_THREAD_REFERENCES);
	check_complete(got, n);
	cr_expect_eq(strncmp(got, "(1 2 3 ", 7), 0);
	free(got);
	/* The same chain, each message naming its child instead (parents come later). */
	for (size_t i = 0; i < n; i++)
		v[i].refs = i + 1 < n ? ids[i + 1] : NULL;
	got = thread_of(v, n, IMAP_THREAD_REFERENCES);
	check_complete(got, n);
	cr_expect_eq(strncmp(got, "(200000 199999 ", 15), 0);
	free(got);
	free(ids);
	free(v);
}

Test(imap_thread, thousand_tangled_messages)
{
	size_t n = 1000;
	struct tm_msg *v = xcalloc(n, sizeof(*v));
	char(*ids)[16] = xcalloc(n, sizeof(*ids));
	char(*refs)[64] = xcalloc(n, sizeof(*refs));
	static const char *const subjects[] = {"alpha", "beta", "gamma", "", "delta"};
	unsigned seed = 12345;
	for (size_t i = 0; i < n; i++) {
		/* Some duplicate ids, some missing, references anywhere (cycles included). */
		seed = seed * 1103515245u + 12345u;
		snprintf(ids[i], sizeof(ids[i]), "id%u", (seed >> 8) % 900);
		unsigned a = (seed >> 4) % 1100, b = (seed >> 12) % 1100, c = (seed >> 20) % 1100;
		snprintf(refs[i], sizeof(refs[i]), "id%u id%u id%u", a, b, c);
		v[i] = (struct tm_msg){(uint32_t)i + 1,
		                       (int64_t)(seed % 50),
		                       (seed & 7) == 0 ? NULL : ids[i],
		                       (seed & 3) == 0 ? NULL : refs[i],
		                       subjects[seed % 5],
		                       (seed & 16) != 0};
	}
	char *got = thread_of(v, n, IMAP_THREAD_REFERENCES);
	check_complete(got, n);
	free(got);
	got = thread_of(v, n, IMAP_THREAD_ORDEREDSUBJECT);
	check_complete(got, n);
	free(got);
	free(refs);
	free(ids);
	free(v);
}
