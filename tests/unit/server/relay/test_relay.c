/*
 * server/relay/relay.c, the runner, end to end on one loop: a real store in a temporary
 * folder (its completions posted to the loop, as in the server), a message queued with
 * store_deliver, a route to a fake SMTP peer on loopback (tls: none, allowed to loopback),
 * and the runner started from the loop, the configuration and the services. A case ends
 * when the store says what the case expects of the queue, then the runner stops and every
 * handle closes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "tests/unit/support/store_test_util.h"
#include "config/config.h"
#include "server/poster.h"
#include "server/relay/relay.h"
#include "server/services.h"
#include "storage/store.h"

#define GUARD_MS 20000 /* a case that takes longer is broken, not slow */
#define POLL_MS  50

/* ----- A fake SMTP peer: one connection at a time, replies from a small table ----- */

struct smtp_peer {
	uv_tcp_t listen;
	uv_tcp_t conn;
	struct sockaddr_in addr;
	bool conn_open;
	bool closing_after_write; /* QUIT was answered */
	const char *rcpt_reply;   /* "250 ok" unless set */
	unsigned pause_data_ms;   /* after DATA, stop reading this long (a slow peer) */
	uv_timer_t resume;
	char *in; /* received, not yet handled */
	size_t in_len, in_cap;
	bool in_data;
	char *msg; /* the last message's content as received (dot-stuffed) */
	size_t msg_len;
	unsigned connections, messages, quits;
	char mail_from[256];
	char rcpt_to[256];
};

static uv_loop_t loop;
static struct poster *poster;
static struct store_fixture fx;
static struct services services;
static struct config cfg;
static struct cfg_route route;
static struct relay *relay;
static struct smtp_peer peer;
static uv_timer_t guard, poll_timer;
static bool guard_fired, finished, listing;

static void peer_write_cb(uv_write_t *req, int status)
{
	free(req->data);
	free(req);
	if (peer.closing_after_write && peer.conn_open) {
		peer.conn_open = false;
		uv_close((uv_handle_t *)&peer.conn, NULL);
	}
}

static void peer_say(const char *s)
{
	uv_write_t *req = malloc(sizeof(*req));
	size_t len = strlen(s);
	req->data = malloc(len);
	memcpy(req->data, s, len);
	uv_buf_t b = uv_buf_init(req->data, (unsigned)len);
	cr_assert_eq(uv_write(req, (uv_stream_t *)&peer.conn, &b, 1, peer_write_cb), 0);
}

static void peer_consume(size_t n)
{
	memmove(peer.in, peer.in + n, peer.in_len - n);
	peer.in_len -= n;
}

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void peer_resume(uv_timer_t *t)
{
	if (peer.conn_open)
		uv_read_start((uv_stream_t *)&peer.conn, peer_alloc, peer_read);
}

static void peer_command(const char *line, size_t len)
{
	char cmd[5] = {0};
	memcpy(cmd, line, len < 4 ? len : 4);
	if (strcasecmp(cmd, "EHLO") == 0) {
		peer_say("250-peer.test\r\n250 8BITMIME\r\n");
	} else if (strcasecmp(cmd, "MAIL") == 0) {
		snprintf(peer.mail_from, sizeof(peer.mail_from), "%.*s", (int)len, line);
		peer_say("250 ok\r\n");
	} else if (strcasecmp(cmd, "RCPT") == 0) {
		snprintf(peer.rcpt_to, sizeof(peer.rcpt_to), "%.*s", (int)len, line);
		peer_say(peer.rcpt_reply != NULL ? peer.rcpt_reply : "250 ok\r\n");
	} else if (strcasecmp(cmd, "DATA") == 0) {
		peer.in_data = true;
		peer_say("354 go ahead\r\n");
		if (peer.pause_data_ms > 0) {
			uv_read_stop((uv_stream_t *)&peer.conn);
			uv_timer_start(&peer.resume, peer_resume, peer.pause_data_ms, 0);
		}
	} else if (strcasecmp(cmd, "QUIT") == 0) {
		peer.quits++;
		peer.closing_after_write = true;
		peer_say("221 bye\r\n");
	} else if (strcasecmp(cmd, "RSET") == 0) {
		peer_say("250 ok\r\n");
	} else {
		peer_say("500 what\r\n");
	}
}

