/*
 * A connection: TCP handle + optional TLS session + bounded line reader + write queue.
 *
 * Input flows socket -> (TLS) -> (inflate) -> linebuf -> protocol callbacks; output flows
 * protocol -> (deflate) -> (TLS) -> uv_write. Compression (conn_compress_start) sits inside
 * TLS, as RFC 4978 orders the layers: data is compressed before it is encrypted. Reading
 * stops whenever the protocol is paused, the line buffer has no room for another read, or
 * too much output is queued (back-pressure), and starts again when that clears. One read
 * buffer is shared by every connection: libuv calls read_cb right after alloc_cb on the
 * loop thread, and the bytes are consumed before it returns.
 */
#include "server/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/audit.h"
#include "server/compress_pipe.h"
#include "server/conn_peer.h"
#include "server/server_private.h"
#include "server/tls.h"
#include "certs/cert.h"

#define READ_CHUNK     16384
#define WRITE_HIGH     (256 * 1024) /* stop reading and dispatching above this much output */
#define WRITE_LOW      (64 * 1024)  /* dispatch buffered commands again below this */
#define CLOSE_GRACE_MS 5000         /* flush time allowed before a forced close */
#define CONN_LINGER_MS 2000         /* how long a closing conn drains the peer's input */
/* Decompressed bytes one turn of the loop takes from a compressed connection. DEFLATE
 * expands up to ~1000:1, so one 16 KiB read could otherwise keep the loop on one
 * connection for 16 MiB of input (a bomb): past this the rest waits for the next turn. */
#define INFLATE_TURN (256 * 1024)

static char read_area[READ_CHUNK];
static char plain_area[READ_CHUNK];
static char zin_area[READ_CHUNK]; /* compressed plaintext from TLS, before inflating */

struct conn_write_owned {
	uv_write_t req;
	struct conn *conn;
	size_t len;
	void *data; /* malloc'd by tls_session_take_output */
};

static void conn_update_reading(struct conn *c);
static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void conn_pump(struct conn *c);
static void conn_finish_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_linger(struct conn *c);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void conn_enter(struct conn *c);
static void conn_leave(struct conn *c);
static void conn_resume_input(struct conn *c);
static void conn_arm_timer(struct conn *c);
static void conn_peer_ended(struct conn *c);
static void conn_dispatch(struct conn *c);

static uint64_t now_ms(struct conn *c)
{
	return uv_now(c->server->loop);
}

static size_t conn_line_limit(const struct conn *c)
{
	const struct cfg_limits *lim = &c->server->cfg->limits;
	if (c->line_limit_override)
		return c->line_limit_override;
	return c->authenticated ? lim->line_length : lim->line_length_preauth;
}

static void conn_apply_line_limit(struct conn *c)
{
	linebuf_set_limit(&c->in, conn_line_limit(c), READ_CHUNK);
}

/* ---- timers ---------------------------------------------------------------------- */

static void conn_timer_cb(uv_timer_t *t)
{
	struct conn *c = t->data;
	if (c->delay_fn != NULL && (c->state == CONN_PLAIN || c->state == CONN_TLS)) {
		void (*fn)(void *) = c->delay_fn;
		c->delay_fn = NULL;
		c->paused = false;
		conn_arm_timer(c);
		if (c->sess != NULL) {
			conn_enter(c);
			fn(c->sess);
			conn_leave(c);
		}
		if (!c->paused)
			conn_resume_input(c);
		return;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		log_event(LOGL_INFO, "session=%s event=tls_failed ip=%s reason=handshake_timeout",
		          c->id, c->ip);
		metrics_inc(METRIC_TLS_HANDSHAKES, conn_proto_name(c), "timeout", NULL);
		conn_finish_close(c);
		break;
	case CONN_CLOSING:
		conn_finish_close(c);
		break;
	case CONN_PLAIN:
	case CONN_TLS:
		if (c->sess != NULL && c->proto->timeout != NULL) {
			conn_enter(c);
			c->proto->timeout(c->sess);
			conn_leave(c);
		}
		conn_close(c, "idle_timeout");
		break;
	case CONN_CLOSED:
		break;
	}
}

static void conn_arm_timer(struct conn *c)
{
	const struct cfg_limits *lim = &c->server->cfg->limits;
	uint64_t secs;
	if (c->state == CONN_CLOSED || c->delay_fn != NULL)
		return;
	if (c->state == CONN_CLOSING) {
		uv_timer_start(&c->timer, conn_timer_cb, CLOSE_GRACE_MS, 0);
		return;
	}
	if (c->state == CONN_HANDSHAKE)
		secs = lim->handshake_timeout;
	else if (c->idle_override_s > 0)
		secs = c->idle_override_s;
	else
		secs = c->authenticated ? lim->idle_timeout : lim->idle_timeout_preauth;
	uv_timer_start(&c->timer, conn_timer_cb, secs * 1000, 0);
}

/* ---- output ---------------------------------------------------------------------- */

