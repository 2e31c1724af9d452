/* The built-in client CA: creating it once, loading it for each signing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

/* Makes the CA certificate for key: self-signed, CA:TRUE pathlen 0, keyCertSign and
 * cRLSign only, SKI = AKI. Returns a GnuTLS code. */
static int cert_ca_make_crt(gnutls_x509_privkey_t key, const char *name, unsigned int days,
                            gnutls_x509_crt_t *crt_r)
{
	unsigned char serial[16], id[64];
	size_t id_len = sizeof(id);
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);
	int ret;

	ret = gnutls_x509_crt_init(&crt);
	if (ret < 0)
		return ret;
	ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (ret < 0)
		goto out;
	serial[0] = (unsigned char)((serial[0] & 0x3f) | 0x40);
	if ((ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt, now - CERT_BACKDATE_SECS)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt, cert_add_days(now, days))) < 0 ||
	    (ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name,
	                                         (unsigned int)strlen(name))) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (ret = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN |
	                                                  GNUTLS_KEY_CRL_SIGN)) < 0 ||
	    (ret = cert_key_id(key, id, &id_len)) < 0 ||
	    (ret = gnutls_x509_crt_set_subject_key_id(crt, id, id_len)) < 0 ||
	    (ret = gnutls_x509_crt_set_authority_key_id(crt, id, id_len)) < 0 ||
	    (ret = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (ret = cert_crt_reimport(&crt)) < 0)
		goto out;
	*crt_r = crt;
	return 0;
out:
	gnutls_x509_crt_deinit(crt);
	return ret;
}

