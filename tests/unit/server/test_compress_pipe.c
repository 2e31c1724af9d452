/* The DEFLATE pipe under IMAP COMPRESS: round trips fed whole, byte by byte and in random
 * chunks, flushing per batch, the peer's larger window, hostile input (garbage, a stream
 * that ends, a decompression bomb) and what it holds in memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/buf.h"
#include "server/compress_pipe.h"

static int sink_buf(void *arg, const void *chunk, size_t len)
{
	cr_assert(len > 0 && len <= 16384);
	cr_assert_eq(buf_append(arg, chunk, len), 0);
	return 0;
}

/* Mail-like text of about n bytes (deterministic). */
static char *text(size_t n, unsigned seed)
{
	static const char *words[] = {
	    "Received:", "from",    "mail.example.org",      "Subject:", "meeting", "notes",  "the",
	    "quarterly", "figures", "=?UTF-8?Q?Caf=C3=A9?=", "\r\n",     "FETCH",   "(BODY[]"};
	char *s = malloc(n + 1);
	size_t off = 0;
	srand(seed);
	while (off < n) {
		const char *w = words[rand() % (sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		if (off + l + 1 > n)
			break;
		memcpy(s + off, w, l);
		off += l;
		s[off++] = ' ';
	}
	while (off < n)
		s[off++] = 'x';
	s[n] = '\0';
	return s;
}

/* Inflates in through a pipe, fed in chunks of the sizes chunk() picks and read with at
 * most max bytes a call; returns what came out (a buf the caller frees) and the last
 * result of compress_pipe_read in *rc_r. */
static void inflate_all(const void *in, size_t len, size_t (*chunk)(size_t), size_t max,
                        struct buf *out, ssize_t *rc_r)
{
	struct compress_pipe p;
	char *area = malloc(max);
	compress_pipe_init(&p, 1 << 20);
	size_t off = 0;
	ssize_t r = 0;
	buf_init(out, SIZE_MAX);
	while (off < len || compress_pipe_unread(&p) > 0) {
		if (compress_pipe_unread(&p) == 0 && off < len) {
			size_t n = chunk(len - off);
			cr_assert_eq(compress_pipe_feed(&p, (const char *)in + off, n), 0);
			off += n;
		}
		r = compress_pipe_read(&p, area, max);
		if (r < 0)
			break;
		cr_assert((size_t)r <= max);
		buf_append(out, area, (size_t)r);
	}
	if (r >= 0)
		r = compress_pipe_read(&p, area, max); /* all used: 0 */
	*rc_r = r;
	compress_pipe_free(&p);
	free(area);
}

static size_t whole(size_t left)
{
	return left;
}
static size_t one(size_t left)
{
	(void)left;
	return 1;
}
static size_t random_chunk(size_t left)
{
	size_t n = (size_t)(rand() % 3000) + 1;
	return n < left ? n : left;
}

Test(compress_pipe, round_trip_whole_bytewise_random)
{
	char *t = text(200000, 1);
	struct compress_pipe w;
	struct buf z;
	compress_pipe_init(&w, 1 << 20);
	buf_init(&z, SIZE_MAX);
	/* Several batches, each flushed. */
	for (size_t off = 0; off < 200000; off += 50000)
		cr_assert_eq(compress_pipe_write(&w, t + off, 50000, sink_buf, &z), 0);
	cr_assert(z.len < 200000 / 2, "text compresses: %zu", z.len);
	size_t (*chunks[])(size_t) = {whole, one, random_chunk};
	size_t maxes[] = {16384, 1, 7, 4096};
	for (size_t i = 0; i < 3; i++)
		for (size_t m = 0; m < 4; m++) {
			if (chunks[i] == one && maxes[m] < 4096)
				continue; /* slow and adds nothing */
			struct buf out;
			ssize_t rc;
			srand(7);
			inflate_all(z.data, z.len, chunks[i], maxes[m], &out, &rc);
			cr_assert_eq(rc, 0);
			cr_assert_eq(out.len, 200000);
			cr_assert_eq(memcmp(out.data, t, 200000), 0);
			buf_free(&out);
		}
	buf_free(&z);
	compress_pipe_free(&w);
	free(t);
}

/* Each write is flushed: the peer decodes a reply from its bytes alone, nothing waits in
 * the compressor for the next reply. */
Test(compress_pipe, every_write_is_decodable_at_once)
{
	struct compress_pipe w, r;
	compress_pipe_init(&w, 1 << 20);
	compress_pipe_init(&r, 1 << 20);
	const char *replies[] = {"a OK done\r\n", "* 1 EXISTS\r\n", "b OK NOOP completed\r\n"};
	for (size_t i = 0; i < 3; i++) {
		struct buf z;
		buf_init(&z, SIZE_MAX);
		cr_assert_eq(compress_pipe_write(&w, replies[i], strlen(replies[i]), sink_buf, &z),
		             0);
		/* A sync flush ends with an empty stored block. */
		cr_assert(z.len >= 4);
		cr_assert_eq(memcmp(z.data + z.len - 4, "\x00\x00\xff\xff", 4), 0);
		cr_assert_eq(compress_pipe_feed(&r, z.data, z.len), 0);
		char out[256];
		ssize_t n = compress_pipe_read(&r, out, sizeof(out));
		cr_assert_eq(n, (ssize_t)strlen(replies[i]));
		cr_assert_eq(memcmp(out, replies[i], (size_t)n), 0);
		cr_assert_eq(compress_pipe_read(&r, out, sizeof(out)), 0);
		buf_free(&z);
	}
	/* Nothing written, nothing sent. */
	struct buf z;
	buf_init(&z, SIZE_MAX);
	cr_assert_eq(compress_pipe_write(&w, "", 0, sink_buf, &z), 0);
	cr_assert_eq(z.len, 0);
	buf_free(&z);
	compress_pipe_free(&w);
	compress_pipe_free(&r);
}

/* Raw deflate with zlib's own defaults (a 32 KiB window, level 9), as a client sends it:
 * back-references reach 20 KB behind, past the server's own 8 KiB window. */
static size_t client_deflate(const void *in, size_t len, unsigned char *out, size_t cap, int flush)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	cr_assert_eq(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
	s.next_in = (unsigned char *)(uintptr_t)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	int zr = deflate(&s, flush);
	cr_assert(zr == Z_OK || zr == Z_STREAM_END);
	cr_assert(s.avail_in == 0 && s.avail_out > 0);
	size_t n = cap - s.avail_out;
	deflateEnd(&s);
	return n;
}

Test(compress_pipe, accepts_the_peers_32k_window)
{
	size_t half = 20000;
	unsigned char *in = malloc(2 * half);
	srand(3);
	for (size_t i = 0; i < half; i++)
		in[i] = (unsigned char)(rand() & 0xff); /* incompressible but for the repeat */
	memcpy(in + half, in, half);
	unsigned char *z = malloc(4 * half);
	size_t zl = client_deflate(in, 2 * half, z, 4 * half, Z_SYNC_FLUSH);
	cr_assert(zl < half + half / 4, "the repeat was found: %zu", zl);
	struct buf out;
	ssize_t rc;
	inflate_all(z, zl, whole, 16384, &out, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, 2 * half);
	cr_assert_eq(memcmp(out.data, in, 2 * half), 0);
	buf_free(&out);
	free(z);
	free(in);
}

Test(compress_pipe, garbage_is_an_error_that_stays)
{
	struct compress_pipe p;
	compress_pipe_init(&p, 1 << 20);
	/* Block type 3 is reserved. */
	unsigned char bad[] = {0xff, 0xff, 0xff, 0xff, 'a', ' ', 'N', 'O', 'O', 'P', '\r', '\n'};
	char out[64];
	cr_assert_eq(compress_pipe_feed(&p, bad, sizeof(bad)), 0);
	cr_assert_eq(compress_pipe_read(&p, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(compress_pipe_read(&p, out, sizeof(out)), -EBADMSG);
	compress_pipe_free(&p);

	/* Plain IMAP where compressed bytes belong (a client that did not compress). */
	compress_pipe_init(&p, 1 << 20);
	const char *plain = "b SELECT INBOX\r\n";
	cr_assert_eq(compress_pipe_feed(&p, plain, strlen(plain)), 0);
	/* It may decode to a few junk bytes or fail; never to the command. */
	size_t got = 0;
	ssize_t n;
	while ((n = compress_pipe_read(&p, out + got, sizeof(out) - got)) > 0)
		got += (size_t)n;
	cr_assert(got != strlen(plain) || memcmp(out, plain, got) != 0);
	compress_pipe_free(&p);
}

Test(compress_pipe, a_stream_that_ends_ends_the_input)
{
	const char *cmd = "c LOGOUT\r\n";
	unsigned char z[128];
	size_t zl = client_deflate(cmd, strlen(cmd), z, sizeof(z), Z_FINISH);
	struct compress_pipe p;
	compress_pipe_init(&p, 1 << 20);
	cr_assert_eq(compress_pipe_feed(&p, z, zl), 0);
	char out[64];
	ssize_t n = compress_pipe_read(&p, out, sizeof(out));
	cr_assert_eq(n, (ssize_t)strlen(cmd), "what came before the end counts");
	cr_assert_eq(memcmp(out, cmd, (size_t)n), 0);
	cr_assert_eq(compress_pipe_read(&p, out, sizeof(out)), -EPIPE);
	compress_pipe_free(&p);
}

/* 64 MiB of one byte compresses to about 64 KiB; inflating it never holds more than the
 * caller's chunk and zlib's fixed state. */
Test(compress_pipe, a_bomb_comes_out_in_bounded_chunks)
{
	size_t big = (size_t)64 << 20;
	unsigned char *in = malloc(big);
	memset(in, 'A', big);
	size_t cap = big / 256;
	unsigned char *z = malloc(cap);
	size_t zl = client_deflate(in, big, z, cap, Z_SYNC_FLUSH);
	free(in);
	cr_assert(zl < (size_t)200 << 10, "%zu", zl);
	struct compress_pipe p;
	compress_pipe_init(&p, 1 << 20);
	cr_assert_eq(compress_pipe_feed(&p, z, zl), 0);
	free(z);
	char out[16384];
	size_t total = 0, peak = 0;
	for (;;) {
		ssize_t n = compress_pipe_read(&p, out, sizeof(out));
		cr_assert(n >= 0);
		if (n == 0)
			break;
		cr_assert((size_t)n <= sizeof(out));
		total += (size_t)n;
		size_t m = compress_pipe_memory(&p);
		if (m > peak)
			peak = m;
	}
	cr_assert_eq(total, big);
	/* zlib's two states and windows, and the compressed input itself. */
	cr_assert(peak < (size_t)(120 + 200) << 10, "peak %zu", peak);
	compress_pipe_free(&p);
}

Test(compress_pipe, held_input_is_bounded)
{
	struct compress_pipe p;
	compress_pipe_init(&p, 100);
	char junk[101] = {0};
	cr_assert_eq(compress_pipe_feed(&p, junk, 101), -ENOBUFS);
	cr_assert_eq(compress_pipe_unread(&p), 0);
	cr_assert_eq(compress_pipe_feed(&p, junk, 60), 0);
	cr_assert_eq(compress_pipe_feed(&p, junk, 41), -ENOBUFS);
	cr_assert_eq(compress_pipe_unread(&p), 60);
	cr_assert_eq(compress_pipe_feed(&p, junk, 40), 0);
	compress_pipe_free(&p);
}

static int sink_fail(void *arg, const void *chunk, size_t len)
{
	(*(int *)arg)++;
	return -EIO;
}

Test(compress_pipe, a_failing_sink_fails_the_write)
{
	struct compress_pipe p;
	int calls = 0;
	compress_pipe_init(&p, 1 << 20);
	cr_assert_eq(compress_pipe_write(&p, "x OK\r\n", 6, sink_fail, &calls), -EIO);
	cr_assert_eq(calls, 1);
	compress_pipe_free(&p);
}

/* What a compressed session costs: the figures docs/imap.md gives. The deflate state lives
 * only while output flows. */
Test(compress_pipe, memory_of_an_idle_session)
{
	struct compress_pipe p;
	compress_pipe_init(&p, 1 << 20);
	size_t fresh = compress_pipe_memory(&p);
	cr_assert(fresh < (8 << 10), "fresh %zu: the inflate state only", fresh);
	/* deflate: 4 << wbits (window, prev) + 1 << (memLevel + 9) (hash, pending) + state */
	size_t def = ((size_t)4 << COMPRESS_PIPE_OUT_WBITS) +
	             ((size_t)1 << (COMPRESS_PIPE_OUT_MEMLEVEL + 9));
	struct buf z;
	buf_init(&z, SIZE_MAX);
	cr_assert_eq(compress_pipe_write(&p, "a OK\r\n", 6, sink_buf, &z), 0);
	size_t writing = compress_pipe_memory(&p);
	cr_assert(writing >= fresh + def && writing < fresh + def + (8 << 10), "writing %zu",
	          writing);
	/* Input makes the inflater take its 32 KiB window; no input is held after. */
	cr_assert_eq(compress_pipe_feed(&p, z.data, z.len), 0);
	char out[64];
	cr_assert_eq(compress_pipe_read(&p, out, sizeof(out)), 6);
	cr_assert_eq(compress_pipe_read(&p, out, sizeof(out)), 0);
	size_t busy = compress_pipe_memory(&p);
	cr_assert(busy >= writing + (32 << 10) && busy < writing + (40 << 10), "busy %zu", busy);
	compress_pipe_idle(&p);
	size_t idle = compress_pipe_memory(&p);
	cr_assert(idle == busy - (writing - fresh), "idle %zu", idle);
	cr_log_info("compress_pipe: %zu bytes fresh, %zu writing, %zu after input, %zu idle", fresh,
	            writing, busy, idle);
	buf_free(&z);
	compress_pipe_free(&p);
}

/* A deflater freed between writes: one inflater reads the whole stream, as the peer does. */
Test(compress_pipe, idle_between_writes_keeps_the_stream_whole)
{
	char *t = text(100000, 5);
	struct compress_pipe w;
	struct buf z;
	compress_pipe_init(&w, 1 << 20);
	buf_init(&z, SIZE_MAX);
	for (size_t off = 0; off < 100000; off += 10000) {
		cr_assert_eq(compress_pipe_write(&w, t + off, 10000, sink_buf, &z), 0);
		if ((off / 10000) % 2 == 0)
			compress_pipe_idle(&w);
	}
	compress_pipe_idle(&w);
	compress_pipe_idle(&w); /* twice is harmless */
	struct buf out;
	ssize_t rc;
	srand(11);
	inflate_all(z.data, z.len, random_chunk, 4096, &out, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, 100000);
	cr_assert_eq(memcmp(out.data, t, 100000), 0);
	buf_free(&out);
	buf_free(&z);
	compress_pipe_free(&w);
	free(t);
}
