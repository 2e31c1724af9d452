#include <criterion/criterion.h>
#include <string.h>

#include "common/log.h"

Test(log, escape_keeps_plain_bytes)
{
	char out[64];
	cr_assert_str_eq(log_escape(out, sizeof(out), "alice@corp.example", 18),
	                 "alice@corp.example");
}

Test(log, escape_hides_control_and_separators)
{
	char out[64];
	log_escape(out, sizeof(out), "a b\r\n=\"\\\0\xff", 10);
	cr_assert_str_eq(out, "a\\x20b\\x0d\\x0a\\x3d\\x22\\x5c\\x00\\xff");
}

Test(log, escape_truncates_with_marker)
{
	char out[16];
	char in[100];
	memset(in, 'z', sizeof(in));
	log_escape(out, sizeof(out), in, sizeof(in));
	cr_assert_lt(strlen(out), sizeof(out));
	cr_assert_eq(strcmp(out + strlen(out) - 3, "..."), 0);
}

Test(log, escape_never_splits_an_escape)
{
	char out[8];
	log_escape(out, sizeof(out), "\x01\x02\x03", 3);
	/* 7 usable bytes: one \x01 (4) fits with room for "..." only if <= 7; never half. */
	cr_assert(strcmp(out, "...") == 0 || strcmp(out, "\\x01...") == 0);
}
