#ifndef SEALMAIL_CONN_PEER_H
#define SEALMAIL_CONN_PEER_H
/*
 * What a verified client certificate makes the peer of a connection (conn.h,
 * conn_peer_kind): the pure rule, apart from the TLS and X.509 work that gathers its
 * facts, so it can be tested on its own. Decided once, when the handshake completes.
 */
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "server/conn.h"

struct conn_peer_facts {
	bool verified;            /* a client certificate verified (CA, CRL, clientAuth) */
	bool user_identity;       /* it carries an e-mail identity, well-formed or not */
	bool from_peer_ca;        /* it chains to tls.peer_ca */
	const char *const *names; /* its DNS names (cert_dns_names_from_der) */
	size_t n_names;
};

/* The kind of peer on listener l. An organisation server needs a certificate without an
 * e-mail identity, on an smtp listener, with one of its names in l->peers when that is
 * set and from tls.peer_ca when that is set; with neither set there is none. *name_r is
 * the name it is known by (the listed one, else its first name; borrowed from f), or
 * NULL for any other kind. */
enum conn_peer_kind conn_peer_decide(const struct conn_peer_facts *f, const struct config *cfg,
                                     const struct cfg_listener *l, const char **name_r);

#endif
