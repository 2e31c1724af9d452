#ifndef SEALMAIL_IMAP_FETCH_FMT_H
#define SEALMAIL_IMAP_FETCH_FMT_H
/*
 * FETCH formatting: IMAP strings (quoted or literal), ENVELOPE and BODY / BODYSTRUCTURE
 * from the structure delivery stored (imap_bodystruct.h), and BODY[section]<partial>:
 * the spec, the byte range of the stored message it needs, and its content from those
 * bytes. It never parses MIME or addresses. Pure: writes into a bounded struct buf.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/imap/imap_bodystruct.h"

#define IMAP_SECTION_MAX_PATH   16
#define IMAP_SECTION_MAX_FIELDS 64

/* s[0..len) as an IMAP string: NIL when s is NULL, a quoted string when it is short and
 * holds only safe characters (8-bit UTF-8 only when utf8 is true), else a literal. */
void imap_fmt_string(struct buf *o, const char *s, size_t len, bool utf8);
void imap_fmt_cstring(struct buf *o, const char *s, bool utf8);
/* A date-time ("07-Dec-2026 21:00:00 +0000", quoted) of t, seconds since the epoch. */
void imap_fmt_date(struct buf *o, int64_t t);

/* ENVELOPE of the message whose node is node (the root, or an embedded message's); every
 * field NIL when the node has none. */
void imap_fmt_envelope(struct buf *o, JsonObject *node, bool utf8);
/* BODYSTRUCTURE (extended true) or BODY of the part at node. */
void imap_fmt_bodystructure(struct buf *o, JsonObject *node, bool extended, bool utf8);

enum imap_section_kind {
	IMAP_SEC_ALL,        /* BODY[] or BODY[1.2] (part body) */
	IMAP_SEC_HEADER,     /* HEADER */
	IMAP_SEC_FIELDS,     /* HEADER.FIELDS (...) */
	IMAP_SEC_FIELDS_NOT, /* HEADER.FIELDS.NOT (...) */
	IMAP_SEC_TEXT,       /* TEXT */
	IMAP_SEC_MIME,       /* MIME (only after a part number) */
};

struct imap_section {
	unsigned path[IMAP_SECTION_MAX_PATH];
	size_t n_path;
	enum imap_section_kind kind;
	char *fields[IMAP_SECTION_MAX_FIELDS]; /* owned */
	size_t n_fields;
	bool partial;
	uint64_t p_off, p_len;
	char *spec; /* the text between the brackets, echoed in the reply (owned) */
};

/*
 * Parses the part after "BODY" / "BODY.PEEK" / "BINARY": "[1.2.HEADER.FIELDS (A B)]<0.10>"
 * (s starts at '['). 0 or -EINVAL. Free with imap_section_free.
 */
int imap_section_parse(const char *s, size_t len, struct imap_section *sec);
void imap_section_free(struct imap_section *sec);
/*
 * The bytes [*off_r, *off_r + *len_r) of the stored message (size bytes) that section sec
 * needs, after its partial range unless it lists header fields. bs may be NULL when the
 * section is the whole message. Returns 0, or -ENOENT when the part does not exist (the
 * reply is then an empty string, as other servers do).
 */
int imap_section_range(const struct imap_bs *bs, const struct imap_section *sec, uint64_t size,
                       uint64_t *off_r, uint64_t *len_r);
/* Appends the section's content to o from data[0..len), the bytes of that range: header
 * fields filtered and cut to the partial range, anything else as it is. */
void imap_section_finish(const struct imap_section *sec, const char *data, size_t len,
                         struct buf *o);

#endif
