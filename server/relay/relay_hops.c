/*
 * From a recipient domain (or a route's host) to the ordered list of addresses to try
 * (relay_hops.h). One request per delivery: the MX query, then the AAAA and A queries of
 * every MX host at once, and the list is built when the last answer is in. The request
 * counts the answers it waits for; a guard count held while the queries start keeps an
 * answer that arrives at once from finishing the request early.
 */
#include "server/relay/relay_hops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xmalloc.h"
#include "server/relay/relay_private.h"

struct hops_req;

/* One A or AAAA query of one host. */
struct addr_query {
	struct hops_req *req;
	struct mx_host *host;
	int family;
};

struct mx_host {
	char *name;
	struct sockaddr_storage addrs[2][RELAY_DNS_ADDRS_MAX]; /* [0] AAAA, [1] A */
	size_t n[2];
	enum relay_dns_status st[2];
	const char *error[2]; /* static text */
	struct addr_query q[2];
};

struct hops_req {
	struct relay_dns *dns;
	char *domain;
	char *host; /* route host, or NULL */
	char *self;
	uint16_t port;
	relay_hops_cb *cb;
	void *ctx;
	bool implicit; /* no MX records: the domain is its own MX */
	struct mx_host *hosts;
	size_t n_hosts;
	unsigned pending; /* answers still to come (+1 while starting) */
	bool cancelled;
	struct relay_hops *out;
};

static void req_finish(struct hops_req *r)
{
	struct relay_hops *h = r->out;
	relay_hops_cb *cb = r->cb;
	void *ctx = r->ctx;
	for (size_t i = 0; i < r->n_hosts; i++)
		free(r->hosts[i].name);
	free(r->hosts);
	free(r->domain);
	free(r->host);
	free(r->self);
	free(r);
	cb(ctx, h);
}

static void req_fail(struct hops_req *r, enum relay_hops_result res, const char *status,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void req_fail(struct hops_req *r, enum relay_hops_result res, const char *status,
                     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->out->error, sizeof(r->out->error), fmt, ap);
	va_end(ap);
	r->out->result = res;
	r->out->status = status;
	req_finish(r);
}

static void add_hop(struct relay_hops *h, const char *host, const struct sockaddr_storage *a,
                    uint16_t port)
{
	if (h->n >= RELAY_HOPS_MAX)
		return;
	struct relay_hop *hop = &h->v[h->n++];
	snprintf(hop->host, sizeof(hop->host), "%s", host);
	hop->addr = *a;
	if (a->ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&hop->addr;
		s6->sin6_port = htons(port);
		inet_ntop(AF_INET6, &s6->sin6_addr, hop->addr_text, sizeof(hop->addr_text));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&hop->addr;
		s4->sin_port = htons(port);
		inet_ntop(AF_INET, &s4->sin_addr, hop->addr_text, sizeof(hop->addr_text));
	}
}

/* A numeric address ("192.0.2.1", "2001:db8::1"): 1 and *a_r, else 0. */
static int numeric(const char *s, struct sockaddr_storage *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	struct sockaddr_in *s4 = (struct sockaddr_in *)a_r;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a_r;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 1;
	}
	return 0;
}

