#ifndef SEALMAIL_IMAP_FETCH_FMT_H
#define SEALMAIL_IMAP_FETCH_FMT_H
/*
 * FETCH formatting: IMAP strings (quoted or literal), ENVELOPE (with RFC 5322 address-list
 * parsing), BODY / BODYSTRUCTURE, and BODY[section]<partial> specs and their content,
 * all from a message parsed by imap_mime. Pure: writes into a bounded struct buf.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/imap/imap_mime.h"

#define IMAP_SECTION_MAX_PATH   16
#define IMAP_SECTION_MAX_FIELDS 64

/* s[0..len) as an IMAP string: NIL when s is NULL, a quoted string when it is short and
 * holds only safe characters (8-bit UTF-8 only when utf8 is true), else a literal. */
void imap_fmt_string(struct buf *o, const char *s, size_t len, bool utf8);
void imap_fmt_cstring(struct buf *o, const char *s, bool utf8);

/* ENVELOPE of the message whose header is part p (the root, or an embedded message). */
void imap_fmt_envelope(struct buf *o, const struct imap_mime *m, const struct imap_mime_part *p,
                       bool utf8);
/* An address list header value as IMAP addresses "((name adl mailbox host) ...)" or NIL. */
void imap_fmt_addresses(struct buf *o, const char *val, size_t len, bool utf8);
/* BODYSTRUCTURE (extended true) or BODY of part p. */
void imap_fmt_bodystructure(struct buf *o, const struct imap_mime *m,
                            const struct imap_mime_part *p, bool extended, bool utf8);

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
/* Appends the section's bytes (after the partial range) to o. Returns 0, or -ENOENT when
 * the part does not exist (the reply is then an empty string, as other servers do). */
int imap_section_extract(const struct imap_mime *m, const struct imap_section *sec, struct buf *o);

#endif
