#ifndef SEALMAIL_IMAP_BODYSTRUCT_H
#define SEALMAIL_IMAP_BODYSTRUCT_H
/*
 * The MIME structure delivery stored for a message (docs/storage.md, "MIME structure"),
 * read back for FETCH: one node per part with the byte ranges of its header and body in
 * the stored message, its Content-* fields, its children (multipart, "parts") or the
 * embedded message (message/rfc822, "message", whose node also carries "envelope"). It
 * is not a MIME parser: it never sees the message bytes. Pure; the stored form is treated
 * as untrusted (wrong types read as missing, depth and size bounded).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-glib/json-glib.h>

#define IMAP_BS_MAX_DEPTH 64         /* deeper nodes are not formatted */
#define IMAP_BS_MAX_JSON  (16 << 20) /* a longer stored form is refused */

struct imap_bs {
	JsonParser *parser; /* owns the tree */
	JsonObject *root;   /* the message's node (borrowed from parser) */
};

/*
 * Parses the stored form json[0..len) into bs, which is zeroed before its first use and
 * may be parsed into again (the tree before is replaced, its nodes are no longer valid).
 * Returns 0, or -EINVAL when it is not a structure this version wrote ("v" missing or
 * different: stores from before, see the migration in storage/sqlite/store_schema.c);
 * bs->root is NULL then. Free with imap_bs_free, also after an error.
 */
int imap_bs_parse(struct imap_bs *bs, const char *json, size_t len);
void imap_bs_free(struct imap_bs *bs);

/* The node at an IMAP part path ("1.2.3" as numbers; n_path 0 is the message itself), as
 * RFC 3501 numbers parts: a non-multipart message has part 1, itself. NULL when there is
 * none. Borrowed from bs. */
JsonObject *imap_bs_find(const struct imap_bs *bs, const unsigned *path, size_t n_path);

/* A member of a node: a string (NULL when missing or not a string), a non-negative integer
 * (-1 when missing or not one), an array or an object (NULL). Borrowed. */
const char *imap_bs_str(JsonObject *o, const char *name);
int64_t imap_bs_int(JsonObject *o, const char *name);
JsonArray *imap_bs_array(JsonObject *o, const char *name);
JsonObject *imap_bs_object(JsonObject *o, const char *name);

/* The node's header block (header true) or body as a byte range of the stored message.
 * Returns false when the node has no valid range. */
bool imap_bs_range(JsonObject *node, bool header, uint64_t *off_r, uint64_t *len_r);

#endif
