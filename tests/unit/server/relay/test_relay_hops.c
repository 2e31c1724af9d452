/*
 * server/relay/relay_hops.c: from a recipient domain (or a route's host) to the addresses to
 * try, over a scripted DNS channel. The script answers every case in several orders: inside
 * the call, first asked first answered, last asked first answered, and shuffled.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "server/relay/relay_hops.h"
#include "server/relay/relay_private.h"

/* ----- A scripted relay_dns ----- */

enum fake_order {
	ANSWER_AT_ONCE, /* the callback runs before the lookup function returns */
	ANSWER_FIFO,
	ANSWER_LIFO,
	ANSWER_SHUFFLED,
};

enum fake_kind { Q_MX, Q_ADDRS };

struct fake_query {
	enum fake_kind kind;
	char *key; /* "MX example.org", "AAAA mx.example", "A mx.example", "ADDR route" */
	relay_dns_mx_cb *mx_cb;
	relay_dns_addr_cb *addr_cb;
	void *ctx;
};

struct relay_dns {
	const char *script; /* "KEY=ANSWER" entries separated by "; " */
	const char *dflt;   /* the answer to a query not in the script, or NULL */
	enum fake_order order;
	unsigned seed;
	bool closed;
	unsigned calls;
	unsigned fail_call; /* this call (1-based) finds the channel closed; 0 none */
	struct fake_query *pending;
	size_t n_pending, cap;
	unsigned unexpected;
	char log[8192]; /* the queries, in the order asked */
	/* The reasons given, alive until fake_free: relay_dns's are static text, and
	 * relay_hops keeps the pointers until every answer is in. */
	char *reasons[64];
	size_t n_reasons;
};

/* The answer to key, a copy. */
static char *script_answer(struct relay_dns *dns, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = dns->script; *p != '\0';) {
		const char *end = strstr(p, "; ");
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')
			return xasprintf("%.*s", (int)(len - kl - 1), p + kl + 1);
		p += len + (end != NULL ? 2 : 0);
	}
	if (dns->dflt == NULL)
		dns->unexpected++;
	return xstrdup(dns->dflt != NULL ? dns->dflt : "TEMPFAIL not in the script");
}

/* "OK ...", "NXDOMAIN", "NODATA", "TEMPFAIL reason", "CANCELLED". */
static enum relay_dns_status parse_status(const char *answer, const char **rest_r,
                                          const char **error_r)
{
	static const struct {
		const char *word, *error;
		enum relay_dns_status st;
	} words[] = {
	    {"OK", NULL, RELAY_DNS_OK},
	    {"NXDOMAIN", "no such domain", RELAY_DNS_NXDOMAIN},
	    {"NODATA", "no records of that type", RELAY_DNS_NODATA},
	    {"TEMPFAIL", NULL, RELAY_DNS_TEMPFAIL},
	    {"CANCELLED", "cancelled", RELAY_DNS_CANCELLED},
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t wl = strlen(words[i].word);
		if (strncmp(answer, words[i].word, wl) != 0 ||
		    (answer[wl] != ' ' && answer[wl] != '\0'))
			continue;
		*rest_r = answer[wl] == ' ' ? answer + wl + 1 : answer + wl;
		*error_r = words[i].error != NULL ? words[i].error : *rest_r;
		return words[i].st;
	}
	cr_assert_fail("bad answer in the script: %s", answer);
	return RELAY_DNS_TEMPFAIL;
}

