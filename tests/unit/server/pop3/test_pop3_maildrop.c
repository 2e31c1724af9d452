#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/pop3/pop3_maildrop.h"
#include "storage/store.h"

static void make(struct pop3_maildrop *md, const uint32_t *uids, size_t n)
{
	struct store_msg msgs[16];
	memset(msgs, 0, sizeof(msgs));
	for (size_t i = 0; i < n; i++) {
		msgs[i].uid = uids[i];
		msgs[i].size = 100 * (i + 1);
	}
	pop3_maildrop_init(md, 1700000000u, msgs, n);
}

Test(pop3_maildrop, stat_get_and_marks)
{
	static const uint32_t uids[] = {3, 4, 9};
	struct pop3_maildrop md;
	make(&md, uids, 3);
	size_t count;
	uint64_t octets;
	pop3_maildrop_stat(&md, &count, &octets);
	cr_assert_eq(count, 3);
	cr_assert_eq(octets, 600);
	cr_assert_null(pop3_maildrop_get(&md, 0));
	cr_assert_null(pop3_maildrop_get(&md, 4));
	cr_assert_eq(pop3_maildrop_get(&md, 3)->uid, 9);
	pop3_maildrop_get(&md, 2)->deleted = true;
	cr_assert_null(pop3_maildrop_get(&md, 2));
	pop3_maildrop_stat(&md, &count, &octets);
	cr_assert_eq(count, 2);
	cr_assert_eq(octets, 400);
	cr_assert_eq(pop3_maildrop_n_deleted(&md), 1);
	pop3_maildrop_reset(&md);
	cr_assert_eq(pop3_maildrop_n_deleted(&md), 0);
	cr_assert_not_null(pop3_maildrop_get(&md, 2));
	pop3_maildrop_free(&md);
}

Test(pop3_maildrop, empty)
{
	struct pop3_maildrop md;
	make(&md, NULL, 0);
	size_t count;
	uint64_t octets;
	pop3_maildrop_stat(&md, &count, &octets);
	cr_assert_eq(count, 0);
	cr_assert_eq(octets, 0);
	cr_assert_null(pop3_maildrop_get(&md, 1));
	struct store_uid_range *r;
	cr_assert_eq(pop3_maildrop_deleted_ranges(&md, &r), 0);
	cr_assert_null(r);
	pop3_maildrop_free(&md);
}

Test(pop3_maildrop, ranges_cover_exactly_the_marked_messages)
{
	static const uint32_t uids[] = {2, 3, 5, 8, 9, 10, 20};
	static const bool marks[] = {true, true, false, true, true, false, true};
	struct pop3_maildrop md;
	make(&md, uids, 7);
	for (size_t i = 0; i < 7; i++)
		md.msgs[i].deleted = marks[i];
	struct store_uid_range *r;
	size_t n = pop3_maildrop_deleted_ranges(&md, &r);
	cr_assert_eq(n, 3);
	cr_assert_eq(r[0].first, 2);
	cr_assert_eq(r[0].last, 3);
	cr_assert_eq(r[1].first, 8);
	cr_assert_eq(r[1].last, 9);
	cr_assert_eq(r[2].first, 20);
	cr_assert_eq(r[2].last, 20);
	/* No unmarked snapshot UID falls in a range. */
	for (size_t i = 0; i < 7; i++) {
		if (marks[i])
			continue;
		for (size_t k = 0; k < n; k++)
			cr_assert(uids[i] < r[k].first || uids[i] > r[k].last);
	}
	free(r);
	pop3_maildrop_free(&md);
}

Test(pop3_maildrop, uidl_is_uidvalidity_dot_uid)
{
	static const uint32_t uids[] = {4294967295u};
	struct pop3_maildrop md;
	make(&md, uids, 1);
	md.uidvalidity = 4294967295u;
	char out[POP3_UIDL_MAX];
	pop3_maildrop_uidl(&md, &md.msgs[0], out);
	cr_assert_str_eq(out, "4294967295.4294967295");
	pop3_maildrop_free(&md);
}

Test(pop3_maildrop, parse_number)
{
	struct {
		const char *s;
		int rc;
		uint64_t v;
	} t[] = {
	    {"0", 0, 0},
	    {"1", 0, 1},
	    {"007", 0, 7},
	    {"4294967295", 0, 4294967295u},
	    {"4294967296", -EINVAL, 0},
	    {"99999999999", -EINVAL, 0},
	    {"", -EINVAL, 0},
	    {"-1", -EINVAL, 0},
	    {"+1", -EINVAL, 0},
	    {"1 ", -EINVAL, 0},
	    {" 1", -EINVAL, 0},
	    {"1a", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t v = 12345;
		int rc = pop3_parse_number(t[i].s, strlen(t[i].s), &v);
		cr_assert_eq(rc, t[i].rc, "%s", t[i].s);
		if (rc == 0)
			cr_assert_eq(v, t[i].v, "%s", t[i].s);
	}
	uint64_t v;
	cr_assert_eq(pop3_parse_number("1\0"
	                               "2",
	                               3, &v),
	             -EINVAL);
}
