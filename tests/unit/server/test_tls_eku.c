/* The extended key usage rule for client certificates (tls_client_eku_refusal): clientAuth
 * is required; no extended key usage at all only when allowed; serverAuth alone and
 * anyExtendedKeyUsage are not a client's. */
#include <criterion/criterion.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <time.h>

#include "tests/unit/support/crt_testlib.h"
#include "server/tls.h"

#define KP_ANY "2.5.29.37.0"

/* A self-signed leaf with the given purposes (NULL-terminated; none: no extension), as
 * DER in *der (gnutls_free). Signature and issuer do not matter to the rule. */
static void make_der(const char *const *purposes, gnutls_datum_t *der)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt = crt_test_begin(&key, "alice");
	cr_assert_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
	for (size_t i = 0; purposes[i] != NULL; i++)
		cr_assert_eq(gnutls_x509_crt_set_key_purpose_oid(crt, purposes[i], 0), 0);
	*der = crt_test_finish(crt, key);
}

static const char *refusal(const char *const *purposes, enum cfg_no_eku no_eku)
{
	gnutls_datum_t der;
	make_der(purposes, &der);
	const char *why = tls_client_eku_refusal(der.data, der.size, no_eku);
	gnutls_free(der.data);
	return why;
}

Test(tls_eku, client_auth_is_accepted)
{
	const char *const client[] = {GNUTLS_KP_TLS_WWW_CLIENT, NULL};
	const char *const both[] = {GNUTLS_KP_TLS_WWW_SERVER, GNUTLS_KP_TLS_WWW_CLIENT, NULL};
	const char *const with_email[] = {GNUTLS_KP_EMAIL_PROTECTION, GNUTLS_KP_TLS_WWW_CLIENT,
	                                  NULL};
	cr_expect_null(refusal(client, CFG_NO_EKU_REFUSE));
	cr_expect_null(refusal(both, CFG_NO_EKU_REFUSE));
	cr_expect_null(refusal(with_email, CFG_NO_EKU_REFUSE));
}

Test(tls_eku, server_auth_only_is_refused_whatever_the_policy)
{
	const char *const server[] = {GNUTLS_KP_TLS_WWW_SERVER, NULL};
	cr_expect_str_eq(refusal(server, CFG_NO_EKU_REFUSE), TLS_EKU_NOT_CLIENT);
	cr_expect_str_eq(refusal(server, CFG_NO_EKU_ALLOW), TLS_EKU_NOT_CLIENT);
}

Test(tls_eku, any_purpose_is_not_a_client)
{
	const char *const any[] = {KP_ANY, NULL};
	const char *const email[] = {GNUTLS_KP_EMAIL_PROTECTION, NULL};
	cr_expect_str_eq(refusal(any, CFG_NO_EKU_ALLOW), TLS_EKU_NOT_CLIENT);
	cr_expect_str_eq(refusal(email, CFG_NO_EKU_ALLOW), TLS_EKU_NOT_CLIENT);
}

Test(tls_eku, no_eku_follows_the_policy)
{
	const char *const none[] = {NULL};
	cr_expect_str_eq(refusal(none, CFG_NO_EKU_REFUSE), TLS_EKU_NONE);
	cr_expect_null(refusal(none, CFG_NO_EKU_ALLOW));
}

Test(tls_eku, garbage_is_invalid)
{
	static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	cr_expect_str_eq(tls_client_eku_refusal(junk, sizeof(junk), CFG_NO_EKU_ALLOW), "invalid");
	cr_expect_str_eq(tls_client_eku_refusal(junk, 0, CFG_NO_EKU_ALLOW), "invalid");
}
