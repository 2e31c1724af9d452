/*
 * libFuzzer target: the bounded line reader (server/linebuf.h). The first bytes choose
 * the limit, the slack, the chunk sizes and whether raw peeks (literals, BDAT) and a
 * limit change (login) happen; the rest is fed in those chunks while lines are taken out,
 * checking the documented invariants.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/linebuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	size_t limit = 1 + data[0] % 64;
	size_t slack = data[1] % 32;
	unsigned chunk_seed = data[2];
	bool raw_mode = (data[3] & 1) != 0;
	bool relimit = (data[3] & 2) != 0;
	data += 4;
	size -= 4;

	struct linebuf lb;
	linebuf_init(&lb, limit, slack);
	size_t off = 0;
	bool last = false;
	while (!last) {
		last = off >= size;
		if (relimit && off > size / 2) {
			relimit = false;
			limit += 7;
			linebuf_set_limit(&lb, limit, slack);
		}
		size_t chunk = 1 + (chunk_seed + off) % 17;
		if (chunk > size - off)
			chunk = size - off;
		size_t took = chunk > 0 ? linebuf_feed(&lb, data + off, chunk) : 0;
		if (took > chunk)
			abort();
		off += took;
		bool progress = took > 0;
		for (;;) {
			if (raw_mode && (off & 3) == 0) {
				const char *p;
				size_t n = linebuf_peek_raw(&lb, &p, 1 + off % 9);
				if (n == 0)
					break;
				linebuf_consume_raw(&lb, n);
				progress = true;
				continue;
			}
			char *line;
			size_t len;
			bool has_cr;
			int rc = linebuf_next(&lb, &line, &len, &has_cr);
			if (rc == -E2BIG) {
				progress = true;
				continue;
			}
			if (rc != 1)
				break;
			if (len > limit || line[len] != '\0')
				abort();
			linebuf_consume_line(&lb);
			progress = true;
		}
		/* The buffer is at its bound and holds no line: the conn would stop reading
		 * until the session takes bytes; here the pending bytes are dropped. */
		if (!last && !progress)
			linebuf_discard(&lb);
	}
	linebuf_free(&lb);
	return 0;
}
