/* Reading certificates: the e-mail identity of a verified client certificate, and what
 * `sealctl cert list` shows. The identity rules are the security boundary: SAN rfc822Name,
 * then subject emailAddress, nothing else (never the CN, never a name the client sent:
 * CVE-2019-3814). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

/* Merges one candidate into *found: the first one is kept, a later different one makes
 * the identity ambiguous (-EINVAL). */
static int cert_identity_merge(char **found, const char *value, size_t len)
{
	char *addr;

	if (cert_address_normalize(value, len, &addr) < 0)
		return -EINVAL;
	if (*found == NULL) {
		*found = addr;
		return 0;
	}
	if (strcmp(*found, addr) != 0) {
		free(addr);
		return -EINVAL;
	}
	free(addr);
	return 0;
}

static int cert_identity_san(gnutls_x509_crt_t crt, char **found, const char **error_r)
{
	for (unsigned int seq = 0;; seq++) {
		unsigned int type = 0, critical = 0;
		size_t size = 0;
		char *buf;
		int ret;

		ret =
		    gnutls_x509_crt_get_subject_alt_name2(crt, seq, NULL, &size, &type, &critical);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return 0;
		if (ret != GNUTLS_E_SHORT_MEMORY_BUFFER && ret < 0)
			return cert_error(error_r, -EINVAL, "subjectAltName: %s",
			                  gnutls_strerror(ret));
		if (size > 65536)
			return cert_error(error_r, -EINVAL, "subjectAltName: entry too long");
		buf = xmalloc(size + 1);
		ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, &critical);
		if (ret < 0) {
			free(buf);
			return cert_error(error_r, -EINVAL, "subjectAltName: %s",
			                  gnutls_strerror(ret));
		}
		if (ret == GNUTLS_SAN_RFC822NAME && cert_identity_merge(found, buf, size) < 0) {
			free(buf);
			return cert_error(error_r, -EINVAL,
			                  "subjectAltName rfc822Name: malformed or ambiguous");
		}
		free(buf);
	}
}

static int cert_identity_email_attr(gnutls_x509_crt_t crt, char **found, const char **error_r)
{
	for (unsigned int idx = 0;; idx++) {
		char buf[CERT_ADDRESS_MAX + 2];
		size_t size = sizeof(buf);
		int ret;

		ret =
		    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_PKCS9_EMAIL, idx, 0, buf, &size);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return 0;
		if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER)
			return cert_error(error_r, -EINVAL, "subject emailAddress: too long");
		if (ret < 0)
			return cert_error(error_r, -EINVAL, "subject emailAddress: %s",
			                  gnutls_strerror(ret));
		if (cert_identity_merge(found, buf, size) < 0)
			return cert_error(error_r, -EINVAL,
			                  "subject emailAddress: malformed or ambiguous");
	}
}

static int cert_identity_from_crt(gnutls_x509_crt_t crt, char **addr_r, const char **error_r)
{
	char *found = NULL;
	int ret;

	*addr_r = NULL;
	ret = cert_identity_san(crt, &found, error_r);
	if (ret == 0 && found == NULL)
		ret = cert_identity_email_attr(crt, &found, error_r);
	if (ret < 0) {
		free(found);
		return ret;
	}
	if (found == NULL)
		return cert_error(error_r, -ENOENT,
		                  "no e-mail identity (SAN rfc822Name or emailAddress)");
	*addr_r = found;
	return 0;
}

int cert_identity_from_der(const unsigned char *der, size_t len, char **addr_r,
                           const char **error_r)
{
	gnutls_x509_crt_t crt;

	*addr_r = NULL;
	int ret = cert_crt_from_der(der, len, &crt, error_r);
	if (ret < 0)
		return ret;
	ret = cert_identity_from_crt(crt, addr_r, error_r);
	gnutls_x509_crt_deinit(crt);
	return ret;
}

int cert_info_from_pem_data(const char *pem, size_t len, struct cert_info *info_r,
                            const char **error_r)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
	gnutls_datum_t dn = {NULL, 0};
	gnutls_x509_crt_t crt;
	unsigned int critical = 0, is_ca = 0;
	int ret;

	memset(info_r, 0, sizeof(*info_r));
	if (len > CERT_FILE_MAX)
		return cert_error(error_r, -EINVAL, "certificate too large");
	ret = gnutls_x509_crt_init(&crt);
	if (ret < 0)
		return cert_gnutls_error(error_r, ret, "certificate");
	if ((ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (ret = cert_crt_serial_hex(crt, info_r->serial)) < 0 ||
	    (ret = gnutls_x509_crt_get_dn3(crt, &dn, 0)) < 0) {
		ret = cert_gnutls_error(error_r, ret, "certificate");
		goto out;
	}
	info_r->subject = xstrndup((const char *)dn.data, dn.size);
	info_r->not_before = gnutls_x509_crt_get_activation_time(crt);
	info_r->not_after = gnutls_x509_crt_get_expiration_time(crt);
	if (gnutls_x509_crt_get_basic_constraints(crt, &critical, &is_ca, NULL) >= 0)
		info_r->is_ca = is_ca != 0;
	/* A malformed identity is shown as none: list must still list it. */
	(void)cert_identity_from_crt(crt, &info_r->address, NULL);
	ret = 0;
out:
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
	if (ret < 0)
		cert_info_clear(info_r);
	return ret;
}

int cert_info_from_pem(const char *path, struct cert_info *info_r, const char **error_r)
{
	gnutls_datum_t d = {NULL, 0};
	int ret;

	memset(info_r, 0, sizeof(*info_r));
	ret = cert_file_read(path, &d, error_r);
	if (ret < 0)
		return ret;
	ret = cert_info_from_pem_data((const char *)d.data, d.size, info_r, error_r);
	if (ret < 0)
		ret = cert_error(error_r, ret, "%s: not a PEM certificate", path);
	cert_datum_wipe_free(&d);
	return ret;
}

void cert_info_clear(struct cert_info *info)
{
	free(info->subject);
	free(info->address);
	memset(info, 0, sizeof(*info));
}
