/*
 * server/outconn.c against a peer on loopback run by the test on the same loop: refused
 * and timed-out connects, lines split across reads, over-long lines, the peer closing or
 * going silent, plaintext dropped at STARTTLS, back-pressure and its drained callback, and
 * the closed callback exactly once however the connection ends.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "server/outconn.h"
#include "server/tls_client.h"

#define GUARD_MS 10000 /* a case that takes longer is broken, not slow */

/* ----- The peer: accepts one connection, sends a script, reads or not ----- */

struct peer {
	uv_tcp_t listen;
	uv_tcp_t conn;
	uv_timer_t timer;
	struct sockaddr_in addr;
	const char *const *script; /* pieces sent one per tick, NULL-terminated */
	size_t step;
	unsigned tick_ms;
	bool close_after;  /* close the connection after the script */
	int read_after_ms; /* start reading this long after accept; <0 never */
	uint64_t received; /* bytes read */
	char got[256];     /* their start */
	bool accepted, conn_open, closing;
};

static uv_loop_t loop;
static uv_timer_t guard;
static bool guard_fired;

static void peer_write_cb(uv_write_t *req, int status)
{
	free(req);
}

static void peer_send(struct peer *p, const char *s)
{
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t b = uv_buf_init((char *)s, (unsigned)strlen(s));
	cr_assert_eq(uv_write(req, (uv_stream_t *)&p->conn, &b, 1, peer_write_cb), 0);
}

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static char buf[65536];
	*b = uv_buf_init(buf, sizeof(buf));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct peer *p = s->data;
	if (n <= 0)
		return;
	size_t have = p->received < sizeof(p->got) - 1 ? (size_t)p->received : sizeof(p->got) - 1;
	size_t take = (size_t)n < sizeof(p->got) - 1 - have ? (size_t)n : sizeof(p->got) - 1 - have;
	memcpy(p->got + have, b->base, take);
	p->received += (uint64_t)n;
}

static void peer_tick(uv_timer_t *t)
{
	struct peer *p = t->data;
	if (!p->conn_open)
		return;
	if (p->script != NULL && p->script[p->step] != NULL) {
		/* The close, if any, comes a tick after the last piece. */
		peer_send(p, p->script[p->step++]);
		return;
	}
	if (p->close_after && !p->closing) {
		p->closing = true;
		uv_close((uv_handle_t *)&p->conn, NULL);
		p->conn_open = false;
	}
}

static void peer_start_reading(uv_timer_t *t)
{
	struct peer *p = t->data;
	if (p->conn_open)
		uv_read_start((uv_stream_t *)&p->conn, peer_alloc, peer_read);
	uv_timer_start(&p->timer, peer_tick, 0, p->tick_ms);
}

static void peer_accept(uv_stream_t *s, int status)
{
	struct peer *p = s->data;
	cr_assert_eq(status, 0);
	cr_assert(!p->accepted, "one connection per case");
	uv_tcp_init(&loop, &p->conn);
	p->conn.data = p;
	cr_assert_eq(uv_accept(s, (uv_stream_t *)&p->conn), 0);
	p->accepted = p->conn_open = true;
	if (p->read_after_ms > 0) {
		uv_timer_start(&p->timer, peer_start_reading, (uint64_t)p->read_after_ms, 0);
		return;
	}
	if (p->read_after_ms == 0)
		uv_read_start((uv_stream_t *)&p->conn, peer_alloc, peer_read);
	uv_timer_start(&p->timer, peer_tick, 0, p->tick_ms);
}

static void peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	p->tick_ms = 20;
	uv_tcp_init(&loop, &p->listen);
	uv_timer_init(&loop, &p->timer);
	p->listen.data = p->timer.data = p;
	uv_ip4_addr("127.0.0.1", 0, &p->addr);
	cr_assert_eq(uv_tcp_bind(&p->listen, (const struct sockaddr *)&p->addr, 0), 0);
	int len = sizeof(p->addr);
	uv_tcp_getsockname(&p->listen, (struct sockaddr *)&p->addr, &len);
	cr_assert_eq(uv_listen((uv_stream_t *)&p->listen, 4, peer_accept), 0);
}

