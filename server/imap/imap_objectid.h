#ifndef SEALMAIL_IMAP_OBJECTID_H
#define SEALMAIL_IMAP_OBJECTID_H
/*
 * What OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970) show: object ids
 * as the client sees them, and the FETCH items of the three extensions formatted from what
 * the store keeps per message. Pure.
 */
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "storage/store.h"

/* An object id's form: its kind's letter (F mailbox, M message, T thread) and 16 hex
 * digits (RFC 8474 objectid: 1*255 of ALPHA, DIGIT, "-" and "_"). */
#define IMAP_OBJECTID_LEN 17
void imap_fmt_objectid(struct buf *o, char kind, uint64_t id);
/* The id in s[0..len) when it has kind's form; false for anything else (an id this server
 * never gave, which matches no message). */
bool imap_objectid_parse(const char *s, size_t len, char kind, uint64_t *id_r);

/* FETCH items of these extensions. */
enum imap_meta_item {
	IMAP_META_EMAILID,
	IMAP_META_THREADID,
	IMAP_META_SAVEDATE,
	IMAP_META_PREVIEW
};
/* "EMAILID (M...)", "THREADID (T...)", "SAVEDATE \"date\"" or "PREVIEW text" of m. */
void imap_fmt_meta(struct buf *o, enum imap_meta_item item, const struct store_msg *m, bool utf8);

#endif
