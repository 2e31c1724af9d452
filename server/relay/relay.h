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
 * (relay_policy.c), MX rules (relay_mx.c), next hops (relay_hops.c), the TLS client
 * (server/tls_client.c).
 */
struct server;

/* Starts the runner on srv's loop (after the listeners and the store are up): ends stale
 * leases, logs a warning per plaintext route, and ticks every few seconds. 0 or <0 (a
 * route's CA or the relay certificate does not load; logged). */
int relay_start(struct server *srv);
/* Stops taking work and cuts deliveries in flight (their leases make them due again at
 * the next start). The handles close on the loop; call before the store closes. */
void relay_stop(struct server *srv);

#endif
