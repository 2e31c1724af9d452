/*
 * A fake struct conn for protocol session tests: every function of server/conn.h, with no
 * socket, no libuv and no GnuTLS. Output is recorded in a buffer; start_tls, close,
 * pause/resume and login are recorded; the test toggles TLS and drives the handler's
 * callbacks through the fake_conn_* functions below (declared again in each test).
 *
 * Unlike the real conn, the fake keeps delivering lines after conn_start_tls until the
 * test calls fake_conn_tls_ready: the session itself must ignore them (defence in depth
 * against STARTTLS command injection, CVE-2011-0411). After conn_close, nothing is
 * delivered, as with the real conn.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/conn.h"

struct conn {
	const struct proto_handler *h;
	void *sess;
	const struct config *cfg;
	const struct cfg_listener *listener;
	struct buf out;
	bool tls;
	unsigned start_tls_calls;
	bool closed;
	char *close_reason;
	unsigned paused;
	unsigned holds;
	char *user;
	uint64_t expect_bytes;
	size_t line_limit;
	uint64_t now;
};

/* The fake's own interface (the tests declare these too). */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line_n(struct conn *c, const char *line, size_t len);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_too_long(struct conn *c);
void fake_conn_tls_ready(struct conn *c);
void fake_conn_timeout(struct conn *c);
void fake_conn_shutdown(struct conn *c);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
unsigned fake_conn_start_tls_calls(const struct conn *c);
bool fake_conn_closed(const struct conn *c);
const char *fake_conn_close_reason(const struct conn *c);
void fake_conn_free(struct conn *c);

struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->h = h;
	c->cfg = cfg;
	c->listener = l;
	c->tls = tls;
	buf_init(&c->out, 1u << 20);
	c->sess = h->open(c);
	return c;
}

void fake_conn_line_n(struct conn *c, const char *line, size_t len)
{
	if (c->closed)
		return;
	/* The real conn hands over a NUL-terminated, writable copy. */
	char *copy = xmalloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\0';
	c->h->line(c->sess, copy, len, true);
	free(copy);
}

void fake_conn_line(struct conn *c, const char *line)
{
	fake_conn_line_n(c, line, strlen(line));
}

void fake_conn_too_long(struct conn *c)
{
	if (!c->closed)
		c->h->line_too_long(c->sess);
}

void fake_conn_tls_ready(struct conn *c)
{
	c->tls = true;
	if (!c->closed)
		c->h->tls_ready(c->sess);
}

void fake_conn_timeout(struct conn *c)
{
	if (c->closed)
		return;
	if (c->h->timeout != NULL)
		c->h->timeout(c->sess);
	conn_close(c, "timeout");
}

void fake_conn_shutdown(struct conn *c)
{
	if (c->closed)
		return;
	if (c->h->shutdown != NULL)
		c->h->shutdown(c->sess);
	conn_close(c, "shutdown");
}

const char *fake_conn_output(struct conn *c)
{
	return c->out.data != NULL ? c->out.data : "";
}

void fake_conn_clear_output(struct conn *c)
{
	buf_reset(&c->out);
}

unsigned fake_conn_start_tls_calls(const struct conn *c)
{
	return c->start_tls_calls;
}

bool fake_conn_closed(const struct conn *c)
{
	return c->closed;
}

const char *fake_conn_close_reason(const struct conn *c)
{
	return c->close_reason;
}

void fake_conn_free(struct conn *c)
{
	c->h->close(c->sess);
	buf_free(&c->out);
	free(c->close_reason);
	free(c->user);
	free(c);
}

/* ---- server/conn.h ---- */

void conn_write(struct conn *c, const void *data, size_t len)
{
	if (buf_append(&c->out, data, len) < 0)
		abort();
}

void conn_write_str(struct conn *c, const char *s)
{
	conn_write(c, s, strlen(s));
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(&c->out, fmt, ap) < 0)
		abort();
	va_end(ap);
}

void conn_start_tls(struct conn *c)
{
	c->start_tls_calls++;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls;
}

struct tls_session *conn_tls(struct conn *c)
{
	(void)c;
	return NULL;
}

void conn_close(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = true;
	c->close_reason = xstrdup(reason != NULL ? reason : "");
}

void conn_set_authenticated(struct conn *c, const char *user)
{
	free(c->user);
	c->user = xstrdup(user);
}

void conn_pause(struct conn *c)
{
	c->paused++;
}

void conn_resume(struct conn *c)
{
	if (c->paused > 0)
		c->paused--;
}

void conn_expect_bytes(struct conn *c, uint64_t n)
{
	c->expect_bytes = n;
}

void conn_set_line_limit(struct conn *c, size_t limit)
{
	c->line_limit = limit;
}

void conn_hold(struct conn *c)
{
	c->holds++;
}

bool conn_release(struct conn *c)
{
	if (c->holds > 0)
		c->holds--;
	return !c->closed;
}

void conn_delay(struct conn *c, unsigned ms, void (*fn)(void *sess))
{
	c->now += ms;
	fn(c->sess);
}

struct services *conn_services(struct conn *c)
{
	(void)c;
	return NULL;
}

uint64_t conn_now_ms(const struct conn *c)
{
	return c->now;
}

const char *conn_cert_identity(struct conn *c)
{
	(void)c;
	return NULL;
}

const char *conn_user(const struct conn *c)
{
	return c->user;
}

const struct cfg_listener *conn_listener(const struct conn *c)
{
	return c->listener;
}

const struct config *conn_config(const struct conn *c)
{
	return c->cfg;
}

const char *conn_id(const struct conn *c)
{
	(void)c;
	return "fake0001";
}

const char *conn_peer_ip(const struct conn *c)
{
	(void)c;
	return "127.0.0.1";
}