static void peer_handle(void)
{
	for (;;) {
		if (peer.in_data) {
			/* The content ends with CRLF "." CRLF; the first CRLF is its own. */
			char *end = memmem(peer.in, peer.in_len, "\r\n.\r\n", 5);
			if (end == NULL)
				return;
			size_t n = (size_t)(end - peer.in) + 2;
			free(peer.msg);
			peer.msg = malloc(n + 1);
			memcpy(peer.msg, peer.in, n);
			peer.msg[n] = '\0';
			peer.msg_len = n;
			peer_consume(n + 3);
			peer.in_data = false;
			peer.messages++;
			peer_say("250 queued\r\n");
			continue;
		}
		char *nl = memmem(peer.in, peer.in_len, "\r\n", 2);
		if (nl == NULL)
			return;
		size_t n = (size_t)(nl - peer.in);
		peer_command(peer.in, n);
		peer_consume(n + 2);
	}
}

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	if (peer.in_cap - peer.in_len < 65536) {
		peer.in_cap = peer.in_cap * 2 + 65536;
		peer.in = realloc(peer.in, peer.in_cap);
	}
	*b = uv_buf_init(peer.in + peer.in_len, 65536);
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	if (n < 0) {
		if (peer.conn_open) {
			peer.conn_open = false;
			uv_close((uv_handle_t *)&peer.conn, NULL);
		}
		return;
	}
	peer.in_len += (size_t)n;
	peer_handle();
}

static void peer_accept(uv_stream_t *s, int status)
{
	cr_assert_eq(status, 0);
	cr_assert(!peer.conn_open, "one connection at a time");
	uv_tcp_init(&loop, &peer.conn);
	cr_assert_eq(uv_accept(s, (uv_stream_t *)&peer.conn), 0);
	peer.conn_open = true;
	peer.closing_after_write = false;
	peer.in_len = 0;
	peer.in_data = false;
	peer.connections++;
	uv_read_start((uv_stream_t *)&peer.conn, peer_alloc, peer_read);
	peer_say("220 peer.test ESMTP\r\n");
}

static void peer_start(void)
{
	uv_tcp_init(&loop, &peer.listen);
	uv_timer_init(&loop, &peer.resume);
	uv_ip4_addr("127.0.0.1", 0, &peer.addr);
	cr_assert_eq(uv_tcp_bind(&peer.listen, (const struct sockaddr *)&peer.addr, 0), 0);
	int len = sizeof(peer.addr);
	uv_tcp_getsockname(&peer.listen, (struct sockaddr *)&peer.addr, &len);
	cr_assert_eq(uv_listen((uv_stream_t *)&peer.listen, 4, peer_accept), 0);
}

/* ----- The case's loop ----- */

/* What the queue must look like for the case to end: 1 done, 0 not yet. */
typedef int queue_check_fn(const struct store_queue_entries *res);
static queue_check_fn *check;

static void finish(void)
{
	if (finished)
		return;
	finished = true;
	relay_stop(relay);
	relay = NULL;
	uv_close((uv_handle_t *)&peer.listen, NULL);
	uv_close((uv_handle_t *)&peer.resume, NULL);
	if (peer.conn_open) {
		peer.conn_open = false;
		uv_close((uv_handle_t *)&peer.conn, NULL);
	}
	uv_close((uv_handle_t *)&guard, NULL);
	uv_close((uv_handle_t *)&poll_timer, NULL);
}

static void list_cb(void *ctx, int rc, struct store_queue_entries *res)
{
	listing = false;
	cr_assert_eq(rc, 0);
	if (!finished && check(res) == 1)
		finish();
}

