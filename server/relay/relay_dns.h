#ifndef SEALMAIL_RELAY_DNS_H
#define SEALMAIL_RELAY_DNS_H
/*
 * DNS for the relay: one c-ares channel driven by the server's libuv loop. c-ares says
 * which sockets it wants watched (ARES_OPT_SOCK_STATE_CB): each gets a uv_poll_t, and one
 * uv_timer_t follows ares_timeout(). No thread per lookup, every callback runs on the loop,
 * and closing cancels whatever is in flight.
 *
 * Three lookups: the MX records of a domain; the A or the AAAA records of a name (DNS only:
 * MX hosts and implicit MX); and the addresses of a route's host (the hosts file, then DNS,
 * both families, as the system resolver would).
 *
 * Not here: what the answers mean for a delivery (relay_hops.c, relay_mx.c).
 */
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

struct relay_dns;
struct relay_mx;

/* Each query gets this long, then twice as long once more, before it is a timeout. */
#define RELAY_DNS_TIMEOUT_MS 2000
#define RELAY_DNS_TRIES      2
/* Addresses kept from one answer. */
#define RELAY_DNS_ADDRS_MAX 8

enum relay_dns_status {
	RELAY_DNS_OK,
	RELAY_DNS_NXDOMAIN,  /* the name does not exist */
	RELAY_DNS_NODATA,    /* the name exists, without records of the type asked */
	RELAY_DNS_TEMPFAIL,  /* server failure, refusal, timeout, bad answer: ask again later */
	RELAY_DNS_CANCELLED, /* relay_dns_close ran */
};

/*
 * A channel on loop. servers: relay.dns_servers entries (valid for cfg_dns_server_parse),
 * borrowed; n 0: the name servers of /etc/resolv.conf. 0, or <0 with *error_r (static
 * text).
 */
int relay_dns_new(uv_loop_t *loop, char *const *servers, size_t n, struct relay_dns **dns_r,
                  const char **error_r);
/* Cancels every lookup in flight (each callback runs with RELAY_DNS_CANCELLED before this
 * returns), then closes the handles; the memory goes when the loop has closed them. Lookups
 * asked for afterwards fail at once. Not from inside a lookup's callback. */
void relay_dns_close(struct relay_dns *dns);

/* Once. On OK, mx (n >= 1, hosts "" for the root) is the callback's: relay_mx_free. On
 * other statuses, error is a short reason ("timeout", "server failure"). Every error of
 * both callbacks is a static string: a caller may keep the pointer past the call (the next
 * hops keep each host's reason until the last answer). */
typedef void relay_dns_mx_cb(void *ctx, enum relay_dns_status st, const char *error,
                             struct relay_mx *mx, size_t n);
/* Once. On OK, addrs (1 to RELAY_DNS_ADDRS_MAX, port 0) are borrowed for the call. */
typedef void relay_dns_addr_cb(void *ctx, enum relay_dns_status st, const char *error,
                               const struct sockaddr_storage *addrs, size_t n);

/* Each returns 0, and cb runs once, maybe before the function returns (an answer c-ares has
 * at hand); or -ECANCELED after relay_dns_close, and cb never runs. */
int relay_dns_mx(struct relay_dns *dns, const char *domain, relay_dns_mx_cb *cb, void *ctx);
/* family: AF_INET (A records) or AF_INET6 (AAAA records). */
int relay_dns_addrs(struct relay_dns *dns, const char *host, int family, relay_dns_addr_cb *cb,
                    void *ctx);
int relay_dns_lookup(struct relay_dns *dns, const char *host, relay_dns_addr_cb *cb, void *ctx);

#endif