static void peer_close(struct peer *p)
{
	if (!uv_is_closing((uv_handle_t *)&p->listen))
		uv_close((uv_handle_t *)&p->listen, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->timer))
		uv_close((uv_handle_t *)&p->timer, NULL);
	if (p->conn_open && !p->closing) {
		p->closing = true;
		p->conn_open = false;
		uv_close((uv_handle_t *)&p->conn, NULL);
	}
}

/* ----- The client: records what outconn reports ----- */

struct rec {
	struct outconn *oc;
	struct peer *peer; /* closed with the client, or NULL */
	char lines[4096];  /* "line|line|" */
	unsigned n_lines;
	unsigned failed;
	enum outconn_failure what;
	char reason[256];
	unsigned closed, drained, tls_ready;
	size_t queued_at_drain;
	const char *starttls_at; /* start TLS at this line */
	struct tls_client_ctx *tctx;
	const char *close_at; /* close at this line */
};

static void rec_line(void *ctx, const char *line, size_t len)
{
	struct rec *r = ctx;
	size_t have = strlen(r->lines);
	snprintf(r->lines + have, sizeof(r->lines) - have, "%.*s|", (int)len, line);
	r->n_lines++;
	if (r->starttls_at != NULL && strlen(r->starttls_at) == len &&
	    memcmp(line, r->starttls_at, len) == 0)
		outconn_start_tls(r->oc, r->tctx, "localhost", true);
	if (r->close_at != NULL && strlen(r->close_at) == len &&
	    memcmp(line, r->close_at, len) == 0)
		outconn_close(r->oc);
}

static void rec_tls_ready(void *ctx)
{
	struct rec *r = ctx;
	r->tls_ready++;
}

static void rec_drained(void *ctx)
{
	struct rec *r = ctx;
	r->drained++;
	r->queued_at_drain = outconn_queued(r->oc);
	outconn_close(r->oc);
}

static void rec_failed(void *ctx, enum outconn_failure what, const char *reason)
{
	struct rec *r = ctx;
	r->failed++;
	r->what = what;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	outconn_close(r->oc);
	outconn_close(r->oc); /* a second close changes nothing */
}

static void rec_closed(void *ctx)
{
	struct rec *r = ctx;
	r->closed++;
	r->oc = NULL;
	if (r->peer != NULL)
		peer_close(r->peer);
	uv_close((uv_handle_t *)&guard, NULL);
}

static const struct outconn_ops rec_ops = {
    .line = rec_line,
    .tls_ready = rec_tls_ready,
    .drained = rec_drained,
    .failed = rec_failed,
    .closed = rec_closed,
};

static void guard_cb(uv_timer_t *t)
{
	struct rec *r = t->data;
	guard_fired = true;
	if (r->oc != NULL)
		outconn_close(r->oc);
}

static void rec_start(struct rec *r, struct peer *p, const struct sockaddr *addr,
                      const struct outconn_limits *lim)
{
	r->peer = p;
	uv_update_time(&loop); /* timers count from now, not from the last loop turn */
	r->oc = outconn_new(&loop, &rec_ops, r, lim);
	uv_timer_init(&loop, &guard);
	guard.data = r;
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, GUARD_MS, 0);
	outconn_connect(r->oc, addr);
}

/* Runs the loop until every handle is closed, then checks what every case needs. */
static void run_case(struct rec *r)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(!guard_fired, "the case did not finish in %d ms", GUARD_MS);
	cr_assert_eq(r->closed, 1, "closed ran %u times", r->closed);
	cr_assert(r->failed <= 1);
}

static const struct outconn_limits default_lim = {
    .line_max = 64,
    .connect_ms = 5000,
    .idle_ms = 5000,
};

static void setup(void)
{
	cr_assert_eq(uv_loop_init(&loop), 0);
}

