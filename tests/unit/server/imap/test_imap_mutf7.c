/* Modified UTF-7 and mailbox name checks. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "server/imap/imap_mutf7.h"

struct mcase {
	const char *mutf7, *utf8;
};

static const struct mcase both[] = {
    {"INBOX", "INBOX"},
    {"&-", "&"},
    {"Entw&APw-rfe", "Entw\xc3\xbc"
                     "rfe"},
    {"&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
    {"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
     "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
    {"&2D3eAA-", "\xf0\x9f\x98\x80"},
    {"A&-B", "A&B"},
};

Test(imap_mutf7, round_trip)
{
	for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
		char *o;
		cr_assert_eq(imap_mutf7_to_utf8(both[i].mutf7, strlen(both[i].mutf7), &o), 0, "%s",
		             both[i].mutf7);
		cr_expect_str_eq(o, both[i].utf8);
		free(o);
		cr_assert_eq(imap_utf8_to_mutf7(both[i].utf8, strlen(both[i].utf8), &o), 0);
		cr_expect_str_eq(o, both[i].mutf7);
		free(o);
	}
}

Test(imap_mutf7, strict_decoding)
{
	const char *bad[] = {
	    "&",          /* unterminated */
	    "&AGE-",      /* shifted printable ASCII 'a' */
	    "&-&",        /* unterminated after &- */
	    "&AOQ",       /* no '-' */
	    "&AOQ-&AOQ-", /* two adjacent runs */
	    "&2D0-",      /* lone high surrogate */
	    "&AOR-",      /* non-zero padding bits */
	    "\xc3\xa9",   /* raw 8-bit */
	    "a\tb",       /* control */
	    "&A!Q-",      /* bad base64 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *o = NULL;
		cr_expect_lt(imap_mutf7_to_utf8(bad[i], strlen(bad[i]), &o), 0, "%s", bad[i]);
	}
	char *o;
	cr_assert_lt(imap_utf8_to_mutf7("\xc3", 1, &o), 0);
	cr_assert_lt(imap_utf8_to_mutf7("\xed\xa0\x80", 3, &o), 0); /* surrogate */
	cr_assert_lt(imap_utf8_to_mutf7("\xc0\xaf", 2, &o), 0);     /* overlong */
}

Test(imap_mutf7, names)
{
	const char *good[][2] = {
	    {"INBOX", "INBOX"},     {"inbox", "INBOX"}, {"InBoX/sub", "INBOX/sub"},
	    {"Inboxes", "Inboxes"}, {"a/b/c", "a/b/c"}, {"a.b", "a.b"},
	    {"...x", "...x"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *n;
		cr_assert_eq(imap_mailbox_name_check(good[i][0], strlen(good[i][0]), &n), 0, "%s",
		             good[i][0]);
		cr_expect_str_eq(n, good[i][1]);
		free(n);
	}
	const char *bad[] = {"",    "/a", "a/", "a//b",  "..",    "a/../b",
	                     "a/.", "x*", "x%", "a\x01", "a\x7f", "\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *n;
		cr_expect_lt(imap_mailbox_name_check(bad[i], strlen(bad[i]), &n), 0, "%s", bad[i]);
	}
	char longname[400];
	memset(longname, 'a', sizeof(longname));
	char *n;
	cr_assert_lt(imap_mailbox_name_check(longname, 256, &n), 0);
	cr_assert_eq(imap_mailbox_name_check(longname, 255, &n), 0);
	free(n);
	char deep[64] = "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a";
	cr_assert_lt(imap_mailbox_name_check(deep, strlen(deep), &n), 0);
	cr_assert_lt(imap_mailbox_from_client("a\0b", 3, true, &n), 0);
	cr_assert_eq(imap_mailbox_from_client("Entw&APw-rfe", 12, false, &n), 0);
	cr_assert_str_eq(n, "Entw\xc3\xbcrfe");
	free(n);
	char *c = imap_mailbox_to_client("Entw\xc3\xbcrfe", false);
	cr_assert_str_eq(c, "Entw&APw-rfe");
	free(c);
}