static void conn_fin_cb(uv_shutdown_t *req, int status)
{
	free(req);
	(void)status; /* a broken socket shows as a failed read or write */
}

/* conn_shutdown_output: the FIN follows the last queued write. */
static void conn_maybe_fin(struct conn *c)
{
	if (!c->out_shut || c->fin_sent || c->write_queued > 0 ||
	    (c->state != CONN_PLAIN && c->state != CONN_TLS))
		return;
	uv_shutdown_t *req = xmalloc(sizeof(*req));
	c->fin_sent = true;
	if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_fin_cb) < 0)
		free(req);
}

static void conn_write_done(struct conn *c, size_t len, int status)
{
	c->write_queued -= len;
	if (status < 0 && c->state != CONN_CLOSED) {
		log_event(LOGL_DEBUG, "session=%s event=write_failed error=%s", c->id,
		          uv_strerror(status));
		conn_finish_close(c);
		return;
	}
	c->bytes_out += len;
	/* All output taken by the peer: an idle compressed session keeps no deflate state. */
	if (c->zpipe != NULL && c->write_queued == 0 && c->out.len == 0)
		compress_pipe_idle(c->zpipe);
	if (c->state == CONN_CLOSING && c->write_queued == 0) {
		conn_linger(c);
		return;
	}
	if (c->drain_fn != NULL && c->write_queued <= c->drain_low &&
	    (c->state == CONN_PLAIN || c->state == CONN_TLS) && c->sess != NULL) {
		void (*fn)(void *) = c->drain_fn;
		c->drain_fn = NULL;
		conn_enter(c);
		fn(c->drain_arg);
		conn_leave(c);
		if (c->state == CONN_CLOSED)
			return;
		if (c->dispatching == 0)
			conn_flush(c);
	}
	if (c->output_stalled && c->write_queued <= WRITE_LOW && c->dispatching == 0 &&
	    (c->state == CONN_PLAIN || c->state == CONN_TLS)) {
		c->output_stalled = false;
		conn_resume_input(c);
	}
	if (c->state != CONN_CLOSED) {
		conn_maybe_fin(c);
		conn_update_reading(c);
	}
}

static void conn_write_cb(uv_write_t *req, int status)
{
	struct conn_write_owned *w = (struct conn_write_owned *)req;
	struct conn *c = w->conn;
	size_t len = w->len;
	free(w->data);
	free(w);
	conn_write_done(c, len, status);
}

/* Sends a malloc'd buffer (taking it): at once if the socket takes it all, else what is
 * left goes to libuv and is freed in the write callback. */
static void conn_send(struct conn *c, void *data, size_t len)
{
	if (c->state == CONN_CLOSED) {
		free(data);
		return;
	}
	/* Nothing queued: offer it to the socket now, so what the kernel takes at once is
	 * freed at once. Through uv_write it would wait for the next turn of the loop, and a
	 * relay moving many records in one turn (the gateway) would hold them all and make
	 * the heap grow and shrink on every turn. Errors are left to uv_write to report.
	 * Not while someone waits for a write to complete (a stalled dispatch, a drain
	 * callback): only the write callback wakes them. */
	if (c->write_queued == 0 && !c->output_stalled && c->drain_fn == NULL) {
		uv_buf_t now = uv_buf_init(data, (unsigned int)len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
		if (n > 0) {
			c->bytes_out += (uint64_t)n;
			if ((size_t)n == len) {
				free(data);
				return;
			}
			memmove(data, (char *)data + n, len - (size_t)n);
			len -= (size_t)n;
		}
	}
	struct conn_write_owned *w = xmalloc(sizeof(*w));
	w->conn = c;
	w->len = len;
	w->data = data;
	uv_buf_t b = uv_buf_init(data, (unsigned int)len);
	c->write_queued += len;
	int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
	if (r < 0) {
		c->write_queued -= len;
		free(data);
		free(w);
		log_event(LOGL_DEBUG, "session=%s event=write_failed error=%s", c->id,
		          uv_strerror(r));
		conn_finish_close(c);
	}
}

/* Moves TLS ciphertext waiting in the session onto the socket. */
static void conn_flush_tls(struct conn *c)
{
	size_t len;
	void *data;
	while (c->tls != NULL && (data = tls_session_take_output(c->tls, &len)) != NULL)
		conn_send(c, data, len);
}

static int conn_tls_sink(void *arg, const void *chunk, size_t len)
{
	struct conn *c = arg;
	return tls_session_write(c->tls, chunk, len) < 0 ? -EIO : 0;
}

/* Everything the protocol wrote since the last flush goes out as one write (one TLS
 * record when encrypted). Compressed output is flushed at the end of each batch, so no
 * reply waits in the compressor for the next one. */
static void conn_flush(struct conn *c)
{
	struct buf *out = &c->out;
	if (out->len > 0 && (c->state == CONN_PLAIN || c->state == CONN_TLS ||
	                     (c->state == CONN_CLOSING && !c->was_tls))) {
		if (c->tls != NULL) {
			int r = c->zpipe != NULL ? compress_pipe_write(c->zpipe, out->data,
			                                               out->len, conn_tls_sink, c)
			                         : tls_session_write(c->tls, out->data, out->len);
			if (r < 0) {
				buf_reset(out);
				conn_finish_close(c);
				return;
			}
		} else {
			void *data = xmalloc(out->len);
			memcpy(data, out->data, out->len);
			conn_send(c, data, out->len);
		}
	}
	buf_reset(out);
	if (out->cap > 4096)
		buf_free(out); /* idle connections keep no big buffers */
	conn_flush_tls(c);
	/* Everything was taken by the socket at once (conn_send): as after a completed
	 * write, an idle compressed session keeps no deflate state. */
	if (c->zpipe != NULL && c->write_queued == 0 && c->state != CONN_CLOSED)
		compress_pipe_idle(c->zpipe);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	if ((c->state != CONN_PLAIN && c->state != CONN_TLS) || c->proto_closed || len == 0 ||
	    c->out_shut)
		return;
	if (buf_append(&c->out, data, len) < 0)
		abort(); /* out.max is effectively unbounded; back-pressure bounds it */
	if (c->dispatching == 0)
		conn_flush(c);
}

/* ---- closing --------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	struct server *srv = c->server;
	linebuf_free(&c->in);
	buf_free(&c->out);
	if (c->zpipe != NULL) {
		compress_pipe_free(c->zpipe);
		free(c->zpipe);
	}
	free(c->identity);
	free(c->peer_name);
	free(c);
	server_conn_gone(srv);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles_open > 0 || c->holds > 0)
		return; /* the last conn_release frees it */
	conn_free(c);
}

