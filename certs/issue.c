/* Issuing client and server certificates from the built-in CA. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert_private.h"
#include "common/xmalloc.h"

struct cert_ip {
	unsigned char addr[16];
	unsigned int len;
};

struct cert_leaf_req {
	bool server;
	bool client_auth; /* server certificates: clientAuth too, for relay.certificate */
	const char *name; /* normalised address or hostname */
	const struct cert_ip *ips;
	size_t n_ips;
	unsigned int days;
	enum cert_key_type key_type;
};

/* A random positive serial of exactly 16 octets: the top bit clear keeps the INTEGER
 * positive without a pad octet, the next bit set keeps the length (and the hex) fixed.
 * 126 random bits: collisions are not a practical concern (RFC 5280 asks for 64+). */
static int cert_serial_random(unsigned char serial[16])
{
	int ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, 16);

	if (ret < 0)
		return ret;
	serial[0] = (unsigned char)((serial[0] & 0x3f) | 0x40);
	return 0;
}

static int cert_leaf_fill(struct cert_ca *ca, const struct cert_leaf_req *req,
                          gnutls_x509_privkey_t key, gnutls_x509_crt_t crt, time_t now)
{
	unsigned char serial[16], id[64];
	size_t id_len = sizeof(id);
	unsigned int name_len = (unsigned int)strlen(req->name);
	int ret;

	if ((ret = cert_serial_random(serial)) < 0 ||
	    (ret = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (ret = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (ret = gnutls_x509_crt_set_activation_time(crt, now - CERT_BACKDATE_SECS)) < 0 ||
	    (ret = gnutls_x509_crt_set_expiration_time(crt, cert_add_days(now, req->days))) < 0 ||
	    (ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, req->name,
	                                         name_len)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (ret = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (ret = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (ret = cert_key_id(key, id, &id_len)) < 0 ||
	    (ret = gnutls_x509_crt_set_subject_key_id(crt, id, id_len)) < 0 ||
	    (ret = gnutls_x509_crt_set_authority_key_id(crt, ca->ski, ca->ski_len)) < 0)
		return ret;
	if (!req->server) {
		/* emailAddress in the subject too: some old clients only look there. */
		if ((ret = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_PKCS9_EMAIL, 0, req->name,
		                                         name_len)) < 0 ||
		    (ret =
		         gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_RFC822NAME, req->name,
		                                              name_len, GNUTLS_FSAN_APPEND)) < 0 ||
		    (ret = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) <
		        0)
			return ret;
	} else {
		ret = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, req->name,
		                                           name_len, GNUTLS_FSAN_APPEND);
		for (size_t i = 0; ret >= 0 && i < req->n_ips; i++)
			ret = gnutls_x509_crt_set_subject_alt_name(
			    crt, GNUTLS_SAN_IPADDRESS, req->ips[i].addr, req->ips[i].len,
			    GNUTLS_FSAN_APPEND);
		if (ret < 0 || (ret = gnutls_x509_crt_set_key_purpose_oid(
		                    crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
			return ret;
		/* A peer that asks our relay for a certificate accepts only clientAuth. */
		if (req->client_auth && (ret = gnutls_x509_crt_set_key_purpose_oid(
		                             crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0)
			return ret;
	}
	return gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0);
}

/* Makes key and signed certificate and fills issued_r's serial, PEMs and dates. */
static int cert_leaf_make(struct cert_ca *ca, const struct cert_leaf_req *req,
                          struct cert_issued *issued_r, const char **error_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	time_t now = time(NULL);
	int ret;

	if (cert_add_days(now, req->days) == (time_t)-1)
		return cert_error(error_r, -EINVAL, "validity must be 1 to %d days", CERT_DAYS_MAX);
	if ((ret = cert_key_generate(req->key_type, &key)) < 0 ||
	    (ret = gnutls_x509_crt_init(&crt)) < 0 ||
	    (ret = cert_leaf_fill(ca, req, key, crt, now)) < 0 ||
	    (ret = cert_crt_reimport(&crt)) < 0 ||
	    (ret = cert_crt_serial_hex(crt, issued_r->serial)) < 0 ||
	    (ret = cert_crt_export_pem(crt, &issued_r->cert_pem)) < 0 ||
	    (ret = cert_key_export_pem(key, &issued_r->key_pem)) < 0) {
		ret = cert_gnutls_error(error_r, ret, req->name);
		goto out;
	}
	issued_r->not_before = gnutls_x509_crt_get_activation_time(crt);
	issued_r->not_after = gnutls_x509_crt_get_expiration_time(crt);
	issued_r->name = xstrdup(req->name);
out:
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

/* 4 groups of 5 characters from a 32-symbol alphabet without 0/o/1/l: 100 bits, easy to
 * read out and to type on a phone. */
static int cert_password_random(char **pw_r)
{
	static const char alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
	unsigned char rnd[20];
	char *pw = xmalloc(24);
	size_t o = 0;
	int ret;

	ret = gnutls_rnd(GNUTLS_RND_KEY, rnd, sizeof(rnd));
	if (ret < 0) {
		free(pw);
		return ret;
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		if (i > 0 && i % 5 == 0)
			pw[o++] = '-';
		pw[o++] = alphabet[rnd[i] & 31];
	}
	pw[o] = '\0';
	gnutls_memset(rnd, 0, sizeof(rnd));
	*pw_r = pw;
	return 0;
}

int cert_issue_client(struct cert_ca *ca, const char *address,
                      const struct cert_client_options *opt, struct cert_issued *issued_r,
                      const char **error_r)
{
	struct cert_leaf_req req = {.server = false, .days = opt->days, .key_type = opt->key_type};
	char *addr = NULL, *path = NULL;
	unsigned char *p12 = NULL;
	size_t p12_len = 0;
	int ret;

	memset(issued_r, 0, sizeof(*issued_r));
	/* The address becomes a file name: no '/', no leading '.'. */
	if (cert_address_normalize(address, strlen(address), &addr) < 0 || addr[0] == '.' ||
	    strchr(addr, '/') != NULL) {
		free(addr);
		return cert_error(error_r, -EINVAL, "not a usable e-mail address");
	}
	if (opt->key_type != CERT_KEY_ECDSA_P256 && opt->key_type != CERT_KEY_RSA_2048) {
		free(addr);
		return cert_error(error_r, -EINVAL, "unknown key type");
	}
	if (opt->out_dir != NULL && opt->p12_password != NULL && opt->p12_password[0] == '\0') {
		free(addr);
		return cert_error(error_r, -EINVAL, "the PKCS#12 password must not be empty");
	}
	req.name = addr;
	ret = cert_leaf_make(ca, &req, issued_r, error_r);
	if (ret < 0 || opt->out_dir == NULL)
		goto out;

	if (opt->p12_password != NULL)
		issued_r->p12_password = xstrdup(opt->p12_password);
	else if ((ret = cert_password_random(&issued_r->p12_password)) < 0) {
		ret = cert_gnutls_error(error_r, ret, "making a password");
		goto out;
	}
	ret = cert_p12_export(ca, issued_r->cert_pem, issued_r->key_pem, addr,
	                      issued_r->p12_password, opt->legacy_p12, &p12, &p12_len, error_r);
	if (ret < 0)
		goto out;
	path = xasprintf("%s/%s.key", opt->out_dir, addr);
	ret = cert_file_write(path, issued_r->key_pem, strlen(issued_r->key_pem), 0600, true,
	                      error_r);
	free(path);
	if (ret < 0)
		goto out;
	path = xasprintf("%s/%s.crt", opt->out_dir, addr);
	ret = cert_file_write(path, issued_r->cert_pem, strlen(issued_r->cert_pem), 0644, true,
	                      error_r);
	free(path);
	if (ret < 0)
		goto out;
	path = xasprintf("%s/%s.p12", opt->out_dir, addr);
	ret = cert_file_write(path, p12, p12_len, 0600, true, error_r);
	free(path);
out:
	free(p12);
	free(addr);
	if (ret < 0)
		cert_issued_clear(issued_r);
	return ret;
}

static int cert_hostname_normalize(const char *in, char **out_r)
{
	size_t len = strlen(in);
	char *out;

	if (len == 0 || len > 253 || in[0] == '.' || in[0] == '-')
		return -EINVAL;
	out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
			free(out);
			return -EINVAL;
		}
		out[i] = c;
	}
	out[len] = '\0';
	*out_r = out;
	return 0;
}

int cert_issue_server(struct cert_ca *ca, const char *hostname, const char *const *ips,
                      size_t n_ips, unsigned int days, bool client_auth, const char *out_dir,
                      struct cert_issued *issued_r, const char **error_r)
{
	struct cert_leaf_req req = {
	    .server = true, .client_auth = client_auth, .days = days, .n_ips = n_ips};
	struct cert_ip *ipv = NULL;
	char *host = NULL, *path = NULL, *chain = NULL;
	int ret;

	memset(issued_r, 0, sizeof(*issued_r));
	if (cert_hostname_normalize(hostname, &host) < 0)
		return cert_error(error_r, -EINVAL, "not a usable host name");
	if (n_ips > 64) {
		ret = cert_error(error_r, -EINVAL, "at most 64 IP addresses");
		goto out;
	}
	if (n_ips > 0)
		ipv = xcalloc(n_ips, sizeof(*ipv));
	for (size_t i = 0; i < n_ips; i++) {
		if (inet_pton(AF_INET, ips[i], ipv[i].addr) == 1) {
			ipv[i].len = 4;
		} else if (inet_pton(AF_INET6, ips[i], ipv[i].addr) == 1) {
			ipv[i].len = 16;
		} else {
			ret =
			    cert_error(error_r, -EINVAL, "not a numeric IP address: %.64s", ips[i]);
			goto out;
		}
	}
	req.name = host;
	req.ips = ipv;
	ret = cert_leaf_make(ca, &req, issued_r, error_r);
	if (ret < 0)
		goto out;
	path = xasprintf("%s/server.key", out_dir);
	ret = cert_file_write(path, issued_r->key_pem, strlen(issued_r->key_pem), 0600, true,
	                      error_r);
	free(path);
	if (ret < 0)
		goto out;
	/* The full chain, as tls.certificate expects (docs/design.md). */
	chain = xasprintf("%s%s", issued_r->cert_pem, ca->cert_pem);
	path = xasprintf("%s/server.crt", out_dir);
	ret = cert_file_write(path, chain, strlen(chain), 0644, true, error_r);
	free(path);
out:
	free(chain);
	free(ipv);
	free(host);
	if (ret < 0)
		cert_issued_clear(issued_r);
	return ret;
}

void cert_issued_clear(struct cert_issued *issued)
{
	if (issued->key_pem != NULL)
		gnutls_memset(issued->key_pem, 0, strlen(issued->key_pem));
	if (issued->p12_password != NULL)
		gnutls_memset(issued->p12_password, 0, strlen(issued->p12_password));
	free(issued->key_pem);
	free(issued->p12_password);
	free(issued->cert_pem);
	free(issued->name);
	memset(issued, 0, sizeof(*issued));
}
