/* Self-signed certificates for unit tests (crt_testlib.h). */
#include "tests/unit/support/crt_testlib.h"

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

gnutls_x509_crt_t crt_test_begin(gnutls_x509_privkey_t *key_r, const char *cn)
{
	gnutls_x509_crt_t crt;
	unsigned char serial[] = {0x01, 0x02};
	time_t now = time(NULL);

	cr_assert_eq(gnutls_x509_privkey_init(key_r), 0);
	cr_assert_eq(gnutls_x509_privkey_generate(*key_r, GNUTLS_PK_ECDSA,
	                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
	                                          0),
	             0);
	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	cr_assert_eq(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
	cr_assert_eq(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
	cr_assert_eq(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
	cr_assert_eq(gnutls_x509_crt_set_key(crt, *key_r), 0);
	if (cn != NULL)
		cr_assert_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
		                                           (unsigned int)strlen(cn)),
		             0);
	return crt;
}

gnutls_datum_t crt_test_finish(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	gnutls_datum_t der = {NULL, 0};
	cr_assert_eq(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
	cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return der;
}