/* Protocol callbacks run between conn_enter and conn_leave. A close requested inside one
 * frees the protocol state only after the callback has returned. */
static void conn_enter(struct conn *c)
{
	c->dispatching++;
}

static void conn_proto_close(struct conn *c);

static void conn_leave(struct conn *c)
{
	if (--c->dispatching == 0 && c->holds == 0 && c->proto_close_pending) {
		c->proto_close_pending = false;
		conn_proto_close(c);
	}
}

static void conn_proto_close(struct conn *c)
{
	if (c->dispatching > 0 || c->holds > 0) {
		c->proto_close_pending = c->sess != NULL;
		c->proto_closed = true;
		return;
	}
	if (c->sess != NULL) {
		c->proto_closed = true;
		c->proto->close(c->sess);
		c->sess = NULL;
	}
	c->proto_closed = true;
}

/* Closes the handles now; frees the conn in the last close callback. */
static void conn_finish_close(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	conn_proto_close(c);
	c->state = CONN_CLOSED;
	struct server *srv = c->server;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->n_conns--;
	c->listener->n_conns--;
	server_ip_release(srv, c->ip);
	if (c->authenticated)
		audit_logout(c, now_ms(c) - c->started_ms);
	log_event(LOGL_INFO,
	          "session=%s proto=%s event=disconnect ip=%s duration_ms=%llu bytes_in=%llu "
	          "bytes_out=%llu",
	          c->id, conn_proto_name(c), c->ip, (unsigned long long)(now_ms(c) - c->started_ms),
	          (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
	if (c->tls != NULL) {
		tls_session_free(c->tls);
		c->tls = NULL;
	}
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
		return;
	log_event(LOGL_DEBUG, "session=%s event=closing reason=%s", c->id, reason);
	if (c->state == CONN_TLS && c->tls != NULL && !c->out_shut) {
		/* Give the protocol's last words to TLS before close_notify. */
		conn_flush(c);
		tls_session_bye(c->tls);
	}
	c->state = CONN_CLOSING;
	conn_proto_close(c);
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	c->peer_eof = c->peer_eof || strcmp(reason, "peer_closed") == 0;
	conn_flush(c);
	if (c->write_queued == 0) {
		conn_linger(c);
		return;
	}
	conn_arm_timer(c);
}

/*
 * The last replies are written; now close without losing them. Closing a socket that
 * still has unread input makes the kernel send a reset, and a client that is still
 * sending (an over-long line, a pipelined burst) may then never read our error. So: send
 * FIN, discard whatever the peer still sends, and close at its EOF or after a short grace.
 */
static void conn_linger_cb(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	free(req);
	if (c->state != CONN_CLOSING)
		return; /* closed meanwhile: the handle close cancelled us */
	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) < 0) {
		conn_finish_close(c);
		return;
	}
	c->reading = true;
	uv_timer_start(&c->timer, conn_timer_cb, CONN_LINGER_MS, 0);
}

