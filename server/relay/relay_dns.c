/*
 * The relay's c-ares channel on the libuv loop (relay_dns.h).
 *
 * c-ares owns its sockets; it reports each one it wants watched, and for what, through the
 * socket-state callback, and reports (fd, 0, 0) just before it closes one. Each watched
 * socket has a uv_poll_t that is closed at that moment, before the descriptor goes away
 * (libuv forbids closing a descriptor under an active poll); c-ares may reuse the number
 * at once, so a socket's poll is looked up among the live ones only. One timer follows
 * ares_timeout() and is re-armed after everything that can change it: a new query, and
 * every ares_process_fd.
 */
#include "server/relay/relay_dns.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "config/config.h"
#include "server/relay/relay_private.h"

struct dns_sock {
	uv_poll_t poll;
	struct relay_dns *dns;
	ares_socket_t fd;
	int events;            /* what c-ares asked to watch */
	bool live;             /* in dns->socks: not closing */
	struct dns_sock *next; /* in dns->socks while live */
};

struct relay_dns {
	uv_loop_t *loop;
	ares_channel channel;
	uv_timer_t timer;
	struct dns_sock *socks; /* the live ones */
	unsigned handles;       /* open or closing: the timer and every poll */
	bool closing;
};

enum query_kind { Q_MX, Q_ADDRS, Q_LOOKUP };

struct dns_query {
	struct relay_dns *dns;
	enum query_kind kind;
	int family;
	relay_dns_mx_cb *mx_cb;
	relay_dns_addr_cb *addr_cb;
	void *ctx;
};

/* ----- The loop side ----- */

static void dns_maybe_free(struct relay_dns *dns)
{
	if (dns->closing && dns->handles == 0)
		free(dns);
}

static void handle_closed(uv_handle_t *h)
{
	struct relay_dns *dns;
	if (h->type == UV_POLL) {
		struct dns_sock *s = h->data;
		dns = s->dns;
		free(s);
	} else {
		dns = h->data;
	}
	dns->handles--;
	dns_maybe_free(dns);
}

static void timer_cb(uv_timer_t *t);

/* The timer to the next timeout c-ares has, or stopped when it has none. */
static void arm_timer(struct relay_dns *dns)
{
	if (dns->closing)
		return;
	struct timeval tv;
	if (ares_timeout(dns->channel, NULL, &tv) == NULL) {
		uv_timer_stop(&dns->timer);
		return;
	}
	/* Rounded up: a timer that fires a little early would only find nothing due. */
	uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
	uv_timer_start(&dns->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct relay_dns *dns = t->data;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(dns);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct dns_sock *s = p->data;
	struct relay_dns *dns = s->dns;
	ares_socket_t fd = s->fd;
	/* An error on the socket: let c-ares read and write, so it sees the error itself. */
	ares_socket_t rfd = status < 0 || (events & UV_READABLE) ? fd : ARES_SOCKET_BAD;
	ares_socket_t wfd = status < 0 || (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD;
	ares_process_fd(dns->channel, rfd, wfd);
	/* libuv stops a poll that reported an error; c-ares, which usually closes the socket
	 * then, may also keep it: watch it again. */
	if (status < 0 && s->live && !dns->closing)
		uv_poll_start(&s->poll, s->events, poll_cb);
	arm_timer(dns);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct relay_dns *dns = data;
	struct dns_sock **pp = &dns->socks;
	while (*pp != NULL && (*pp)->fd != fd)
		pp = &(*pp)->next;
	struct dns_sock *s = *pp;
	if (!readable && !writable) {
		if (s == NULL)
			return;
		*pp = s->next;
		s->live = false;
		uv_close((uv_handle_t *)&s->poll, handle_closed);
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->dns = dns;
		s->fd = fd;
		int rc = uv_poll_init_socket(dns->loop, &s->poll, fd);
		if (rc < 0) {
			/* Unwatched, its query ends in a timeout: slow, but not stuck. */
			log_event(LOGL_ERROR, "proto=relay event=dns_poll_failed error=\"%s\"",
			          uv_strerror(rc));
			free(s);
			return;
		}
		s->poll.data = s;
		s->live = true;
		dns->handles++;
		s->next = dns->socks;
		dns->socks = s;
	}
	s->events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	uv_poll_start(&s->poll, s->events, poll_cb);
}

int relay_dns_new(uv_loop_t *loop, char *const *servers, size_t n, struct relay_dns **dns_r,
                  const char **error_r)
{
	static bool library_ready;
	if (!library_ready) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
			*error_r = "c-ares: cannot initialise the library";
			return -EIO;
		}
		library_ready = true;
	}
	struct relay_dns *dns = xcalloc(1, sizeof(*dns));
	dns->loop = loop;
	struct ares_options opt = {
	    .timeout = RELAY_DNS_TIMEOUT_MS,
	    .tries = RELAY_DNS_TRIES,
	    .sock_state_cb = sock_state_cb,
	    .sock_state_cb_data = dns,
	};
	int optmask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	int rc = ares_init_options(&dns->channel, &opt, optmask);
	if (rc != ARES_SUCCESS) {
		/* Called once, on the loop thread, at start. */
		static char why[160];
		snprintf(why, sizeof(why), "the relay's DNS resolver (c-ares) cannot start: %s",
		         ares_strerror(rc));
		*error_r = why;
		free(dns);
		return -EIO;
	}
	if (n > 0) {
		struct ares_addr_port_node *nodes = xcalloc(n, sizeof(*nodes));
		for (size_t i = 0; i < n; i++) {
			struct cfg_dns_server ds;
			const char *why = NULL;
			/* The loader checked every entry. */
			if (cfg_dns_server_parse(servers[i], &ds, &why) < 0) {
				*error_r =
				    "relay.dns_servers holds an entry the loader should have "
				    "refused";
				free(nodes);
				ares_destroy(dns->channel);
				free(dns);
				return -EINVAL;
			}
			nodes[i].family = ds.family;
			memcpy(&nodes[i].addr, ds.addr, ds.family == AF_INET ? 4 : 16);
			nodes[i].udp_port = nodes[i].tcp_port = ds.port;
			nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
		}
		rc = ares_set_servers_ports(dns->channel, nodes);
		free(nodes);
		if (rc != ARES_SUCCESS) {
			*error_r = "relay.dns_servers: c-ares refused the server list";
			ares_destroy(dns->channel);
			free(dns);
			return -EINVAL;
		}
	}
	uv_timer_init(loop, &dns->timer);
	dns->timer.data = dns;
	dns->handles = 1;
	*dns_r = dns;
	return 0;
}

