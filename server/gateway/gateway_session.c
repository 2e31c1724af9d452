/*
 * A gateway session (gateway.h): the client's conn on one side, an outconn to the backend
 * on the other. The session outlives the conn's close callback until the outconn, the
 * duration timer and a pending name lookup have all called back: each holds a count in
 * handles, and the last one frees the session.
 */
#include "server/gateway/gateway.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/xmalloc.h"
#include "server/gateway/gateway_dance.h"
#include "server/gateway/proxy_v2.h"
#include "server/outconn.h"
#include "server/tls.h"

enum gw_phase {
	GW_PRE_TLS,    /* STARTTLS listener: the gateway speaks for itself */
	GW_CONNECTING, /* TLS is up; the backend is being looked up or connected */
	GW_GREETING,   /* STARTTLS listener: waiting for the backend's greeting to drop it */
	GW_RELAY,      /* bytes flow both ways */
};

struct gw_session {
	struct conn *c;
	const struct cfg_listener *l;
	enum gw_phase phase;
	struct outconn *oc;
	uv_timer_t duration;
	uv_getaddrinfo_t gai;
	struct buf greeting; /* the backend's greeting while it is incomplete */
	uint64_t to_backend, to_client;
	uint64_t started_ms;
	unsigned errors, commands;
	unsigned handles;     /* callbacks still owed: outconn closed, timer closed, lookup */
	bool client_gone;     /* the conn's close callback ran */
	bool client_paused;   /* we paused the conn: the backend's queue is full or not ready */
	bool backend_stopped; /* we stopped reading the backend: the client's queue is full */
	bool client_eof, backend_eof;
	bool backend_reached; /* connected at least once */
	bool backend_failed;
	bool resolving;
	const char *reason; /* why the session ended, for the log; static */
	char *serial, *subject;
};

static void gw_maybe_free(struct gw_session *s)
{
	if (!s->client_gone || s->handles > 0)
		return;
	buf_free(&s->greeting);
	free(s->serial);
	free(s->subject);
	free(s);
}

static void gw_write_buf(struct gw_session *s, struct buf *b)
{
	if (b->len > 0)
		conn_write(s->c, b->data, b->len);
	buf_free(b);
}

static void gw_goodbye(struct gw_session *s, enum gateway_bye why)
{
	struct buf b;
	buf_init(&b, 1024);
	gateway_dance_goodbye(s->l->speaks, why, conn_config(s->c)->hostname, &b);
	gw_write_buf(s, &b);
}

/* Ends the session from the gateway's side; the conn's close callback does the rest. */
static void gw_end(struct gw_session *s, const char *reason)
{
	if (s->reason == NULL)
		s->reason = reason;
	if (!s->client_gone)
		conn_close(s->c, reason);
}

/* ---- the client side's back-pressure --------------------------------------------- */

static void gw_client_drained(void *arg)
{
	struct gw_session *s = arg;
	if (s->backend_stopped && s->oc != NULL) {
		s->backend_stopped = false;
		outconn_read_start(s->oc);
	}
}

static void gw_to_client(struct gw_session *s, const char *data, size_t len)
{
	if (len == 0)
		return;
	conn_write(s->c, data, len);
	s->to_client += len;
	metrics_add(METRIC_GATEWAY_BYTES, len, (const char *const[]){"to_client"});
	conn_touch(s->c);
	if (conn_pending_output(s->c) >= GATEWAY_HIGH && !s->backend_stopped) {
		s->backend_stopped = true;
		outconn_read_stop(s->oc);
		conn_when_drained(s->c, GATEWAY_LOW, gw_client_drained, s);
	}
}

static void gw_resume_client(struct gw_session *s)
{
	if (s->client_paused && !s->client_gone) {
		s->client_paused = false;
		conn_resume(s->c);
	}
}

/* ---- the backend ----------------------------------------------------------------- */