static void conn_linger(struct conn *c)
{
	if (c->fin_sent && !c->peer_eof && !c->lingering) {
		/* conn_shutdown_output sent the FIN already: only the draining is left. */
		if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) < 0) {
			conn_finish_close(c);
			return;
		}
		c->reading = true;
		c->lingering = true;
		uv_timer_start(&c->timer, conn_timer_cb, CONN_LINGER_MS, 0);
		return;
	}
	if (c->peer_eof || c->lingering || c->fin_sent) {
		if (!c->lingering)
			conn_finish_close(c);
		return;
	}
	uv_shutdown_t *req = xmalloc(sizeof(*req));
	req->data = c;
	if (uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_linger_cb) < 0) {
		free(req);
		conn_finish_close(c);
		return;
	}
	c->lingering = true;
	uv_timer_start(&c->timer, conn_timer_cb, CONN_LINGER_MS, 0);
}

/* ---- input ----------------------------------------------------------------------- */

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = h->data;
	size_t room = c->in.buf.max - c->in.buf.len;
	size_t n = READ_CHUNK;
	(void)suggested;
	if (c->state == CONN_PLAIN && room < n)
		n = room;
	*b = uv_buf_init(read_area, (unsigned int)n);
}

/* Output the peer has not taken yet: written in this dispatch, or queued on the socket. */
static size_t conn_pending(const struct conn *c)
{
	return c->write_queued + c->out.len;
}

static bool conn_can_dispatch(const struct conn *c)
{
	return (c->state == CONN_PLAIN || c->state == CONN_TLS) && !c->paused &&
	       !c->starttls_requested && c->sess != NULL;
}

