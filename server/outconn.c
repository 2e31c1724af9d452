/*
 * An outbound connection (outconn.h). One TCP handle and one timer, closed together; the
 * timer is the connect timeout until the connection is up, then the wait for the peer,
 * restarted by every read. TLS is memory-driven (tls_client.h): ciphertext read is fed to
 * the session, ciphertext it produces is written like plaintext before it.
 */
#include "server/outconn.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/tls_client.h"

struct outconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	struct outconn_ops ops;
	void *ctx;
	struct outconn_limits lim;
	struct tls_client *tls;
	struct buf in;       /* the plaintext of a line not yet complete */
	size_t write_queued; /* bytes handed to uv_write, not yet completed */
	size_t drain_low;
	unsigned handles; /* close callbacks owed */
	bool drain_armed;
	bool connected;
	bool reading;      /* uv_read_start is in force */
	bool read_stopped; /* the owner asked outconn_read_stop */
	bool shut_wanted;  /* outconn_shutdown ran: FIN once the queue is empty */
	bool shut_sent;
	bool eof; /* the peer's EOF was reported */
	bool handshaking;
	bool delivering; /* the line callback runs: in is borrowed by it */
	bool dead;       /* failed ran */
	bool closing;    /* outconn_close ran */
};

/* Whether the connection may still read, write and call back. */
static bool oc_live(const struct outconn *oc)
{
	return !oc->dead && !oc->closing;
}

static void oc_fail(struct outconn *oc, enum outconn_failure what, const char *reason)
{
	if (!oc_live(oc))
		return;
	oc->dead = true;
	uv_timer_stop(&oc->timer);
	if (oc->connected)
		uv_read_stop((uv_stream_t *)&oc->tcp);
	oc->ops.failed(oc->ctx, what, reason);
}

/* ----- Writing ----- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	free(req);
	(void)status; /* a failure shows as a failed write or read if it matters */
}

/* The FIN goes after the last queued write (libuv orders it after them anyway; waiting
 * keeps write_queued meaningful until then). */
static void maybe_shutdown(struct outconn *oc)
{
	if (!oc->shut_wanted || oc->shut_sent || oc->write_queued > 0 || !oc->connected ||
	    !oc_live(oc))
		return;
	uv_shutdown_t *req = xmalloc(sizeof(*req));
	oc->shut_sent = true;
	if (uv_shutdown(req, (uv_stream_t *)&oc->tcp, shutdown_cb) < 0)
		free(req);
}

static void write_cb(uv_write_t *req, int status)
{
	struct outconn *oc = req->data;
	uv_buf_t *b = (uv_buf_t *)(req + 1);
	oc->write_queued -= b->len;
	free(b->base);
	free(req);
	if (status < 0) {
		oc_fail(oc, OUTCONN_LOST, "connection lost while sending");
		return;
	}
	if (oc->drain_armed && oc_live(oc) && oc->write_queued <= oc->drain_low) {
		oc->drain_armed = false;
		oc->ops.drained(oc->ctx);
	}
	maybe_shutdown(oc);
}

/* Sends bytes as they are (ciphertext, or plaintext before TLS); takes ownership of data. */
static void send_raw(struct outconn *oc, void *data, size_t len)
{
	if (len == 0 || !oc_live(oc)) {
		free(data);
		return;
	}
	/* Nothing queued: what the socket takes at once is freed at once (conn.c's
	 * conn_send does the same; a relay would otherwise hold a turn's worth of buffers). */
	if (oc->write_queued == 0 && oc->connected && !oc->drain_armed) {
		uv_buf_t now = uv_buf_init(data, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&oc->tcp, &now, 1);
		if (n > 0) {
			if ((size_t)n == len) {
				free(data);
				maybe_shutdown(oc);
				return;
			}
			memmove(data, (char *)data + n, len - (size_t)n);
			len -= (size_t)n;
		}
	}
	uv_write_t *req = xmalloc(sizeof(*req) + sizeof(uv_buf_t));
	uv_buf_t *b = (uv_buf_t *)(req + 1);
	*b = uv_buf_init(data, (unsigned)len);
	req->data = oc;
	oc->write_queued += len;
	if (uv_write(req, (uv_stream_t *)&oc->tcp, b, 1, write_cb) < 0) {
		oc->write_queued -= len;
		free(data);
		free(req);
		oc_fail(oc, OUTCONN_LOST, "connection lost while sending");
	}
}

