#ifndef SEALMAIL_IMAP_CATENATE_H
#define SEALMAIL_IMAP_CATENATE_H
/*
 * CATENATE (RFC 4469): an APPEND message made of TEXT literals and IMAP URLs (RFC 5092) to
 * the same user's messages or parts of them. imap_url_parse is pure; imap_catenate reads
 * the URLs' bytes from the store and assembles the message in memory, bounded by the
 * message size limit.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct imap_client;

/* What an IMAP URL names: a message (uid) of a mailbox, optionally a section and a byte
 * range of it. */
struct imap_url {
	char *mailbox;        /* percent-decoded, UTF-8 */
	uint32_t uidvalidity; /* 0 when the URL has none */
	uint32_t uid;
	char *section; /* "1.2", "HEADER.FIELDS (TO)"...; NULL for the whole message */
	bool partial;
	uint64_t p_off, p_len; /* p_len UINT64_MAX: to the end */
};

/*
 * Parses an IMAP URL naming a message: relative ("/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=1")
 * or absolute ("imap://user@host/INBOX/;UID=3"). An absolute URL must name user (the
 * logged-in address, compared without case) or no user at all; any URLAUTH, a missing UID
 * or a malformed part is refused. 0 or -EINVAL. Free with imap_url_free, also after an
 * error.
 */
int imap_url_parse(const char *s, size_t len, const char *user, struct imap_url *u);
void imap_url_free(struct imap_url *u);

struct imap_cat_part {
	bool is_url;
	const char *data; /* TEXT bytes, or the URL text; a view into the command */
	size_t len;
};

/*
 * Appends the parts in order to out (which is bounded by the caller's maximum), reading
 * each URL's message through the store, then calls done(arg, rc, bad) once: rc 0; -EINVAL
 * with bad the URL (a view into its part) that names nothing usable (the client gets
 * NO [BADURL url]); -EFBIG when the message would exceed out's maximum; another -errno for
 * a store failure. Not called when the connection closes first.
 */
void imap_catenate(struct imap_client *cl, const struct imap_cat_part *parts, size_t n,
                   struct buf *out,
                   void (*done)(void *arg, int rc, const struct imap_cat_part *bad), void *arg);

#endif