static void conn_update_reading(struct conn *c)
{
	bool want = c->state != CONN_CLOSING && c->state != CONN_CLOSED && !c->paused &&
	            c->write_queued < WRITE_HIGH && c->in.buf.max - c->in.buf.len >= READ_CHUNK &&
	            !c->inflate_yielded && !c->in_eof;
	if (c->state == CONN_HANDSHAKE)
		want = true;
	if (want && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

static void conn_begin_tls(struct conn *c);

/* The line that turned compression on is consumed: whatever the peer sent after it was
 * compressed (RFC 4978 3), though it came in with the line. It goes to the inflater. */
static void conn_compress_take_input(struct conn *c)
{
	const char *data;
	c->compress_take_input = false;
	size_t n = linebuf_peek_raw(&c->in, &data, SIZE_MAX);
	if (n == 0)
		return;
	if (compress_pipe_feed(c->zpipe, data, n) < 0) {
		conn_close(c, "compress_overflow"); /* cannot happen: in_max covers the linebuf */
		return;
	}
	linebuf_consume_raw(&c->in, n);
}

/* Delivers buffered lines (and raw bytes) to the protocol while it may take them. */
static void conn_dispatch(struct conn *c)
{
	conn_enter(c);
	while (conn_can_dispatch(c)) {
		/* A peer that pipelines commands without reading their replies gets no more
		 * replies produced than WRITE_HIGH: the rest of its input waits (bounded by the
		 * line buffer) until it reads. conn_write_done dispatches again. */
		if (conn_pending(c) >= WRITE_HIGH) {
			c->output_stalled = true;
			break;
		}
		if (c->proto->raw != NULL) {
			const char *data;
			size_t n = linebuf_peek_raw(&c->in, &data, SIZE_MAX);
			if (n == 0)
				break;
			size_t took = c->proto->raw(c->sess, data, n);
			linebuf_consume_raw(&c->in, took < n ? took : n);
			if (took == 0)
				break; /* it waits for more input (or paused, or closed) */
			continue;
		}
		if (c->expect_bytes > 0) {
			const char *data;
			size_t max =
			    c->expect_bytes > SIZE_MAX ? SIZE_MAX : (size_t)c->expect_bytes;
			size_t n = linebuf_peek_raw(&c->in, &data, max);
			if (n == 0)
				break;
			c->expect_bytes -= n;
			bool last = c->expect_bytes == 0;
			/* The protocol may pause or close; the bytes stay valid until consumed. */
			if (c->proto->bytes != NULL)
				c->proto->bytes(c->sess, data, n, last);
			linebuf_consume_raw(&c->in, n);
			if (last)
				conn_apply_line_limit(c);
			continue;
		}
		char *line;
		size_t len;
		bool has_cr;
		int r = linebuf_next(&c->in, &line, &len, &has_cr);
		if (r == 0)
			break;
		if (r == -E2BIG) {
			c->proto->line_too_long(c->sess);
			continue;
		}
		c->in_line = true;
		c->proto->line(c->sess, line, len, has_cr);
		c->in_line = false;
		/* The line is consumed after the callback: it may have closed the conn, but
		 * the linebuf lives until the conn is freed, which is never inside a
		 * callback (uv_close defers it). */
		linebuf_consume_line(&c->in);
		if (c->compress_take_input)
			conn_compress_take_input(c);
	}
	/* Half-close: the peer's EOF comes after every byte it sent before it. */
	if (c->in_drained && !c->eof_told && conn_can_dispatch(c) && c->in.buf.len == 0 &&
	    c->proto->eof != NULL) {
		c->eof_told = true;
		c->proto->eof(c->sess);
	}
	conn_leave(c);
	if (c->starttls_requested && c->state == CONN_PLAIN) {
		conn_flush(c);
		conn_begin_tls(c);
		return;
	}
	if (c->state != CONN_CLOSED && c->dispatching == 0)
		conn_flush(c);
	if (c->in.buf.len == 0 && c->in.buf.cap > 4096)
		buf_free(&c->in.buf); /* idle connections keep no big buffers */
}

static void conn_pump_later(void *arg)
{
	struct conn *c = arg;
	c->inflate_yielded = false;
	if (!conn_release(c))
		return;
	conn_pump(c);
}

/* Moves decrypted bytes into the line buffer while it has room, dispatching as it goes. */
static void conn_pump(struct conn *c)
{
	size_t inflated = 0;
	for (;;) {
		conn_dispatch(c);
		if (c->state != CONN_TLS || c->paused || c->starttls_requested || c->output_stalled)
			break;
		size_t room = c->in.buf.max - c->in.buf.len;
		if (room == 0)
			break;
		if (room > sizeof(plain_area))
			room = sizeof(plain_area);
		if (c->zpipe != NULL) {
			if (inflated >= INFLATE_TURN) {
				/* Reading stops until the next turn goes on from here. */
				if (!c->inflate_yielded) {
					c->inflate_yielded = true;
					conn_hold(c);
					conn_after(c, 0, conn_pump_later, c);
				}
				break;
			}
			/* At most room bytes come out of the inflater per call, however little
			 * input they came from: the linebuf bounds them like any input. */
			ssize_t z = compress_pipe_read(c->zpipe, plain_area, room);
			if (z > 0) {
				inflated += (size_t)z;
				linebuf_feed(&c->in, plain_area, (size_t)z);
				continue;
			}
			if (z < 0) {
				log_event(
				    LOGL_INFO,
				    "session=%s proto=%s event=compress_error ip=%s reason=%s",
				    c->id, conn_proto_name(c), c->ip,
				    z == -EPIPE ? "stream_ended" : "bad_data");
				conn_close(c, "compress_error");
				return;
			}
		}
		const char *err = NULL;
		char *area = c->zpipe != NULL ? zin_area : plain_area;
		ssize_t n = tls_session_read(c->tls, area,
		                             c->zpipe != NULL ? sizeof(zin_area) : room, &err);
		if (n == 0 && c->in_eof && !c->in_drained) {
			/* The socket ended without close_notify and TLS holds nothing more. */
			c->in_drained = true;
			continue;
		}
		if (n == 0)
			break;
		if (n == TLS_EOF && c->proto->eof != NULL && c->sess != NULL) {
			if (c->in_drained)
				break;
			conn_peer_ended(c);
			c->in_drained = true;
			continue;
		}
		if (n == TLS_EOF) {
			conn_close(c, "tls_close_notify");
			return;
		}
		if (n < 0) {
			log_event(LOGL_INFO, "session=%s event=tls_error ip=%s reason=\"%s\"",
			          c->id, c->ip, err ? err : "read");
			conn_finish_close(c);
			return;
		}
		if (c->zpipe == NULL)
			linebuf_feed(&c->in, plain_area, (size_t)n);
		else if (compress_pipe_feed(c->zpipe, zin_area, (size_t)n) < 0) {
			conn_close(c, "compress_overflow"); /* cannot happen: fed only when empty */
			return;
		}
	}
	if (c->state != CONN_CLOSED) {
		conn_flush_tls(c);
		conn_update_reading(c);
	}
}

static void conn_open_proto(struct conn *c)
{
	conn_enter(c);
	c->sess = c->proto->open(c);
	conn_leave(c);
}

/* The certificate's identity and what it makes the peer, once per connection: every
 * later question (EXTERNAL, MAIL FROM, Received:) reads these. A certificate from
 * tls.peer_ca is a server's and never logs anyone in. */
static void conn_classify_peer(struct conn *c)
{
	size_t len = 0;
	const void *der = tls_session_peer_der(c->tls, &len);
	const char *err = NULL;
	char **names = NULL;
	size_t n_names = 0;
	char subj[256];

	if (der == NULL)
		return;
	int rc = cert_identity_from_der(der, len, &c->identity, &err);
	bool from_peer_ca = tls_session_peer_from_peer_ca(c->tls);
	struct conn_peer_facts f = {
	    .verified = true,
	    .user_identity = rc != -ENOENT,
	    .from_peer_ca = from_peer_ca,
	};
	if (!f.user_identity && cert_dns_names_from_der(der, len, &names, &n_names, NULL) == 0) {
		f.names = (const char *const *)names;
		f.n_names = n_names;
	}
	const char *name = NULL;
	c->peer_kind = conn_peer_decide(&f, c->server->cfg, c->listener->cfg, &name);
	c->peer_name = name != NULL ? xstrdup(name) : NULL;
	cert_names_free(names, n_names);
	const char *subject = tls_session_peer_subject(c->tls);
	subject = log_escape(subj, sizeof(subj), subject, strlen(subject));
	if (c->identity != NULL && from_peer_ca) {
		free(c->identity);
		c->identity = NULL;
		log_event(LOGL_INFO,
		          "session=%s event=cert_no_identity ip=%s serial=%s subject=\"%s\" "
		          "reason=\"issued by tls.peer_ca, which certifies servers\"",
		          c->id, c->ip, tls_session_peer_serial(c->tls), subject);
	} else if (c->identity == NULL && c->listener->cfg->protocol != CFG_PROTO_SMTP) {
		log_event(LOGL_INFO,
		          "session=%s event=cert_no_identity ip=%s serial=%s reason=\"%s\"", c->id,
		          c->ip, tls_session_peer_serial(c->tls),
		          err ? err : "no e-mail address in the certificate");
	}
	if (c->listener->cfg->protocol == CFG_PROTO_SMTP && c->peer_kind != CONN_PEER_USER)
		log_event(LOGL_INFO,
		          "session=%s proto=smtp event=peer_%s ip=%s name=%s serial=%s "
		          "subject=\"%s\"",
		          c->id, c->peer_kind == CONN_PEER_SERVER ? "server" : "not_listed", c->ip,
		          c->peer_name != NULL ? c->peer_name : "-",
		          tls_session_peer_serial(c->tls), subject);
}

static void conn_handshake(struct conn *c)
{
	const char *err = NULL;
	int r = tls_session_handshake(c->tls, &err);
	conn_flush_tls(c);
	if (r == 0)
		return;
	if (r < 0) {
		log_event(LOGL_INFO, "session=%s proto=%s event=tls_failed ip=%s reason=\"%s\"",
		          c->id, conn_proto_name(c), c->ip, err ? err : "handshake");
		metrics_inc(METRIC_TLS_HANDSHAKES, conn_proto_name(c), "failed", NULL);
		/* Let the alert reach the peer, then close. */
		conn_proto_close(c);
		c->state = CONN_CLOSING;
		if (c->write_queued == 0)
			conn_finish_close(c);
		else
			conn_arm_timer(c);
		return;
	}
	c->state = CONN_TLS;
	c->was_tls = true;
	/* GnuTLS sends its session tickets with its Finished, so nothing answers the client's
	 * Finished until the session speaks: the kernel would delay that ACK (40 ms), and a
	 * client with Nagle on holds its first request until it comes. A gateway, whose first
	 * bytes wait for the backend, showed it. Acknowledge now. */
	uv_os_fd_t fd;
	int one = 1;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	metrics_inc(METRIC_TLS_HANDSHAKES, conn_proto_name(c), "ok", NULL);
	const char *subject = tls_session_peer_subject(c->tls);
	const char *refused = tls_session_peer_error(c->tls);
	char subj[256], why[80];
	/* On an optional listener a refused certificate still gets a session (as if none
	 * was sent): the log must not say none was sent. */
	if (refused != NULL && strcmp(refused, "no certificate") == 0)
		refused = NULL;
	if (refused != NULL)
		snprintf(why, sizeof(why), " reason=\"%s\"", refused);
	log_event(LOGL_INFO,
	          "session=%s proto=%s event=tls_established ip=%s version=%s cipher=%s "
	          "resumed=%s client_cert=%s%s%s%s",
	          c->id, conn_proto_name(c), c->ip, tls_session_version(c->tls),
	          tls_session_cipher(c->tls), tls_session_resumed(c->tls) ? "yes" : "no",
	          tls_session_peer_verified(c->tls) ? "verified"
	          : refused != NULL                 ? "refused"
	                                            : "none",
	          refused != NULL ? why : "", subject ? " subject=" : "",
	          subject ? log_escape(subj, sizeof(subj), subject, strlen(subject)) : "");
	conn_classify_peer(c);
	conn_apply_line_limit(c);
	conn_arm_timer(c);
	if (c->sess == NULL) {
		conn_open_proto(c); /* implicit TLS: the protocol starts now */
	} else {
		conn_enter(c);
		c->proto->tls_ready(c->sess);
		conn_leave(c);
	}
	conn_pump(c);
}

static void conn_begin_tls(struct conn *c)
{
	c->starttls_requested = false;
	/* CVE-2011-0411: whatever arrived in plaintext after STARTTLS is dropped. */
	linebuf_discard(&c->in);
	c->expect_bytes = 0;
	c->tls = tls_session_new(server_tls(c->server), c->listener->cfg->client_certificate);
	c->state = CONN_HANDSHAKE;
	conn_arm_timer(c);
	conn_update_reading(c);
}

/* Half-close: the peer ended its side; input stops, output goes on. */
static void conn_peer_ended(struct conn *c)
{
	c->in_eof = true;
	c->peer_eof = true;
	conn_update_reading(c);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	if (nread == 0)
		return;
	if (nread == UV_EOF && c->state == CONN_TLS && c->proto->eof != NULL && c->sess != NULL &&
	    !c->in_eof) {
		conn_peer_ended(c);
		conn_pump(c);
		return;
	}
	if (nread < 0) {
		if (nread != UV_EOF)
			log_event(LOGL_DEBUG, "session=%s event=read_failed error=%s", c->id,
			          uv_strerror((int)nread));
		if (c->state == CONN_CLOSING)
			conn_finish_close(c);
		else
			conn_close(c, nread == UV_EOF ? "peer_closed" : "read_error");
		return;
	}
	c->bytes_in += (uint64_t)nread;
	switch (c->state) {
	case CONN_PLAIN:
		conn_arm_timer(c);
		linebuf_feed(&c->in, b->base, (size_t)nread);
		conn_dispatch(c);
		if (c->state == CONN_PLAIN)
			conn_update_reading(c);
		break;
	case CONN_HANDSHAKE:
		if (tls_session_feed(c->tls, b->base, (size_t)nread) < 0) {
			conn_finish_close(c);
			return;
		}
		conn_handshake(c);
		break;
	case CONN_TLS:
		conn_arm_timer(c);
		if (tls_session_feed(c->tls, b->base, (size_t)nread) < 0) {
			conn_finish_close(c);
			return;
		}
		conn_pump(c);
		break;
	case CONN_CLOSING:
	case CONN_CLOSED:
		break;
	}
}

/* ---- accept ---------------------------------------------------------------------- */

void conn_accepted(struct listener *l)
{
	struct server *srv = l->server;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->server = srv;
	c->listener = l;
	c->proto = l->proto;
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) < 0) {
		c->handles_open = 1;
		c->state = CONN_CLOSED;
		/* Not counted anywhere yet: free through a close callback of its own. */
		uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
		return;
	}
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->handles_open = 2;
	c->started_ms = uv_now(srv->loop);
	snprintf(c->id, sizeof(c->id), "%08llx", (unsigned long long)(srv->next_id++));

	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	c->ip[0] = '\0';
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
		else if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
	}
	uv_tcp_nodelay(&c->tcp, 1);
	buf_init(&c->out, (size_t)1 << 40);

	/* Linked in before the checks so that the close path is the same for all. */
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	l->n_conns++;
	linebuf_init(&c->in, srv->cfg->limits.line_length_preauth, READ_CHUNK);

	const char *refuse = NULL;
	bool ip_ok = server_ip_acquire(srv, c->ip);
	if (srv->stopping)
		refuse = "shutting_down";
	else if (srv->n_conns > srv->cfg->limits.connections)
		refuse = "too_many_connections";
	else if (l->cfg->max_connections && l->n_conns > l->cfg->max_connections)
		refuse = "listener_full";
	else if (!ip_ok)
		refuse = "too_many_connections_from_ip";
	log_event(refuse ? LOGL_WARN : LOGL_INFO,
	          "session=%s proto=%s event=connect ip=%s listener=%s:%u tls=%s%s%s", c->id,
	          conn_proto_name(c), c->ip, l->cfg->address, l->port,
	          l->cfg->tls == CFG_TLS_IMPLICIT ? "implicit" : "starttls",
	          refuse ? " refused=" : "", refuse ? refuse : "");
	metrics_inc(METRIC_CONNECTIONS, conn_proto_name(c), NULL, NULL);
	if (refuse != NULL) {
		c->state = CONN_CLOSING;
		conn_finish_close(c);
		return;
	}
	if (l->cfg->tls == CFG_TLS_IMPLICIT) {
		conn_begin_tls(c);
	} else {
		c->state = CONN_PLAIN;
		conn_arm_timer(c);
		conn_open_proto(c);
		conn_flush(c);
		if (c->state == CONN_PLAIN)
			conn_update_reading(c);
	}
}