static void flush_tls(struct outconn *oc)
{
	size_t len;
	void *out = tls_client_take_output(oc->tls, &len);
	if (out != NULL)
		send_raw(oc, out, len);
}

void outconn_write(struct outconn *oc, const void *data, size_t len)
{
	if (len == 0 || !oc_live(oc) || oc->shut_wanted)
		return;
	if (oc->tls != NULL) {
		if (tls_client_write(oc->tls, data, len) < 0) {
			oc_fail(oc, OUTCONN_ERROR, "TLS write failed");
			return;
		}
		flush_tls(oc);
		return;
	}
	void *copy = xmalloc(len);
	memcpy(copy, data, len);
	send_raw(oc, copy, len);
}

size_t outconn_queued(const struct outconn *oc)
{
	return oc->write_queued;
}

void outconn_when_drained(struct outconn *oc, size_t low)
{
	oc->drain_low = low;
	oc->drain_armed = true;
}

/* ----- Reading ----- */

/*
 * Splits plaintext into lines, at most lim.line_max bytes each, without copying more than
 * one incomplete line: the input goes into the buffer in pieces that fit. Stops when the
 * owner closes, the connection fails, or TLS starts (the rest is dropped).
 */
static void on_plaintext(struct outconn *oc, const char *data, size_t len)
{
	bool was_plain = oc->tls == NULL;
	if (oc->ops.data != NULL) {
		oc->ops.data(oc->ctx, data, len);
		return;
	}
	while (len > 0 && oc_live(oc)) {
		size_t room = oc->lim.line_max - oc->in.len;
		size_t take = len < room ? len : room;
		buf_append(&oc->in, data, take);
		data += take;
		len -= take;
		size_t off = 0;
		char *nl;
		while (oc_live(oc) && (nl = memchr(oc->in.data + off, '\n', oc->in.len - off))) {
			size_t n = (size_t)(nl - (oc->in.data + off));
			size_t l = n > 0 && oc->in.data[off + n - 1] == '\r' ? n - 1 : n;
			oc->delivering = true;
			oc->ops.line(oc->ctx, oc->in.data + off, l);
			oc->delivering = false;
			if (was_plain && oc->tls != NULL) {
				buf_reset(&oc->in);
				return;
			}
			off += n + 1;
		}
		if (!oc_live(oc))
			return;
		buf_consume(&oc->in, off);
		if (oc->in.len >= oc->lim.line_max) {
			oc_fail(oc, OUTCONN_ERROR, "reply line too long");
			return;
		}
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	/* read_cb consumes every byte before it returns: one buffer serves all. */
	static char rbuf[16384];
	*b = uv_buf_init(rbuf, sizeof(rbuf));
}

/* Decrypted input, after the handshake. */
static void read_tls(struct outconn *oc)
{
	char plain[16384];
	const char *err = NULL;
	for (;;) {
		ssize_t n = tls_client_read(oc->tls, plain, sizeof(plain), &err);
		if (n > 0) {
			on_plaintext(oc, plain, (size_t)n);
			if (!oc_live(oc))
				return;
			continue;
		}
		if (n == 0)
			return;
		if (n == TLS_CLIENT_EOF)
			oc_fail(oc, OUTCONN_LOST, "connection closed by the peer");
		else
			oc_fail(oc, OUTCONN_ERROR, err);
		return;
	}
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct outconn *oc = s->data;
	if (nread == 0 || !oc_live(oc))
		return;
	if (nread < 0) {
		if (nread == UV_EOF && oc->ops.eof != NULL && oc->tls == NULL) {
			uv_read_stop(s);
			oc->reading = false;
			oc->eof = true;
			oc->ops.eof(oc->ctx);
			return;
		}
		oc_fail(oc, OUTCONN_LOST,
		        nread == UV_EOF ? "connection closed by the peer" : "connection lost");
		return;
	}
	if (oc->lim.idle_ms > 0)
		uv_timer_again(&oc->timer);
	if (oc->tls == NULL) {
		on_plaintext(oc, b->base, (size_t)nread);
		return;
	}
	if (tls_client_feed(oc->tls, b->base, (size_t)nread) < 0) {
		oc_fail(oc, OUTCONN_ERROR, "TLS input overflow");
		return;
	}
	if (oc->handshaking) {
		const char *err = NULL;
		int rc = tls_client_handshake(oc->tls, &err);
		flush_tls(oc);
		if (rc < 0) {
			oc_fail(oc, OUTCONN_ERROR, err);
			return;
		}
		if (rc == 0)
			return;
		oc->handshaking = false;
		oc->ops.tls_ready(oc->ctx);
		if (!oc_live(oc))
			return;
	}
	read_tls(oc);
}

void outconn_start_tls(struct outconn *oc, struct tls_client_ctx *ctx, const char *host,
                       bool verify)
{
	if (!oc_live(oc) || oc->tls != NULL)
		return;
	/* Whatever came with or after the "go ahead" is dropped (CVE-2011-0411's client
	 * side); inside the line callback on_plaintext drops it once the callback returns. */
	if (!oc->delivering)
		buf_reset(&oc->in);
	oc->tls = tls_client_new(ctx, host, verify);
	oc->handshaking = true;
	const char *err = NULL;
	if (tls_client_handshake(oc->tls, &err) < 0) {
		oc_fail(oc, OUTCONN_ERROR, err);
		return;
	}
	flush_tls(oc);
}

const struct tls_client *outconn_tls(const struct outconn *oc)
{
	return oc->tls;
}

/* ----- Connecting and closing ----- */

static void timeout_cb(uv_timer_t *t)
{
	struct outconn *oc = t->data;
	if (!oc->connected)
		oc_fail(oc, OUTCONN_CONNECT, "timed out");
	else
		oc_fail(oc, OUTCONN_LOST, "timeout waiting for the peer");
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct outconn *oc = req->data;
	if (!oc_live(oc))
		return;
	if (status < 0) {
		oc_fail(oc, OUTCONN_CONNECT, uv_strerror(status));
		return;
	}
	oc->connected = true;
	if (oc->lim.idle_ms > 0)
		uv_timer_start(&oc->timer, timeout_cb, oc->lim.idle_ms, oc->lim.idle_ms);
	else
		uv_timer_stop(&oc->timer);
	uv_tcp_nodelay(&oc->tcp, 1);
	if (oc->ops.connected != NULL) {
		oc->ops.connected(oc->ctx);
		if (!oc_live(oc))
			return;
	}
	if (!oc->read_stopped && uv_read_start((uv_stream_t *)&oc->tcp, alloc_cb, read_cb) == 0)
		oc->reading = true;
	maybe_shutdown(oc);
}

void outconn_read_stop(struct outconn *oc)
{
	oc->read_stopped = true;
	if (oc->reading && oc_live(oc)) {
		uv_read_stop((uv_stream_t *)&oc->tcp);
		oc->reading = false;
	}
}

void outconn_read_start(struct outconn *oc)
{
	oc->read_stopped = false;
	if (!oc->reading && oc->connected && !oc->eof && oc_live(oc) &&
	    uv_read_start((uv_stream_t *)&oc->tcp, alloc_cb, read_cb) == 0)
		oc->reading = true;
}

void outconn_shutdown(struct outconn *oc)
{
	oc->shut_wanted = true;
	maybe_shutdown(oc);
}

struct outconn *outconn_new(uv_loop_t *loop, const struct outconn_ops *ops, void *ctx,
                            const struct outconn_limits *lim)
{
	struct outconn *oc = xcalloc(1, sizeof(*oc));
	oc->ops = *ops;
	oc->ctx = ctx;
	oc->lim = *lim;
	buf_init(&oc->in, lim->line_max);
	uv_tcp_init(loop, &oc->tcp);
	uv_timer_init(loop, &oc->timer);
	oc->tcp.data = oc->timer.data = oc->connect.data = oc;
	oc->handles = 2;
	return oc;
}

void outconn_connect(struct outconn *oc, const struct sockaddr *addr)
{
	if (!oc_live(oc))
		return;
	uv_timer_start(&oc->timer, timeout_cb, oc->lim.connect_ms, oc->lim.idle_ms);
	int rc = uv_tcp_connect(&oc->connect, &oc->tcp, addr, connect_cb);
	if (rc < 0)
		oc_fail(oc, OUTCONN_CONNECT, uv_strerror(rc));
}

static void handle_closed(uv_handle_t *h)
{
	struct outconn *oc = h->data;
	if (--oc->handles > 0)
		return;
	void (*closed)(void *) = oc->ops.closed;
	void *ctx = oc->ctx;
	tls_client_free(oc->tls);
	buf_free(&oc->in);
	free(oc);
	closed(ctx);
}

void outconn_close(struct outconn *oc)
{
	if (oc->closing)
		return;
	oc->closing = true;
	uv_close((uv_handle_t *)&oc->timer, handle_closed);
	uv_close((uv_handle_t *)&oc->tcp, handle_closed);
}