static void gw_backend_connected(void *ctx)
{
	struct gw_session *s = ctx;
	s->backend_reached = true;
	log_event(LOGL_DEBUG, "session=%s proto=gateway event=backend_connected backend=%s:%u",
	          conn_id(s->c), s->l->backend_host, s->l->backend_port);
	if (s->l->proxy_protocol == CFG_PROXY_V2) {
		struct sockaddr_storage peer, local;
		struct tls_session *t = conn_tls(s->c);
		struct proxy_v2_info in = {.unique_id = conn_id(s->c)};
		if (conn_sockaddrs(s->c, &peer, &local) == 0) {
			in.src = (const struct sockaddr *)&peer;
			in.dst = (const struct sockaddr *)&local;
		}
		if (t != NULL) {
			const char *refused = tls_session_peer_error(t);
			bool sent = tls_session_peer_verified(t) ||
			            (refused != NULL && strcmp(refused, "no certificate") != 0);
			in.tls_version = tls_session_version(t);
			in.tls_cipher = tls_session_cipher(t);
			in.cert_in_session = sent;
			in.cert_presented = sent && !tls_session_resumed(t);
			in.cert_verified = tls_session_peer_verified(t);
			in.cert_cn = tls_session_peer_cn(t);
			in.cert_subject = tls_session_peer_subject(t);
			in.cert_serial = tls_session_peer_serial(t);
		}
		struct buf b;
		buf_init(&b, 64 * 1024);
		if (proxy_v2_build(&in, &b) == 0)
			outconn_write(s->oc, b.data, b.len);
		buf_free(&b);
	}
	if (s->phase == GW_CONNECTING)
		s->phase = s->l->tls == CFG_TLS_STARTTLS ? GW_GREETING : GW_RELAY;
	if (s->phase == GW_RELAY)
		gw_resume_client(s);
}

static void gw_backend_data(void *ctx, const char *data, size_t len)
{
	struct gw_session *s = ctx;
	if (s->client_gone)
		return;
	if (s->phase == GW_GREETING) {
		/* The client had the gateway's greeting before TLS and expects none now. */
		if (buf_append(&s->greeting, data, len) < 0) {
			gw_goodbye(s, GW_BYE_BACKEND);
			gw_end(s, "backend_greeting_too_long");
			return;
		}
		ssize_t n =
		    gateway_backend_greeting(s->l->speaks, s->greeting.data, s->greeting.len);
		if (n == 0)
			return;
		if (n < 0) {
			char esc[160];
			size_t show = s->greeting.len < 100 ? s->greeting.len : 100;
			log_event(LOGL_WARN,
			          "session=%s proto=gateway event=backend_refused backend=%s:%u "
			          "greeting=\"%s\"",
			          conn_id(s->c), s->l->backend_host, s->l->backend_port,
			          log_escape(esc, sizeof(esc), s->greeting.data, show));
			gw_goodbye(s, GW_BYE_BACKEND);
			gw_end(s, n == -E2BIG ? "backend_greeting_too_long" : "backend_refused");
			return;
		}
		s->phase = GW_RELAY;
		size_t rest = s->greeting.len - (size_t)n;
		if (rest > 0)
			gw_to_client(s, s->greeting.data + n, rest);
		buf_free(&s->greeting);
		gw_resume_client(s);
		return;
	}
	gw_to_client(s, data, len);
}

static void gw_backend_eof(void *ctx)
{
	struct gw_session *s = ctx;
	s->backend_eof = true;
	if (s->client_gone)
		return;
	if (s->phase != GW_RELAY) {
		gw_goodbye(s, GW_BYE_BACKEND);
		gw_end(s, "backend_closed_early");
		return;
	}
	if (s->client_eof) {
		gw_end(s, "closed");
		return;
	}
	/* Half-close: the client gets close_notify and FIN after the last byte, and may go
	 * on sending. */
	conn_shutdown_output(s->c);
}

static void gw_backend_drained(void *ctx)
{
	gw_resume_client(ctx);
}