void conn_shutdown_all(struct server *srv)
{
	struct conn *c = srv->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		if (c->state == CONN_HANDSHAKE) {
			conn_finish_close(c);
		} else if ((c->state == CONN_PLAIN || c->state == CONN_TLS) &&
		           (!c->paused || (c->proto->eof != NULL && c->holds == 0))) {
			/* A byte relay (a session with eof) paused by back-pressure is not in the
			 * middle of work: it would wait for its peer, not for the store. */
			if (c->sess != NULL && c->proto->shutdown != NULL) {
				conn_enter(c);
				c->proto->shutdown(c->sess, CONN_BYE_SHUTDOWN);
				conn_leave(c);
			}
			conn_close(c, "shutdown");
		}
		c = next;
	}
}

const char *conn_proto_name(const struct conn *c)
{
	return cfg_protocol_name(c->listener->cfg->protocol);
}

/* ---- the protocol's side --------------------------------------------------------- */

void conn_start_tls(struct conn *c)
{
	if (c->state == CONN_PLAIN && c->tls == NULL)
		c->starttls_requested = true;
}

int conn_compress_start(struct conn *c)
{
	if (c->zpipe != NULL)
		return -EALREADY;
	if (c->state != CONN_TLS || c->tls == NULL)
		return -ENOTSUP;
	/* The reply that accepts compression (already written) goes out as it is. */
	conn_flush(c);
	if (c->state != CONN_TLS)
		return -ENOTSUP;
	c->zpipe = xmalloc(sizeof(*c->zpipe));
	/* Held input: what came with the command line (at most the linebuf), then one TLS
	 * read at a time. */
	compress_pipe_init(c->zpipe, c->in.buf.max + READ_CHUNK);
	/* Inside the line callback the command's own line is still in the linebuf: what
	 * follows it moves once it is consumed. Anywhere else all of it follows. */
	if (c->in_line)
		c->compress_take_input = true;
	else
		conn_compress_take_input(c);
	log_event(LOGL_INFO, "session=%s proto=%s event=compress algorithm=deflate", c->id,
	          conn_proto_name(c));
	return 0;
}

