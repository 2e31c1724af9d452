/*
 * libFuzzer target: the MIME parser FETCH uses (server/imap/imap_mime.h) and what FETCH
 * formats from its result (server/imap/imap_fetch_fmt.h): BODY and BODYSTRUCTURE of the
 * whole message, ENVELOPE of the message and of every embedded message, and section
 * extraction (BODY[...]) of every part the tree has.
 *
 * Input: byte 0 is mode bits (1: UTF8=ACCEPT formatting, 2: partial ranges); then one
 * line, up to LF, parsed as a section spec ("[1.2.HEADER.FIELDS (From)]<0.10>") and
 * extracted; the rest is the message, kept at the end of the input buffer so that any
 * read past it is caught by ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/imap/imap_fetch_fmt.h"
#include "server/imap/imap_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Extractions per input: enough for every part of a seed, bounded for hostile trees. */
#define FUZZ_MIME_MAX_EXTRACT 256
#define FUZZ_MIME_OUT_MAX     (8u << 20)

struct fuzz_mime {
	const struct imap_mime *m;
	struct buf out;
	unsigned mode;
	unsigned extracted;
};

static void check_part(const struct imap_mime *m, const struct imap_mime_part *p, unsigned depth)
{
	/* Offsets stay inside the message; the body follows the header. */
	if (depth > IMAP_MIME_MAX_DEPTH + 1 || p->hdr_off > m->len ||
	    p->hdr_len > m->len - p->hdr_off || p->body_off != p->hdr_off + p->hdr_len ||
	    p->body_len > m->len - p->body_off)
		abort();
	for (size_t i = 0; i < p->n_children; i++)
		check_part(m, &p->children[i], depth + 1);
	if (p->msg != NULL)
		check_part(m, p->msg, depth + 1);
}

static void extract(struct fuzz_mime *f, const char *spec, size_t len)
{
	struct imap_section sec;
	if (imap_section_parse(spec, len, &sec) < 0)
		return;
	f->extracted++;
	buf_reset(&f->out);
	if (imap_section_extract(f->m, &sec, &f->out) == 0 && sec.n_path == 0 && !sec.partial &&
	    sec.kind == IMAP_SEC_ALL &&
	    (f->out.len != f->m->len ||
	     (f->m->len > 0 && memcmp(f->out.data, f->m->data, f->m->len) != 0)))
		abort(); /* BODY[] is the message as stored */
	imap_section_free(&sec);
}

/* Every section kind at path[0..n), then each part below it. */
static void walk(struct fuzz_mime *f, unsigned *path, size_t n)
{
	static const char *const kinds[] = {
	    "",
	    "HEADER",
	    "TEXT",
	    "MIME",
	    "HEADER.FIELDS (From Content-Type)",
	    "HEADER.FIELDS.NOT (Subject)",
	};
	const struct imap_mime_part *here = imap_mime_find(f->m, path, n);
	if (here == NULL || f->extracted >= FUZZ_MIME_MAX_EXTRACT)
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
		if ((f->mode & 2) != 0)
			sl += snprintf(spec + sl, sizeof(spec) - (size_t)sl, "<%u.%u>", (unsigned)k,
			               7u + (unsigned)k * 13u);
		extract(f, spec, (size_t)sl);
	}
	if (here->message && here->msg != NULL) {
		buf_reset(&f->out);
		imap_fmt_envelope(&f->out, f->m, here->msg, (f->mode & 1) != 0);
	}
	if (n == IMAP_SECTION_MAX_PATH)
		return;
	for (unsigned k = 1; k <= IMAP_MIME_MAX_PARTS + 1; k++) {
		path[n] = k;
		const struct imap_mime_part *below = imap_mime_find(f->m, path, n + 1);
		/* A leaf is its own part 1: that is no deeper part. */
		if (below == NULL || below == here || f->extracted >= FUZZ_MIME_MAX_EXTRACT)
			break;
		walk(f, path, n + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	bool utf8 = (mode & 1) != 0;
	data++;
	size--;
	const uint8_t *lf = memchr(data, '\n', size);
	size_t spec_len = lf != NULL ? (size_t)(lf - data) : 0;
	const char *msg = (const char *)data + (lf != NULL ? spec_len + 1 : 0);
	size_t msg_len = size - (lf != NULL ? spec_len + 1 : 0);

	struct imap_mime m;
	imap_mime_parse(&m, msg, msg_len);
	if (m.n_parts < 1 || m.n_parts > IMAP_MIME_MAX_PARTS + 1)
		abort();
	check_part(&m, &m.root, 0);

	struct fuzz_mime f = {.m = &m, .mode = mode};
	buf_init(&f.out, FUZZ_MIME_OUT_MAX);
	imap_fmt_bodystructure(&f.out, &m, &m.root, true, utf8);
	buf_reset(&f.out);
	imap_fmt_bodystructure(&f.out, &m, &m.root, false, utf8);
	buf_reset(&f.out);
	imap_fmt_envelope(&f.out, &m, &m.root, utf8);

	extract(&f, (const char *)data, spec_len);
	unsigned path[IMAP_SECTION_MAX_PATH];
	walk(&f, path, 0);

	buf_free(&f.out);
	imap_mime_free(&m);
	return 0;
}