static void gw_backend_failed(void *ctx, enum outconn_failure what, const char *reason)
{
	struct gw_session *s = ctx;
	if (what == OUTCONN_CONNECT) {
		s->backend_failed = true;
		metrics_inc(METRIC_GATEWAY_BACKEND_FAILURES, NULL, NULL, NULL);
		log_event(
		    LOGL_WARN,
		    "session=%s proto=gateway event=backend_connect_failed ip=%s backend=%s:%u "
		    "reason=\"%s\"",
		    conn_id(s->c), conn_peer_ip(s->c), s->l->backend_host, s->l->backend_port,
		    reason);
		if (!s->client_gone)
			gw_goodbye(s, GW_BYE_BACKEND);
		gw_end(s, "backend_connect_failed");
	} else {
		log_event(LOGL_INFO, "session=%s proto=gateway event=backend_lost reason=\"%s\"",
		          conn_id(s->c), reason);
		gw_end(s, "backend_lost");
	}
	struct outconn *oc = s->oc;
	s->oc = NULL;
	if (oc != NULL)
		outconn_close(oc);
}

static void gw_backend_closed(void *ctx)
{
	struct gw_session *s = ctx;
	s->handles--;
	gw_maybe_free(s);
}

static const struct outconn_ops gw_backend_ops = {
    .data = gw_backend_data,
    .connected = gw_backend_connected,
    .eof = gw_backend_eof,
    .drained = gw_backend_drained,
    .failed = gw_backend_failed,
    .closed = gw_backend_closed,
};

static void gw_connect(struct gw_session *s, const struct sockaddr *addr)
{
	const struct config *cfg = conn_config(s->c);
	struct outconn_limits lim = {
	    .line_max = 1, /* not used: the backend is a byte stream */
	    .connect_ms = (uint64_t)cfg->limits.handshake_timeout * 1000,
	    .idle_ms = 0, /* limits.gateway_idle_timeout runs on the conn (conn_touch) */
	};
	s->oc = outconn_new(conn_loop(s->c), &gw_backend_ops, s, &lim);
	s->handles++;
	outconn_connect(s->oc, addr);
}

static void gw_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct gw_session *s = req->data;
	s->resolving = false;
	s->handles--;
	if (s->client_gone) {
		uv_freeaddrinfo(res);
		gw_maybe_free(s);
		return;
	}
	if (status < 0 || res == NULL) {
		s->backend_failed = true;
		metrics_inc(METRIC_GATEWAY_BACKEND_FAILURES, NULL, NULL, NULL);
		log_event(
		    LOGL_WARN,
		    "session=%s proto=gateway event=backend_connect_failed ip=%s backend=%s:%u "
		    "reason=\"%s\"",
		    conn_id(s->c), conn_peer_ip(s->c), s->l->backend_host, s->l->backend_port,
		    status < 0 ? uv_strerror(status) : "no address");
		gw_goodbye(s, GW_BYE_BACKEND);
		gw_end(s, "backend_connect_failed");
		uv_freeaddrinfo(res);
		return;
	}
	gw_connect(s, res->ai_addr);
	uv_freeaddrinfo(res);
}

static void gw_duration_cb(uv_timer_t *t)
{
	struct gw_session *s = t->data;
	gw_end(s, "session_duration");
}

static void gw_timer_closed(uv_handle_t *h)
{
	struct gw_session *s = h->data;
	s->handles--;
	gw_maybe_free(s);
}

