#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "server/smtp/smtp_quota.h"

struct rcpt_case {
	uint64_t quota, used;
	bool has_size;
	uint64_t size;
	const char *reply; /* NULL: accepted */
};

static const struct rcpt_case rcpt_cases[] = {
    /* Unlimited: anything goes, whatever SIZE= says. */
    {0, 0, false, 0, NULL},
    {0, 1000, true, UINT64_MAX, NULL},
    /* No SIZE=: only the current usage counts. */
    {1000, 0, false, 0, NULL},
    {1000, 999, false, 0, NULL},
    {1000, 1000, false, 0, "452 4.2.2"},
    {1000, 5000, false, 0, "452 4.2.2"},
    /* SIZE= that fits exactly, and one byte more. */
    {1000, 400, true, 600, NULL},
    {1000, 400, true, 601, "452 4.2.2"},
    {1000, 0, true, 1000, NULL},
    /* Larger than the whole quota: never fits, refused for good even when empty or full. */
    {1000, 0, true, 1001, "552 5.2.2"},
    {1000, 1000, true, 1001, "552 5.2.2"},
    {1000, 0, true, UINT64_MAX, "552 5.2.2"},
    /* At quota with a SIZE= that would fit an empty mailbox: temporary. */
    {1000, 1000, true, 10, "452 4.2.2"},
    /* Usage over the quota (quota lowered later) must not wrap the remaining room. */
    {1000, 3000, true, 10, "452 4.2.2"},
    {UINT64_MAX, UINT64_MAX - 1, true, 1, NULL},
    {UINT64_MAX, UINT64_MAX - 1, true, 2, "452 4.2.2"},
};

Test(smtp_quota, rcpt_replies)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		const char *r = smtp_quota_rcpt_reply(c->quota, c->used, c->has_size, c->size);
		if (c->reply == NULL) {
			cr_assert_null(r, "case %zu: %s", i, r);
			continue;
		}
		cr_assert_not_null(r, "case %zu accepted", i);
		cr_assert_eq(strncmp(r, c->reply, strlen(c->reply)), 0, "case %zu: %s", i, r);
		/* RFC 3463: the class of the enhanced code agrees with the reply code. */
		cr_assert_eq(r[0], r[4], "case %zu: %s", i, r);
	}
}

Test(smtp_quota, never_fits)
{
	cr_assert_not(smtp_quota_never_fits(0, UINT64_MAX));
	cr_assert_not(smtp_quota_never_fits(100, 100));
	cr_assert(smtp_quota_never_fits(100, 101));
}

Test(smtp_quota, message_count)
{
	cr_assert_null(smtp_quota_count_reply(0, 1000000));
	cr_assert_null(smtp_quota_count_reply(3, 2));
	cr_assert_str_eq(smtp_quota_count_reply(3, 3), SMTP_QUOTA_FULL_TEMP);
	/* Lowered under the usage: still temporary, never a wrap. */
	cr_assert_str_eq(smtp_quota_count_reply(3, 10), SMTP_QUOTA_FULL_TEMP);
}
