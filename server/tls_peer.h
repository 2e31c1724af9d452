#ifndef SEALMAIL_TLS_PEER_H
#define SEALMAIL_TLS_PEER_H
/*
 * tls.peer_ca, for tls.c only: the CA of the organisation's own servers. Its certificates
 * go into the shared credentials, so that a server certificate from it verifies like a
 * client certificate, and into a trust list of their own, so that a session can tell
 * that its peer's certificate came from this CA and not from tls.client_ca.
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>

/* Loads the PEM CA certificates at path into cred's trust and into a new trust list
 * (*tl_r, freed with gnutls_x509_trust_list_deinit(tl, 1)). 0, or <0 with *error_r
 * naming the file. */
int tls_peer_ca_load(gnutls_certificate_credentials_t cred, const char *path,
                     gnutls_x509_trust_list_t *tl_r, const char **error_r);

/* True when the chain the peer sent (leaf first, already verified against cred) chains
 * to a certificate of the peer CA trust list tl. */
bool tls_peer_ca_issued(gnutls_x509_trust_list_t tl, const gnutls_datum_t *chain, unsigned n);

#endif
