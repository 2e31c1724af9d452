/*
 * The IMAP snapshot's reuse (server/imap/imap_snapshot.c): a snapshot read whole at a
 * mailbox state is found again for exactly that state, held or recently released; never
 * after it changed in place, for another state, after its time to live, or beyond the
 * cache's bounds.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/imap/imap_private.h"

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void setup(void)
{
	fake_now = 1000;
	imap_snapshot_cache_clock(fake_clock);
}

static void teardown(void)
{
	imap_snapshot_cache_flush();
	imap_snapshot_cache_clock(NULL);
}

TestSuite(imap_snapshot, .init = setup, .fini = teardown);

static struct imap_client *client(int64_t mailbox_id)
{
	struct imap_client *cl = xcalloc(1, sizeof(*cl));
	cl->mailbox_id = mailbox_id;
	return cl;
}

static void client_free(struct imap_client *cl)
{
	imap_snapshot_clear(cl);
	free(cl);
}

static struct imap_snap_key key_of(uint64_t modseq, size_t n)
{
	return (struct imap_snap_key){
	    .uidvalidity = 7, .uidnext = (uint32_t)n + 1, .modseq = modseq, .messages = n};
}

/* n messages, UIDs 1..n, message 2 with a keyword, all but the first unseen. */
static void load(struct imap_client *cl, size_t n, const struct imap_snap_key *key)
{
	struct store_msg *m = xcalloc(n + 1, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i].uid = (uint32_t)i + 1;
		m[i].modseq = i + 1;
		m[i].flags = i == 0 ? STORE_SEEN : 0;
		m[i].keywords = xstrdup(i == 1 ? "$Junk" : "");
		m[i].size = 100 + i;
	}
	imap_snapshot_set(cl, m, n, key);
	for (size_t i = 0; i < n; i++)
		free(m[i].keywords);
	free(m);
}

Test(imap_snapshot, released_snapshot_is_found_again_for_the_same_state)
{
	struct imap_snap_key k = key_of(10, 3);
	struct imap_client *a = client(5), *b = client(5);
	load(a, 3, &k);
	imap_snapshot_clear(a);
	cr_assert_eq(imap_snapshot_cached(), 1);
	cr_assert(imap_snapshot_reuse(b, &k));
	cr_assert_eq(imap_snapshot_cached(), 0);
	cr_assert_eq(b->n_msgs, 3);
	cr_assert_eq(b->msgs[2].uid, 3);
	cr_assert_str_eq(b->msgs[1].keywords, "$Junk");
	cr_assert_null(b->msgs[0].keywords);
	client_free(a);
	client_free(b);
	cr_assert_eq(imap_snapshot_cached(), 1);
}

Test(imap_snapshot, held_snapshot_is_shared_and_copied_before_a_change)
{
	struct imap_snap_key k = key_of(10, 3);
	struct imap_client *a = client(5), *b = client(5), *c = client(5);
	load(a, 3, &k);
	cr_assert(imap_snapshot_reuse(b, &k));
	cr_assert_eq(b->msgs, a->msgs, "one snapshot for both");
	imap_snapshot_mut(b, 2)->flags |= STORE_FLAGGED;
	cr_assert_neq(b->msgs, a->msgs);
	cr_assert_eq(a->msgs[1].flags, 0);
	/* A's is still the mailbox at k; B's is not any state of it. */
	cr_assert(imap_snapshot_reuse(c, &k));
	cr_assert_eq(c->msgs, a->msgs);
	client_free(a);
	client_free(c);
	client_free(b);
	cr_assert_eq(imap_snapshot_cached(), 1, "only the unchanged one is kept");
}

Test(imap_snapshot, changed_in_place_is_not_reused)
{
	struct imap_snap_key k = key_of(10, 3);
	struct imap_client *a = client(5), *b = client(5);
	load(a, 3, &k);
	imap_snapshot_mut(a, 1)->flags &= ~(unsigned)STORE_SEEN;
	imap_snapshot_clear(a);
	cr_assert_eq(imap_snapshot_cached(), 0);
	cr_assert_not(imap_snapshot_reuse(b, &k));
	load(a, 3, &k);
	imap_snapshot_remove(a, 3);
	imap_snapshot_clear(a);
	cr_assert_not(imap_snapshot_reuse(b, &k));
	cr_assert_null(b->msgs);
	client_free(a);
	client_free(b);
}

