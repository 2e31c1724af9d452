/*
 * FETCH from a stored MIME structure, for the fuzz targets (see bs_walk.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "fuzz/bs_walk.h"
#include "server/imap/imap_fetch_fmt.h"

/* Sections per input: enough for every part of a seed, bounded for hostile trees. */
#define FUZZ_BS_MAX_EXTRACT 256
#define FUZZ_BS_OUT_MAX     (8u << 20)
#define FUZZ_BS_MAX_CHILD   1001

struct walk {
	const struct imap_bs *bs;
	const char *msg;
	size_t len;
	unsigned mode;
	unsigned extracted;
	struct buf out;
};

static void extract(struct walk *w, const char *spec, size_t spec_len)
{
	struct imap_section sec;
	if (imap_section_parse(spec, spec_len, &sec) < 0)
		return;
	w->extracted++;
	uint64_t off, len;
	if (imap_section_range(w->bs, &sec, w->len, &off, &len) == 0) {
		if (off > w->len || len > w->len - off)
			abort(); /* a range outside the message */
		if (w->msg != NULL) {
			buf_reset(&w->out);
			imap_section_finish(&sec, w->msg + off, (size_t)len, &w->out);
			if (sec.n_path == 0 && !sec.partial && sec.kind == IMAP_SEC_ALL &&
			    (w->out.len != w->len ||
			     (w->len > 0 && memcmp(w->out.data, w->msg, w->len) != 0)))
				abort(); /* BODY[] is the message as stored */
		}
	}
	imap_section_free(&sec);
}

/* Every section kind at path[0..n), then each part below it. */
static void walk(struct walk *w, unsigned *path, size_t n)
{
	static const char *const kinds[] = {
	    "",
	    "HEADER",
	    "TEXT",
	    "MIME",
	    "HEADER.FIELDS (From Content-Type)",
	    "HEADER.FIELDS.NOT (Subject)",
	};
	JsonObject *here = imap_bs_find(w->bs, path, n);
	if (here == NULL || w->extracted >= FUZZ_BS_MAX_EXTRACT)
		return;
	char prefix[IMAP_SECTION_MAX_PATH * 12] = "";
	size_t pl = 0;
	for (size_t i = 0; i < n; i++)
		pl += (size_t)snprintf(prefix + pl, sizeof(prefix) - pl, "%u.", path[i]);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char spec[sizeof(prefix) + 64];
		int sl;
		if (kinds[k][0] == '\0')
			sl = snprintf(spec, sizeof(spec), "[%.*s]", (int)(pl > 0 ? pl - 1 : 0),
			              prefix);
		else
			sl = snprintf(spec, sizeof(spec), "[%s%s]", prefix, kinds[k]);
		if ((w->mode & 2) != 0)
			sl += snprintf(spec + sl, sizeof(spec) - (size_t)sl, "<%u.%u>", (unsigned)k,
			               7u + (unsigned)k * 13u);
		extract(w, spec, (size_t)sl);
	}
	JsonObject *msg = imap_bs_object(here, "message");
	if (msg != NULL) {
		buf_reset(&w->out);
		imap_fmt_envelope(&w->out, msg, (w->mode & 1) != 0);
	}
	if (n == IMAP_SECTION_MAX_PATH)
		return;
	for (unsigned k = 1; k <= FUZZ_BS_MAX_CHILD; k++) {
		path[n] = k;
		JsonObject *below = imap_bs_find(w->bs, path, n + 1);
		/* A leaf is its own part 1: that is no deeper part. */
		if (below == NULL || below == here || w->extracted >= FUZZ_BS_MAX_EXTRACT)
			break;
		walk(w, path, n + 1);
	}
}

void fuzz_bs_walk(const struct imap_bs *bs, const char *msg, size_t len, unsigned mode,
                  const char *spec, size_t spec_len)
{
	struct walk w = {.bs = bs, .msg = msg, .len = len, .mode = mode};
	bool utf8 = (mode & 1) != 0;
	buf_init(&w.out, FUZZ_BS_OUT_MAX);
	imap_fmt_bodystructure(&w.out, bs->root, true, utf8);
	buf_reset(&w.out);
	imap_fmt_bodystructure(&w.out, bs->root, false, utf8);
	buf_reset(&w.out);
	imap_fmt_envelope(&w.out, bs->root, utf8);
	extract(&w, spec, spec_len);
	unsigned path[IMAP_SECTION_MAX_PATH];
	walk(&w, path, 0);
	buf_free(&w.out);
}
