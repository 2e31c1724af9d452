/*
 * DATA / BDAT message reader. See smtp_data.h for the rules; the comments here say why.
 */
#include "server/smtp/smtp_data.h"

#include <string.h>

void smtp_data_init(struct smtp_data *d, const struct smtp_data_opts *opts,
                    const struct smtp_sink *sink)
{
	memset(d, 0, sizeof(*d));
	d->opts = *opts;
	d->sink = *sink;
	d->prev_crlf = true; /* the DATA command line itself ended in CRLF */
	d->in_header = true;
}

static void sink(struct smtp_data *d, const void *data, size_t len)
{
	if (d->status != SMTP_DATA_OK || len == 0)
		return;
	if (d->sink.write(d->sink.ctx, data, len) < 0)
		d->status = SMTP_DATA_SINK_ERROR;
}

void smtp_data_prepend(struct smtp_data *d, const void *data, size_t len)
{
	sink(d, data, len);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool name_is(const char *name, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(name[i]) != lower(lit[i]))
			return false;
	return true;
}

enum line_kind { LK_FIELD, LK_CONT, LK_EMPTY, LK_BODY };

/* Classifies the line whose first bytes are in d->hdr (complete when it holds an LF, or
 * full). Notes Message-ID, Date and Received fields. */
static enum line_kind classify(struct smtp_data *d)
{
	const char *h = d->hdr;
	size_t n = d->hdr_len;
	if ((n >= 1 && h[0] == '\n') || (n >= 2 && h[0] == '\r' && h[1] == '\n'))
		return LK_EMPTY;
	if (n >= 1 && (h[0] == ' ' || h[0] == '\t'))
		return d->seen_field ? LK_CONT : LK_BODY;
	size_t i = 0;
	while (i < n && h[i] >= 33 && h[i] <= 126 && h[i] != ':')
		i++;
	size_t name_len = i;
	while (i < n && (h[i] == ' ' || h[i] == '\t')) /* obs-optional: WSP before ':' */
		i++;
	if (name_len == 0 || i >= n || h[i] != ':')
		return LK_BODY;
	if (name_is(h, name_len, "Message-ID"))
		d->has_msgid = true;
	else if (name_is(h, name_len, "Date"))
		d->has_date = true;
	else if (name_is(h, name_len, "Received"))
		d->hops++;
	else if (name_is(h, name_len, "Return-Path"))
		d->return_path = true;
	return LK_FIELD;
}

/* The header section ends: add the missing fields (and an empty line when a body starts
 * without one). */
static void end_header(struct smtp_data *d, bool add_empty_line)
{
	bool added = false;
	if (d->opts.add_message_id && !d->has_msgid) {
		sink(d, d->opts.add_message_id, strlen(d->opts.add_message_id));
		added = true;
	}
	if (d->opts.add_date && !d->has_date) {
		sink(d, d->opts.add_date, strlen(d->opts.add_date));
		added = true;
	}
	if (added && add_empty_line)
		sink(d, "\r\n", 2);
	if (d->hops > SMTP_DATA_MAX_HOPS && d->status == SMTP_DATA_OK)
		d->status = SMTP_DATA_HOPS;
	d->in_header = false;
}

/* The held line start has been classified: act on it. */
static void decide(struct smtp_data *d)
{
	d->return_path = false;
	enum line_kind k = classify(d);
	switch (k) {
	case LK_FIELD:
		d->seen_field = true;
		d->dropping = d->return_path && d->opts.drop_return_path;
		/* fall through */
	case LK_CONT:
		if (!d->dropping)
			sink(d, d->hdr, d->hdr_len);
		break;
	case LK_EMPTY:
		d->dropping = false;
		end_header(d, false);
		sink(d, d->hdr, d->hdr_len);
		break;
	case LK_BODY:
		d->dropping = false;
		end_header(d, true);
		sink(d, d->hdr, d->hdr_len);
		break;
	}
	d->hdr_rest = d->in_header && d->hdr[d->hdr_len - 1] != '\n';
	d->hdr_len = 0;
}