/* TLS is up: the certificate is known, the backend can be reached. */
static void gw_start_backend(struct gw_session *s)
{
	const struct config *cfg = conn_config(s->c);
	struct tls_session *t = conn_tls(s->c);
	if (t != NULL && tls_session_peer_verified(t)) {
		s->serial = xstrdup(tls_session_peer_serial(t));
		s->subject = xstrdup(tls_session_peer_subject(t));
	}
	conn_set_idle_timeout(s->c, cfg->limits.gateway_idle_timeout);
	if (cfg->limits.gateway_session_duration > 0)
		uv_timer_start(&s->duration, gw_duration_cb,
		               (uint64_t)cfg->limits.gateway_session_duration * 1000, 0);
	/* The client's bytes wait (bounded by the conn) until the backend is ready. */
	s->phase = GW_CONNECTING;
	s->client_paused = true;
	conn_pause(s->c);
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	const char *host = s->l->backend_host;
	if (uv_ip4_addr(host, s->l->backend_port, &addr.in) == 0 ||
	    uv_ip6_addr(host, s->l->backend_port, &addr.in6) == 0) {
		gw_connect(s, &addr.sa);
		return;
	}
	/* A name (localhost, or one of relay.legacy_gateways): looked up on libuv's pool. */
	char port[8];
	snprintf(port, sizeof(port), "%u", s->l->backend_port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	s->gai.data = s;
	if (uv_getaddrinfo(conn_loop(s->c), &s->gai, gw_resolved, host, port, &hints) == 0) {
		s->resolving = true;
		s->handles++;
		return;
	}
	s->backend_failed = true;
	metrics_inc(METRIC_GATEWAY_BACKEND_FAILURES, NULL, NULL, NULL);
	gw_goodbye(s, GW_BYE_BACKEND);
	gw_end(s, "backend_connect_failed");
}

/* ---- the client side: conn.h callbacks ------------------------------------------- */

static void *gw_open(struct conn *c)
{
	struct gw_session *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->l = conn_listener(c);
	s->started_ms = conn_now_ms(c);
	buf_init(&s->greeting, GW_GREETING_MAX);
	uv_timer_init(conn_loop(c), &s->duration);
	s->duration.data = s;
	s->handles = 1;
	if (s->l->tls == CFG_TLS_STARTTLS && !conn_is_tls(c)) {
		s->phase = GW_PRE_TLS;
		struct buf b;
		buf_init(&b, 1024);
		gateway_dance_greeting(s->l->speaks, conn_config(c)->hostname, &b);
		gw_write_buf(s, &b);
	} else {
		gw_start_backend(s);
	}
	return s;
}

/* One command line before TLS. Returns how many bytes it took (0: wait for more). */
static size_t gw_pre_tls(struct gw_session *s, const char *data, size_t len)
{
	const struct config *cfg = conn_config(s->c);
	const char *nl = memchr(data, '\n', len);
	if (nl == NULL) {
		if (len > cfg->limits.line_length_preauth) {
			gw_goodbye(s, GW_BYE_TOO_LONG);
			gw_end(s, "line_too_long");
		}
		return 0;
	}
	size_t took = (size_t)(nl - data) + 1;
	size_t n = took - 1;
	if (n > 0 && data[n - 1] == '\r')
		n--;
	if (n > cfg->limits.line_length_preauth) {
		gw_goodbye(s, GW_BYE_TOO_LONG);
		gw_end(s, "line_too_long");
		return took;
	}
	if (++s->commands > cfg->limits.commands) {
		gw_goodbye(s, GW_BYE_ERRORS);
		gw_end(s, "too_many_commands");
		return took;
	}
	struct buf b;
	buf_init(&b, 4096);
	enum gateway_dance_step step = gateway_dance_line(s->l->speaks, cfg->hostname, data, n, &b);
	gw_write_buf(s, &b);
	switch (step) {
	case GW_DANCE_REPLY:
		break;
	case GW_DANCE_ERROR:
		if (++s->errors >= cfg->limits.errors) {
			gw_goodbye(s, GW_BYE_ERRORS);
			gw_end(s, "too_many_errors");
		}
		break;
	case GW_DANCE_STARTTLS:
		/* The conn discards whatever the client sent after this line (CVE-2011-0411)
		 * and starts the handshake. */
		conn_start_tls(s->c);
		break;
	case GW_DANCE_QUIT:
		gw_end(s, "quit");
		break;
	}
	return took;
}

static size_t gw_raw(void *sess, const char *data, size_t len)
{
	struct gw_session *s = sess;
	if (s->phase == GW_PRE_TLS)
		return gw_pre_tls(s, data, len);
	if (s->phase != GW_RELAY || s->oc == NULL || outconn_queued(s->oc) >= GATEWAY_HIGH) {
		/* Not ready, or the backend is not taking what it was sent: stop reading the
		 * client until it is (gw_backend_drained, gw_backend_connected). */
		if (!s->client_paused) {
			s->client_paused = true;
			conn_pause(s->c);
			if (s->oc != NULL && s->phase == GW_RELAY)
				outconn_when_drained(s->oc, GATEWAY_LOW);
		}
		return 0;
	}
	outconn_write(s->oc, data, len);
	s->to_backend += len;
	metrics_add(METRIC_GATEWAY_BYTES, len, (const char *const[]){"to_backend"});
	if (outconn_queued(s->oc) >= GATEWAY_HIGH) {
		s->client_paused = true;
		conn_pause(s->c);
		outconn_when_drained(s->oc, GATEWAY_LOW);
	}
	return len;
}

static void gw_tls_ready(void *sess)
{
	gw_start_backend(sess);
}

static void gw_eof(void *sess)
{
	struct gw_session *s = sess;
	s->client_eof = true;
	if (s->backend_eof) {
		gw_end(s, "closed");
		return;
	}
	if (s->oc != NULL)
		outconn_shutdown(s->oc);
	else
		gw_end(s, "client_closed");
}

static void gw_timeout(void *sess)
{
	struct gw_session *s = sess;
	if (s->phase == GW_PRE_TLS)
		gw_goodbye(s, GW_BYE_TIMEOUT);
	if (s->reason == NULL)
		s->reason = "idle_timeout";
}

static void gw_shutdown(void *sess, enum conn_goodbye why)
{
	struct gw_session *s = sess;
	static const char *const reasons[] = {
	    [CONN_BYE_SHUTDOWN] = "shutdown",
	    [CONN_BYE_CERT_REVOKED] = "certificate_revoked",
	    [CONN_BYE_CERT_INVALID] = "certificate_invalid",
	    [CONN_BYE_CRL_STALE] = "crl_stale",
	    [CONN_BYE_USER_DISABLED] = "user_disabled",
	};
	/* Mid-stream nothing can be said without corrupting the backend's protocol. */
	if (s->phase == GW_PRE_TLS)
		gw_goodbye(s, GW_BYE_BACKEND);
	if (s->reason == NULL)
		s->reason = reasons[why];
}

static void gw_close(void *sess)
{
	struct gw_session *s = sess;
	s->client_gone = true;
	uint64_t ms = conn_now_ms(s->c) - s->started_ms;
	const char *outcome = s->backend_reached  ? "relayed"
	                      : s->backend_failed ? "backend_failed"
	                                          : "not_relayed";
	char subj[256];
	log_event(LOGL_INFO,
	          "session=%s proto=gateway event=gateway_session ip=%s backend=%s:%u "
	          "outcome=%s reason=%s bytes_to_backend=%llu bytes_to_client=%llu "
	          "duration_ms=%llu serial=%s subject=\"%s\"",
	          conn_id(s->c), conn_peer_ip(s->c), s->l->backend_host, s->l->backend_port,
	          outcome, s->reason != NULL ? s->reason : "client_closed",
	          (unsigned long long)s->to_backend, (unsigned long long)s->to_client,
	          (unsigned long long)ms, s->serial != NULL ? s->serial : "-",
	          s->subject != NULL
	              ? log_escape(subj, sizeof(subj), s->subject, strlen(s->subject))
	              : "");
	metrics_inc(METRIC_GATEWAY_SESSIONS, outcome, NULL, NULL);
	if (s->resolving)
		uv_cancel((uv_req_t *)&s->gai); /* gw_resolved still runs (UV_ECANCELED) */
	if (s->oc != NULL) {
		struct outconn *oc = s->oc;
		s->oc = NULL;
		outconn_close(oc);
	}
	uv_close((uv_handle_t *)&s->duration, gw_timer_closed);
}

const struct proto_handler gateway_proto_handler = {
    .name = "gateway",
    .open = gw_open,
    .tls_ready = gw_tls_ready,
    .timeout = gw_timeout,
    .shutdown = gw_shutdown,
    .close = gw_close,
    .raw = gw_raw,
    .eof = gw_eof,
};
