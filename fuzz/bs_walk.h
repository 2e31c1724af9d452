#ifndef SEALMAIL_FUZZ_BS_WALK_H
#define SEALMAIL_FUZZ_BS_WALK_H
/*
 * The part of FETCH that works from a stored MIME structure, driven the way a client can:
 * BODY and BODYSTRUCTURE of the message, ENVELOPE of it and of every embedded message, and
 * the byte range and content of every section kind of every part (plus one spec from the
 * input). Aborts when a range leaves the message, or when BODY[] is not the message.
 * Shared by fuzz_imap_mime (a stored form from the input) and fuzz_store_mime (a message
 * from the input, through delivery's parser).
 */
#include <stddef.h>

#include "server/imap/imap_bodystruct.h"

/* msg[0..len) is the stored message (NULL: none, ranges are checked against len only);
 * mode bit 1 formats for UTF8=ACCEPT, bit 2 adds partial ranges. */
void fuzz_bs_walk(const struct imap_bs *bs, const char *msg, size_t len, unsigned mode,
                  const char *spec, size_t spec_len);

#endif
