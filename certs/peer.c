/* Reading certificates of servers: the DNS names a peer server's client certificate
 * carries, which sealmaild compares with a listener's peers list. A name is taken only
 * from where a server certificate states it (subjectAltName dNSName; the CN only when
 * there is no subjectAltName at all, as RFC 6125 6.4.4 allows), and only when it has the
 * shape of a host name, so that a CN such as "Corp Mail" never matches anything. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

/* More names than a server certificate has; a longer list is refused, not truncated. */
#define CERT_DNS_NAMES_MAX 64
#define CERT_DNS_NAME_MAX  253

/* A lower-cased copy of value when it is a host name (labels of letters, digits and '-',
 * no wildcard), else NULL. */
static char *cert_dns_name_dup(const char *value, size_t len)
{
	if (len == 0 || len > CERT_DNS_NAME_MAX || value[0] == '.' || value[len - 1] == '.')
		return NULL;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-' || c == '.';
		if (!ok)
			return NULL;
		if (c == '.') {
			if (label == 0)
				return NULL;
			label = 0;
		} else if (++label > 63) {
			return NULL;
		}
	}
	char *out = xstrndup(value, len);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return out;
}

static void cert_names_add(char ***names, size_t *n, char *name)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*names)[i], name) == 0) {
			free(name);
			return;
		}
	}
	*names = xreallocarray(*names, *n + 1, sizeof(**names));
	(*names)[(*n)++] = name;
}

void cert_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int cert_dns_names_crt(gnutls_x509_crt_t crt, char ***names, size_t *n, const char **error_r)
{
	unsigned int seq;
	for (seq = 0;; seq++) {
		unsigned int type = 0, critical = 0;
		size_t size = 0;
		int ret =
		    gnutls_x509_crt_get_subject_alt_name2(crt, seq, NULL, &size, &type, &critical);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret != GNUTLS_E_SHORT_MEMORY_BUFFER && ret < 0)
			return cert_error(error_r, -EINVAL, "subjectAltName: %s",
			                  gnutls_strerror(ret));
		if (seq >= CERT_DNS_NAMES_MAX || size > 65536)
			return cert_error(error_r, -EINVAL, "subjectAltName: too many or too long");
		char *buf = xmalloc(size + 1);
		ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf, &size, &type, &critical);
		if (ret < 0) {
			free(buf);
			return cert_error(error_r, -EINVAL, "subjectAltName: %s",
			                  gnutls_strerror(ret));
		}
		char *name = ret == GNUTLS_SAN_DNSNAME && strlen(buf) == size
		                 ? cert_dns_name_dup(buf, size)
		                 : NULL;
		if (name != NULL)
			cert_names_add(names, n, name);
		free(buf);
	}
	if (seq > 0)
		return 0;
	char cn[CERT_DNS_NAME_MAX + 2];
	size_t size = sizeof(cn);
	int ret = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size);
	if (ret == 0 && strlen(cn) == size) {
		char *name = cert_dns_name_dup(cn, size);
		if (name != NULL)
			cert_names_add(names, n, name);
	}
	return 0;
}

int cert_dns_names_from_der(const unsigned char *der, size_t len, char ***names_r, size_t *n_r,
                            const char **error_r)
{
	gnutls_x509_crt_t crt;
	char **names = NULL;
	size_t n = 0;

	*names_r = NULL;
	*n_r = 0;
	int ret = cert_crt_from_der(der, len, &crt, error_r);
	if (ret < 0)
		return ret;
	ret = cert_dns_names_crt(crt, &names, &n, error_r);
	gnutls_x509_crt_deinit(crt);
	if (ret < 0) {
		cert_names_free(names, n);
		return ret;
	}
	*names_r = names;
	*n_r = n;
	return 0;
}
