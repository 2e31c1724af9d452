#ifndef SEALMAIL_IMAP_HEADER_H
#define SEALMAIL_IMAP_HEADER_H
/*
 * One header field of a header block in memory, as SEARCH HEADER and SENTBEFORE need it.
 * Not a MIME parser: FETCH formats from the structure delivery stored (imap_bodystruct.h).
 * Pure; the header bytes are borrowed.
 */
#include <stdbool.h>
#include <stddef.h>

/*
 * The first header field called name (case-insensitive) within hdr[0..len): its raw value
 * (after the colon, folding kept) in *val_r and *vlen_r. Returns true when found.
 */
bool imap_header_find(const char *hdr, size_t len, const char *name, const char **val_r,
                      size_t *vlen_r);
/* Unfolds and trims a raw header value into a new string (CR/LF removed, tabs as spaces). */
char *imap_header_unfold(const char *val, size_t len);

#endif
