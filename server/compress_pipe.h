#ifndef SEALMAIL_COMPRESS_PIPE_H
#define SEALMAIL_COMPRESS_PIPE_H
/*
 * DEFLATE (RFC 1951, raw: no zlib or gzip framing) in both directions of a connection, as
 * IMAP COMPRESS=DEFLATE (RFC 4978) needs it, between the TLS layer and the line reader.
 * Pure: no sockets, no libuv, no TLS, so tests feed it whole, byte by byte and hostile.
 *
 * Output: compress_pipe_write() compresses one batch of plaintext and flushes it
 * (Z_SYNC_FLUSH), so the peer can decode every reply at once; nothing is held back.
 * Input: compress_pipe_feed() copies compressed bytes in (bounded), compress_pipe_read()
 * inflates at most as many bytes as the caller has room for. Memory never grows with what
 * a small input expands to: the caller bounds each read, and the line reader after it
 * bounds lines and literals as for uncompressed input (decompression bombs).
 *
 * Memory: the deflate side uses a small window (COMPRESS_PIPE_OUT_WBITS, memLevel
 * COMPRESS_PIPE_OUT_MEMLEVEL): any inflater accepts a smaller window than its own. It exists
 * only while output flows: compress_pipe_idle() frees it, and the next write starts a new
 * one. The raw stream allows that without telling the peer: every write ends with a sync
 * flush (byte-aligned, every block complete), and a new deflater never refers back to what
 * the old one sent. The inflate side must accept any window the peer chose, up to 32 KiB,
 * and must keep it, since the peer may refer back at any time. zlib allocates through
 * xmalloc (allocation failure aborts) and compress_pipe_memory() reports what it holds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <zlib.h>

/* The server's deflate parameters: level 1 (RFC 4978 section 4 suggests a cheap level;
 * level 1 at an 8 KiB window already reaches ~32% on mail text), an 8 KiB window and
 * memLevel 6: about 70 KiB of zlib state instead of the 262 KiB of zlib's defaults. */
#define COMPRESS_PIPE_LEVEL        1
#define COMPRESS_PIPE_OUT_WBITS    13
#define COMPRESS_PIPE_OUT_MEMLEVEL 6
/* The peer may use any window up to 2^15. */
#define COMPRESS_PIPE_IN_WBITS 15

struct compress_pipe {
	z_stream def;
	z_stream inf;
	bool def_live;     /* def holds a deflate state (from the first write after idle) */
	unsigned char *in; /* compressed input (malloc'd, NULL when none is held); the part
	                    * not yet inflated is inf.next_in[0..inf.avail_in) */
	size_t in_cap;     /* bytes allocated at in */
	size_t in_max;     /* bound on the input held */
	size_t mem;        /* bytes zlib holds now */
	int in_state;      /* 0 open, -EPIPE the peer ended its stream, -EBADMSG corrupt */
};

/* Sets up both directions. in_max bounds the compressed input held (compress_pipe_feed). */
void compress_pipe_init(struct compress_pipe *p, size_t in_max);
void compress_pipe_free(struct compress_pipe *p);

/*
 * Compresses data[0..len) and flushes, handing the compressed bytes to sink(arg, chunk,
 * chunk_len) in pieces of at most 16 KiB (the chunk is borrowed until sink returns). len 0
 * writes nothing. Returns 0, or the first negative value sink returned (then the stream is
 * broken: the caller closes the connection).
 */
int compress_pipe_write(struct compress_pipe *p, const void *data, size_t len,
                        int (*sink)(void *arg, const void *chunk, size_t chunk_len), void *arg);

/* The output side is idle (everything written has been handed on): frees the deflate
 * state, about 70 KiB, until the next write. What is sent next is compressed without the
 * history of what went before; nothing else changes for the peer. */
void compress_pipe_idle(struct compress_pipe *p);

/* Copies compressed input in. 0, or -ENOBUFS when the held input would pass in_max
 * (nothing is taken then). */
int compress_pipe_feed(struct compress_pipe *p, const void *data, size_t len);
/* Compressed input held and not yet inflated. */
static inline size_t compress_pipe_unread(const struct compress_pipe *p)
{
	return p->inf.avail_in;
}

/*
 * Inflates up to max bytes into out. Returns how many (> 0); 0 when every held byte is
 * consumed and more input is needed; -EBADMSG when the input is not valid DEFLATE;
 * -EPIPE when the peer ended its stream (a final block) and sent more, or reads after it.
 */
ssize_t compress_pipe_read(struct compress_pipe *p, void *out, size_t max);

/* Bytes of memory the pipe holds now (zlib's state and windows, held input). */
size_t compress_pipe_memory(const struct compress_pipe *p);

#endif