static void answer(struct relay_dns *dns, struct fake_query *q, bool cancel)
{
	char *text = cancel ? xstrdup("CANCELLED") : script_answer(dns, q->key);
	const char *rest, *error;
	enum relay_dns_status st = parse_status(text, &rest, &error);
	if (st == RELAY_DNS_TEMPFAIL) {
		cr_assert_lt(dns->n_reasons, sizeof(dns->reasons) / sizeof(dns->reasons[0]));
		error = dns->reasons[dns->n_reasons++] = xstrdup(error);
	}
	if (q->kind == Q_MX) {
		struct relay_mx *mx = NULL;
		size_t n = 0;
		if (st == RELAY_DNS_OK) {
			mx = xcalloc(256, sizeof(*mx));
			char *copy = xstrdup(rest), *save = NULL;
			for (char *tok = strtok_r(copy, " ", &save); tok != NULL;
			     tok = strtok_r(NULL, " ", &save)) {
				char *colon = strchr(tok, ':');
				cr_assert(colon != NULL && n < 256, "bad MX answer %s", rest);
				*colon = '\0';
				mx[n].pref = (unsigned)strtoul(tok, NULL, 10);
				/* "~" is the root, as c-ares hands it over: "" */
				mx[n].host = xstrdup(strcmp(colon + 1, "~") == 0 ? "" : colon + 1);
				n++;
			}
			free(copy);
			cr_assert_gt(n, 0, "an OK MX answer has records");
		}
		q->mx_cb(q->ctx, st, st == RELAY_DNS_OK ? NULL : error, mx, n);
	} else {
		struct sockaddr_storage addrs[RELAY_DNS_ADDRS_MAX];
		size_t n = 0;
		if (st == RELAY_DNS_OK) {
			char *copy = xstrdup(rest), *save = NULL;
			for (char *tok = strtok_r(copy, " ", &save); tok != NULL;
			     tok = strtok_r(NULL, " ", &save)) {
				cr_assert_lt(n, RELAY_DNS_ADDRS_MAX, "too many addresses %s", rest);
				struct sockaddr_storage *a = &addrs[n++];
				memset(a, 0, sizeof(*a));
				struct sockaddr_in *s4 = (struct sockaddr_in *)a;
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
				if (inet_pton(AF_INET, tok, &s4->sin_addr) == 1)
					s4->sin_family = AF_INET;
				else if (inet_pton(AF_INET6, tok, &s6->sin6_addr) == 1)
					s6->sin6_family = AF_INET6;
				else
					cr_assert_fail("bad address in the script: %s", tok);
			}
			free(copy);
			cr_assert_gt(n, 0, "an OK address answer has addresses");
		}
		q->addr_cb(q->ctx, st, st == RELAY_DNS_OK ? NULL : error,
		           st == RELAY_DNS_OK ? addrs : NULL, n);
	}
	free(text);
	free(q->key);
}

static int ask(struct relay_dns *dns, struct fake_query q)
{
	dns->calls++;
	if (dns->closed || dns->calls == dns->fail_call) {
		free(q.key);
		return -ECANCELED;
	}
	size_t len = strlen(dns->log);
	snprintf(dns->log + len, sizeof(dns->log) - len, "%s%s", len ? "; " : "", q.key);
	if (dns->order == ANSWER_AT_ONCE) {
		answer(dns, &q, false);
		return 0;
	}
	if (dns->n_pending == dns->cap) {
		dns->cap = dns->cap ? dns->cap * 2 : 16;
		dns->pending = xrealloc(dns->pending, dns->cap * sizeof(*dns->pending));
	}
	dns->pending[dns->n_pending++] = q;
	return 0;
}

int relay_dns_mx(struct relay_dns *dns, const char *domain, relay_dns_mx_cb *cb, void *ctx)
{
	return ask(dns, (struct fake_query){Q_MX, xasprintf("MX %s", domain), cb, NULL, ctx});
}

int relay_dns_addrs(struct relay_dns *dns, const char *host, int family, relay_dns_addr_cb *cb,
                    void *ctx)
{
	cr_assert(family == AF_INET || family == AF_INET6);
	return ask(dns, (struct fake_query){
	                    Q_ADDRS, xasprintf("%s %s", family == AF_INET ? "A" : "AAAA", host),
	                    NULL, cb, ctx});
}

int relay_dns_lookup(struct relay_dns *dns, const char *host, relay_dns_addr_cb *cb, void *ctx)
{
	return ask(dns, (struct fake_query){Q_ADDRS, xasprintf("ADDR %s", host), NULL, cb, ctx});
}

/* Answers what is pending (and what those answers ask next) in the channel's order. */
static void fake_run(struct relay_dns *dns)
{
	while (dns->n_pending > 0) {
		size_t i = 0;
		if (dns->order == ANSWER_LIFO)
			i = dns->n_pending - 1;
		else if (dns->order == ANSWER_SHUFFLED)
			i = (size_t)rand_r(&dns->seed) % dns->n_pending;
		struct fake_query q = dns->pending[i];
		memmove(&dns->pending[i], &dns->pending[i + 1],
		        (dns->n_pending - i - 1) * sizeof(*dns->pending));
		dns->n_pending--;
		answer(dns, &q, false);
	}
}

/* relay_dns_close: whatever is in flight is cancelled, later lookups fail. */
static void fake_close(struct relay_dns *dns)
{
	dns->closed = true;
	while (dns->n_pending > 0) {
		struct fake_query q = dns->pending[--dns->n_pending];
		answer(dns, &q, true);
	}
}

static void fake_free(struct relay_dns *dns)
{
	cr_assert_eq(dns->n_pending, 0);
	free(dns->pending);
	for (size_t i = 0; i < dns->n_reasons; i++)
		free(dns->reasons[i]);
}

/* ----- What the callback got ----- */

struct outcome {
	int calls;
	enum relay_hops_result result;
	char status[16];
	char error[512];
	char skipped[512];
	bool mx;
	char hops[4096]; /* "host=addr host=addr" */
	size_t n;
	int bad_port;
	int bad_text; /* addr_text does not name addr */
};

static uint16_t want_port;

