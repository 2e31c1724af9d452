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
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/xmalloc.h"
#include "server/auth/cert_login.h"
#include "server/auth/login.h"
#include "server/auth/scram.h"
#include "server/conn.h"
#include "server/notify.h"

struct conn {
	const struct proto_handler *h;
	void *sess;
	const struct config *cfg;
	const struct cfg_listener *listener;
	struct buf out;
	bool tls;
	unsigned start_tls_calls;
	bool compressed;
	size_t compressed_at; /* output length when conn_compress_start ran */
	bool closed;
	char *close_reason;
	unsigned paused;
	unsigned holds;
	char *user;
	uint64_t expect_bytes;
	size_t line_limit;
	uint64_t now;
	struct services *services;     /* fake_conn_set_services; NULL by default */
	const char *cert_identity;     /* fake_conn_set_cert_identity; borrowed */
	enum conn_peer_kind peer_kind; /* fake_conn_set_peer; */
	const char *peer_name;         /* borrowed */
	/* A login answered "on the loop": after the current callback returns. */
	auth_login_cb *login_cb;
	/* A SCRAM step answered likewise (the scripted exchange below). */
	struct scram_auth *scram_pending;
	struct buf raw_in; /* byte-stream input not yet taken by proto_handler.raw */
};

/* The fake's own interface (the tests declare these too). */
struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls);
void fake_conn_line_n(struct conn *c, const char *line, size_t len);
void fake_conn_line_cr(struct conn *c, const char *line, size_t len, bool has_cr);
void fake_conn_line(struct conn *c, const char *line);
void fake_conn_too_long(struct conn *c);
void fake_conn_tls_ready(struct conn *c);
void fake_conn_timeout(struct conn *c);
void fake_conn_shutdown(struct conn *c);
/* The server ends the session for why (revoked certificate, stale CRL, stop). */
void fake_conn_goodbye(struct conn *c, enum conn_goodbye why);
const char *fake_conn_output(struct conn *c);
void fake_conn_clear_output(struct conn *c);
unsigned fake_conn_start_tls_calls(const struct conn *c);
/* Whether conn_compress_start ran, and how much output was written before it (that part
 * goes out uncompressed). */
bool fake_conn_compressed(const struct conn *c, size_t *at_r);
bool fake_conn_closed(const struct conn *c);
const char *fake_conn_close_reason(const struct conn *c);
void fake_conn_free(struct conn *c);
/* Byte-stream input (proto_handler.raw), offered as the real conn does. */
void fake_conn_raw(struct conn *c, const void *data, size_t len);

/* What the next fake_conn_open's peer certificate makes it (fake_conn_next_peer). */
static enum conn_peer_kind fake_next_peer_kind;
static const char *fake_next_peer_name;

struct conn *fake_conn_open(const struct proto_handler *h, const struct config *cfg,
                            const struct cfg_listener *l, bool tls)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->peer_kind = fake_next_peer_kind;
	c->peer_name = fake_next_peer_name;
	fake_next_peer_kind = CONN_PEER_NONE;
	fake_next_peer_name = NULL;

	c->h = h;
	c->cfg = cfg;
	c->listener = l;
	c->tls = tls;
	buf_init(&c->out, 1u << 20);
	buf_init(&c->raw_in, 1u << 20);
	c->sess = h->open(c);
	return c;
}

static void fake_scram_answer(struct conn *c);

void fake_conn_line_n(struct conn *c, const char *line, size_t len)
{
	fake_conn_line_cr(c, line, len, true);
}

