/* Writing the CA's CRL and reading one back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

int cert_crl_write(struct cert_ca *ca, const struct cert_revoked *revoked, size_t n,
                   uint64_t crl_number, unsigned int next_update_days, const char *path,
                   const char **error_r)
{
	unsigned char number[9];
	size_t number_len = 0;
	gnutls_x509_crl_t crl = NULL;
	gnutls_datum_t pem = {NULL, 0};
	time_t now = time(NULL);
	int ret;

	if (cert_add_days(now, next_update_days) == (time_t)-1)
		return cert_error(error_r, -EINVAL, "next update must be 1 to %d days away",
		                  CERT_DAYS_MAX);
	/* Minimal big-endian INTEGER, with a 00 pad when the top bit is set. */
	for (int shift = 56; shift >= 0; shift -= 8) {
		unsigned char b = (unsigned char)(crl_number >> shift);
		if (number_len == 0 && b == 0 && shift > 0)
			continue;
		if (number_len == 0 && (b & 0x80))
			number[number_len++] = 0;
		number[number_len++] = b;
	}
	if ((ret = gnutls_x509_crl_init(&crl)) < 0 ||
	    (ret = gnutls_x509_crl_set_version(crl, 2)) < 0 ||
	    (ret = gnutls_x509_crl_set_this_update(crl, now)) < 0 ||
	    (ret = gnutls_x509_crl_set_next_update(crl, cert_add_days(now, next_update_days))) <
	        0 ||
	    (ret = gnutls_x509_crl_set_number(crl, number, number_len)) < 0 ||
	    (ret = gnutls_x509_crl_set_authority_key_id(crl, ca->ski, ca->ski_len)) < 0)
		goto out_gnutls;
	for (size_t i = 0; i < n; i++) {
		unsigned char raw[21];
		size_t raw_len;

		if (revoked[i].serial == NULL ||
		    cert_serial_from_hex(revoked[i].serial, raw, &raw_len) < 0) {
			ret = cert_error(error_r, -EINVAL, "%s: malformed serial %.48s", path,
			                 revoked[i].serial != NULL ? revoked[i].serial : "(null)");
			goto out;
		}
		ret = gnutls_x509_crl_set_crt_serial(crl, raw, raw_len, revoked[i].revoked_at);
		if (ret < 0)
			goto out_gnutls;
	}
	if ((ret = gnutls_x509_crl_sign2(crl, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (ret = gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &pem)) < 0)
		goto out_gnutls;
	ret = cert_file_write(path, pem.data, pem.size, 0644, true, error_r);
	goto out;
out_gnutls:
	ret = cert_gnutls_error(error_r, ret, path);
out:
	gnutls_free(pem.data);
	if (crl != NULL)
		gnutls_x509_crl_deinit(crl);
	return ret;
}

int cert_crl_info_from_file(const char *path, const char *ca_crt_path, struct cert_crl_info *info_r,
                            const char **error_r)
{
	gnutls_datum_t crl_d = {NULL, 0}, ca_d = {NULL, 0};
	gnutls_x509_crl_t crl = NULL;
	gnutls_x509_crt_t ca = NULL;
	unsigned char number[32];
	size_t number_len = sizeof(number);
	unsigned int status = 0, critical = 0;
	int ret, count;

	memset(info_r, 0, sizeof(*info_r));
	if ((ret = cert_file_read(path, &crl_d, error_r)) < 0 ||
	    (ret = cert_file_read(ca_crt_path, &ca_d, error_r)) < 0)
		goto out;
	if ((ret = gnutls_x509_crl_init(&crl)) < 0 ||
	    (ret = gnutls_x509_crl_import(crl, &crl_d, GNUTLS_X509_FMT_PEM)) < 0) {
		ret = cert_gnutls_error(error_r, ret, path);
		goto out;
	}
	if ((ret = gnutls_x509_crt_init(&ca)) < 0 ||
	    (ret = gnutls_x509_crt_import(ca, &ca_d, GNUTLS_X509_FMT_PEM)) < 0) {
		ret = cert_gnutls_error(error_r, ret, ca_crt_path);
		goto out;
	}
	ret = gnutls_x509_crl_verify(crl, &ca, 1, 0, &status);
	if (ret < 0 || status != 0) {
		ret = cert_error(error_r, -EBADMSG, "%s: not signed by the CA in %s", path,
		                 ca_crt_path);
		goto out;
	}
	info_r->this_update = gnutls_x509_crl_get_this_update(crl);
	info_r->next_update = gnutls_x509_crl_get_next_update(crl);
	count = gnutls_x509_crl_get_crt_count(crl);
	info_r->n_revoked = count > 0 ? (size_t)count : 0;
	if (gnutls_x509_crl_get_number(crl, number, &number_len, &critical) >= 0 &&
	    number_len <= sizeof(number)) {
		for (size_t i = 0; i < number_len; i++)
			info_r->number = info_r->number << 8 | number[i];
	}
	ret = 0;
out:
	if (crl != NULL)
		gnutls_x509_crl_deinit(crl);
	if (ca != NULL)
		gnutls_x509_crt_deinit(ca);
	cert_datum_wipe_free(&crl_d);
	cert_datum_wipe_free(&ca_d);
	return ret;
}
