/*
 * libFuzzer target: a stored MIME structure as FETCH reads it (server/imap/imap_bodystruct.h)
 * and everything FETCH formats from it (fuzz/bs_walk.h). The stored form is written by
 * delivery, but a damaged database or a bug there must not crash FETCH.
 *
 * Input: byte 0 is mode bits (1: UTF8=ACCEPT formatting, 2: partial ranges); then one
 * line, up to LF, parsed as a section spec ("[1.2.HEADER.FIELDS (From)]<0.10>"); then
 * the stored form (JSON). Ranges are checked against a message of 1 MiB that is not there.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz/bs_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;
	const uint8_t *lf = memchr(data, '\n', size);
	size_t spec_len = lf != NULL ? (size_t)(lf - data) : 0;
	const char *json = (const char *)data + (lf != NULL ? spec_len + 1 : 0);
	size_t json_len = size - (lf != NULL ? spec_len + 1 : 0);

	struct imap_bs bs = {0};
	if (imap_bs_parse(&bs, json, json_len) == 0)
		fuzz_bs_walk(&bs, NULL, 1 << 20, mode, (const char *)data, spec_len);
	imap_bs_free(&bs);
	return 0;
}