/* A line that ended in CRLF (has_cr) or a bare LF. */
void fake_conn_line_cr(struct conn *c, const char *line, size_t len, bool has_cr)
{
	if (c->closed)
		return;
	/* The real conn hands over a NUL-terminated, writable copy. */
	char *copy = xmalloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\0';
	c->h->line(c->sess, copy, len, has_cr);
	free(copy);
	/* The loop turns: a pending login completes, as the real one does after its hash. */
	if (c->login_cb != NULL && !c->closed) {
		auth_login_cb *cb = c->login_cb;
		struct auth_login_result r;
		memset(&r, 0, sizeof(r));
		r.status = AUTH_LOGIN_FAILED;
		c->login_cb = NULL;
		cb(c->sess, &r);
	}
	if (c->scram_pending != NULL && !c->closed)
		fake_scram_answer(c);
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

void fake_conn_goodbye(struct conn *c, enum conn_goodbye why)
{
	if (c->closed)
		return;
	if (c->h->shutdown != NULL)
		c->h->shutdown(c->sess, why);
	conn_close(c, "shutdown");
}

/* Like conn.c's dispatch: what is not taken stays and is offered again while the session
 * takes something and is not paused; nothing after a close. */
void fake_conn_raw(struct conn *c, const void *data, size_t len)
{
	if (buf_append(&c->raw_in, data, len) < 0)
		abort();
	while (!c->closed && c->paused == 0 && c->raw_in.len > 0) {
		size_t took = c->h->raw(c->sess, c->raw_in.data, c->raw_in.len);
		buf_consume(&c->raw_in, took < c->raw_in.len ? took : c->raw_in.len);
		if (took == 0)
			break;
	}
}

void fake_conn_shutdown(struct conn *c)
{
	fake_conn_goodbye(c, CONN_BYE_SHUTDOWN);
}

const char *fake_conn_output(struct conn *c)
{
	return c->out.data != NULL ? c->out.data : "";
}

void fake_conn_clear_output(struct conn *c)
{
	buf_reset(&c->out);
}

bool fake_conn_compressed(const struct conn *c, size_t *at_r)
{
	if (at_r != NULL)
		*at_r = c->compressed_at;
	return c->compressed;
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
	buf_free(&c->raw_in);
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

int conn_compress_start(struct conn *c)
{
	if (c->compressed)
		return -EALREADY;
	if (!c->tls)
		return -ENOTSUP;
	c->compressed = true;
	c->compressed_at = c->out.len;
	return 0;
}

bool conn_is_compressed(const struct conn *c)
{
	return c->compressed;
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

void conn_step_begin(struct conn *c)
{
	conn_pause(c);
	conn_hold(c);
}

bool conn_step_end(struct conn *c, void (*fn)(void *sess, void *arg), void *arg)
{
	bool open = !c->closed && c->sess != NULL;
	if (open) {
		conn_resume(c);
		fn(c->sess, arg);
	}
	conn_release(c);
	return open;
}

bool conn_is_open(const struct conn *c)
{
	return !c->closed;
}

/* Nothing linked with the session tests waits on the loop, except the certificate road
 * where a test links it (pop3_fakes.c runs it through its poster). */
void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg)
    __attribute__((weak));
void conn_after(struct conn *c, unsigned ms, void (*fn)(void *arg), void *arg)
{
	(void)c, (void)ms, (void)fn, (void)arg;
	fprintf(stderr, "conn_fake: %s reached\n", __func__);
	abort();
}

void conn_delay(struct conn *c, unsigned ms, void (*fn)(void *sess))
{
	c->now += ms;
	fn(c->sess);
}

struct services *conn_services(struct conn *c)
{
	return c->services;
}

uint64_t conn_now_ms(const struct conn *c)
{
	return c->now;
}

const char *conn_cert_serial(const struct conn *c)
{
	return c->cert_identity != NULL ? "5ea1" : "-";
}

const char *conn_cert_identity(struct conn *c)
{
	return c->cert_identity;
}

enum conn_peer_kind conn_peer_kind(const struct conn *c)
{
	return c->peer_kind;
}

const char *conn_peer_name(const struct conn *c)
{
	return c->peer_name;
}

const char *conn_user(const struct conn *c)
{
	return c->user;
}

const char *conn_proto_name(const struct conn *c)
{
	const struct cfg_listener *l = conn_listener(c);
	return l != NULL ? cfg_protocol_name(l->protocol) : "smtp";
}

const struct cfg_listener *conn_listener(const struct conn *c)
{
	return c->listener;
}

const struct config *conn_config(const struct conn *c)
{
	return c->cfg;
}

bool conn_listeners_bound(const struct conn *c)
{
	(void)c;
	return true;
}

uint16_t conn_listener_port(const struct conn *c, const struct cfg_listener *l)
{
	(void)c;
	return l->port;
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

void *fake_conn_sess(struct conn *c);
void *fake_conn_sess(struct conn *c)
{
	return c->sess;
}

/*
 * ---- what the sessions reach beyond conn.h ----
 * proto_lib's IMAP engine and POP3 maildrop call the notifier and the login step; the
 * session tests link proto_lib without sealmaild, so those are faked here. The store is
 * never faked: tests link the real one and, when a session reaches it, give the session
 * a store on the mem backend (mem_store.h) through fake_conn_set_services. The notifier's
 * stubs abort: a session reaches them only with services whose notify is set, and tests
 * that set it link server/notify.c. auth_login answers "failed", as for a wrong password,
 * once the line callback that started it has returned (never inside it: the real one is
 * asynchronous). All are weak: a test that links the real notifier or its own auth_login
 * (smtp_fakes.c, or pop3_fakes.c's, which asks the store) gets those instead.
 */
#define FAKE_WEAK __attribute__((weak))

FAKE_WEAK void auth_login(struct conn *c, const char *mech, const char *user, const char *password,
                          auth_login_cb *cb)
{
	(void)mech;
	(void)user;
	(void)password;
	c->login_cb = cb;
}

/* The certificate road lives in sealmaild (server/auth/cert_login.c); these session tests
 * give no certificate unless they set one, and then it is never a user here. */
FAKE_WEAK bool auth_cert_offered(struct conn *c)
{
	return c->cert_identity != NULL;
}

FAKE_WEAK void auth_cert_login(struct conn *c, enum auth_cert_use use, const char *authzid,
                               auth_login_cb *cb)
{
	(void)use;
	(void)authzid;
	c->login_cb = cb; /* answered "failed" like auth_login, after the line callback */
}

/*
 * A scripted SCRAM exchange (the real one, server/auth/scram_login.c, needs the store and
 * GNU SASL; its own tests and the integration tests run it). Base64 is not decoded: the
 * client-first is anything but "" or "!..." (undecodable: scram_auth_start gives NULL); the
 * server-first challenge is FAKE_SCRAM_FIRST; the client-final "proof" is right, anything
 * else is a wrong password; then the server-final FAKE_SCRAM_FINAL, answered by an empty
 * line (logged in as FAKE_SCRAM_USER) or anything else (malformed).
 */
#define FAKE_SCRAM_FIRST "c2VydmVyLWZpcnN0"
#define FAKE_SCRAM_FINAL "c2VydmVyLWZpbmFs"
#define FAKE_SCRAM_USER  "alice@example.org"

struct scram_auth {
	struct conn *c;
	scram_auth_cb *cb;
	unsigned step; /* answers given */
	char *in;      /* the client's last message */
	bool busy;
};

unsigned fake_scram_live; /* exchanges not yet freed */

static void fake_scram_answer(struct conn *c)
{
	struct scram_auth *x = c->scram_pending;
	struct scram_auth_result r = {.done = true, .status = AUTH_LOGIN_FAILED};
	c->scram_pending = NULL;
	x->busy = false;
	switch (x->step++) {
	case 0:
		r.done = false;
		r.challenge = FAKE_SCRAM_FIRST;
		break;
	case 1:
		if (strcmp(x->in, "proof") == 0) {
			r.done = false;
			r.challenge = FAKE_SCRAM_FINAL;
		}
		break;
	default:
		if (x->in[0] == '\0') {
			r.status = AUTH_LOGIN_OK;
			r.user = FAKE_SCRAM_USER;
			r.user_id = 1;
		} else {
			r.malformed = true;
		}
		break;
	}
	x->cb(c->sess, &r);
}

FAKE_WEAK bool scram_plus_offered(struct conn *c)
{
	(void)c;
	return false;
}

FAKE_WEAK struct scram_auth *scram_auth_start(struct conn *c, bool plus, const char *b64,
                                              size_t len, scram_auth_cb *cb)
{
	(void)plus;
	if (len == 0 || b64[0] == '!')
		return NULL;
	struct scram_auth *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->cb = cb;
	x->in = xstrndup(b64, len);
	x->busy = true;
	c->scram_pending = x;
	fake_scram_live++;
	return x;
}

FAKE_WEAK void scram_auth_step(struct scram_auth *x, const char *b64, size_t len)
{
	if (x->busy)
		abort(); /* one step at a time, as the real one asserts */
	free(x->in);
	x->in = xstrndup(b64, len);
	x->busy = true;
	x->c->scram_pending = x;
}

FAKE_WEAK void scram_auth_free(struct scram_auth *x)
{
	if (x == NULL)
		return;
	if (x->busy)
		abort();
	fake_scram_live--;
	free(x->in);
	free(x);
}

#define FAKE_UNREACHED()                                                                           \
	do {                                                                                       \
		fprintf(stderr, "conn_fake: %s reached\n", __func__);                              \
		abort();                                                                           \
	} while (0)

FAKE_WEAK bool notify_lock_mailbox(struct notify *n, int64_t mailbox_id)
{
	(void)n;
	(void)mailbox_id;
	FAKE_UNREACHED();
}

FAKE_WEAK void notify_unlock_mailbox(struct notify *n, int64_t mailbox_id)
{
	(void)n;
	(void)mailbox_id;
	FAKE_UNREACHED();
}

FAKE_WEAK void notify_subscribe(struct notify *n, struct notify_watcher *w)
{
	(void)n;
	(void)w;
	FAKE_UNREACHED();
}

FAKE_WEAK uint64_t notify_generation(const struct notify *n)
{
	(void)n;
	return 0; /* nothing is ever published to the fake */
}

FAKE_WEAK void notify_unsubscribe(struct notify *n, struct notify_watcher *w)
{
	(void)n;
	(void)w;
	FAKE_UNREACHED();
}

FAKE_WEAK void notify_subscribe_user(struct notify *n, struct notify_user_watcher *w)
{
	(void)n;
	(void)w;
	FAKE_UNREACHED();
}

FAKE_WEAK void notify_unsubscribe_user(struct notify *n, struct notify_user_watcher *w)
{
	(void)n;
	(void)w;
	FAKE_UNREACHED();
}

FAKE_WEAK void notify_publish_mailbox(struct notify *n, const struct notify_mailbox_event *ev)
{
	(void)n;
	(void)ev;
	FAKE_UNREACHED();
}

/* Sessions that use the store (mem_store.h) get their services here. */
void fake_conn_set_services(struct conn *c, struct services *sv);
void fake_conn_set_services(struct conn *c, struct services *sv)
{
	c->services = sv;
}

/* A verified client certificate's identity for conn_cert_identity (borrowed). */
void fake_conn_set_cert_identity(struct conn *c, const char *identity);
void fake_conn_set_cert_identity(struct conn *c, const char *identity)
{
	c->cert_identity = identity;
}

/* Outstanding conn_hold calls: 0 when every asynchronous step has completed. */
unsigned fake_conn_holds(const struct conn *c);
unsigned fake_conn_holds(const struct conn *c)
{
	return c->holds;
}

/* The limit last given to conn_set_line_limit (0: the login state's default). */
size_t fake_conn_line_limit(const struct conn *c);
size_t fake_conn_line_limit(const struct conn *c)
{
	return c->line_limit;
}

/* Raw bytes asked for with conn_expect_bytes, as the real conn delivers them: at most
 * what is still expected (last on the final piece). Returns how many were taken; 0 when
 * the session expects none or the conn is closed. */
size_t fake_conn_bytes(struct conn *c, const char *data, size_t len);
size_t fake_conn_bytes(struct conn *c, const char *data, size_t len)
{
	if (c->closed || c->expect_bytes == 0 || c->h->bytes == NULL)
		return 0;
	size_t n = c->expect_bytes < len ? (size_t)c->expect_bytes : len;
	c->expect_bytes -= n;
	c->h->bytes(c->sess, data, n, c->expect_bytes == 0);
	return n;
}

/* The fake has no write queue: the output is always drained. */
size_t conn_pending_output(const struct conn *c)
{
	(void)c;
	return 0;
}

void conn_when_drained(struct conn *c, size_t low, void (*fn)(void *arg), void *arg)
{
	(void)c;
	(void)low;
	fn(arg);
}

/* The same for the next fake_conn_open (implicit TLS decides before open). */
void fake_conn_next_peer(enum conn_peer_kind kind, const char *name);
void fake_conn_next_peer(enum conn_peer_kind kind, const char *name)
{
	fake_next_peer_kind = kind;
	fake_next_peer_name = name;
}

/* What the peer's certificate made it (conn_peer_kind, conn_peer_name; name borrowed). */
void fake_conn_set_peer(struct conn *c, enum conn_peer_kind kind, const char *name);
void fake_conn_set_peer(struct conn *c, enum conn_peer_kind kind, const char *name)
{
	c->peer_kind = kind;
	c->peer_name = name;
}