void relay_dns_close(struct relay_dns *dns)
{
	if (dns == NULL || dns->closing)
		return;
	/* Callbacks run now (cancelled): whatever they ask for next fails at once. */
	dns->closing = true;
	ares_cancel(dns->channel);
	/* Closes c-ares's sockets: the state callback closes their polls. */
	ares_destroy(dns->channel);
	while (dns->socks != NULL) {
		struct dns_sock *s = dns->socks;
		dns->socks = s->next;
		s->live = false;
		uv_close((uv_handle_t *)&s->poll, handle_closed);
	}
	uv_close((uv_handle_t *)&dns->timer, handle_closed);
}

/* ----- Lookups ----- */

static enum relay_dns_status map_status(int status, const char **error_r)
{
	switch (status) {
	case ARES_SUCCESS:
		return RELAY_DNS_OK;
	case ARES_ENOTFOUND:
		*error_r = "no such domain";
		return RELAY_DNS_NXDOMAIN;
	case ARES_ENODATA:
		*error_r = "no records of that type";
		return RELAY_DNS_NODATA;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		*error_r = "cancelled";
		return RELAY_DNS_CANCELLED;
	case ARES_ETIMEOUT:
		*error_r = "timeout";
		return RELAY_DNS_TEMPFAIL;
	case ARES_ESERVFAIL:
		*error_r = "server failure";
		return RELAY_DNS_TEMPFAIL;
	case ARES_EREFUSED:
		*error_r = "query refused";
		return RELAY_DNS_TEMPFAIL;
	case ARES_ECONNREFUSED:
		/* Also what c-ares reports once every server failed or refused the query. */
		*error_r = "no DNS server gave an answer";
		return RELAY_DNS_TEMPFAIL;
	default:
		*error_r = ares_strerror(status);
		return RELAY_DNS_TEMPFAIL;
	}
}

static void fail(struct dns_query *q, enum relay_dns_status st, const char *error)
{
	if (q->kind == Q_MX)
		q->mx_cb(q->ctx, st, error, NULL, 0);
	else
		q->addr_cb(q->ctx, st, error, NULL, 0);
}

static void mx_answer(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *reply = NULL;
	const char *error = NULL;
	int rc = ares_parse_mx_reply(abuf, alen, &reply);
	enum relay_dns_status st = map_status(rc, &error);
	if (st != RELAY_DNS_OK) {
		/* A reply c-ares cannot parse is not "no such domain". */
		fail(q, st == RELAY_DNS_NXDOMAIN ? RELAY_DNS_TEMPFAIL : st,
		     st == RELAY_DNS_NXDOMAIN ? "bad answer" : error);
		return;
	}
	size_t n = 0;
	for (struct ares_mx_reply *r = reply; r != NULL; r = r->next)
		n++;
	struct relay_mx *mx = xcalloc(n, sizeof(*mx));
	size_t i = 0;
	for (struct ares_mx_reply *r = reply; r != NULL; r = r->next, i++) {
		mx[i].host = xstrdup(r->host);
		mx[i].pref = r->priority;
	}
	ares_free_data(reply);
	if (n == 0) {
		free(mx);
		fail(q, RELAY_DNS_NODATA, "no records of that type");
		return;
	}
	q->mx_cb(q->ctx, RELAY_DNS_OK, NULL, mx, n);
}