static void hops_cb(void *ctx, struct relay_hops *h)
{
	struct outcome *o = ctx;
	o->calls++;
	o->result = h->result;
	snprintf(o->status, sizeof(o->status), "%s", h->status != NULL ? h->status : "");
	snprintf(o->error, sizeof(o->error), "%s", h->error);
	snprintf(o->skipped, sizeof(o->skipped), "%s", h->skipped);
	o->mx = h->mx;
	o->n = h->n;
	o->hops[0] = '\0';
	for (size_t i = 0; i < h->n; i++) {
		const struct relay_hop *hop = &h->v[i];
		size_t len = strlen(o->hops);
		snprintf(o->hops + len, sizeof(o->hops) - len, "%s%s=%s", i ? " " : "", hop->host,
		         hop->addr_text);
		char text[64] = "";
		uint16_t port;
		if (hop->addr.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&hop->addr;
			inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
			port = ntohs(s6->sin6_port);
		} else {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&hop->addr;
			if (s4->sin_family != AF_INET)
				o->bad_text++;
			inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
			port = ntohs(s4->sin_port);
		}
		o->bad_port += port != want_port;
		o->bad_text += strcmp(text, hop->addr_text) != 0;
	}
	relay_hops_free(h);
}

static const char *result_name(enum relay_hops_result r);

/* "RESULT[ status][ mx]: hops or error[ (skipped: ...)]", as the table writes it. */
static void describe(const struct outcome *o, char *out, size_t size)
{
	bool ok = o->result == RELAY_HOPS_OK;
	/* skipped is for OK only */
	const char *skipped = ok ? o->skipped : "";
	snprintf(out, size, "%s%s%s%s: %s%s%s%s", result_name(o->result), o->status[0] ? " " : "",
	         o->status, ok && o->mx ? " mx" : "", ok ? o->hops : o->error,
	         skipped[0] ? " (skipped: " : "", skipped, skipped[0] ? ")" : "");
}

static const char *result_name(enum relay_hops_result r)
{
	switch (r) {
	case RELAY_HOPS_OK:
		return "OK";
	case RELAY_HOPS_TEMPFAIL:
		return "TEMPFAIL";
	case RELAY_HOPS_PERMFAIL:
		return "PERMFAIL";
	case RELAY_HOPS_CANCELLED:
		return "CANCELLED";
	}
	return "?";
}

/* ----- The table ----- */

#define SELF "me.example"

/*
 * script: "KEY=ANSWER" entries separated by "; ". want: what the callback got, as
 * "RESULT[ status][ mx]: hops or error[ (skipped: ...)]"; hops are "host=addr_text".
 */
struct hops_case {
	const char *domain, *host, *self, *script, *dflt, *want;
};

