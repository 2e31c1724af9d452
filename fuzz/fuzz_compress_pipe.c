/*
 * libFuzzer target: the DEFLATE pipe under IMAP COMPRESS (server/compress_pipe.h). The first
 * byte chooses what the rest is:
 * - even: compressed input from a hostile peer, fed in chunks and read in bounded pieces:
 *   no read returns more than asked, memory stays bounded, an error stays an error;
 * - odd: plaintext, written in pieces (the deflate state freed between some of them, as
 *   an idle connection does) and read back through a second pipe: what comes out is what
 *   went in.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "server/compress_pipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *arg, const void *chunk, size_t len)
{
	if (len == 0 || len > 16384 || buf_append(arg, chunk, len) < 0)
		abort();
	return 0;
}

static void hostile(const uint8_t *data, size_t size, unsigned seed)
{
	struct compress_pipe p;
	char out[4096];
	compress_pipe_init(&p, 1 << 16);
	size_t off = 0;
	ssize_t err = 0;
	for (;;) {
		size_t max = 1 + (seed + off) % sizeof(out);
		ssize_t n = compress_pipe_read(&p, out, max);
		if (n > (ssize_t)max)
			abort();
		if (compress_pipe_memory(&p) > (140 << 10) + (1 << 16))
			abort(); /* zlib's states and windows, and the held input */
		if (err < 0) {
			if (n != err)
				abort(); /* an error stays */
			break;
		}
		if (n > 0)
			continue;
		if (n < 0) {
			if (n != -EBADMSG && n != -EPIPE)
				abort();
			err = n;
			continue;
		}
		if (off >= size)
			break;
		size_t chunk = 1 + (seed * 31 + off) % 700;
		if (chunk > size - off)
			chunk = size - off;
		if (compress_pipe_feed(&p, data + off, chunk) < 0)
			abort(); /* fed only when empty: never over the bound */
		off += chunk;
	}
	compress_pipe_free(&p);
}

static void round_trip(const uint8_t *data, size_t size, unsigned seed)
{
	struct compress_pipe w, r;
	struct buf z, back;
	buf_init(&z, SIZE_MAX);
	buf_init(&back, SIZE_MAX);
	compress_pipe_init(&w, 1 << 20);
	compress_pipe_init(&r, 1 << 20);
	size_t off = 0;
	while (off < size) {
		size_t piece = 1 + (seed * 17 + off) % 1500;
		if (piece > size - off)
			piece = size - off;
		if (compress_pipe_write(&w, data + off, piece, sink, &z) != 0)
			abort();
		if ((off + seed) % 3 == 0)
			compress_pipe_idle(&w);
		off += piece;
	}
	if (compress_pipe_feed(&r, z.data, z.len) < 0)
		abort();
	char out[1024];
	ssize_t n;
	while ((n = compress_pipe_read(&r, out, 1 + seed % sizeof(out))) > 0)
		buf_append(&back, out, (size_t)n);
	if (n != 0 || back.len != size || (size > 0 && memcmp(back.data, data, size) != 0))
		abort();
	buf_free(&z);
	buf_free(&back);
	compress_pipe_free(&w);
	compress_pipe_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned seed = data[1];
	if (data[0] & 1)
		round_trip(data + 2, size - 2, seed);
	else
		hostile(data + 2, size - 2, seed);
	return 0;
}
