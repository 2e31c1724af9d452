#ifndef SEALMAIL_SMTP_DATA_H
#define SEALMAIL_SMTP_DATA_H
/*
 * The message reader for DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030) as a pure state
 * machine: lines or raw chunks in, the message's bytes out to a sink. No I/O, no libuv.
 *
 * DATA (smtp_data_line, one call per line from the conn's line reader):
 * - Only "." on a line that ended in CRLF, right after a line that ended in CRLF, ends
 *   DATA: <CR><LF>.<CR><LF>. "<LF>.<LF>", "<LF>.<CR><LF>", "<CR>.<CR>" are message bytes,
 *   so one message is never split in two (SMTP smuggling).
 * - A bare LF (a line that did not end in CRLF) or a bare CR inside a line makes the
 *   message bad: the reader keeps reading to the real end, then the whole message is
 *   refused once (550 5.6.0). Nothing of it is delivered.
 * - Dot-unstuffing; 8-bit bytes (and NUL) are passed through byte for byte.
 * - An over-long line (smtp_data_line_too_long) makes the message bad; the session closes
 *   the connection after the reply, because where that line ended is unknown.
 * BDAT (smtp_data_bytes): bytes are not dot-stuffed; bare CR / LF are still refused unless
 * opts.binary (BODY=BINARYMIME).
 * Both: the message size is counted against opts.max_size (past it nothing more reaches the
 * sink and the end answer is 552 5.3.4); more than SMTP_DATA_MAX_HOPS Received: fields are
 * refused (554 5.4.6, a mail loop). On submission the caller passes the Message-ID: and
 * Date: lines to add (RFC 6409 8.3); each is inserted at the end of the header section when
 * the message has no such field (with an empty line before a body that had no header).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_MAX_HOPS   50
#define SMTP_DATA_HDR_PREFIX 256 /* a field name must end within this many bytes */

/* Where message bytes go. write returns 0 or <0 (then the message fails with 451). */
struct smtp_sink {
	int (*write)(void *ctx, const void *data, size_t len);
	void *ctx;
};

struct smtp_data_opts {
	uint64_t max_size;          /* bytes of the client's message; 0 = unlimited */
	bool binary;                /* BINARYMIME: no CR/LF checks (BDAT only) */
	const char *add_message_id; /* "Message-ID: <...>\r\n" to add when missing, or NULL */
	const char *add_date;       /* "Date: ...\r\n" to add when missing, or NULL */
	/* Leave out Return-Path: fields of the header section (with their continuation
	 * lines): the final delivery writes its own (RFC 5321 4.4), and one a client wrote
	 * must not pass for it. */
	bool drop_return_path;
};

enum smtp_data_status {
	SMTP_DATA_OK = 0,
	SMTP_DATA_BARE_EOL,      /* 550 5.6.0 */
	SMTP_DATA_TOO_BIG,       /* 552 5.3.4 */
	SMTP_DATA_LINE_TOO_LONG, /* 500 5.5.2, then close */
	SMTP_DATA_HOPS,          /* 554 5.4.6 */
	SMTP_DATA_SINK_ERROR,    /* 451 4.3.0 */
};

struct smtp_data {
	struct smtp_data_opts opts;
	struct smtp_sink sink;
	enum smtp_data_status status;
	uint64_t size;   /* bytes of the client's message (after unstuffing) */
	bool prev_crlf;  /* DATA: the previous line ended in CRLF */
	bool prev_cr;    /* byte check: the last byte was CR */
	bool in_header;  /* still in the header section */
	bool hdr_rest;   /* in a classified header line: pass bytes to its LF */
	bool seen_field; /* at least one header field (continuations need one) */
	bool has_msgid;
	bool has_date;
	bool return_path; /* the field being classified is Return-Path */
	bool dropping;    /* inside a Return-Path field being left out */
	unsigned hops;    /* Received: fields */
	size_t hdr_len;   /* bytes in hdr */
	char hdr[SMTP_DATA_HDR_PREFIX];
};

void smtp_data_init(struct smtp_data *d, const struct smtp_data_opts *opts,
                    const struct smtp_sink *sink);
/* Writes bytes to the sink as they are (the Received: line before the message); not
 * counted in the size. */
void smtp_data_prepend(struct smtp_data *d, const void *data, size_t len);
/* DATA: one line without its ending. Returns 1 when it was the end of DATA ("." after
 * CRLF), else 0. */
int smtp_data_line(struct smtp_data *d, const char *line, size_t len, bool has_cr);
/* DATA: the current line was over the conn's limit (and is being skipped). */
void smtp_data_line_too_long(struct smtp_data *d);
/* BDAT: the bytes of a chunk, as they came. */
void smtp_data_bytes(struct smtp_data *d, const void *data, size_t len);
/* The end of the message (after "." or BDAT LAST): flushes what is held and returns the
 * status (enum smtp_data_status). */
enum smtp_data_status smtp_data_finish(struct smtp_data *d);
/* The reply line (no CRLF) for a status other than OK. */
const char *smtp_data_reply(enum smtp_data_status st);

#endif
