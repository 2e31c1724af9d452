/*
 * .mobileconfig profiles (mobileconfig.h). The property list is written by hand: a fixed
 * shape of dict, string, integer, bool and data, every string escaped for XML.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/pkcs7.h>
#include <gnutls/x509.h>

#include "certs/mobileconfig.h"
#include "common/base64.h"
#include "common/xmalloc.h"

/* A random (version 4) UUID, upper case as Apple's tools write them. */
static void uuid4(char out[37])
{
	unsigned char r[16];
	gnutls_rnd(GNUTLS_RND_NONCE, r, sizeof(r));
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
	         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
	         r[13], r[14], r[15]);
}

static void xml_text(struct buf *o, const char *s)
{
	for (const char *p = s; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			buf_append_str(o, "&amp;");
			break;
		case '<':
			buf_append_str(o, "&lt;");
			break;
		case '>':
			buf_append_str(o, "&gt;");
			break;
		case '"':
			buf_append_str(o, "&quot;");
			break;
		default:
			/* Control characters are not XML 1.0 characters: left out. */
			if ((unsigned char)*p >= 0x20 || *p == '\t')
				buf_append(o, p, 1);
		}
	}
}

static void kv_str(struct buf *o, const char *key, const char *value)
{
	buf_printf(o, "\t<key>%s</key>\n\t<string>", key);
	xml_text(o, value);
	buf_append_str(o, "</string>\n");
}

static void kv_int(struct buf *o, const char *key, unsigned long long v)
{
	buf_printf(o, "\t<key>%s</key>\n\t<integer>%llu</integer>\n", key, v);
}

static void kv_bool(struct buf *o, const char *key, bool v)
{
	buf_printf(o, "\t<key>%s</key>\n\t<%s/>\n", key, v ? "true" : "false");
}

/* The keys every payload has. */
static void payload_head(struct buf *o, const char *type, const char *id, const char *uuid,
                         const char *name)
{
	kv_str(o, "PayloadType", type);
	kv_int(o, "PayloadVersion", 1);
	kv_str(o, "PayloadIdentifier", id);
	kv_str(o, "PayloadUUID", uuid);
	kv_str(o, "PayloadDisplayName", name);
}

/* A reverse-DNS identifier under the host name: mail.example.org -> org.example.mail. */
static void reverse_dns(struct buf *o, const char *host)
{
	const char *end = host + strlen(host);
	while (end > host) {
		const char *dot = end;
		while (dot > host && dot[-1] != '.')
			dot--;
		buf_append(o, dot, (size_t)(end - dot));
		if (dot > host)
			buf_append(o, ".", 1);
		end = dot > host ? dot - 1 : host;
	}
}