static const struct hops_case cases[] = {
    /* MX hosts by preference, AAAA before A, every address of each */
    {"example.org", NULL, SELF,
     "MX example.org=OK 20:mx2.example.org 10:mx1.example.org; "
     "AAAA mx1.example.org=OK 2001:db8::1 2001:db8::11; A mx1.example.org=OK 192.0.2.1; "
     "AAAA mx2.example.org=NODATA; A mx2.example.org=OK 192.0.2.2 192.0.2.22",
     NULL,
     "OK mx: mx1.example.org=2001:db8::1 mx1.example.org=2001:db8::11 "
     "mx1.example.org=192.0.2.1 mx2.example.org=192.0.2.2 mx2.example.org=192.0.2.22"},
    /* equal preferences keep the order DNS gave */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:b.example.org 10:a.example.org; A b.example.org=OK 192.0.2.2; "
     "A a.example.org=OK 192.0.2.1",
     "NODATA", "OK mx: b.example.org=192.0.2.2 a.example.org=192.0.2.1"},
    /* an MX host without an address is skipped and named */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:mx1.example.org 20:mx2.example.org 30:mx3.example.org; "
     "AAAA mx1.example.org=NXDOMAIN; A mx1.example.org=NXDOMAIN; "
     "AAAA mx2.example.org=NODATA; A mx2.example.org=TEMPFAIL timeout; "
     "AAAA mx3.example.org=TEMPFAIL server failure; A mx3.example.org=OK 192.0.2.3",
     NULL,
     "OK mx: mx3.example.org=192.0.2.3 "
     "(skipped: mx1.example.org: no address; mx2.example.org: timeout)"},
    /* which failure names it: A's, unless that one was definitive */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:mx1.example.org 20:mx2.example.org; "
     "AAAA mx1.example.org=TEMPFAIL query refused; A mx1.example.org=NODATA; "
     "AAAA mx2.example.org=OK 2001:db8::2",
     "NODATA", "OK mx: mx2.example.org=2001:db8::2 (skipped: mx1.example.org: query refused)"},
    /* no MX host has an address: try again later, even when DNS was sure */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:b.example.org 10:a.example.org 10:c.example.org", "NODATA",
     "TEMPFAIL: no MX host of example.org has a usable address (b.example.org: no address; "
     "a.example.org: no address; c.example.org: no address)"},
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:mx1.example.org 20:mx2.example.org; "
     "A mx1.example.org=TEMPFAIL timeout",
     "NXDOMAIN",
     "TEMPFAIL: no MX host of example.org has a usable address (mx1.example.org: timeout; "
     "mx2.example.org: no address)"},
    /* what the MX query says */
    {"nowhere.example", NULL, SELF, "MX nowhere.example=NXDOMAIN", NULL,
     "PERMFAIL 5.1.2: recipient domain nowhere.example not found (DNS: no such domain)"},
    {"example.org", NULL, SELF, "MX example.org=TEMPFAIL server failure", NULL,
     "TEMPFAIL: DNS lookup of the MX records of example.org failed: server failure"},
    {"example.org", NULL, SELF, "MX example.org=CANCELLED", NULL, "CANCELLED: server stopping"},
    /* no MX records: the domain is its own MX (implicit MX) */
    {"example.org", NULL, SELF,
     "MX example.org=NODATA; AAAA example.org=OK 2001:db8::5; "
     "A example.org=OK 192.0.2.5 192.0.2.55",
     NULL, "OK mx: example.org=2001:db8::5 example.org=192.0.2.5 example.org=192.0.2.55"},
    {"example.org", NULL, SELF,
     "MX example.org=NODATA; AAAA example.org=NODATA; A example.org=NXDOMAIN", NULL,
     "PERMFAIL 5.4.4: recipient domain example.org has no MX records and no address"},
    {"example.org", NULL, SELF,
     "MX example.org=NODATA; AAAA example.org=NODATA; A example.org=TEMPFAIL timeout", NULL,
     "TEMPFAIL: DNS lookup of the addresses of example.org (no MX records) failed: timeout"},
    {"example.org", NULL, SELF,
     "MX example.org=NODATA; AAAA example.org=TEMPFAIL server failure; "
     "A example.org=NODATA",
     NULL,
     "TEMPFAIL: DNS lookup of the addresses of example.org (no MX records) failed: server "
     "failure"},
    /* the implicit MX is us, in other case and with the trailing dot */
    {"ME.example.", NULL, SELF, "MX ME.example.=NODATA", NULL,
     "TEMPFAIL: mail for ME.example. loops back to myself (me.example is its MX host, and no "
     "host is preferred to it)"},
    /* null MX (RFC 7505): the root as c-ares gives it ("~" here), and spelt out */
    {"example.org", NULL, SELF, "MX example.org=OK 0:~", NULL,
     "PERMFAIL 5.1.10: recipient domain example.org accepts no mail (null MX, RFC 7505)"},
    {"example.org", NULL, SELF, "MX example.org=OK 0:.", NULL,
     "PERMFAIL 5.1.10: recipient domain example.org accepts no mail (null MX, RFC 7505)"},
    /* the root beside a real host is just dropped */
    {"example.org", NULL, SELF,
     "MX example.org=OK 0:~ 10:mx1.example.org; A mx1.example.org=OK 192.0.2.1", "NODATA",
     "OK mx: mx1.example.org=192.0.2.1"},
    /* we are the best MX host: nothing to hand the mail to */
    {"example.org", NULL, SELF, "MX example.org=OK 10:ME.EXAMPLE. 20:mx2.example.org", NULL,
     "TEMPFAIL: mail for example.org loops back to myself (me.example is its MX host, and no "
     "host is preferred to it)"},
    /* only hosts preferred to us are asked about */
    {"example.org", NULL, SELF,
     "MX example.org=OK 30:mx3.example.org 20:me.example 10:mx1.example.org; "
     "A mx1.example.org=OK 192.0.2.1; AAAA mx1.example.org=NODATA",
     NULL, "OK mx: mx1.example.org=192.0.2.1"},
    /* without self our name is just a name */
    {"example.org", NULL, NULL, "MX example.org=OK 10:me.example; A me.example=OK 192.0.2.9",
     "NODATA", "OK mx: me.example=192.0.2.9"},
    /* names no MX record may give, and repeats, are not asked about */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:a..b.example 20:x\"y.example 30:mx.example.org "
     "40:MX.EXAMPLE.ORG. 50:-\\032.example 60:\x01.example; A mx.example.org=OK 192.0.2.1",
     "NODATA", "OK mx: mx.example.org=192.0.2.1"},
    {"example.org", NULL, SELF, "MX example.org=OK 10:a..b.example 20:x\"y.example", NULL,
     "PERMFAIL 5.1.10: recipient domain example.org has no usable MX host"},
    /* a cancelled lookup wins over what the others found */
    {"example.org", NULL, SELF,
     "MX example.org=OK 10:mx1.example.org 20:mx2.example.org; "
     "A mx1.example.org=OK 192.0.2.1; AAAA mx2.example.org=CANCELLED",
     "NODATA", "CANCELLED: server stopping"},
    /* a route: every address of its host, no MX */
    {"example.org", "gw.example.net", SELF, "ADDR gw.example.net=OK 2001:db8::7 192.0.2.7", NULL,
     "OK: gw.example.net=2001:db8::7 gw.example.net=192.0.2.7"},
    {"example.org", "gw.example.net", SELF, "ADDR gw.example.net=NXDOMAIN", NULL,
     "TEMPFAIL: cannot resolve gw.example.net: no such domain"},
    {"example.org", "gw.example.net", SELF, "ADDR gw.example.net=TEMPFAIL timeout", NULL,
     "TEMPFAIL: cannot resolve gw.example.net: timeout"},
    {"example.org", "gw.example.net", SELF, "ADDR gw.example.net=CANCELLED", NULL,
     "CANCELLED: server stopping"},
    /* a route to an address asks nothing */
    {"example.org", "192.0.2.8", SELF, "", NULL, "OK: 192.0.2.8=192.0.2.8"},
    {"example.org", "2001:DB8:0::8", SELF, "", NULL, "OK: 2001:DB8:0::8=2001:db8::8"},
    /* the route wins over an address literal */
    {"[192.0.2.1]", "gw.example.net", SELF, "ADDR gw.example.net=OK 192.0.2.7", NULL,
     "OK: gw.example.net=192.0.2.7"},
    /* address literals (RFC 5321 4.1.3): that address, nothing asked */
    {"[192.0.2.1]", NULL, SELF, "", NULL, "OK: 192.0.2.1=192.0.2.1"},
    {"[IPv6:2001:db8::1]", NULL, SELF, "", NULL, "OK: 2001:db8::1=2001:db8::1"},
    {"[ipv6:2001:DB8::1]", NULL, SELF, "", NULL, "OK: 2001:DB8::1=2001:db8::1"},
    {"[mx.example.org]", NULL, SELF, "", NULL,
     "PERMFAIL 5.1.2: recipient domain [mx.example.org] is not a valid address literal"},
    {"[IPv6:]", NULL, SELF, "", NULL,
     "PERMFAIL 5.1.2: recipient domain [IPv6:] is not a valid address literal"},
    {"[192.0.2.256]", NULL, SELF, "", NULL,
     "PERMFAIL 5.1.2: recipient domain [192.0.2.256] is not a valid address literal"},
    {"[192.0.2.1 ]", NULL, SELF, "", NULL,
     "PERMFAIL 5.1.2: recipient domain [192.0.2.1 ] is not a valid address literal"},
    {"[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:1]", NULL, SELF, "",
     NULL,
     "PERMFAIL 5.1.2: recipient domain "
     "[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:1] is not a "
     "valid address literal"},
};

