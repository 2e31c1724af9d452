/*
 * libFuzzer target: a message through delivery's MIME parsing (storage/sqlite/store_mime.c:
 * GMime, the header and boundary scans around it, ENVELOPE addresses), its stored form read
 * back as FETCH reads it, and everything FETCH formats and extracts from it (fuzz/bs_walk.h).
 * Every message gets a stored form; every range in it lies inside the message.
 *
 * Input: byte 0 is mode bits (1: UTF8=ACCEPT formatting, 2: partial ranges); then one
 * line, up to LF, parsed as a section spec; the rest is the message, kept at the end of
 * the input buffer so that any read past it is caught by ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/bs_walk.h"
#include "storage/sqlite/store_private.h"

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
	const char *msg = (const char *)data + (lf != NULL ? spec_len + 1 : 0);
	size_t msg_len = size - (lf != NULL ? spec_len + 1 : 0);

	struct store_mime_info info;
	if (store_mime_parse_mem(msg, msg_len, &info) < 0 || info.json == NULL)
		abort();
	struct imap_bs bs = {0};
	if (imap_bs_parse(&bs, info.json, strlen(info.json)) < 0)
		abort(); /* delivery wrote what FETCH cannot read */
	fuzz_bs_walk(&bs, msg, msg_len, mode, (const char *)data, spec_len);
	imap_bs_free(&bs);
	store_mime_info_clear(&info);
	return 0;
}