Test(imap_snapshot, another_state_misses)
{
	struct imap_snap_key k = key_of(10, 3);
	struct imap_client *a = client(5), *b = client(5), *other = client(6);
	load(a, 3, &k);
	imap_snapshot_clear(a);
	struct imap_snap_key v = k;
	v.uidvalidity++;
	cr_assert_not(imap_snapshot_reuse(b, &v));
	v = k;
	v.uidnext++;
	cr_assert_not(imap_snapshot_reuse(b, &v));
	v = k;
	v.messages--;
	cr_assert_not(imap_snapshot_reuse(b, &v));
	cr_assert_not(imap_snapshot_reuse(other, &k), "another mailbox");
	cr_assert_eq(imap_snapshot_cached(), 1);
	v = k;
	v.modseq++;
	cr_assert_not(imap_snapshot_reuse(b, &v));
	cr_assert_eq(imap_snapshot_cached(), 0, "an older state is dropped once a newer is seen");
	cr_assert_not(imap_snapshot_reuse(b, &k));
	client_free(a);
	client_free(b);
	client_free(other);
}

Test(imap_snapshot, unkeyed_and_inconsistent_lists_are_not_kept)
{
	struct imap_snap_key k = key_of(10, 4); /* says 4 messages, 3 listed */
	struct imap_client *a = client(5), *b = client(5);
	load(a, 3, NULL);
	imap_snapshot_clear(a);
	load(a, 3, &k);
	imap_snapshot_clear(a);
	cr_assert_eq(imap_snapshot_cached(), 0);
	cr_assert_not(imap_snapshot_reuse(b, &k));
	client_free(a);
	client_free(b);
}

Test(imap_snapshot, oldest_is_evicted_beyond_sixteen)
{
	struct imap_snap_key k = key_of(10, 2);
	for (int64_t id = 1; id <= 17; id++) {
		struct imap_client *a = client(id);
		load(a, 2, &k);
		client_free(a);
		fake_now++;
	}
	cr_assert_eq(imap_snapshot_cached(), 16);
	struct imap_client *first = client(1), *last = client(17);
	cr_assert_not(imap_snapshot_reuse(first, &k));
	cr_assert(imap_snapshot_reuse(last, &k));
	client_free(first);
	client_free(last);
}

Test(imap_snapshot, released_snapshot_lives_thirty_seconds)
{
	struct imap_snap_key k = key_of(10, 2);
	struct imap_client *a = client(5);
	load(a, 2, &k);
	imap_snapshot_clear(a);
	fake_now += 29999;
	cr_assert(imap_snapshot_reuse(a, &k));
	imap_snapshot_clear(a); /* released again: its time starts over */
	fake_now += 29999;
	cr_assert(imap_snapshot_reuse(a, &k));
	imap_snapshot_clear(a);
	fake_now += 30000;
	cr_assert_not(imap_snapshot_reuse(a, &k));
	cr_assert_eq(imap_snapshot_cached(), 0);
	client_free(a);
}

Test(imap_snapshot, first_unseen_follows_changes)
{
	struct imap_snap_key k = key_of(10, 3);
	struct imap_client *a = client(5);
	load(a, 3, &k);
	cr_assert_eq(imap_snapshot_first_unseen(a), 2);
	imap_snapshot_mut(a, 2)->flags |= STORE_SEEN;
	cr_assert_eq(imap_snapshot_first_unseen(a), 3);
	imap_snapshot_mut(a, 3)->flags |= STORE_SEEN;
	cr_assert_eq(imap_snapshot_first_unseen(a), 0);
	client_free(a);
}

/* The keywords a session has named in FLAGS: each learned once, kept sorted, and the
 * announcement names the system flags, every keyword, and PERMANENTFLAGS with \*. */
Test(imap_snapshot, keywords_learned_once_and_announced)
{
	struct imap_client *cl = client(1);
	static const struct {
		const char *kw;
		bool news;
	} steps[] = {
	    {NULL, false},   {"", false},      {"$b", true},      {"$b", false},
	    {"$a $b", true}, {"$b $a", false}, {"zz $a c", true}, {"c", false},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		cr_expect_eq(imap_keywords_learn(cl, steps[i].kw), steps[i].news, "step %zu", i);
	struct buf o;
	buf_init(&o, SIZE_MAX);
	imap_fmt_flags_announce(cl, &o);
	buf_append(&o, "", 1);
	cr_expect_str_eq(o.data,
	                 "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $a $b c zz)\r\n"
	                 "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	                 "\\Draft $a $b c zz \\*)] Flags permitted\r\n");
	buf_free(&o);
	imap_keywords_forget(cl);
	cr_expect_eq(cl->n_flag_kw, 0);
	cr_expect(imap_keywords_learn(cl, "$b"));
	imap_keywords_forget(cl);
	client_free(cl);
}