struct order_mode {
	enum fake_order order;
	unsigned seed;
	const char *name;
};

static const struct order_mode modes[] = {
    {ANSWER_AT_ONCE, 0, "at once"},     {ANSWER_FIFO, 0, "fifo"},
    {ANSWER_LIFO, 0, "lifo"},           {ANSWER_SHUFFLED, 1, "shuffled 1"},
    {ANSWER_SHUFFLED, 7, "shuffled 7"}, {ANSWER_SHUFFLED, 1234, "shuffled 1234"},
};

static void run_case(const struct hops_case *c, const struct order_mode *m, size_t i, uint16_t port)
{
	struct relay_dns dns = {
	    .script = c->script, .dflt = c->dflt, .order = m->order, .seed = m->seed};
	struct outcome o = {0};
	struct relay_hops_query q = {
	    .domain = c->domain, .host = c->host, .port = port, .self = c->self};
	want_port = port;
	cr_assert_eq(relay_hops_resolve(&dns, &q, hops_cb, &o), 0, "case %zu (%s)", i, m->name);
	fake_run(&dns);
	cr_assert_eq(o.calls, 1, "case %zu %s (%s): callback ran %d times", i, c->domain, m->name,
	             o.calls);
	cr_expect_eq(dns.unexpected, 0, "case %zu %s (%s): asked outside the script: %s", i,
	             c->domain, m->name, dns.log);
	char got[sizeof(o.hops) + sizeof(o.error) + sizeof(o.skipped) + 64];
	describe(&o, got, sizeof(got));
	cr_expect_str_eq(got, c->want, "case %zu %s (%s):\n got '%s'\nwant '%s'", i, c->domain,
	                 m->name, got, c->want);
	if (o.result == RELAY_HOPS_OK) {
		cr_expect_gt(o.n, 0, "case %zu: OK without hops", i);
		cr_expect_str_empty(o.error, "case %zu: OK with an error", i);
	} else {
		cr_expect_eq(o.n, 0, "case %zu %s (%s): %zu hops", i, c->domain, m->name, o.n);
	}
	cr_expect_eq(o.bad_port, 0, "case %zu (%s): a hop without port %u", i, m->name, port);
	cr_expect_eq(o.bad_text, 0, "case %zu (%s): addr_text is not the address", i, m->name);
	fake_free(&dns);
}