static void poll_cb(uv_timer_t *t)
{
	if (finished || listing)
		return;
	listing = true;
	cr_assert_eq(store_queue_list(fx.s, list_cb, NULL), 0);
}

static void guard_cb(uv_timer_t *t)
{
	guard_fired = true;
	finish();
}

static void post(void *ctx, void (*fn)(void *arg), void *arg)
{
	poster_post(ctx, fn, arg);
}

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	memset(&peer, 0, sizeof(peer));
	finished = guard_fired = listing = false;
	cr_assert_eq(uv_loop_init(&loop), 0);
	poster = poster_new(&loop);
	static struct store_poster sp;
	sp = (struct store_poster){.post = post, .ctx = poster};
	fx_dir(&fx);
	struct store_options opt = {.poster = &sp};
	cr_assert_eq(fx_open_opts(&fx, &opt), 0);
	peer_start();

	static char *domains[] = {"local.test"};
	route = (struct cfg_route){
	    .domain = "peer.test",
	    .host = "127.0.0.1",
	    .port = ntohs(peer.addr.sin_port),
	    .tls = CFG_ROUTE_TLS_NONE,
	};
	cfg = (struct config){
	    .hostname = "relay.test",
	    .domains = domains,
	    .n_domains = 1,
	    .relay =
	        {
	            .routes = &route,
	            .n_routes = 1,
	            .retry_initial = 300,
	            .retry_max = 14400,
	            .give_up = 432000,
	            .mx_port = 25,
	        },
	    .limits = {.message_size = 52428800},
	};
	services = (struct services){.cfg = &cfg, .store = fx.s};
	uv_timer_init(&loop, &guard);
	uv_timer_init(&loop, &poll_timer);
}

/* The loop has nothing left but the poster's wake-up handle. */
static void only_poster_left(uv_handle_t *h, void *arg)
{
	if (h->type != UV_ASYNC && !uv_is_closing(h))
		(*(unsigned *)arg)++;
}

static void teardown(void)
{
	/* The runner stopped in finish(); let its handles close, then the store, whose last
	 * completions run through the poster. */
	for (;;) {
		unsigned left = 0;
		uv_walk(&loop, only_poster_left, &left);
		if (left == 0)
			break;
		uv_run(&loop, UV_RUN_ONCE);
	}
	store_close(fx.s);
	poster_close(poster);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
	free(peer.in);
	free(peer.msg);
	fx_rmdir(&fx);
}

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 120);

static void deliver_cb(void *ctx, int rc, struct store_delivery_result *res)
{
	int *done = ctx;
	cr_assert_eq(rc, 0, "store_deliver: %s", store_strerror(rc));
	cr_assert_gt(res->queue_id != 0 ? res->queue_id : res->content_id, 0);
	*done = 1;
}

/* Queues msg from sender to rcpt, runs the loop until it is stored, starts the runner and
 * runs the loop until check says the case is over. */
static void queue_and_run(const char *msg, size_t len, const char *sender, const char *rcpt,
                          queue_check_fn *fn)
{
	struct store_relay_rcpt rr = {.address = rcpt};
	struct store_deliver_req req = {
	    .data = msg,
	    .size = len,
	    .sender = sender,
	    .relay = &rr,
	    .n_relay = 1,
	};
	int done = 0;
	cr_assert_eq(store_deliver(fx.s, &req, deliver_cb, &done), 0);
	while (!done)
		uv_run(&loop, UV_RUN_ONCE);
	check = fn;
	cr_assert_eq(relay_start(&loop, &cfg, &services, &relay), 0);
	cr_assert_not_null(relay);
	uv_timer_start(&guard, guard_cb, GUARD_MS, 0);
	uv_timer_start(&poll_timer, poll_cb, POLL_MS, POLL_MS);
	while (!finished)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert(!guard_fired, "the case did not finish in %d ms", GUARD_MS);
}

