#include "server/linebuf.h"

#include <errno.h>
#include <string.h>

void linebuf_init(struct linebuf *lb, size_t limit, size_t slack)
{
	buf_init(&lb->buf, limit + 2 + slack);
	lb->limit = limit;
	lb->scanned = 0;
	lb->skipping = false;
}

void linebuf_free(struct linebuf *lb)
{
	buf_free(&lb->buf);
}

void linebuf_set_limit(struct linebuf *lb, size_t limit, size_t slack)
{
	lb->limit = limit;
	lb->buf.max = limit + 2 + slack;
	if (lb->buf.max < lb->buf.len)
		lb->buf.max = lb->buf.len;
}

size_t linebuf_feed(struct linebuf *lb, const void *data, size_t len)
{
	const char *p = data;
	size_t taken = 0;
	if (lb->skipping) {
		const char *lf = memchr(p, '\n', len);
		if (lf == NULL)
			return len;
		taken = (size_t)(lf - p) + 1;
		lb->skipping = false;
	}
	size_t room = lb->buf.max - lb->buf.len;
	size_t n = len - taken < room ? len - taken : room;
	if (n > 0 && buf_append(&lb->buf, p + taken, n) < 0)
		return taken;
	return taken + n;
}

int linebuf_next(struct linebuf *lb, char **line_r, size_t *len_r, bool *has_cr_r)
{
	for (;;) {
		char *base = lb->buf.data;
		size_t avail = lb->buf.len;
		if (avail == 0)
			return 0;
		if (lb->skipping) {
			/* Drop the rest of an over-long line that is still buffered. */
			char *lf = memchr(base, '\n', avail);
			if (lf == NULL) {
				buf_reset(&lb->buf);
				lb->scanned = 0;
				return 0;
			}
			buf_consume(&lb->buf, (size_t)(lf - base) + 1);
			lb->skipping = false;
			lb->scanned = 0;
			continue;
		}
		char *lf = memchr(base + lb->scanned, '\n', avail - lb->scanned);
		if (lf == NULL) {
			lb->scanned = avail;
			/* CR LF does not count toward the limit; allow one pending CR. */
			if (avail > lb->limit + (base[avail - 1] == '\r' ? 1 : 0)) {
				buf_reset(&lb->buf);
				lb->scanned = 0;
				lb->skipping = true;
				return -E2BIG;
			}
			return 0;
		}
		size_t len = (size_t)(lf - base);
		bool has_cr = len > 0 && base[len - 1] == '\r';
		size_t text = has_cr ? len - 1 : len;
		if (text > lb->limit) {
			buf_consume(&lb->buf, len + 1);
			lb->scanned = 0;
			return -E2BIG;
		}
		base[text] = '\0';
		*line_r = base;
		*len_r = text;
		*has_cr_r = has_cr;
		lb->scanned = len + 1; /* marks the end of the line for consume */
		return 1;
	}
}

void linebuf_consume_line(struct linebuf *lb)
{
	buf_consume(&lb->buf, lb->scanned);
	lb->scanned = 0;
}

size_t linebuf_peek_raw(struct linebuf *lb, const char **data_r, size_t max)
{
	size_t n = lb->buf.len < max ? lb->buf.len : max;
	*data_r = lb->buf.data;
	return n;
}

void linebuf_consume_raw(struct linebuf *lb, size_t n)
{
	buf_consume(&lb->buf, n);
	lb->scanned = 0;
}

void linebuf_discard(struct linebuf *lb)
{
	buf_reset(&lb->buf);
	lb->scanned = 0;
	lb->skipping = false;
}