Test(relay_hops, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
			run_case(&cases[i], &modes[m], i, m % 2 ? 25 : 2525);
}

/* ----- Generated answers: more than the limits ----- */

/* A script built by a test: entries joined with "; ". */
struct gen_script {
	char *v;
};

static void gen_add(struct gen_script *s, char *entry)
{
	char *next = s->v == NULL ? xstrdup(entry) : xasprintf("%s; %s", s->v, entry);
	free(s->v);
	free(entry);
	s->v = next;
}

static void gen_free(struct gen_script *s)
{
	free(s->v);
	s->v = NULL;
}

static struct outcome resolve_with(struct gen_script *s, const char *dflt, const char *domain,
                                   enum fake_order order, struct relay_dns *dns_r)
{
	*dns_r = (struct relay_dns){.script = s->v, .dflt = dflt, .order = order, .seed = 42};
	struct outcome o = {0};
	struct relay_hops_query q = {.domain = domain, .port = 25, .self = SELF};
	want_port = 25;
	cr_assert_eq(relay_hops_resolve(dns_r, &q, hops_cb, &o), 0);
	fake_run(dns_r);
	cr_assert_eq(o.calls, 1, "callback ran %d times", o.calls);
	cr_expect_eq(o.bad_port, 0);
	cr_expect_eq(o.bad_text, 0);
	fake_free(dns_r);
	return o;
}

Test(relay_hops, at_most_max_hosts_are_asked_about)
{
	/* 30 MX hosts with an address each: only the RELAY_HOPS_MAX_HOSTS best are asked. */
	struct gen_script s = {0};
	char mx[2048] = "MX example.org=OK";
	for (int i = 29; i >= 0; i--) {
		size_t len = strlen(mx);
		snprintf(mx + len, sizeof(mx) - len, " %d:h%02d.example.org", i, i);
	}
	gen_add(&s, xstrdup(mx));
	for (int i = 0; i < RELAY_HOPS_MAX_HOSTS; i++) {
		gen_add(&s, xasprintf("AAAA h%02d.example.org=NODATA", i));
		gen_add(&s, xasprintf("A h%02d.example.org=OK 192.0.2.%d", i, i));
	}
	for (enum fake_order order = ANSWER_AT_ONCE; order <= ANSWER_SHUFFLED; order++) {
		struct relay_dns dns;
		struct outcome o = resolve_with(&s, NULL, "example.org", order, &dns);
		cr_expect_eq(dns.unexpected, 0, "order %d: asked beyond the limit: %s", order,
		             dns.log);
		cr_expect_eq(o.result, RELAY_HOPS_OK);
		cr_expect_eq(o.n, RELAY_HOPS_MAX_HOSTS);
		char want[1024] = "";
		for (int i = 0; i < RELAY_HOPS_MAX_HOSTS; i++) {
			size_t len = strlen(want);
			snprintf(want + len, sizeof(want) - len, "%sh%02d.example.org=192.0.2.%d",
			         i ? " " : "", i, i);
		}
		cr_expect_str_eq(o.hops, want, "order %d: '%s'", order, o.hops);
	}
	gen_free(&s);
}

Test(relay_hops, at_most_max_addresses_in_all)
{
	/* 3 hosts with RELAY_DNS_ADDRS_MAX addresses of each family: the first
	 * RELAY_HOPS_MAX in order, host by host, AAAA before A. */
	struct gen_script s = {0};
	gen_add(&s,
	        xstrdup("MX example.org=OK 10:a.example.org 20:b.example.org 30:c.example.org"));
	const char *hosts[] = {"a", "b", "c"};
	char want[4096] = "";
	size_t n_want = 0;
	for (int h = 0; h < 3; h++) {
		char v6[512] = "", v4[512] = "";
		for (int k = 0; k < RELAY_DNS_ADDRS_MAX; k++) {
			size_t l6 = strlen(v6), l4 = strlen(v4);
			snprintf(v6 + l6, sizeof(v6) - l6, " 2001:db8:%d::%d", h + 1, k + 1);
			snprintf(v4 + l4, sizeof(v4) - l4, " 198.51.%d.%d", h, k + 1);
		}
		gen_add(&s, xasprintf("AAAA %s.example.org=OK%s", hosts[h], v6));
		gen_add(&s, xasprintf("A %s.example.org=OK%s", hosts[h], v4));
		for (int f = 0; f < 2; f++)
			for (int k = 0; k < RELAY_DNS_ADDRS_MAX && n_want < RELAY_HOPS_MAX; k++) {
				size_t len = strlen(want);
				if (f == 0)
					snprintf(want + len, sizeof(want) - len,
					         "%s%s.example.org=2001:db8:%d::%d",
					         n_want ? " " : "", hosts[h], h + 1, k + 1);
				else
					snprintf(want + len, sizeof(want) - len,
					         "%s%s.example.org=198.51.%d.%d", n_want ? " " : "",
					         hosts[h], h, k + 1);
				n_want++;
			}
	}
	for (enum fake_order order = ANSWER_AT_ONCE; order <= ANSWER_SHUFFLED; order++) {
		struct relay_dns dns;
		struct outcome o = resolve_with(&s, NULL, "example.org", order, &dns);
		cr_expect_eq(dns.unexpected, 0);
		cr_expect_eq(o.result, RELAY_HOPS_OK);
		cr_expect_eq(o.n, RELAY_HOPS_MAX);
		cr_expect_str_eq(o.hops, want, "order %d: '%s'", order, o.hops);
	}
	gen_free(&s);
}

