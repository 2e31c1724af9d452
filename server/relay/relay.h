#ifndef SEALMAIL_RELAY_H
#define SEALMAIL_RELAY_H
/*
 * The relay runner: a timer on the server's loop that takes due queue entries from the
 * store (leased, so a crash loses nothing), groups their recipients by destination (a
 * configured route, else the domain's MX hosts), delivers over SMTP with STARTTLS per the
 * route's policy (relay_session.c), falling back along the route's or MX hosts' addresses
 * (RFC 5321 5.1), and records each recipient's outcome with its DSN (store_queue_report).
 * Everything runs on the loop, DNS included (c-ares, relay_dns.c).
 *
 * Not here: the SMTP state machine (relay_session.c), DSN text (relay_dsn.c), policy
 * (relay_policy.c), MX rules (relay_mx.c), next hops (relay_hops.c), the connection
 * (server/outconn.c), the TLS client (server/tls_client.c).
 */
#include <uv.h>

struct config;
struct relay;
struct services;

/* Starts a runner on loop (after the store is up): ends stale leases, logs a warning per
 * plaintext route, and ticks every few seconds. cfg and sv (of which it uses the store)
 * are borrowed and must outlive the runner. 0 and *relay_r, or <0 (a route's CA or the
 * relay certificate does not load; logged) and no runner. */
int relay_start(uv_loop_t *loop, const struct config *cfg, struct services *sv,
                struct relay **relay_r);
/* Stops taking work and cuts deliveries in flight (their leases make them due again at
 * the next start). The runner frees itself on the loop once its handles are closed and
 * its store calls answered: forget r after the call. NULL: nothing.
 * Call before the store closes, and run the loop until it has no more handles. */
void relay_stop(struct relay *r);

#endif