static void teardown(void)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

TestSuite(outconn, .init = setup, .fini = teardown);

/* ----- Connecting ----- */

Test(outconn, connect_refused)
{
	/* A port that was just free: bind, note it, close. */
	struct peer p;
	peer_init(&p);
	struct sockaddr_in addr = p.addr;
	peer_close(&p);
	uv_run(&loop, UV_RUN_DEFAULT);
	struct rec r = {0};
	rec_start(&r, NULL, (const struct sockaddr *)&addr, &default_lim);
	run_case(&r);
	cr_assert_eq(r.failed, 1);
	cr_assert_eq(r.what, OUTCONN_CONNECT);
	cr_assert_str_eq(r.reason, uv_strerror(UV_ECONNREFUSED));
	cr_assert_eq(r.n_lines, 0);
}

Test(outconn, connect_times_out)
{
	/* A listener whose accept queue is full drops further SYNs (Linux), so a connect to
	 * it neither succeeds nor fails until the client gives up: no routing involved. */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(lfd >= 0);
	struct sockaddr_in addr = {.sin_family = AF_INET};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	socklen_t alen = sizeof(addr);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&addr, &alen), 0);
	cr_assert_eq(listen(lfd, 0), 0);
	int fill[4];
	for (size_t i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		cr_assert(fill[i] >= 0);
		int rc = connect(fill[i], (struct sockaddr *)&addr, sizeof(addr));
		cr_assert(rc == 0 || errno == EINPROGRESS);
	}
	usleep(100 * 1000); /* the fillers' handshakes complete and fill the queue */
	struct outconn_limits lim = default_lim;
	lim.connect_ms = 300;
	struct rec r = {0};
	uint64_t t0 = uv_hrtime();
	rec_start(&r, NULL, (const struct sockaddr *)&addr, &lim);
	run_case(&r);
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	for (size_t i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	if (r.failed == 0 || r.what != OUTCONN_CONNECT || strcmp(r.reason, "timed out") != 0)
		cr_skip_test("this kernel answered the connect (%u failures, \"%s\"): no timeout "
		             "to observe",
		             r.failed, r.reason);
	cr_assert(ms >= 250, "timed out after %llu ms", (unsigned long long)ms);
}

/* ----- Reading ----- */

Test(outconn, lines_split_across_reads)
{
	static const char *const script[] = {
	    "220 hel", "lo there\r", "\n250-a\r\n", "250", " b\n", "\r\n", "x\r\r\n", NULL,
	};
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.close_after = true;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	/* A bare LF ends a line; only one CR before the LF is taken off. */
	cr_assert_str_eq(r.lines, "220 hello there|250-a|250 b||x\r|");
	cr_assert_eq(r.what, OUTCONN_LOST);
	cr_assert_str_eq(r.reason, "connection closed by the peer");
}

Test(outconn, many_short_lines_in_one_read_exceed_no_limit)
{
	/* 40 lines of 10 bytes in one write: 400 bytes, more than line_max (64) in all, but
	 * each line is short. */
	static char burst[512];
	burst[0] = '\0';
	for (int i = 0; i < 40; i++)
		snprintf(burst + strlen(burst), sizeof(burst) - strlen(burst), "250-%05d\r\n", i);
	static const char *script[2];
	script[0] = burst;
	script[1] = NULL;
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.close_after = true;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_eq(r.n_lines, 40);
	cr_assert_eq(r.what, OUTCONN_LOST);
}

Test(outconn, line_at_the_limit_passes_one_over_fails)
{
	/* line_max counts the line end: 62 bytes + CRLF fit in 64, 63 + LF too, 64 do not. */
	static char ok1[80], ok2[80], bad[80];
	memset(ok1, 'a', 62);
	memcpy(ok1 + 62, "\r\n", 3);
	memset(ok2, 'b', 63);
	memcpy(ok2 + 63, "\n", 2);
	memset(bad, 'c', 64);
	memcpy(bad + 64, "\n", 2);
	static const char *script[4];
	script[0] = ok1;
	script[1] = ok2;
	script[2] = bad;
	script[3] = NULL;
	struct peer p;
	peer_init(&p);
	p.script = script;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_eq(r.n_lines, 2, "%s", r.lines);
	cr_assert_eq(r.failed, 1);
	cr_assert_eq(r.what, OUTCONN_ERROR);
	cr_assert_str_eq(r.reason, "reply line too long");
}

