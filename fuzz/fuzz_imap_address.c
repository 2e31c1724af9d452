/*
 * libFuzzer target: the RFC 5322 address-list parser of ENVELOPE
 * (imap_fmt_addresses in server/imap/imap_fetch_fmt.h) on a hostile header value.
 *
 * Input: byte 0 is mode bits (1: UTF8=ACCEPT formatting); the rest is the raw value of a
 * From/To/Cc header (folding included), at the end of the input buffer so that any read
 * past it is caught by ASan. The reply must follow RFC 3501's grammar for an address list
 * (NIL, or a list of addresses of four nstrings each): a client has to parse it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_fetch_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Shows the reply that broke the grammar before aborting, for whoever reproduces it. */
static void fail(const struct buf *o, size_t at, const char *why)
{
	fprintf(stderr, "imap_fmt_addresses: %s at byte %zu: %.*s\n", why, at, (int)o->len,
	        o->data);
	abort();
}

/* nstring (RFC 3501): NIL, a quoted string (no CR, LF or NUL; 8-bit only with UTF8=ACCEPT;
 * a backslash only before a quote or a backslash) or a literal. Returns the next offset. */
static size_t check_nstring(const struct buf *o, size_t i, bool utf8)
{
	const char *s = o->data;
	size_t len = o->len;
	if (len - i >= 3 && memcmp(s + i, "NIL", 3) == 0)
		return i + 3;
	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\' && i + 1 < len && (s[i + 1] == '"' || s[i + 1] == '\\'))
				i++;
			else if (c == '\\' || c == '\0' || c == '\r' || c == '\n' ||
			         (c >= 0x80 && !utf8))
				fail(o, i, "bad byte in a quoted string");
		}
		if (i >= len)
			fail(o, i, "unterminated quoted string");
		return i + 1;
	}
	if (i < len && s[i] == '{') {
		size_t n = 0, d = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - d < 12)
			n = n * 10 + (size_t)(s[i++] - '0');
		if (i == d || len - i < 3 || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n' ||
		    n > len - i - 3)
			fail(o, i, "bad literal");
		return i + 3 + n;
	}
	fail(o, i, "not an nstring");
	return len;
}

/* NIL or "(" 1*address ")" with address = "(" nstring SP nstring SP nstring SP nstring ")":
 * the reply must parse for any client, whatever the header held. */
static void check_reply(const struct buf *o, bool utf8)
{
	if (o->len == 3 && memcmp(o->data, "NIL", 3) == 0)
		return;
	size_t i = 0;
	if (o->len < 2 || o->data[i++] != '(')
		fail(o, 0, "neither NIL nor a list");
	do {
		if (o->data[i++] != '(')
			fail(o, i - 1, "an address does not start with (");
		for (int k = 0; k < 4; k++) {
			if (k > 0 && o->data[i++] != ' ')
				fail(o, i - 1, "no space between address fields");
			i = check_nstring(o, i, utf8);
		}
		if (i >= o->len || o->data[i++] != ')')
			fail(o, i - 1, "an address has more than four fields");
	} while (i < o->len && o->data[i] == '(');
	if (i + 1 != o->len || o->data[i] != ')')
		fail(o, i, "trailing bytes after the addresses");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool utf8 = (data[0] & 1) != 0;
	struct buf o;
	buf_init(&o, 4u << 20);
	imap_fmt_addresses(&o, (const char *)data + 1, size - 1, utf8);
	if (o.data == NULL)
		abort();
	check_reply(&o, utf8);
	buf_free(&o);
	return 0;
}
