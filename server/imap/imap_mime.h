#ifndef SEALMAIL_IMAP_MIME_H
#define SEALMAIL_IMAP_MIME_H
/*
 * The MIME structure of one message held in memory, as FETCH needs it: for every part the
 * byte offsets of its header and body, its children (multipart) or the embedded message
 * (message/rfc822), and IMAP part numbering. Pure and bounded: at most IMAP_MIME_MAX_DEPTH
 * levels and IMAP_MIME_MAX_PARTS parts; deeper or further parts are treated as opaque
 * leaves, never as errors. The message bytes are borrowed for the tree's lifetime.
 */
#include <stdbool.h>
#include <stddef.h>

#define IMAP_MIME_MAX_DEPTH 32
#define IMAP_MIME_MAX_PARTS 2000

struct imap_mime_part {
	size_t hdr_off, hdr_len;   /* header block, including the blank line that ends it */
	size_t body_off, body_len; /* body bytes */
	bool multipart;            /* children[] are its parts */
	bool message;              /* message/rfc822 (or global): msg is the embedded message */
	bool text;                 /* a text part: BODYSTRUCTURE counts lines */
	bool default_rfc822;       /* the part of a multipart/digest without Content-Type */
	struct imap_mime_part *children;
	size_t n_children;
	struct imap_mime_part *msg;
};

struct imap_mime {
	const char *data;
	size_t len;
	struct imap_mime_part root; /* the message itself */
	size_t n_parts;
};

/* Parses data[0..len); never fails (bounds make odd parts leaves). */
void imap_mime_parse(struct imap_mime *m, const char *data, size_t len);
void imap_mime_free(struct imap_mime *m);

/* Finds the part at path ("1.2.3" as numbers); NULL when there is none. n_path 0 is the
 * root. */
const struct imap_mime_part *imap_mime_find(const struct imap_mime *m, const unsigned *path,
                                            size_t n_path);

/*
 * The first header field called name (case-insensitive) within hdr[0..len): its raw value
 * (after the colon, folding kept) in *val_r and *vlen_r. Returns true when found.
 */
bool imap_mime_header(const char *hdr, size_t len, const char *name, const char **val_r,
                      size_t *vlen_r);
/* Unfolds and trims a raw header value into a new string (CR/LF removed). */
char *imap_mime_unfold(const char *val, size_t len);

/* Content-Type split: type, subtype (new strings, "text"/"plain" when missing) and the raw
 * parameter part after the first ';' (borrowed, may be empty). */
void imap_mime_content_type(const struct imap_mime *m, const struct imap_mime_part *p,
                            char **type_r, char **subtype_r, const char **params_r, size_t *plen_r);
/* One parameter's value from a "; a=b; c="d"" list (new string), or NULL. */
char *imap_mime_param(const char *params, size_t len, const char *name);

#endif
