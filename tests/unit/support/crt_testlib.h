#ifndef SEALMAIL_TESTS_CRT_TESTLIB_H
#define SEALMAIL_TESTS_CRT_TESTLIB_H
/*
 * Self-signed certificates made in memory for unit tests of what reads certificates
 * (identities, peer names, extended key usage): the test adds the names and extensions
 * it is about between crt_test_begin and crt_test_finish. Failures are criterion asserts.
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* A certificate being made: a new ECDSA P-256 key in *key_r, version 3, a fixed serial,
 * valid from a minute ago for a day, subject CN cn (none when NULL). */
gnutls_x509_crt_t crt_test_begin(gnutls_x509_privkey_t *key_r, const char *cn);
/* Signs crt with key (self-signed), frees both and returns the DER (gnutls_free its
 * data). */
gnutls_datum_t crt_test_finish(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key);

#endif
