/* PKCS#12 bundles for handing a key and certificate to a person. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/pkcs12.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

/* Adds one certificate bag, encrypted under password. friendly may be NULL (the CA). */
static int cert_p12_add_crt(gnutls_pkcs12_t p12, gnutls_x509_crt_t crt, const char *friendly,
                            const gnutls_datum_t *key_id, const char *password, unsigned int flags)
{
	gnutls_pkcs12_bag_t bag;
	int ret, idx;

	ret = gnutls_pkcs12_bag_init(&bag);
	if (ret < 0)
		return ret;
	idx = gnutls_pkcs12_bag_set_crt(bag, crt);
	if (idx < 0) {
		ret = idx;
		goto out;
	}
	if (friendly != NULL && (ret = gnutls_pkcs12_bag_set_friendly_name(bag, idx, friendly)) < 0)
		goto out;
	if (key_id != NULL && (ret = gnutls_pkcs12_bag_set_key_id(bag, idx, key_id)) < 0)
		goto out;
	if ((ret = gnutls_pkcs12_bag_encrypt(bag, password, flags)) < 0)
		goto out;
	ret = gnutls_pkcs12_set_bag(p12, bag);
out:
	gnutls_pkcs12_bag_deinit(bag);
	return ret;
}

/* Adds the key as a shrouded (PKCS#8-encrypted) key bag. */
static int cert_p12_add_key(gnutls_pkcs12_t p12, gnutls_x509_privkey_t key, const char *friendly,
                            const gnutls_datum_t *key_id, const char *password, unsigned int flags)
{
	gnutls_datum_t enc = {NULL, 0};
	gnutls_pkcs12_bag_t bag;
	int ret, idx;

	ret = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, password, flags, &enc);
	if (ret < 0)
		return ret;
	ret = gnutls_pkcs12_bag_init(&bag);
	if (ret < 0)
		goto out_free;
	idx = gnutls_pkcs12_bag_set_data(bag, GNUTLS_BAG_PKCS8_ENCRYPTED_KEY, &enc);
	if (idx < 0) {
		ret = idx;
		goto out;
	}
	if ((ret = gnutls_pkcs12_bag_set_friendly_name(bag, idx, friendly)) < 0 ||
	    (ret = gnutls_pkcs12_bag_set_key_id(bag, idx, key_id)) < 0)
		goto out;
	ret = gnutls_pkcs12_set_bag(p12, bag);
out:
	gnutls_pkcs12_bag_deinit(bag);
out_free:
	gnutls_free(enc.data);
	return ret;
}

int cert_p12_export(const struct cert_ca *ca, const char *cert_pem, const char *key_pem,
                    const char *friendly_name, const char *password, bool legacy,
                    unsigned char **der_r, size_t *len_r, const char **error_r)
{
	/* Legacy: what macOS Keychain, iOS and Android <= 12 import. */
	unsigned int flags = legacy ? GNUTLS_PKCS_PKCS12_3DES : GNUTLS_PKCS_PBES2_AES_256;
	gnutls_mac_algorithm_t mac = legacy ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256;
	gnutls_datum_t crt_d = {(unsigned char *)cert_pem, (unsigned int)strlen(cert_pem)};
	gnutls_datum_t key_d = {(unsigned char *)key_pem, (unsigned int)strlen(key_pem)};
	gnutls_datum_t out = {NULL, 0}, key_id;
	unsigned char id[64];
	size_t id_len = sizeof(id);
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_pkcs12_t p12 = NULL;
	int ret;

	*der_r = NULL;
	*len_r = 0;
	if (password == NULL || password[0] == '\0')
		return cert_error(error_r, -EINVAL, "the PKCS#12 password must not be empty");
	if ((ret = gnutls_x509_crt_init(&crt)) < 0 ||
	    (ret = gnutls_x509_crt_import(crt, &crt_d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (ret = gnutls_x509_privkey_init(&key)) < 0 ||
	    (ret = gnutls_x509_privkey_import2(key, &key_d, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
	    (ret = cert_key_id(key, id, &id_len)) < 0)
		goto out;
	/* localKeyId ties the key to its certificate in every importer. */
	key_id.data = id;
	key_id.size = (unsigned int)id_len;
	if ((ret = gnutls_pkcs12_init(&p12)) < 0 ||
	    (ret = cert_p12_add_crt(p12, crt, friendly_name, &key_id, password, flags)) < 0 ||
	    (ret = cert_p12_add_crt(p12, ca->crt, NULL, NULL, password, flags)) < 0 ||
	    (ret = cert_p12_add_key(p12, key, friendly_name, &key_id, password, flags)) < 0 ||
	    (ret = gnutls_pkcs12_generate_mac2(p12, mac, password)) < 0 ||
	    (ret = gnutls_pkcs12_export2(p12, GNUTLS_X509_FMT_DER, &out)) < 0)
		goto out;
	*der_r = xmalloc(out.size);
	memcpy(*der_r, out.data, out.size);
	*len_r = out.size;
	ret = 0;
out:
	if (ret < 0)
		ret = cert_gnutls_error(error_r, ret, "building the PKCS#12 bundle");
	gnutls_free(out.data);
	if (p12 != NULL)
		gnutls_pkcs12_deinit(p12);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ret;
}