Test(outconn, over_long_line_in_pieces_fails)
{
	static const char *const script[] = {"0123456789012345678901234567890123456789",
	                                     "0123456789012345678901234567890123456789", NULL};
	struct peer p;
	peer_init(&p);
	p.script = script;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_eq(r.n_lines, 0);
	cr_assert_eq(r.what, OUTCONN_ERROR);
	cr_assert_str_eq(r.reason, "reply line too long");
}

Test(outconn, closing_inside_the_line_callback_stops_the_lines)
{
	static const char *const script[] = {"one\r\ntwo\r\nthree\r\n", NULL};
	struct peer p;
	peer_init(&p);
	p.script = script;
	struct rec r = {.close_at = "two"};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_str_eq(r.lines, "one|two|");
	cr_assert_eq(r.failed, 0);
}

Test(outconn, peer_closing)
{
	static const char *const script[] = {"220 hi\r\n", NULL};
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.close_after = true;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_str_eq(r.lines, "220 hi|");
	cr_assert_eq(r.failed, 1);
	cr_assert_eq(r.what, OUTCONN_LOST);
	cr_assert_str_eq(r.reason, "connection closed by the peer");
}

Test(outconn, silent_peer_times_out)
{
	static const char *const script[] = {"220 hi\r\n", NULL};
	struct peer p;
	peer_init(&p);
	p.script = script;
	struct outconn_limits lim = default_lim;
	lim.idle_ms = 200;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &lim);
	run_case(&r);
	cr_assert_str_eq(r.lines, "220 hi|");
	cr_assert_eq(r.what, OUTCONN_LOST);
	cr_assert_str_eq(r.reason, "timeout waiting for the peer");
}

/* ----- Writing ----- */

Test(outconn, writes_reach_the_peer)
{
	static const char *const script[] = {"220 hi\r\n", NULL};
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.tick_ms = 200; /* closes 200 ms after the line: it has read by then */
	p.close_after = true;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	outconn_write(r.oc, "EHLO a\r\n", 8); /* queued before the connect completes */
	run_case(&r);
	cr_assert_str_eq(p.got, "EHLO a\r\n");
}

Test(outconn, back_pressure_then_drained)
{
	/* The peer reads only after 300 ms: meanwhile the socket buffers fill and the rest
	 * waits in outconn; drained runs once the queue is down to the mark. */
	struct peer p;
	peer_init(&p);
	p.read_after_ms = 300;
	struct rec r = {0};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	size_t chunk = 1024 * 1024;
	char *data = malloc(chunk);
	memset(data, 'x', chunk);
	size_t total = 0;
	for (int i = 0; i < 32; i++) {
		outconn_write(r.oc, data, chunk);
		total += chunk;
	}
	free(data);
	cr_assert_eq(outconn_queued(r.oc), total, "not connected yet: everything is queued");
	outconn_when_drained(r.oc, 4 * chunk);
	run_case(&r);
	cr_assert_eq(r.drained, 1);
	cr_assert_leq(r.queued_at_drain, 4 * chunk);
	cr_assert_eq(r.failed, 0);
}

/* ----- STARTTLS ----- */

