#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/buf.h"

Test(buf, append_and_consume)
{
	struct buf b;
	buf_init(&b, 16);
	cr_assert_eq(buf_append_str(&b, "hello "), 0);
	cr_assert_eq(buf_printf(&b, "%s%d", "w", 42), 0);
	cr_assert_str_eq(b.data, "hello w42");
	buf_consume(&b, 6);
	cr_assert_str_eq(b.data, "w42");
	cr_assert_eq(b.len, 3);
	buf_free(&b);
}

Test(buf, hard_maximum_is_never_exceeded)
{
	struct buf b;
	buf_init(&b, 8);
	cr_assert_eq(buf_append(&b, "12345678", 8), 0);
	cr_assert_eq(buf_append(&b, "9", 1), -ENOBUFS);
	cr_assert_eq(b.len, 8);
	cr_assert_eq(buf_printf(&b, "%s", "x"), -ENOBUFS);
	cr_assert_eq(memcmp(b.data, "12345678", 8), 0);
	buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_append(&b, "abcdefgh", 8), 0);
	buf_free_secret(&b);
	cr_assert_null(b.data);
}

Test(buf, huge_length_does_not_overflow)
{
	struct buf b;
	buf_init(&b, 100);
	cr_assert_eq(buf_append(&b, "x", 1), 0);
	cr_assert_eq(buf_append(&b, "y", (size_t)-1), -ENOBUFS);
	buf_free(&b);
}

Test(buf, unbounded_maximum_does_not_wrap)
{
	struct buf b;
	buf_init(&b, (size_t)-1);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(buf_printf(&b, "%d,", i), 0);
	cr_assert_eq(strncmp(b.data, "0,1,2,", 6), 0);
	buf_free(&b);
}
