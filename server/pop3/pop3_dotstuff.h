#ifndef SEALMAIL_POP3_DOTSTUFF_H
#define SEALMAIL_POP3_DOTSTUFF_H
/*
 * The POP3 multi-line encoder for RETR and TOP (RFC 1939 section 3): stored message bytes
 * in, wire bytes out, in chunks of any size, never holding the message whole.
 *
 * - A line that starts with '.' gets one more '.' in front (byte-stuffing).
 * - A bare LF becomes CRLF (POP3 lines end in CRLF); CRLF and bare CR mid-line are kept.
 *   A CR at the end of one chunk and its LF at the start of the next stay one CRLF.
 * - pop3_dotstuff_finish ends an unterminated last line with CRLF and writes the ".CRLF"
 *   terminator.
 * - TOP: with a body line limit, the header, the blank line after it and at most that many
 *   body lines are written, then the encoder reports done and ignores the rest.
 *
 * Pure: no I/O, no allocation. Unit-tested with chunk boundaries at every position
 * (tests/unit/server/pop3/test_pop3_dotstuff.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_dotstuff {
	bool at_line_start; /* the next input byte starts a line */
	bool prev_cr;       /* the last byte written was a CR */
	bool line_empty;    /* the current line has no byte yet but maybe a CR */
	bool in_header;     /* TOP: still in the header */
	bool limited;       /* TOP: body_left applies */
	bool done;          /* TOP: enough written; ignore further input */
	uint64_t body_left; /* TOP: body lines still to write */
};

/* The most bytes pop3_dotstuff_feed writes for len input bytes. */
#define POP3_DOTSTUFF_MAX_OUT(len) (2 * (size_t)(len))
/* The most bytes pop3_dotstuff_finish writes ("\r\n.\r\n"). */
#define POP3_DOTSTUFF_FINISH_MAX 5

/* Whole message (RETR). */
void pop3_dotstuff_init(struct pop3_dotstuff *ds);
/* Header and at most body_lines lines of the body (TOP msg n). */
void pop3_dotstuff_init_top(struct pop3_dotstuff *ds, uint64_t body_lines);

/* Encodes len bytes of in into out, which must hold POP3_DOTSTUFF_MAX_OUT(len) bytes.
 * Returns the number of bytes written. After the encoder is done (TOP limit reached),
 * input is ignored and 0 is returned. */
size_t pop3_dotstuff_feed(struct pop3_dotstuff *ds, const char *in, size_t len, char *out);
/* True when the TOP limit has been reached: the caller can stop reading the message. */
bool pop3_dotstuff_done(const struct pop3_dotstuff *ds);
/* Writes the end of the response into out (POP3_DOTSTUFF_FINISH_MAX bytes): a CRLF if
 * the last line is unterminated, then ".\r\n". Returns the number of bytes written. */
size_t pop3_dotstuff_finish(struct pop3_dotstuff *ds, char *out);

#endif
