#ifndef SEALMAIL_IMAP_BINARY_H
#define SEALMAIL_IMAP_BINARY_H
/*
 * BINARY (RFC 3516): undoing a part's Content-Transfer-Encoding for FETCH BINARY[] and
 * BINARY.SIZE[]. Pure: bytes in, bytes out, bounded by the input (decoding never grows
 * data).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/*
 * Appends data[0..len) decoded by the transfer encoding cte (the Content-Transfer-Encoding
 * value as stored, NULL when the part has none: 7bit) to out. base64 skips what is not of
 * its alphabet and stops at padding; quoted-printable undoes =XX and soft line breaks
 * and drops the transport padding before a line break (RFC 2045 6.7); 7bit, 8bit and
 * binary are the identity. Returns 0, or -EPROTONOSUPPORT for an encoding it does not
 * know (the client gets NO [UNKNOWN-CTE]).
 */
int imap_binary_decode(const char *cte, const char *data, size_t len, struct buf *out);

/* True when data holds a NUL octet: then only a literal8 (~{n}) may carry it. */
bool imap_binary_has_nul(const char *data, size_t len);

/* "BINARY[spec]<off> ~{n}" (a literal8 only when the data holds NUL, RFC 3516 4.3) or
 * "BINARY.SIZE[spec] n" from the decoded part d; NIL (size 0) when d is NULL: the part
 * does not exist. */
void imap_fmt_binary(struct buf *o, const char *spec, bool size_only, bool partial, uint64_t p_off,
                     uint64_t p_len, const struct buf *d);

#endif
