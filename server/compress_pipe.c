/*
 * DEFLATE both ways over zlib. zlib is the reference implementation of RFC 1951 and is on
 * every system sealmail runs on; its raw mode (negative windowBits) is exactly what RFC
 * 4978 asks for.
 */
#include "server/compress_pipe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"

#define OUT_CHUNK 16384

/* Each block zlib asks for carries its size in front, so that the pipe can say what it
 * holds (bench/RESULTS.md records the cost of an idle compressed session). */
#define HEADER 16

static voidpf compress_pipe_zalloc(voidpf opaque, uInt items, uInt size)
{
	struct compress_pipe *p = opaque;
	size_t n = (size_t)items * size;
	unsigned char *b = xmalloc(n + HEADER);
	memcpy(b, &n, sizeof(n));
	p->mem += n;
	return b + HEADER;
}

static void compress_pipe_zfree(voidpf opaque, voidpf ptr)
{
	struct compress_pipe *p = opaque;
	if (ptr == NULL)
		return;
	unsigned char *b = (unsigned char *)ptr - HEADER;
	size_t n;
	memcpy(&n, b, sizeof(n));
	p->mem -= n;
	free(b);
}

static void compress_pipe_drop_input(struct compress_pipe *p)
{
	free(p->in);
	p->in = NULL;
	p->in_cap = 0;
	p->inf.next_in = NULL;
	p->inf.avail_in = 0;
}

void compress_pipe_init(struct compress_pipe *p, size_t in_max)
{
	memset(p, 0, sizeof(*p));
	p->in_max = in_max;
	p->def.zalloc = compress_pipe_zalloc;
	p->def.zfree = compress_pipe_zfree;
	p->def.opaque = p;
	p->inf.zalloc = compress_pipe_zalloc;
	p->inf.zfree = compress_pipe_zfree;
	p->inf.opaque = p;
	/* Fails only on bad parameters (constants here) or allocation (which aborts). */
	if (inflateInit2(&p->inf, -COMPRESS_PIPE_IN_WBITS) != Z_OK)
		abort();
}

static void compress_pipe_deflate_start(struct compress_pipe *p)
{
	if (p->def_live)
		return;
	if (deflateInit2(&p->def, COMPRESS_PIPE_LEVEL, Z_DEFLATED, -COMPRESS_PIPE_OUT_WBITS,
	                 COMPRESS_PIPE_OUT_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	p->def_live = true;
}

void compress_pipe_idle(struct compress_pipe *p)
{
	if (!p->def_live)
		return;
	deflateEnd(&p->def);
	p->def_live = false;
}

void compress_pipe_free(struct compress_pipe *p)
{
	compress_pipe_idle(p);
	inflateEnd(&p->inf);
	compress_pipe_drop_input(p);
}

int compress_pipe_write(struct compress_pipe *p, const void *data, size_t len,
                        int (*sink)(void *arg, const void *chunk, size_t chunk_len), void *arg)
{
	unsigned char out[OUT_CHUNK];
	const unsigned char *d = data;
	if (len == 0)
		return 0;
	compress_pipe_deflate_start(p);
	/* avail_in is 32 bits: feed very large batches in slices, flushing after the last. */
	while (len > 0) {
		size_t slice = len > (1u << 30) ? (1u << 30) : len;
		int flush = slice == len ? Z_SYNC_FLUSH : Z_NO_FLUSH;
		p->def.next_in = (unsigned char *)(uintptr_t)d;
		p->def.avail_in = (uInt)slice;
		do {
			p->def.next_out = out;
			p->def.avail_out = sizeof(out);
			int zr = deflate(&p->def, flush);
			/* Z_BUF_ERROR only means no progress was possible this call. */
			if (zr != Z_OK && zr != Z_BUF_ERROR)
				abort(); /* the stream state is ours alone: cannot happen */
			size_t have = sizeof(out) - p->def.avail_out;
			if (have > 0) {
				int r = sink(arg, out, have);
				if (r < 0)
					return r;
			}
			/* A full output chunk may hide more pending output. */
		} while (p->def.avail_in > 0 || p->def.avail_out == 0);
		d += slice;
		len -= slice;
	}
	return 0;
}

int compress_pipe_feed(struct compress_pipe *p, const void *data, size_t len)
{
	size_t left = p->inf.avail_in;
	if (len == 0)
		return 0;
	if (left + len > p->in_max || left + len < left)
		return -ENOBUFS;
	unsigned char *nb = xmalloc(left + len);
	if (left > 0)
		memcpy(nb, p->inf.next_in, left);
	memcpy(nb + left, data, len);
	free(p->in);
	p->in = nb;
	p->in_cap = left + len;
	p->inf.next_in = nb;
	p->inf.avail_in = (uInt)(left + len);
	return 0;
}

ssize_t compress_pipe_read(struct compress_pipe *p, void *out, size_t max)
{
	if (p->in_state < 0)
		return p->in_state;
	if (max == 0)
		return 0;
	if (max > (1u << 30))
		max = 1u << 30;
	if (p->inf.avail_in == 0) {
		/* Idle sessions hold no input buffer. */
		compress_pipe_drop_input(p);
		return 0;
	}
	p->inf.next_out = out;
	p->inf.avail_out = (uInt)max;
	int zr = inflate(&p->inf, Z_SYNC_FLUSH);
	size_t have = max - p->inf.avail_out;
	switch (zr) {
	case Z_OK:
	case Z_BUF_ERROR: /* no progress possible: all input used, a block still open */
		break;
	case Z_STREAM_END:
		/* The peer ended its stream: what came before is good, nothing may follow. */
		p->in_state = -EPIPE;
		break;
	case Z_MEM_ERROR:
		abort(); /* cannot happen: allocation aborts first */
	default: /* Z_DATA_ERROR, Z_NEED_DICT (no dictionary is ever agreed), Z_STREAM_ERROR */
		p->in_state = -EBADMSG;
		return have > 0 ? (ssize_t)have : p->in_state;
	}
	if (p->inf.avail_in == 0) {
		compress_pipe_drop_input(p);
	}
	if (have > 0)
		return (ssize_t)have;
	return p->in_state;
}

size_t compress_pipe_memory(const struct compress_pipe *p)
{
	return p->mem + p->in_cap;
}