static void appendf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	if (len + 1 >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* ----- Routes ----- */

static void route_cb(void *ctx, enum relay_dns_status st, const char *error,
                     const struct sockaddr_storage *addrs, size_t n)
{
	struct hops_req *r = ctx;
	if (st == RELAY_DNS_CANCELLED) {
		req_fail(r, RELAY_HOPS_CANCELLED, NULL, "server stopping");
		return;
	}
	if (st != RELAY_DNS_OK) {
		req_fail(r, RELAY_HOPS_TEMPFAIL, NULL, "cannot resolve %s: %s", r->host, error);
		return;
	}
	for (size_t i = 0; i < n; i++)
		add_hop(r->out, r->host, &addrs[i], r->port);
	req_finish(r);
}

/* ----- MX hosts ----- */

static bool definitive(enum relay_dns_status st)
{
	return st == RELAY_DNS_NXDOMAIN || st == RELAY_DNS_NODATA;
}

/* Every answer is in: the list, host by host, AAAA before A. */
static void build(struct hops_req *r)
{
	struct relay_hops *h = r->out;
	if (r->cancelled) {
		req_fail(r, RELAY_HOPS_CANCELLED, NULL, "server stopping");
		return;
	}
	bool all_definitive = true;
	for (size_t i = 0; i < r->n_hosts; i++) {
		struct mx_host *m = &r->hosts[i];
		for (int f = 0; f < 2; f++)
			for (size_t k = 0; k < m->n[f]; k++)
				add_hop(h, m->name, &m->addrs[f][k], r->port);
		if (m->n[0] + m->n[1] > 0)
			continue;
		bool known = definitive(m->st[0]) && definitive(m->st[1]);
		all_definitive = all_definitive && known;
		appendf(h->skipped, sizeof(h->skipped), "%s%s: %s", h->skipped[0] ? "; " : "",
		        m->name,
		        known                   ? "no address"
		        : !definitive(m->st[1]) ? m->error[1]
		                                : m->error[0]);
	}
	if (h->n > 0) {
		req_finish(r);
		return;
	}
	if (r->implicit && all_definitive) {
		req_fail(r, RELAY_HOPS_PERMFAIL, "5.4.4",
		         "recipient domain %s has no MX records and no address", r->domain);
		return;
	}
	if (r->implicit) {
		req_fail(r, RELAY_HOPS_TEMPFAIL, NULL,
		         "DNS lookup of the addresses of %s (no MX records) failed: %s", r->domain,
		         r->hosts[0].error[definitive(r->hosts[0].st[1]) ? 0 : 1]);
		return;
	}
	char skipped[sizeof(h->skipped)];
	snprintf(skipped, sizeof(skipped), "%s", h->skipped);
	req_fail(r, RELAY_HOPS_TEMPFAIL, NULL, "no MX host of %s has a usable address (%s)",
	         r->domain, skipped);
}

static void addr_cb(void *ctx, enum relay_dns_status st, const char *error,
                    const struct sockaddr_storage *addrs, size_t n)
{
	struct addr_query *q = ctx;
	struct hops_req *r = q->req;
	int f = q->family == AF_INET6 ? 0 : 1;
	q->host->st[f] = st;
	q->host->error[f] = error;
	if (st == RELAY_DNS_OK) {
		memcpy(q->host->addrs[f], addrs, n * sizeof(*addrs));
		q->host->n[f] = n;
	}
	if (st == RELAY_DNS_CANCELLED)
		r->cancelled = true;
	if (--r->pending == 0)
		build(r);
}

static void mx_cb(void *ctx, enum relay_dns_status st, const char *error, struct relay_mx *mx,
                  size_t n)
{
	struct hops_req *r = ctx;
	switch (st) {
	case RELAY_DNS_CANCELLED:
		req_fail(r, RELAY_HOPS_CANCELLED, NULL, "server stopping");
		return;
	case RELAY_DNS_NXDOMAIN:
		req_fail(r, RELAY_HOPS_PERMFAIL, "5.1.2",
		         "recipient domain %s not found (DNS: no such domain)", r->domain);
		return;
	case RELAY_DNS_TEMPFAIL:
		req_fail(r, RELAY_HOPS_TEMPFAIL, NULL,
		         "DNS lookup of the MX records of %s failed: %s", r->domain, error);
		return;
	case RELAY_DNS_NODATA:
		/* RFC 5321 5.1: no MX records, the domain is its own MX, preference 0. */
		mx = xcalloc(1, sizeof(*mx));
		mx->host = xstrdup(r->domain);
		n = 1;
		r->implicit = true;
		break;
	case RELAY_DNS_OK:
		break;
	}
	if (relay_mx_is_null(mx, n)) {
		relay_mx_free(mx, n);
		req_fail(r, RELAY_HOPS_PERMFAIL, "5.1.10",
		         "recipient domain %s accepts no mail (null MX, RFC 7505)", r->domain);
		return;
	}
	bool self = false;
	size_t kept = relay_mx_prepare(mx, n, r->self, &self);
	if (kept == 0) {
		relay_mx_free(mx, n);
		if (self)
			req_fail(r, RELAY_HOPS_TEMPFAIL, NULL,
			         "mail for %s loops back to myself (%s is its MX host, and no "
			         "host is preferred to it)",
			         r->domain, r->self);
		else
			req_fail(r, RELAY_HOPS_PERMFAIL, "5.1.10",
			         "recipient domain %s has no usable MX host", r->domain);
		return;
	}
	r->n_hosts = kept < RELAY_HOPS_MAX_HOSTS ? kept : RELAY_HOPS_MAX_HOSTS;
	r->hosts = xcalloc(r->n_hosts, sizeof(*r->hosts));
	for (size_t i = 0; i < r->n_hosts; i++) {
		r->hosts[i].name = mx[i].host;
		mx[i].host = NULL;
	}
	relay_mx_free(mx, n);
	r->out->mx = true;
	/* The guard: answers that arrive during the loop cannot finish the request. */
	r->pending = 1;
	for (size_t i = 0; i < r->n_hosts; i++) {
		for (int f = 0; f < 2; f++) {
			struct mx_host *m = &r->hosts[i];
			m->q[f] = (struct addr_query){r, m, f == 0 ? AF_INET6 : AF_INET};
			r->pending++;
			if (relay_dns_addrs(r->dns, m->name, m->q[f].family, addr_cb, &m->q[f]) <
			    0) {
				m->st[f] = RELAY_DNS_CANCELLED;
				r->cancelled = true;
				r->pending--;
			}
		}
	}
	if (--r->pending == 0)
		build(r);
}

/* ----- Entry ----- */

int relay_hops_resolve(struct relay_dns *dns, const struct relay_hops_query *q, relay_hops_cb *cb,
                       void *ctx)
{
	struct hops_req *r = xcalloc(1, sizeof(*r));
	r->dns = dns;
	r->domain = xstrdup(q->domain);
	r->host = q->host != NULL ? xstrdup(q->host) : NULL;
	r->self = q->self != NULL ? xstrdup(q->self) : NULL;
	r->port = q->port;
	r->cb = cb;
	r->ctx = ctx;
	r->out = xcalloc(1, sizeof(*r->out));
	r->out->v = xcalloc(RELAY_HOPS_MAX, sizeof(*r->out->v));
	struct sockaddr_storage a;
	int rc;
	if (r->host != NULL && numeric(r->host, &a)) {
		add_hop(r->out, r->host, &a, r->port);
		req_finish(r);
		return 0;
	}
	size_t dl = strlen(r->domain);
	if (r->host == NULL && dl > 2 && r->domain[0] == '[' && r->domain[dl - 1] == ']') {
		/* An address literal (RFC 5321 4.1.3): that address, no MX. */
		char lit[64];
		const char *inner = r->domain + 1;
		size_t il = dl - 2;
		if (il > 5 && strncasecmp(inner, "IPv6:", 5) == 0)
			inner += 5, il -= 5;
		snprintf(lit, sizeof(lit), "%.*s", (int)il, inner);
		if (il < sizeof(lit) && numeric(lit, &a)) {
			add_hop(r->out, lit, &a, r->port);
			req_finish(r);
		} else {
			req_fail(r, RELAY_HOPS_PERMFAIL, "5.1.2",
			         "recipient domain %s is not a valid address literal", r->domain);
		}
		return 0;
	}
	if (r->host != NULL)
		rc = relay_dns_lookup(dns, r->host, route_cb, r);
	else
		rc = relay_dns_mx(dns, r->domain, mx_cb, r);
	if (rc < 0) {
		relay_hops_free(r->out);
		r->out = NULL;
		free(r->domain);
		free(r->host);
		free(r->self);
		free(r);
	}
	return rc;
}

void relay_hops_free(struct relay_hops *h)
{
	if (h == NULL)
		return;
	free(h->v);
	free(h);
}
