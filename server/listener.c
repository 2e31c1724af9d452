/*
 * Listeners: bind, listen, accept. Each listener knows its protocol handler and its
 * cfg_listener; the real bound port is logged (port 0 lets the kernel choose, for tests).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "common/log.h"
#include "server/gateway/gateway.h"
#include "server/https/https.h"
#include "server/imap/imap.h"
#include "server/pop3/pop3.h"
#include "server/server_private.h"
#include "server/smtp/smtp.h"

const struct proto_handler *listener_proto_for(enum cfg_protocol p)
{
	switch (p) {
	case CFG_PROTO_SUBMISSION:
	case CFG_PROTO_SMTP:
		return &smtp_proto_handler;
	case CFG_PROTO_IMAP:
		return &imap_proto_handler;
	case CFG_PROTO_POP3:
		return &pop3_proto_handler;
	case CFG_PROTO_HTTPS:
		return &https_proto_handler;
	case CFG_PROTO_GATEWAY:
		return &gateway_proto_handler;
	}
	return NULL;
}

static void listener_connection_cb(uv_stream_t *s, int status)
{
	struct listener *l = s->data;
	if (status < 0) {
		log_event(LOGL_WARN, "event=accept_failed listener=%s:%u error=%s", l->cfg->address,
		          l->port, uv_strerror(status));
		return;
	}
	conn_accepted(l);
}

int listener_start(struct server *srv, struct listener *l, const struct cfg_listener *cfg,
                   const char **error_r)
{
	static char err[256];
	struct sockaddr_storage ss;
	int r;

	memset(l, 0, sizeof(*l));
	l->server = srv;
	l->cfg = cfg;
	l->proto = listener_proto_for(cfg->protocol);
	if (strchr(cfg->address, ':') != NULL)
		r = uv_ip6_addr(cfg->address, cfg->port, (struct sockaddr_in6 *)&ss);
	else
		r = uv_ip4_addr(cfg->address, cfg->port, (struct sockaddr_in *)&ss);
	if (r < 0)
		goto fail;
	uv_tcp_init(srv->loop, &l->tcp);
	l->tcp.data = l;
	l->open = true;
	r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->tcp, 511, listener_connection_cb);
	if (r < 0)
		goto fail;
	int sslen = sizeof(ss);
	if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &sslen) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                         : ((struct sockaddr_in *)&ss)->sin_port);
	log_event(LOGL_INFO, "event=listening protocol=%s tls=%s address=%s port=%u client_cert=%s",
	          cfg_protocol_name(cfg->protocol),
	          cfg->tls == CFG_TLS_IMPLICIT ? "implicit" : "starttls", cfg->address, l->port,
	          cfg->client_certificate == CFG_CLIENT_CERT_REQUIRED   ? "required"
	          : cfg->client_certificate == CFG_CLIENT_CERT_OPTIONAL ? "optional"
	                                                                : "none");
	if (cfg_listener_without_peers(srv->cfg, cfg))
		log_event(
		    LOGL_WARN,
		    "event=listener_without_peers protocol=smtp port=%u line=%d action="
		    "refusing_local_senders reason=\"neither peers nor tls.peer_ca is set: no "
		    "session here is an organisation server\"",
		    l->port, cfg->line);
	return 0;
fail:
	snprintf(err, sizeof(err), "cannot listen on %s port %u: %s", cfg->address, cfg->port,
	         uv_strerror(r));
	*error_r = err;
	return r;
}

static void listener_closed(uv_handle_t *h)
{
	(void)h;
}

void listener_stop(struct listener *l)
{
	if (l->open) {
		l->open = false;
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
	}
}

/* What sessions may ask about the listeners (conn.h). */

bool conn_listeners_bound(const struct conn *c)
{
	const struct server *srv = c->server;
	if (srv->stopping || srv->n_listeners != srv->cfg->n_listeners)
		return false;
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (!srv->listeners[i].open || srv->listeners[i].port == 0)
			return false;
	return true;
}

uint16_t conn_listener_port(const struct conn *c, const struct cfg_listener *l)
{
	const struct server *srv = c->server;
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i].cfg == l)
			return srv->listeners[i].open ? srv->listeners[i].port : 0;
	return 0;
}

const struct cfg_listener *conn_listener(const struct conn *c)
{
	return c->listener->cfg;
}