/* Message bytes after unstuffing: checks, counting, header scan, sink. */
static void feed(struct smtp_data *d, const char *p, size_t n)
{
	d->size += n;
	if (d->opts.max_size && d->size > d->opts.max_size && d->status == SMTP_DATA_OK)
		d->status = SMTP_DATA_TOO_BIG;
	if (d->status != SMTP_DATA_OK)
		return;
	if (!d->opts.binary) {
		for (size_t i = 0; i < n; i++) {
			char c = p[i];
			if ((d->prev_cr && c != '\n') || (c == '\n' && !d->prev_cr)) {
				d->status = SMTP_DATA_BARE_EOL;
				return;
			}
			d->prev_cr = c == '\r';
		}
	}
	while (n > 0 && d->in_header) {
		if (d->hdr_rest) {
			const char *lf = memchr(p, '\n', n);
			size_t take = lf ? (size_t)(lf - p) + 1 : n;
			if (!d->dropping)
				sink(d, p, take);
			p += take;
			n -= take;
			if (lf)
				d->hdr_rest = false;
			continue;
		}
		size_t room = sizeof(d->hdr) - d->hdr_len;
		const char *lf = memchr(p, '\n', n < room ? n : room);
		size_t take = lf ? (size_t)(lf - p) + 1 : (n < room ? n : room);
		memcpy(d->hdr + d->hdr_len, p, take);
		d->hdr_len += take;
		p += take;
		n -= take;
		if (lf || d->hdr_len == sizeof(d->hdr))
			decide(d);
	}
	sink(d, p, n);
}

int smtp_data_line(struct smtp_data *d, const char *line, size_t len, bool has_cr)
{
	if (len == 1 && line[0] == '.' && has_cr && d->prev_crlf)
		return 1;
	bool bad = !has_cr || memchr(line, '\r', len) != NULL;
	d->prev_crlf = has_cr;
	if (bad) {
		/* Keep counting so an oversize message still reads to its end. */
		d->size += len + 1;
		if (d->status == SMTP_DATA_OK)
			d->status = SMTP_DATA_BARE_EOL;
		return 0;
	}
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	feed(d, line, len);
	feed(d, "\r\n", 2);
	return 0;
}

void smtp_data_line_too_long(struct smtp_data *d)
{
	/* The conn skips to the line's LF; assume CRLF so a well-formed ".\r\n" after it
	 * still ends DATA. The session closes after the reply, so a wrong guess cannot
	 * turn message bytes into commands. */
	d->prev_crlf = true;
	if (d->status == SMTP_DATA_OK || d->status == SMTP_DATA_BARE_EOL)
		d->status = SMTP_DATA_LINE_TOO_LONG;
}

void smtp_data_bytes(struct smtp_data *d, const void *data, size_t len)
{
	feed(d, data, len);
}

enum smtp_data_status smtp_data_finish(struct smtp_data *d)
{
	if (!d->opts.binary && d->prev_cr && d->status == SMTP_DATA_OK)
		d->status = SMTP_DATA_BARE_EOL;
	if (d->in_header) {
		if (d->hdr_len > 0) {
			/* A last line without LF (BDAT): classify what there is. */
			enum line_kind k = classify(d);
			if (k == LK_FIELD || k == LK_CONT) {
				sink(d, d->hdr, d->hdr_len);
				if (d->hdr[d->hdr_len - 1] != '\n')
					sink(d, "\r\n", 2);
				end_header(d, false);
			} else {
				end_header(d, k == LK_BODY);
				sink(d, d->hdr, d->hdr_len);
			}
			d->hdr_len = 0;
		} else {
			if (d->hdr_rest && (d->opts.add_message_id || d->opts.add_date) &&
			    (!d->has_msgid || !d->has_date))
				sink(d, "\r\n", 2);
			end_header(d, false);
		}
	}
	return d->status;
}

const char *smtp_data_reply(enum smtp_data_status st)
{
	switch (st) {
	case SMTP_DATA_OK:
		return "250 2.0.0 Ok";
	case SMTP_DATA_BARE_EOL:
		return "550 5.6.0 Message refused: bare CR or LF; lines must end in CRLF";
	case SMTP_DATA_TOO_BIG:
		return "552 5.3.4 Message too big";
	case SMTP_DATA_LINE_TOO_LONG:
		return "500 5.5.2 Message line too long";
	case SMTP_DATA_HOPS:
		return "554 5.4.6 Too many hops (mail loop?)";
	case SMTP_DATA_SINK_ERROR:
		break;
	}
	return "451 4.3.0 Temporary failure storing the message, try again later";
}