Test(relay_hops, long_names_stay_within_the_texts)
{
	/* Ten MX hosts of 253 bytes, none with an address: skipped and error are cut, not
	 * overrun; a hop keeps a whole 253-byte host name. */
	char label[64];
	memset(label, 'x', 63);
	label[63] = '\0';
	struct gen_script s = {0};
	char *mx = xstrdup("MX example.org=OK");
	char names[RELAY_HOPS_MAX_HOSTS + 1][256];
	for (int i = 0; i <= RELAY_HOPS_MAX_HOSTS; i++) {
		/* 61 + 3 * (1 + 63) = 253 */
		snprintf(names[i], sizeof(names[i]), "%02d%.59s.%s.%s.%s", i, label, label, label,
		         label);
		cr_assert_eq(strlen(names[i]), 253);
		char *next = xasprintf("%s %d:%s", mx, i, names[i]);
		free(mx);
		mx = next;
	}
	gen_add(&s, mx);
	struct relay_dns dns;
	struct outcome o =
	    resolve_with(&s, "TEMPFAIL timeout", "example.org", ANSWER_SHUFFLED, &dns);
	cr_expect_eq(o.result, RELAY_HOPS_TEMPFAIL);
	cr_expect_lt(strlen(o.error), 512);
	cr_expect(strncmp(o.error, "no MX host of example.org has a usable address (", 48) == 0,
	          "'%s'", o.error);
	char first[300];
	snprintf(first, sizeof(first), "(%s: timeout; ", names[0]);
	cr_expect_not_null(strstr(o.error, first), "'%s'", o.error);
	/* the eleventh host was never asked about */
	cr_expect_null(strstr(dns.log, names[RELAY_HOPS_MAX_HOSTS]));

	/* one of them with an address: its whole name in the hop, the others skipped */
	gen_add(&s, xasprintf("A %s=OK 192.0.2.3", names[3]));
	o = resolve_with(&s, "TEMPFAIL timeout", "example.org", ANSWER_LIFO, &dns);
	cr_expect_eq(o.result, RELAY_HOPS_OK);
	char want[300];
	snprintf(want, sizeof(want), "%s=192.0.2.3", names[3]);
	cr_expect_str_eq(o.hops, want);
	cr_expect_lt(strlen(o.skipped), 512);
	snprintf(first, sizeof(first), "%s: timeout; ", names[0]);
	cr_expect(strncmp(o.skipped, first, strlen(first)) == 0, "'%s'", o.skipped);
	gen_free(&s);

	/* A recipient domain far longer than any name: the error is cut at its size. */
	char *domain = xmalloc(20001);
	memset(domain, 'd', 20000);
	domain[20000] = '\0';
	struct gen_script s2 = {0};
	gen_add(&s2, xasprintf("MX %s=NXDOMAIN", domain));
	o = resolve_with(&s2, NULL, domain, ANSWER_AT_ONCE, &dns);
	cr_expect_eq(o.result, RELAY_HOPS_PERMFAIL);
	cr_expect_str_eq(o.status, "5.1.2");
	cr_expect_eq(strlen(o.error), 511);
	gen_free(&s2);
	free(domain);
}

/* ----- The channel and the callback ----- */

/* Answers one pending query, the oldest. */
static void fake_step(struct relay_dns *dns)
{
	cr_assert_gt(dns->n_pending, 0);
	struct fake_query q = dns->pending[0];
	memmove(&dns->pending[0], &dns->pending[1], (dns->n_pending - 1) * sizeof(*dns->pending));
	dns->n_pending--;
	answer(dns, &q, false);
}

static const char two_hosts[] =
    "MX example.org=OK 10:mx1.example.org 20:mx2.example.org; "
    "AAAA mx1.example.org=OK 2001:db8::1; A mx1.example.org=OK 192.0.2.1; "
    "AAAA mx2.example.org=NODATA; A mx2.example.org=OK 192.0.2.2";

