/*
 * tls.peer_ca (tls_peer.h). A separate trust list is the only reliable way to know which
 * anchor a verified chain ended at: the shared credentials hold both CAs and GnuTLS does
 * not say which one it used.
 */
#include "server/tls_peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char tls_peer_errbuf[512];

int tls_peer_ca_load(gnutls_certificate_credentials_t cred, const char *path,
                     gnutls_x509_trust_list_t *tl_r, const char **error_r)
{
	gnutls_x509_trust_list_t tl = NULL;
	int ret = gnutls_x509_trust_list_init(&tl, 0);

	*tl_r = NULL;
	if (ret < 0) {
		*error_r = "tls.peer_ca: out of memory";
		return -ENOMEM;
	}
	ret = gnutls_x509_trust_list_add_trust_file(tl, path, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (ret > 0)
		ret = gnutls_certificate_set_x509_trust_file(cred, path, GNUTLS_X509_FMT_PEM);
	if (ret <= 0) {
		snprintf(tls_peer_errbuf, sizeof(tls_peer_errbuf),
		         "tls.peer_ca %s: no PEM CA certificate (%s)", path,
		         ret < 0 ? gnutls_strerror(ret) : "none found");
		*error_r = tls_peer_errbuf;
		gnutls_x509_trust_list_deinit(tl, 1);
		return -EINVAL;
	}
	*tl_r = tl;
	return 0;
}

bool tls_peer_ca_issued(gnutls_x509_trust_list_t tl, const gnutls_datum_t *chain, unsigned n)
{
	/* The chain as sent, bounded: a server sends its certificate and a few
	 * intermediates. */
	gnutls_x509_crt_t crts[8];
	unsigned k = 0, status = 0;
	bool ok = false;

	if (tl == NULL || chain == NULL || n == 0)
		return false;
	for (; k < n && k < 8; k++) {
		if (gnutls_x509_crt_init(&crts[k]) < 0)
			goto out;
		if (gnutls_x509_crt_import(crts[k], &chain[k], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[k]);
			goto out;
		}
	}
	/* Dates and purpose were checked by the handshake's verification; here only the
	 * anchor matters. */
	ok = gnutls_x509_trust_list_verify_crt2(tl, crts, k, NULL, 0,
	                                        GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
	                                            GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
	                                        &status, NULL) == 0 &&
	     status == 0;
out:
	for (unsigned i = 0; i < k; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return ok;
}