/* Undoes dot-stuffing (RFC 5321 4.5.2) of content that ends with CRLF. */
static size_t unstuff(char *s, size_t len)
{
	size_t o = 0;
	bool bol = true;
	for (size_t i = 0; i < len; i++) {
		if (bol && s[i] == '.') {
			bol = false;
			continue;
		}
		bol = s[i] == '\n';
		s[o++] = s[i];
	}
	return o;
}

/* ----- Cases ----- */

static int queue_empty(const struct store_queue_entries *res)
{
	return res->n == 0 && peer.quits > 0;
}

Test(relay, delivers_a_queued_message_and_the_entry_goes)
{
	static const char msg[] = "From: a@local.test\r\n"
	                          "To: b@peer.test\r\n"
	                          "Subject: hello\r\n"
	                          "\r\n"
	                          "first line\r\n"
	                          ".a line that starts with a dot\r\n"
	                          "last line\r\n";
	queue_and_run(msg, sizeof(msg) - 1, "a@local.test", "b@peer.test", queue_empty);
	cr_assert_eq(peer.connections, 1);
	cr_assert_eq(peer.messages, 1);
	/* BODY=8BITMIME: the peer says 8BITMIME. */
	cr_assert(strncmp(peer.mail_from, "MAIL FROM:<a@local.test>", 24) == 0, "%s",
	          peer.mail_from);
	cr_assert_str_eq(peer.rcpt_to, "RCPT TO:<b@peer.test>");
	cr_assert(strstr(peer.msg, "\r\n..a line that starts with a dot\r\n") != NULL,
	          "dot-stuffed: %s", peer.msg);
	peer.msg_len = unstuff(peer.msg, peer.msg_len);
	cr_assert_eq(peer.msg_len, sizeof(msg) - 1);
	cr_assert(memcmp(peer.msg, msg, peer.msg_len) == 0);
}

Test(relay, streams_a_large_message_in_chunks)
{
	/* More than the runner's first read and its write limit, to a peer that stops
	 * reading for a while: read from the store in chunks, each only after the output
	 * drained (more than the kernel's socket buffers hold waits in the runner). */
	peer.pause_data_ms = 500;
	size_t cap = 12 * 1024 * 1024 + 4096;
	char *msg = malloc(cap);
	size_t len = (size_t)snprintf(msg, cap, "Subject: big\r\n\r\n");
	for (unsigned i = 0; len + 80 < cap - 4096; i++)
		len += (size_t)snprintf(msg + len, cap - len, "%sline %08u of a large message\r\n",
		                        i % 7 == 0 ? "." : "", i);
	queue_and_run(msg, len, "a@local.test", "b@peer.test", queue_empty);
	cr_assert_eq(peer.messages, 1);
	peer.msg_len = unstuff(peer.msg, peer.msg_len);
	cr_assert_eq(peer.msg_len, len);
	cr_assert(memcmp(peer.msg, msg, len) == 0);
	free(msg);
}

static int deferred(const struct store_queue_entries *res)
{
	if (res->n != 1 || res->v[0].n_rcpts != 1)
		return 0;
	const struct store_queue_rcpt *r = &res->v[0].rcpts[0];
	if (r->status != 0 || r->attempts != 1)
		return 0;
	cr_assert_not_null(r->last_error);
	cr_assert(strstr(r->last_error, "451 4.3.0 try later") != NULL, "%s", r->last_error);
	return 1;
}

Test(relay, a_refused_recipient_is_deferred_with_the_reply)
{
	static const char msg[] = "Subject: later\r\n\r\nbody\r\n";
	peer.rcpt_reply = "451 4.3.0 try later\r\n";
	queue_and_run(msg, sizeof(msg) - 1, "a@local.test", "b@peer.test", deferred);
	cr_assert_eq(peer.connections, 1);
	cr_assert_eq(peer.messages, 0);
}