Test(relay_hops, every_mx_host_is_asked_about_at_once)
{
	struct relay_dns dns = {.script = two_hosts, .order = ANSWER_FIFO};
	struct outcome o = {0};
	struct relay_hops_query q = {.domain = "example.org", .port = 25, .self = SELF};
	want_port = 25;
	cr_assert_eq(relay_hops_resolve(&dns, &q, hops_cb, &o), 0);
	cr_expect_eq(dns.n_pending, 1);
	fake_step(&dns);
	cr_expect_eq(dns.n_pending, 4, "the addresses are asked for together");
	for (int i = 0; i < 3; i++) {
		fake_step(&dns);
		cr_expect_eq(o.calls, 0, "finished with %zu answers to come", dns.n_pending);
	}
	fake_step(&dns);
	cr_expect_eq(o.calls, 1);
	cr_expect_str_eq(o.hops, "mx1.example.org=2001:db8::1 mx1.example.org=192.0.2.1 "
	                         "mx2.example.org=192.0.2.2");
	fake_free(&dns);
}

Test(relay_hops, channel_closed_midway_cancels_once)
{
	/* relay_dns_close after each number of answers: the callback runs once, CANCELLED. */
	for (int answered = 0; answered <= 4; answered++) {
		struct relay_dns dns = {.script = two_hosts, .order = ANSWER_FIFO};
		struct outcome o = {0};
		struct relay_hops_query q = {.domain = "example.org", .port = 25, .self = SELF};
		cr_assert_eq(relay_hops_resolve(&dns, &q, hops_cb, &o), 0);
		for (int i = 0; i < answered; i++)
			fake_step(&dns);
		cr_expect_eq(o.calls, 0);
		fake_close(&dns);
		cr_expect_eq(o.calls, 1, "after %d answers: %d calls", answered, o.calls);
		cr_expect_eq(o.result, RELAY_HOPS_CANCELLED, "after %d answers: %s", answered,
		             result_name(o.result));
		cr_expect_str_eq(o.error, "server stopping");
		fake_free(&dns);
	}
}

Test(relay_hops, channel_closing_between_the_address_queries)
{
	/* The channel refuses the n-th lookup (it closed while the others were asked): one
	 * callback, CANCELLED, whichever lookup it was and however the others answer. */
	for (unsigned fail = 2; fail <= 5; fail++)
		for (enum fake_order order = ANSWER_AT_ONCE; order <= ANSWER_SHUFFLED; order++) {
			struct relay_dns dns = {
			    .script = two_hosts, .order = order, .seed = fail, .fail_call = fail};
			struct outcome o = {0};
			struct relay_hops_query q = {
			    .domain = "example.org", .port = 25, .self = SELF};
			cr_assert_eq(relay_hops_resolve(&dns, &q, hops_cb, &o), 0);
			fake_run(&dns);
			cr_expect_eq(o.calls, 1, "lookup %u refused (order %d): %d calls", fail,
			             order, o.calls);
			cr_expect_eq(o.result, RELAY_HOPS_CANCELLED,
			             "lookup %u refused (order %d): %s", fail, order,
			             result_name(o.result));
			fake_free(&dns);
		}
}

Test(relay_hops, closed_channel_fails_without_callback)
{
	static const struct relay_hops_query queries[] = {
	    {.domain = "example.org", .port = 25, .self = SELF},
	    {.domain = "example.org", .host = "gw.example.net", .port = 25},
	};
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		struct relay_dns dns = {.script = two_hosts, .closed = true};
		struct outcome o = {0};
		cr_expect_lt(relay_hops_resolve(&dns, &queries[i], hops_cb, &o), 0, "query %zu", i);
		cr_expect_eq(o.calls, 0, "query %zu: the callback ran", i);
		fake_free(&dns);
	}
}

static const char self_second[] = "MX example.org=OK 10:mx1.example.org 20:me.example; "
                                  "AAAA mx1.example.org=NODATA; A mx1.example.org=NXDOMAIN";

Test(relay_hops, query_strings_are_copied)
{
	char domain[] = "example.org", self[] = "me.example";
	struct relay_dns dns = {.script = self_second, .order = ANSWER_FIFO};
	struct outcome o = {0};
	struct relay_hops_query q = {.domain = domain, .port = 25, .self = self};
	cr_assert_eq(relay_hops_resolve(&dns, &q, hops_cb, &o), 0);
	memset(domain, 'z', sizeof(domain) - 1);
	memset(self, 'z', sizeof(self) - 1);
	fake_run(&dns);
	cr_expect_eq(o.calls, 1);
	cr_expect_eq(dns.unexpected, 0, "asked: %s", dns.log);
	cr_expect_eq(o.result, RELAY_HOPS_TEMPFAIL);
	cr_expect_str_eq(o.error, "no MX host of example.org has a usable address "
	                          "(mx1.example.org: no address)");
	fake_free(&dns);
}