int cert_ca_init(const char *dir, const char *name, unsigned int days, const char **error_r)
{
	char *key_path = xasprintf("%s/%s", dir, CERT_CA_KEY_FILE);
	char *crt_path = xasprintf("%s/%s", dir, CERT_CA_CRT_FILE);
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	char *key_pem = NULL, *crt_pem = NULL;
	struct stat st;
	int ret;

	if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
		ret = cert_error(error_r, -EINVAL, "CA name must be 1 to 64 bytes");
		goto out;
	}
	if (cert_add_days(0, days) == (time_t)-1) {
		ret =
		    cert_error(error_r, -EINVAL, "CA validity must be 1 to %d days", CERT_DAYS_MAX);
		goto out;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = cert_error(error_r, -errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* Refuse up front so a half-made CA is never left behind; the link() in
	 * cert_file_write still refuses atomically if one appears meanwhile. */
	if (lstat(key_path, &st) == 0 || lstat(crt_path, &st) == 0) {
		ret = cert_error(error_r, -EEXIST, "%s: a CA already exists there, not overwritten",
		                 dir);
		goto out;
	}
	if ((ret = cert_key_generate(CERT_KEY_ECDSA_P256, &key)) < 0 ||
	    (ret = cert_ca_make_crt(key, name, days, &crt)) < 0 ||
	    (ret = cert_key_export_pem(key, &key_pem)) < 0 ||
	    (ret = cert_crt_export_pem(crt, &crt_pem)) < 0) {
		ret = cert_gnutls_error(error_r, ret, "creating the CA");
		goto out;
	}
	ret = cert_file_write(key_path, key_pem, strlen(key_pem), 0600, false, error_r);
	if (ret < 0)
		goto out;
	ret = cert_file_write(crt_path, crt_pem, strlen(crt_pem), 0644, false, error_r);
	if (ret < 0) {
		/* Leave nothing half-made: a key without its certificate is useless. */
		(void)unlink(key_path);
		goto out;
	}
out:
	if (key_pem != NULL) {
		gnutls_memset(key_pem, 0, strlen(key_pem));
		free(key_pem);
	}
	free(crt_pem);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	free(key_path);
	free(crt_path);
	return ret;
}

int cert_ca_load(const char *dir, struct cert_ca **ca_r, const char **error_r)
{
	char *key_path = xasprintf("%s/%s", dir, CERT_CA_KEY_FILE);
	char *crt_path = xasprintf("%s/%s", dir, CERT_CA_CRT_FILE);
	gnutls_datum_t key_d = {NULL, 0}, crt_d = {NULL, 0};
	unsigned char id[64];
	size_t id_len = sizeof(id);
	struct cert_ca *ca = xcalloc(1, sizeof(*ca));
	unsigned int is_ca = 0;
	unsigned int critical;
	int ret;

	*ca_r = NULL;
	if ((ret = cert_file_read(crt_path, &crt_d, error_r)) < 0 ||
	    (ret = cert_file_read(key_path, &key_d, error_r)) < 0)
		goto out;
	if ((ret = gnutls_x509_crt_init(&ca->crt)) < 0 ||
	    (ret = gnutls_x509_crt_import(ca->crt, &crt_d, GNUTLS_X509_FMT_PEM)) < 0) {
		ret = cert_gnutls_error(error_r, ret, crt_path);
		goto out;
	}
	if ((ret = gnutls_x509_privkey_init(&ca->key)) < 0 ||
	    (ret = gnutls_x509_privkey_import2(ca->key, &key_d, GNUTLS_X509_FMT_PEM, NULL, 0)) <
	        0) {
		ret = cert_gnutls_error(error_r, ret, key_path);
		goto out;
	}
	ret = gnutls_x509_crt_get_basic_constraints(ca->crt, &critical, &is_ca, NULL);
	if (ret < 0 || !is_ca) {
		ret = cert_error(error_r, -EINVAL, "%s: not a CA certificate", crt_path);
		goto out;
	}
	ret = cert_key_id(ca->key, id, &id_len);
	ca->ski_len = sizeof(ca->ski);
	if (ret < 0 ||
	    gnutls_x509_crt_get_key_id(ca->crt, GNUTLS_KEYID_USE_SHA1, ca->ski, &ca->ski_len) < 0 ||
	    id_len != ca->ski_len || memcmp(id, ca->ski, id_len) != 0) {
		ret = cert_error(error_r, -EINVAL, "%s does not belong to %s", key_path, crt_path);
		goto out;
	}
	/* Prefer the SKI the certificate carries, so our AKIs match it exactly. */
	ca->ski_len = sizeof(ca->ski);
	if (gnutls_x509_crt_get_subject_key_id(ca->crt, ca->ski, &ca->ski_len, &critical) < 0) {
		memcpy(ca->ski, id, id_len);
		ca->ski_len = id_len;
	}
	ca->cert_pem = xstrndup((const char *)crt_d.data, crt_d.size);
	*ca_r = ca;
	ca = NULL;
	ret = 0;
out:
	cert_ca_free(&ca);
	cert_datum_wipe_free(&key_d);
	cert_datum_wipe_free(&crt_d);
	free(key_path);
	free(crt_path);
	return ret;
}

void cert_ca_free(struct cert_ca **cap)
{
	struct cert_ca *ca;

	if (cap == NULL || *cap == NULL)
		return;
	ca = *cap;
	*cap = NULL;
	if (ca->crt != NULL)
		gnutls_x509_crt_deinit(ca->crt);
	if (ca->key != NULL)
		gnutls_x509_privkey_deinit(ca->key);
	free(ca->cert_pem);
	free(ca);
}

const char *cert_ca_cert_pem(const struct cert_ca *ca)
{
	return ca->cert_pem;
}

int cert_ca_publish(const struct cert_ca *ca, const char *path, const char **error_r)
{
	gnutls_datum_t cur = {NULL, 0};
	size_t len = strlen(ca->cert_pem);
	int ret = cert_file_read(path, &cur, error_r);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && cur.size > 0) {
		bool same = cur.size == len && memcmp(cur.data, ca->cert_pem, len) == 0;
		cert_datum_wipe_free(&cur);
		if (same)
			return 0;
		return cert_error(error_r, -EEXIST,
		                  "%s holds other certificates, not replaced: add the CA "
		                  "certificate to it yourself",
		                  path);
	}
	cert_datum_wipe_free(&cur);
	/* Public on purpose: sealmaild, running as another user, reads it. */
	return cert_file_write(path, ca->cert_pem, len, 0644, true, error_r);
}