void conn_set_authenticated(struct conn *c, const char *user)
{
	c->authenticated = true;
	snprintf(c->user, sizeof(c->user), "%s", user ? user : "");
	conn_apply_line_limit(c);
	conn_arm_timer(c);
}

void conn_pause(struct conn *c)
{
	c->paused = true;
	conn_update_reading(c);
}

void conn_resume(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	if (c->state != CONN_PLAIN && c->state != CONN_TLS)
		return;
	if (c->server->stopping) {
		conn_close(c, "shutdown");
		return;
	}
	if (c->dispatching > 0)
		return; /* the running dispatch loop picks the next line up */
	conn_resume_input(c);
}

static void conn_resume_input(struct conn *c)
{
	if (c->state == CONN_TLS)
		conn_pump(c);
	else if (c->state == CONN_PLAIN) {
		conn_dispatch(c);
		if (c->state == CONN_PLAIN)
			conn_update_reading(c);
	}
}

void conn_hold(struct conn *c)
{
	c->holds++;
}

bool conn_release(struct conn *c)
{
	c->holds--;
	bool alive = c->state == CONN_PLAIN || c->state == CONN_TLS || c->state == CONN_HANDSHAKE;
	if (c->holds > 0)
		return alive;
	if (c->proto_close_pending && c->dispatching == 0) {
		c->proto_close_pending = false;
		conn_proto_close(c);
	}
	if (c->state == CONN_CLOSED && c->handles_open == 0)
		conn_free(c);
	return alive;
}

