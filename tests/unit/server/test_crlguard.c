/*
 * The CRL rollback and expiry rules (server/crlguard.c): which CRL counts as older, when
 * the expiry warning starts, and the state file that survives restarts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/crlguard.h"

#define ISSUER_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ISSUER_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct crl_mark mark(const char *issuer, bool has_number, uint64_t number, time_t t)
{
	struct crl_mark m;
	memset(&m, 0, sizeof(m));
	snprintf(m.issuer, sizeof(m.issuer), "%s", issuer);
	m.has_number = has_number;
	m.number = number;
	m.this_update = t;
	return m;
}

Test(crlguard, lower_number_is_older)
{
	struct crl_mark loaded = mark(ISSUER_A, true, 5, 1000);
	struct crl_mark lower = mark(ISSUER_A, true, 4, 1000);
	cr_assert(crlguard_older(&lower, &loaded), "a lower CRL number is a rollback");
	cr_assert_not(crlguard_older(&loaded, &lower));
	/* A higher number with an earlier thisUpdate is older by date: either rule refuses. */
	struct crl_mark odd = mark(ISSUER_A, true, 9, 999);
	cr_assert(crlguard_older(&odd, &loaded));
}

Test(crlguard, earlier_this_update_is_older)
{
	struct crl_mark loaded = mark(ISSUER_A, true, 5, 1000);
	struct crl_mark earlier = mark(ISSUER_A, true, 6, 999);
	cr_assert(crlguard_older(&earlier, &loaded));
	struct crl_mark unnumbered = mark(ISSUER_A, false, 0, 999);
	cr_assert(crlguard_older(&unnumbered, &loaded));
}

Test(crlguard, same_or_newer_is_not_older)
{
	struct crl_mark loaded = mark(ISSUER_A, true, 5, 1000);
	struct crl_mark same = loaded;
	struct crl_mark newer = mark(ISSUER_A, true, 6, 1001);
	cr_assert_not(crlguard_older(&same, &loaded), "reloading the same CRL is fine");
	cr_assert_not(crlguard_older(&newer, &loaded));
	/* Without numbers only the dates count. */
	struct crl_mark a = mark(ISSUER_A, false, 0, 1000), b = mark(ISSUER_A, true, 1, 1000);
	cr_assert_not(crlguard_older(&a, &b));
	cr_assert_not(crlguard_older(&b, &a));
}

Test(crlguard, another_issuer_starts_again)
{
	struct crl_mark loaded = mark(ISSUER_A, true, 50, 5000);
	struct crl_mark new_ca = mark(ISSUER_B, true, 1, 10);
	cr_assert_not(crlguard_older(&new_ca, &loaded), "a new CA numbers its CRLs from 1");
}

Test(crlguard, expiring_from_seven_days)
{
	const time_t now = 1700000000, day = 86400;
	int days = -1;
	cr_assert_not(crlguard_expiring(now + 30 * day, now, &days));
	cr_assert_not(crlguard_expiring(now + 7 * day + 1, now, &days));
	cr_assert(crlguard_expiring(now + 7 * day, now, &days));
	cr_assert_eq(days, 7);
	cr_assert(crlguard_expiring(now + 7 * day - 60, now, &days));
	cr_assert_eq(days, 6);
	cr_assert(crlguard_expiring(now + 3600, now, &days));
	cr_assert_eq(days, 0);
	/* Past nextUpdate it is expired, which is logged as such, not as expiring. */
	cr_assert_not(crlguard_expiring(now, now, &days));
	cr_assert_not(crlguard_expiring(now - 1, now, &days));
}

Test(crlguard, format_and_parse_round_trip)
{
	char line[256];
	struct crl_mark m = mark(ISSUER_B, true, UINT64_MAX, 1700000000), back;
	cr_assert_eq(crlguard_format(&m, line, sizeof(line)), 0);
	cr_assert_str_eq(line, "issuer=" ISSUER_B " number=18446744073709551615 "
	                       "this_update=1700000000\n");
	cr_assert_eq(crlguard_parse(line, &back), 0);
	cr_assert_eq(memcmp(&m, &back, sizeof(m)), 0);

	m = mark(ISSUER_A, false, 0, 42);
	cr_assert_eq(crlguard_format(&m, line, sizeof(line)), 0);
	cr_assert_str_eq(line, "issuer=" ISSUER_A " number=- this_update=42\n");
	cr_assert_eq(crlguard_parse(line, &back), 0);
	cr_assert_not(back.has_number);
	cr_assert_eq(back.this_update, 42);

	cr_assert_eq(crlguard_format(&m, line, 20), -ENOBUFS);
}

Test(crlguard, parse_refuses_garbage)
{
	const char *bad[] = {
	    "",
	    "issuer=" ISSUER_A " number=1\n",
	    "issuer=" ISSUER_A " number=1 this_update=\n",
	    "issuer=" ISSUER_A " number=-1 this_update=5\n",
	    "issuer=" ISSUER_A " number=18446744073709551616 this_update=5\n",
	    "issuer=" ISSUER_A " number=1 this_update=5 extra\n",
	    "issuer=" ISSUER_A " number=1 this_update=5\n\n",
	    "issuer=AAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa number=1 "
	    "this_update=5\n",
	    "issuer=abc number=1 this_update=5\n",
	};
	struct crl_mark m;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(crlguard_parse(bad[i], &m), -EINVAL, "accepted: %s", bad[i]);
}

Test(crlguard, state_file_survives_and_is_private)
{
	char dir[] = "/tmp/crlguard-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/" CRLGUARD_STATE_FILE, dir);
	struct crl_mark m = mark(ISSUER_A, true, 7, 1234), back;
	cr_assert_eq(crlguard_load(path, &back), -ENOENT);
	cr_assert_eq(crlguard_save(path, &m), 0);
	m.number = 8;
	cr_assert_eq(crlguard_save(path, &m), 0);
	cr_assert_eq(crlguard_load(path, &back), 0);
	cr_assert_eq(back.number, 8);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);

	FILE *f = fopen(path, "w");
	fputs("issuer=nonsense\n", f);
	fclose(f);
	cr_assert_eq(crlguard_load(path, &back), -EINVAL);
	unlink(path);
	rmdir(dir);
}

Test(crlguard, time_is_utc)
{
	char buf[32];
	cr_assert_str_eq(crlguard_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
	cr_assert_str_eq(crlguard_time((time_t)-1, buf, sizeof(buf)), "-");
}
