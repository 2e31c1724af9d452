#ifndef SEALMAIL_LINEBUF_H
#define SEALMAIL_LINEBUF_H
/*
 * The bounded line reader: bytes in, complete lines out. Pure (no I/O), so it is fed
 * whole, byte by byte and in random chunks by tests/unit/server/test_linebuf.c.
 *
 * A line ends at LF; a CR right before the LF is stripped and reported (has_cr), so a
 * protocol can refuse bare LF where it must (SMTP DATA). A line longer than the limit is
 * never buffered whole: linebuf_next reports it once (-E2BIG), drops what it holds, and
 * silently skips the rest of that line up to and including its LF.
 */
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct linebuf {
	struct buf buf; /* pending bytes; bounded by buf.max */
	size_t limit;   /* longest line accepted, without its line ending */
	size_t scanned; /* bytes of buf already known to hold no LF */
	bool skipping;  /* inside an over-long line: drop bytes up to the next LF */
};

/* limit: longest line; slack: how many bytes beyond one line may wait in the buffer
 * (pipelined commands), e.g. one read's worth. */
void linebuf_init(struct linebuf *lb, size_t limit, size_t slack);
void linebuf_free(struct linebuf *lb);
void linebuf_set_limit(struct linebuf *lb, size_t limit, size_t slack);

/* Appends input. Returns the number of bytes taken (all of them unless the buffer is at
 * its bound, in which case the caller keeps the rest and must stop reading until lines
 * are taken out). Bytes of a line being skipped are dropped (and count as taken). */
size_t linebuf_feed(struct linebuf *lb, const void *data, size_t len);

/* 1: a line is at *line_r (NUL-terminated in place, *len_r bytes, without CR LF); it
 * stays valid until linebuf_consume_line. 0: need more input. -E2BIG: the line being
 * read is over the limit (reported once per line; then it is skipped). */
int linebuf_next(struct linebuf *lb, char **line_r, size_t *len_r, bool *has_cr_r);
/* Drops the line returned by the last linebuf_next. */
void linebuf_consume_line(struct linebuf *lb);

/* Takes up to max raw bytes from the front of the buffer (for literals and BDAT).
 * Returns how many; *data_r points into the buffer until linebuf_consume_raw. */
size_t linebuf_peek_raw(struct linebuf *lb, const char **data_r, size_t max);
void linebuf_consume_raw(struct linebuf *lb, size_t n);

/* Discards everything buffered (STARTTLS: plaintext received before the handshake is
 * never processed). */
void linebuf_discard(struct linebuf *lb);

#endif
