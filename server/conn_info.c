/*
 * What a session may ask of its connection (conn.h): who is on the other side, with which
 * certificate, through which server and loop; and conn_after, a timer that is not the
 * connection's own; conn_write_str and conn_printf over conn_write. conn.c drives the
 * connection itself.
 */
#include "server/conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/server_private.h"
#include "server/tls.h"

struct conn_later {
	uv_timer_t timer;
	void (*fn)(void *arg);
	void *arg;
};

static void conn_later_free_cb(uv_handle_t *h)
{
	free(h->data);
}

static void conn_later_cb(uv_timer_t *t)
{
	struct conn_later *l = t->data;
	l->fn(l->arg);
	uv_close((uv_handle_t *)&l->timer, conn_later_free_cb);
}

void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg)
{
	struct conn_later *l = xcalloc(1, sizeof(*l));
	l->fn = fn;
	l->arg = arg;
	uv_timer_init(c->server->loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, conn_later_cb, ms, 0);
}

bool conn_is_open(const struct conn *c)
{
	return c->state == CONN_PLAIN || c->state == CONN_TLS;
}

struct services *conn_services(struct conn *c)
{
	return c->server->services;
}

uint64_t conn_now_ms(const struct conn *c)
{
	return uv_now(c->server->loop);
}

const char *conn_cert_serial(const struct conn *c)
{
	if (c->state != CONN_TLS || c->tls == NULL || !tls_session_peer_verified(c->tls))
		return "-";
	const char *serial = tls_session_peer_serial(c->tls);
	return serial != NULL ? serial : "-";
}

const char *conn_cert_identity(struct conn *c)
{
	return c->state == CONN_TLS ? c->identity : NULL;
}

enum conn_peer_kind conn_peer_kind(const struct conn *c)
{
	return c->state == CONN_TLS ? c->peer_kind : CONN_PEER_NONE;
}

const char *conn_peer_name(const struct conn *c)
{
	return c->state == CONN_TLS ? c->peer_name : NULL;
}

const char *conn_user(const struct conn *c)
{
	return c->authenticated ? c->user : NULL;
}

void conn_expect_bytes(struct conn *c, uint64_t n)
{
	c->expect_bytes = n;
}

const struct config *conn_config(const struct conn *c)
{
	return c->server->cfg;
}

const char *conn_id(const struct conn *c)
{
	return c->id;
}

const char *conn_peer_ip(const struct conn *c)
{
	return c->ip;
}

struct uv_loop_s *conn_loop(const struct conn *c)
{
	return c->server->loop;
}

int conn_sockaddrs(struct conn *c, struct sockaddr_storage *peer_r,
                   struct sockaddr_storage *local_r)
{
	int n = sizeof(*peer_r);
	int r = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)peer_r, &n);
	if (r == 0) {
		n = sizeof(*local_r);
		r = uv_tcp_getsockname(&c->tcp, (struct sockaddr *)local_r, &n);
	}
	return r;
}

void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		conn_write(c, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	conn_write(c, big, (size_t)n);
	free(big);
}

bool conn_is_compressed(const struct conn *c)
{
	return c->zpipe != NULL;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls != NULL && c->state == CONN_TLS;
}

struct tls_session *conn_tls(struct conn *c)
{
	return c->state == CONN_TLS ? c->tls : NULL;
}