Test(outconn, starttls_drops_plaintext_already_received)
{
	/* An attacker's line after the go-ahead, in the same segment (CVE-2011-0411): never
	 * delivered. The peer then closes instead of answering the ClientHello. */
	static const char *const script[] = {"220 go ahead\r\n250 INJECTED\r\n", NULL};
	const char *err = NULL;
	struct tls_client_ctx *tctx = NULL;
	cr_assert_eq(tls_client_ctx_new(NULL, NULL, NULL, &tctx, &err), 0, "%s", err);
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.read_after_ms = 0;
	p.tick_ms = 200; /* the close comes 200 ms after the script */
	p.close_after = true;
	struct rec r = {.starttls_at = "220 go ahead", .tctx = tctx};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	run_case(&r);
	cr_assert_str_eq(r.lines, "220 go ahead|");
	cr_assert_eq(r.tls_ready, 0);
	cr_assert(p.received > 0, "the ClientHello was sent");
	cr_assert_eq((unsigned char)p.got[0], 0x16, "a TLS handshake record");
	cr_assert_eq(r.what, OUTCONN_LOST);
	cr_assert_str_eq(r.reason, "connection closed by the peer");
	tls_client_ctx_free(tctx);
}

Test(outconn, close_with_writes_pending_calls_closed_once)
{
	struct peer p;
	peer_init(&p);
	p.read_after_ms = -1;
	static const char *const script[] = {"220 hi\r\n", NULL};
	p.script = script;
	struct rec r = {.close_at = "220 hi"};
	rec_start(&r, &p, (const struct sockaddr *)&p.addr, &default_lim);
	size_t chunk = 4 * 1024 * 1024;
	char *data = calloc(1, chunk);
	for (int i = 0; i < 8; i++)
		outconn_write(r.oc, data, chunk);
	free(data);
	run_case(&r);
	cr_assert_eq(r.failed, 0);
	cr_assert_eq(r.drained, 0);
}

/* ----- A byte stream (the gateway's backend) ----- */

struct stream_rec {
	struct rec base; /* first: the shared callbacks take it */
	char data[256];
	size_t len;
	unsigned connected, eofs;
};

static void stream_data(void *ctx, const char *data, size_t len)
{
	struct stream_rec *s = ctx;
	size_t take = len < sizeof(s->data) - 1 - s->len ? len : sizeof(s->data) - 1 - s->len;
	memcpy(s->data + s->len, data, take);
	s->len += take;
}

static void stream_connected(void *ctx)
{
	struct stream_rec *s = ctx;
	s->connected++;
}

static void stream_eof(void *ctx)
{
	struct stream_rec *s = ctx;
	s->eofs++;
	/* Half-close: writing still works after the peer's EOF; then our FIN, then close. */
	outconn_write(s->base.oc, "late\r\n", 6);
	outconn_shutdown(s->base.oc);
	outconn_close(s->base.oc);
}

static const struct outconn_ops stream_ops = {
    .data = stream_data,
    .connected = stream_connected,
    .eof = stream_eof,
    .failed = rec_failed,
    .closed = rec_closed,
};

Test(outconn, byte_stream_then_eof_is_not_a_failure)
{
	/* No line splitting and no line limit (the pieces are longer than line_max), and the
	 * peer's close is an EOF event, not a failure. */
	static const char *const script[] = {
	    "no line end here, and longer than the limit of 64 bytes of a line....",
	    "\r\n+",
	    NULL,
	};
	struct peer p;
	peer_init(&p);
	p.script = script;
	p.close_after = true;
	struct stream_rec s = {0};
	struct outconn_limits lim = default_lim;
	lim.idle_ms = 0; /* the owner keeps time */
	s.base.peer = &p;
	uv_update_time(&loop);
	s.base.oc = outconn_new(&loop, &stream_ops, &s, &lim);
	uv_timer_init(&loop, &guard);
	guard.data = &s.base;
	guard_fired = false;
	uv_timer_start(&guard, guard_cb, GUARD_MS, 0);
	outconn_connect(s.base.oc, (const struct sockaddr *)&p.addr);
	run_case(&s.base);
	cr_assert_eq(s.connected, 1);
	cr_assert_eq(s.eofs, 1);
	cr_assert_eq(s.base.failed, 0);
	cr_assert_str_eq(s.data, "no line end here, and longer than the limit of 64 bytes of a "
	                         "line....\r\n+");
}