void conn_step_begin(struct conn *c)
{
	conn_pause(c);
	conn_hold(c);
}

bool conn_step_end(struct conn *c, void (*fn)(void *sess, void *arg), void *arg)
{
	bool ran = false;
	if (conn_is_open(c) && c->sess != NULL) {
		/* The step's own pause ends here; if fn begins another step it pauses again,
		 * and then input must stay stopped. */
		c->paused = false;
		fn(c->sess, arg); /* held: a close inside waits for conn_release below */
		ran = true;
		if (!c->paused) {
			c->paused = true;
			conn_resume(c);
		}
	}
	conn_release(c);
	return ran;
}

void conn_delay(struct conn *c, unsigned ms, void (*fn)(void *sess))
{
	if (c->state != CONN_PLAIN && c->state != CONN_TLS)
		return;
	c->paused = true;
	conn_update_reading(c);
	c->delay_fn = fn;
	uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

void conn_when_drained(struct conn *c, size_t low, void (*fn)(void *arg), void *arg)
{
	if (c->state != CONN_PLAIN && c->state != CONN_TLS)
		return;
	if (conn_pending(c) <= low) {
		c->drain_fn = NULL;
		fn(arg);
		return;
	}
	c->drain_fn = fn;
	c->drain_arg = arg;
	c->drain_low = low;
}

size_t conn_pending_output(const struct conn *c)
{
	return conn_pending(c);
}

void conn_set_line_limit(struct conn *c, size_t limit)
{
	c->line_limit_override = limit;
	conn_apply_line_limit(c);
}

void conn_shutdown_output(struct conn *c)
{
	if (c->out_shut || (c->state != CONN_PLAIN && c->state != CONN_TLS))
		return;
	conn_flush(c);
	if (c->state != CONN_PLAIN && c->state != CONN_TLS)
		return;
	if (c->tls != NULL) {
		tls_session_bye(c->tls);
		conn_flush_tls(c);
	}
	c->out_shut = true;
	conn_maybe_fin(c);
}

void conn_set_idle_timeout(struct conn *c, unsigned secs)
{
	c->idle_override_s = secs;
	if (c->state == CONN_PLAIN || c->state == CONN_TLS)
		conn_arm_timer(c);
}

void conn_touch(struct conn *c)
{
	if (c->state == CONN_PLAIN || c->state == CONN_TLS)
		conn_arm_timer(c);
}
