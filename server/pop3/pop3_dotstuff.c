/*
 * The RETR/TOP encoder (see pop3_dotstuff.h). One byte at a time on purpose: the state
 * (line start, a CR waiting for its LF, header or body) must survive any chunk boundary,
 * and a byte loop makes that obvious; it costs nothing next to TLS.
 */
#include "server/pop3/pop3_dotstuff.h"

#include <string.h>

void pop3_dotstuff_init(struct pop3_dotstuff *ds)
{
	memset(ds, 0, sizeof(*ds));
	ds->at_line_start = true;
	ds->line_empty = true;
	ds->in_header = true;
}

void pop3_dotstuff_init_top(struct pop3_dotstuff *ds, uint64_t body_lines)
{
	pop3_dotstuff_init(ds);
	ds->limited = true;
	ds->body_left = body_lines;
}

static void pop3_dotstuff_line_end(struct pop3_dotstuff *ds)
{
	if (ds->limited) {
		if (ds->in_header) {
			if (ds->line_empty)
				ds->in_header = false;
		} else if (ds->body_left > 0) {
			ds->body_left--;
		}
		if (!ds->in_header && ds->body_left == 0)
			ds->done = true;
	}
	ds->at_line_start = true;
	ds->line_empty = true;
	ds->prev_cr = false;
}

size_t pop3_dotstuff_feed(struct pop3_dotstuff *ds, const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len && !ds->done; i++) {
		char b = in[i];
		if (ds->at_line_start) {
			ds->at_line_start = false;
			if (b == '.')
				out[o++] = '.';
		}
		if (b == '\n') {
			if (!ds->prev_cr)
				out[o++] = '\r';
			out[o++] = '\n';
			pop3_dotstuff_line_end(ds);
			continue;
		}
		if (b != '\r' || ds->prev_cr)
			ds->line_empty = false;
		ds->prev_cr = b == '\r';
		out[o++] = b;
	}
	return o;
}

bool pop3_dotstuff_done(const struct pop3_dotstuff *ds)
{
	return ds->done;
}

size_t pop3_dotstuff_finish(struct pop3_dotstuff *ds, char *out)
{
	size_t o = 0;
	if (!ds->at_line_start) {
		if (!ds->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		ds->at_line_start = true;
		ds->prev_cr = false;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
