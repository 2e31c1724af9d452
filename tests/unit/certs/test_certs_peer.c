/*
 * The DNS names of a peer server's certificate (certs/peer.c): dNSName entries, the CN only
 * without any subjectAltName, and only host-name shapes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "tests/unit/support/crt_testlib.h"
#include "certs/cert.h"

struct names_case {
	const char *name;
	const char *dns[3]; /* dNSName entries */
	const char *email;  /* an rfc822Name entry, or NULL */
	const char *cn;
	const char *want[3]; /* the names expected, in order */
};

/* A self-signed certificate with exactly these names, as DER (gnutls_free). */
static gnutls_datum_t make_der(const struct names_case *c)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt = crt_test_begin(&key, c->cn);
	for (int i = 0; i < 3 && c->dns[i] != NULL; i++)
		cr_assert_eq(gnutls_x509_crt_set_subject_alt_name(
		                 crt, GNUTLS_SAN_DNSNAME, c->dns[i],
		                 (unsigned int)strlen(c->dns[i]), GNUTLS_FSAN_APPEND),
		             0);
	if (c->email != NULL)
		cr_assert_eq(gnutls_x509_crt_set_subject_alt_name(
		                 crt, GNUTLS_SAN_RFC822NAME, c->email,
		                 (unsigned int)strlen(c->email), GNUTLS_FSAN_APPEND),
		             0);
	return crt_test_finish(crt, key);
}

static const struct names_case cases[] = {
    {"one dns name", {"mx2.corp.example"}, NULL, "ignored.example", {"mx2.corp.example"}},
    {"lower-cased, duplicates once",
     {"MX2.Corp.Example", "mx2.corp.example", "mx3.corp.example"},
     NULL,
     NULL,
     {"mx2.corp.example", "mx3.corp.example"}},
    {"wildcard is no name",
     {"*.corp.example", "mx2.corp.example"},
     NULL,
     NULL,
     {"mx2.corp.example"}},
    {"cn without any san", {NULL}, NULL, "mx4.corp.example", {"mx4.corp.example"}},
    {"cn not a host name", {NULL}, NULL, "Corp Mail Server", {NULL}},
    /* With a subjectAltName (even an e-mail one only) the CN is never read. */
    {"cn ignored beside an rfc822Name", {NULL}, "alice@corp.example", "mx5.corp.example", {NULL}},
    {"dns beside an rfc822Name",
     {"mx6.corp.example"},
     "alice@corp.example",
     NULL,
     {"mx6.corp.example"}},
    {"trailing dot, empty label", {"mx.corp.example.", "a..b"}, NULL, NULL, {NULL}},
    {"nothing", {NULL}, NULL, NULL, {NULL}},
};

Test(certs_peer, dns_names_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct names_case *c = &cases[i];
		gnutls_datum_t der = make_der(c);
		char **names = NULL;
		size_t n = 99;
		const char *error = NULL;
		cr_assert_eq(cert_dns_names_from_der(der.data, der.size, &names, &n, &error), 0,
		             "%s: %s", c->name, error ? error : "");
		size_t want = 0;
		while (want < 3 && c->want[want] != NULL)
			want++;
		cr_expect_eq(n, want, "%s: %zu names", c->name, n);
		for (size_t k = 0; k < n && k < want; k++)
			cr_expect_str_eq(names[k], c->want[k], "%s", c->name);
		cert_names_free(names, n);
		gnutls_free(der.data);
	}
}

Test(certs_peer, junk_is_an_error)
{
	static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	char **names = (char **)1;
	size_t n = 1;
	const char *error = NULL;
	cr_assert_eq(cert_dns_names_from_der(junk, sizeof(junk), &names, &n, &error), -EINVAL);
	cr_assert_null(names);
	cr_assert_eq(n, 0);
	cr_assert_not_null(error);
	cr_assert_eq(cert_dns_names_from_der(NULL, 0, &names, &n, &error), -EINVAL);
}