static void addrs_answer(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct sockaddr_storage out[RELAY_DNS_ADDRS_MAX];
	int n = RELAY_DNS_ADDRS_MAX;
	int rc;
	memset(out, 0, sizeof(out));
	if (q->family == AF_INET6) {
		struct ares_addr6ttl a[RELAY_DNS_ADDRS_MAX];
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out[i];
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, &a[i].ip6addr, 16);
		}
	} else {
		struct ares_addrttl a[RELAY_DNS_ADDRS_MAX];
		rc = ares_parse_a_reply(abuf, alen, NULL, a, &n);
		for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&out[i];
			s4->sin_family = AF_INET;
			s4->sin_addr = a[i].ipaddr;
		}
	}
	const char *error = NULL;
	enum relay_dns_status st = map_status(rc, &error);
	if (st == RELAY_DNS_OK && n <= 0)
		st = RELAY_DNS_NODATA, error = "no records of that type";
	if (st != RELAY_DNS_OK) {
		fail(q, st == RELAY_DNS_NXDOMAIN ? RELAY_DNS_TEMPFAIL : st,
		     st == RELAY_DNS_NXDOMAIN ? "bad answer" : error);
		return;
	}
	q->addr_cb(q->ctx, RELAY_DNS_OK, NULL, out, (size_t)n);
}

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	const char *error = NULL;
	enum relay_dns_status st = map_status(status, &error);
	if (st != RELAY_DNS_OK)
		fail(q, st, error);
	else if (q->kind == Q_MX)
		mx_answer(q, abuf, alen);
	else
		addrs_answer(q, abuf, alen);
	free(q);
}

static void lookup_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	const char *error = NULL;
	enum relay_dns_status st = map_status(status, &error);
	struct sockaddr_storage out[RELAY_DNS_ADDRS_MAX];
	size_t n = 0;
	memset(out, 0, sizeof(out));
	for (struct ares_addrinfo_node *a = res != NULL ? res->nodes : NULL;
	     st == RELAY_DNS_OK && a != NULL && n < RELAY_DNS_ADDRS_MAX; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    (size_t)a->ai_addrlen > sizeof(out[n]))
			continue;
		/* The hosts file and DNS may both list an address. */
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = memcmp(&out[i], a->ai_addr, a->ai_addrlen) == 0;
		if (!dup)
			memcpy(&out[n++], a->ai_addr, a->ai_addrlen);
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (st == RELAY_DNS_OK && n == 0)
		st = RELAY_DNS_NODATA, error = "no address";
	if (st != RELAY_DNS_OK)
		q->addr_cb(q->ctx, st, error, NULL, 0);
	else
		q->addr_cb(q->ctx, st, NULL, out, n);
	free(q);
}

static struct dns_query *query_new(struct relay_dns *dns, enum query_kind kind, void *ctx)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	q->dns = dns;
	q->kind = kind;
	q->ctx = ctx;
	return q;
}

int relay_dns_mx(struct relay_dns *dns, const char *domain, relay_dns_mx_cb *cb, void *ctx)
{
	if (dns->closing)
		return -ECANCELED;
	struct dns_query *q = query_new(dns, Q_MX, ctx);
	q->mx_cb = cb;
	ares_query(dns->channel, domain, C_IN, T_MX, query_cb, q);
	arm_timer(dns);
	return 0;
}

int relay_dns_addrs(struct relay_dns *dns, const char *host, int family, relay_dns_addr_cb *cb,
                    void *ctx)
{
	if (dns->closing)
		return -ECANCELED;
	struct dns_query *q = query_new(dns, Q_ADDRS, ctx);
	q->addr_cb = cb;
	q->family = family;
	ares_query(dns->channel, host, C_IN, family == AF_INET6 ? T_AAAA : T_A, query_cb, q);
	arm_timer(dns);
	return 0;
}

int relay_dns_lookup(struct relay_dns *dns, const char *host, relay_dns_addr_cb *cb, void *ctx)
{
	if (dns->closing)
		return -ECANCELED;
	struct dns_query *q = query_new(dns, Q_LOOKUP, ctx);
	q->addr_cb = cb;
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	ares_getaddrinfo(dns->channel, host, NULL, &hints, lookup_cb, q);
	arm_timer(dns);
	return 0;
}