int mobileconfig_build(const struct mobileconfig *mc, struct buf *out, const char **error_r)
{
	if (mc->address == NULL || strchr(mc->address, '@') == NULL || mc->host == NULL ||
	    mc->host[0] == '\0' || mc->imap_port == 0) {
		*error_r = "a profile needs the address, the host name and an IMAP port";
		return -EINVAL;
	}
	const char *org = mc->organization != NULL ? mc->organization : "sealmail";
	char uuid_profile[37], uuid_mail[37], uuid_id[37];
	uuid4(uuid_profile);
	uuid4(uuid_mail);
	uuid4(uuid_id);
	struct buf base;
	buf_init(&base, 4096);
	reverse_dns(&base, mc->host);
	buf_append_str(&base, ".sealmail.");
	xml_text(&base, mc->address);
	buf_append(&base, "", 1);
	char id[600];
	snprintf(id, sizeof(id), "%s", base.data);
	buf_free(&base);

	buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	                    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	                    "<plist version=\"1.0\">\n<dict>\n");
	buf_append_str(out, "\t<key>PayloadContent</key>\n\t<array>\n");
	if (mc->p12 != NULL && mc->p12_len > 0) {
		/* The identity first: the account is set up once the identity is in. */
		char sub[700];
		snprintf(sub, sizeof(sub), "%s.identity", id);
		buf_append_str(out, "\t<dict>\n");
		payload_head(out, "com.apple.security.pkcs12", sub, uuid_id, mc->address);
		kv_str(out, "PayloadDescription",
		       "Your client certificate: the mail server asks for it. The device asks "
		       "for its password when the profile is installed.");
		kv_str(out, "PayloadCertificateFileName", "identity.p12");
		size_t b64_len = base64_encoded_len(mc->p12_len);
		char *b64 = xmalloc(b64_len + 1);
		base64_encode(mc->p12, mc->p12_len, b64);
		buf_append_str(out, "\t<key>PayloadContent</key>\n\t<data>\n");
		for (size_t i = 0; i < b64_len; i += 64) {
			buf_append(out, "\t", 1);
			buf_append(out, b64 + i, b64_len - i < 64 ? b64_len - i : 64);
			buf_append(out, "\n", 1);
		}
		buf_append_str(out, "\t</data>\n");
		free(b64);
		buf_append_str(out, "\t</dict>\n");
	}
	char sub[700];
	snprintf(sub, sizeof(sub), "%s.mail", id);
	buf_append_str(out, "\t<dict>\n");
	payload_head(out, "com.apple.mail.managed", sub, uuid_mail, mc->address);
	kv_str(out, "EmailAccountDescription", mc->address);
	kv_str(out, "EmailAccountType", "EmailTypeIMAP");
	kv_str(out, "EmailAddress", mc->address);
	kv_str(out, "IncomingMailServerAuthentication", "EmailAuthPassword");
	kv_str(out, "IncomingMailServerHostName", mc->host);
	kv_int(out, "IncomingMailServerPortNumber", mc->imap_port);
	kv_bool(out, "IncomingMailServerUseSSL", true);
	kv_str(out, "IncomingMailServerUsername", mc->address);
	if (mc->smtp_port != 0) {
		kv_str(out, "OutgoingMailServerAuthentication", "EmailAuthPassword");
		kv_str(out, "OutgoingMailServerHostName", mc->host);
		kv_int(out, "OutgoingMailServerPortNumber", mc->smtp_port);
		kv_bool(out, "OutgoingMailServerUseSSL", true);
		kv_str(out, "OutgoingMailServerUsername", mc->address);
		kv_bool(out, "OutgoingPasswordSameAsIncomingPassword", true);
	}
	buf_append_str(out, "\t</dict>\n\t</array>\n");
	kv_str(out, "PayloadDisplayName", "Mail");
	kv_str(out, "PayloadDescription",
	       mc->p12 != NULL ? "Sets up your mail account and installs your client certificate."
	                       : "Sets up your mail account.");
	kv_str(out, "PayloadIdentifier", id);
	kv_str(out, "PayloadOrganization", org);
	kv_bool(out, "PayloadRemovalDisallowed", false);
	kv_str(out, "PayloadType", "Configuration");
	kv_str(out, "PayloadUUID", uuid_profile);
	kv_int(out, "PayloadVersion", 1);
	buf_append_str(out, "</dict>\n</plist>\n");
	return 0;
}

int mobileconfig_sign(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                      const void *data, size_t len, unsigned char **out_r, size_t *out_len_r,
                      const char **error_r)
{
	gnutls_x509_crt_t *crts = NULL;
	unsigned n_crts = 0;
	gnutls_privkey_t key = NULL;
	gnutls_pkcs7_t p7 = NULL;
	gnutls_datum_t cd = {(unsigned char *)(uintptr_t)cert_pem, (unsigned)cert_len};
	gnutls_datum_t kd = {(unsigned char *)(uintptr_t)key_pem, (unsigned)key_len};
	gnutls_datum_t dd = {(unsigned char *)(uintptr_t)data, (unsigned)len};
	gnutls_datum_t der = {NULL, 0};
	int rc = -EINVAL;
	if (gnutls_x509_crt_list_import2(&crts, &n_crts, &cd, GNUTLS_X509_FMT_PEM, 0) < 0 ||
	    n_crts == 0) {
		*error_r = "the signing certificate is not a PEM certificate chain";
		goto out;
	}
	if (gnutls_privkey_init(&key) < 0 ||
	    gnutls_privkey_import_x509_raw(key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		*error_r = "the signing key is not an unencrypted PEM private key";
		goto out;
	}
	if (gnutls_pkcs7_init(&p7) < 0) {
		*error_r = "out of memory";
		goto out;
	}
	int ret = gnutls_pkcs7_sign(p7, crts[0], key, &dd, NULL, NULL, GNUTLS_DIG_SHA256,
	                            GNUTLS_PKCS7_EMBED_DATA | GNUTLS_PKCS7_INCLUDE_TIME |
	                                GNUTLS_PKCS7_INCLUDE_CERT);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		goto out;
	}
	/* The rest of the chain after the signature (the structure exists only then). */
	for (unsigned i = 1; i < n_crts; i++)
		if (gnutls_pkcs7_set_crt(p7, crts[i]) < 0) {
			*error_r = "cannot add the certificate chain";
			goto out;
		}
	ret = gnutls_pkcs7_export2(p7, GNUTLS_X509_FMT_DER, &der);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		goto out;
	}
	*out_r = der.data;
	*out_len_r = der.size;
	rc = 0;
out:
	if (p7 != NULL)
		gnutls_pkcs7_deinit(p7);
	if (key != NULL)
		gnutls_privkey_deinit(key);
	for (unsigned i = 0; i < n_crts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return rc;
}

void mobileconfig_free(unsigned char *der)
{
	gnutls_free(der);
}
