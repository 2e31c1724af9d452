#ifndef SEALMAIL_RELAY_HOPS_H
#define SEALMAIL_RELAY_HOPS_H
/*
 * The next hops of one delivery, in the order to try them (RFC 5321 5.1): for a route,
 * every address of its host; otherwise the recipient domain's MX hosts by preference (the
 * domain itself when it has no MX records: the implicit MX), each with its AAAA, then its
 * A addresses. What DNS says becomes a result: a list to try, a temporary failure (try the
 * whole list again later), or a permanent one with its DSN status (no such domain 5.1.2,
 * null MX 5.1.10, neither MX nor address 5.4.4).
 *
 * Not here: connecting and falling back along the list (relay.c), the DNS channel
 * (relay_dns.c), the rules about MX sets (relay_mx.c).
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/relay/relay_dns.h"

#define RELAY_HOPS_MAX_HOSTS 10 /* MX hosts looked up; RFC 5321 5.1 asks for at least 2 */
#define RELAY_HOPS_MAX       20 /* addresses tried in all */

struct relay_hop {
	char host[256];               /* what the certificate must name: MX host or route host */
	char addr_text[64];           /* the address, for messages */
	struct sockaddr_storage addr; /* port included */
};

enum relay_hops_result {
	RELAY_HOPS_OK,        /* n >= 1 */
	RELAY_HOPS_TEMPFAIL,  /* nothing to try now; error says why */
	RELAY_HOPS_PERMFAIL,  /* the recipients fail for good: status and error */
	RELAY_HOPS_CANCELLED, /* the DNS channel closed (the server is stopping) */
};

struct relay_hops {
	enum relay_hops_result result;
	struct relay_hop *v;
	size_t n;
	bool mx;            /* from MX records, or the implicit MX; false for a route */
	const char *status; /* PERMFAIL: "5.1.2", "5.1.10", "5.4.4" */
	char error[512];    /* not OK: the reason, naming the domain or the hosts */
	char skipped[512];  /* OK: MX hosts without an address ("mx1.example: timeout"), or "" */
};

struct relay_hops_query {
	const char *domain; /* the recipient domain */
	const char *host;   /* a route's host (name or address), or NULL: MX hosts */
	uint16_t port;
	const char *self; /* our host name: an MX host by this name would loop */
};

/* Once, with hops now the callback's (relay_hops_free). */
typedef void relay_hops_cb(void *ctx, struct relay_hops *hops);

/* Starts resolving q (its strings are copied). 0, and cb runs once, maybe before this
 * returns (an address needs no lookup, or DNS answered from what it had); or <0 (the
 * channel is closed) and cb never runs. */
int relay_hops_resolve(struct relay_dns *dns, const struct relay_hops_query *q, relay_hops_cb *cb,
                       void *ctx);
void relay_hops_free(struct relay_hops *h);

#endif
