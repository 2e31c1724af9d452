/*
 * libFuzzer target: the POP3 RETR/TOP encoder (server/pop3/pop3_dotstuff.h). The first
 * byte picks RETR or TOP with a line limit and the chunk size. Checks the output bound,
 * that every LF in the output follows a CR, that no line starts with a single '.', and
 * that the output ends with the terminator.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/pop3/pop3_dotstuff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;

	struct pop3_dotstuff ds;
	if ((mode & 1) != 0)
		pop3_dotstuff_init_top(&ds, mode >> 4);
	else
		pop3_dotstuff_init(&ds);

	struct buf wire;
	buf_init(&wire, 2 * size + POP3_DOTSTUFF_FINISH_MAX + 16);
	char out[2 * 64];
	size_t off = 0, chunk = 1 + (mode >> 1) % 64;
	while (off < size) {
		size_t n = chunk < size - off ? chunk : size - off;
		size_t w = pop3_dotstuff_feed(&ds, (const char *)data + off, n, out);
		if (w > POP3_DOTSTUFF_MAX_OUT(n))
			abort();
		if (buf_append(&wire, out, w) < 0)
			abort();
		off += n;
		chunk = chunk * 5 % 63 + 1;
	}
	size_t w = pop3_dotstuff_finish(&ds, out);
	if (w > POP3_DOTSTUFF_FINISH_MAX || buf_append(&wire, out, w) < 0)
		abort();

	const char *s = wire.data != NULL ? wire.data : "";
	size_t len = wire.len;
	if (len < 3 || memcmp(s + len - 3, ".\r\n", 3) != 0 || (len > 3 && s[len - 4] != '\n'))
		abort();
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			abort();
		bool line_start = i == 0 || s[i - 1] == '\n';
		/* A line starting with '.' is either the terminator or stuffed. */
		if (line_start && s[i] == '.' && i != len - 3 && (i + 1 >= len || s[i + 1] != '.'))
			abort();
	}
	buf_free(&wire);
	return 0;
}
