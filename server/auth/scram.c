/*
 * One SCRAM-SHA-256(-PLUS) server exchange over GNU SASL (see scram.h). The material is
 * set as session properties before the first step, so GNU SASL never needs a callback:
 * the store lookup it would otherwise ask for runs asynchronously in scram_login.c.
 */
#include "server/auth/scram.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gsasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/xmalloc.h"

#define SCRAM_MSG_MAX     2048 /* longest base64 client message accepted */
#define SCRAM_DUMMY_SALT  16
#define SCRAM_DUMMY_ITERS 4096 /* what the store uses for every user */

struct scram_server {
	Gsasl_session *s;
	bool plus;
	bool refuse; /* authzid other than the user: fail at the end */
	unsigned steps;
};

static Gsasl *scram_gsasl;
static unsigned char scram_secret[32]; /* keys the dummy material of unknown users */

static int scram_global_init(void)
{
	if (scram_gsasl != NULL)
		return 0;
	if (gnutls_rnd(GNUTLS_RND_KEY, scram_secret, sizeof(scram_secret)) < 0)
		return -EIO;
	if (gsasl_init(&scram_gsasl) != GSASL_OK) {
		scram_gsasl = NULL;
		return -EIO;
	}
	return 0;
}

int scram_server_new(bool plus, const unsigned char *cb, size_t cb_len, struct scram_server **x_r)
{
	*x_r = NULL;
	if (plus && (cb == NULL || cb_len != SCRAM_CB_LEN))
		return -ENOTSUP;
	if (scram_global_init() < 0)
		return -EIO;
	struct scram_server *x = xcalloc(1, sizeof(*x));
	x->plus = plus;
	if (gsasl_server_start(scram_gsasl, plus ? SCRAM_MECH_PLUS : SCRAM_MECH, &x->s) !=
	    GSASL_OK) {
		free(x);
		return -EIO;
	}
	if (cb != NULL && cb_len == SCRAM_CB_LEN) {
		char b64[48]; /* base64 of SCRAM_CB_LEN bytes: 44 */
		base64_encode(cb, cb_len, b64);
		int r = gsasl_property_set(x->s, GSASL_CB_TLS_EXPORTER, b64);
		if (r != GSASL_OK) {
			scram_server_free(x);
			return -EIO;
		}
	}
	*x_r = x;
	return 0;
}

void scram_server_free(struct scram_server *x)
{
	if (x == NULL)
		return;
	gsasl_finish(x->s); /* frees the properties; GNU SASL wipes its key material */
	free(x);
}

/* RFC 5802 saslname: "=2C" is ',', "=3D" is '='; any other '=' is an error. */
static int scram_unescape(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];
		if (ch == '=') {
			if (n - i < 3)
				return -EINVAL;
			if (p[i + 1] == '2' && p[i + 2] == 'C')
				ch = ',';
			else if (p[i + 1] == '3' && p[i + 2] == 'D')
				ch = '=';
			else
				return -EINVAL;
			i += 2;
		}
		if ((unsigned char)ch < 0x20 || ch == 0x7f || o + 1 >= outlen)
			return -EINVAL;
		out[o++] = ch;
	}
	if (o == 0)
		return -EINVAL;
	out[o] = '\0';
	return 0;
}

int scram_client_first_user(const char *b64, size_t len, char *user, size_t userlen)
{
	unsigned char raw[SCRAM_MSG_MAX / 4 * 3 + 3];
	if (len == 0 || len > SCRAM_MSG_MAX || userlen == 0)
		return -EINVAL;
	long n = base64_decode(b64, len, raw);
	if (n <= 0 || memchr(raw, '\0', (size_t)n) != NULL)
		return -EINVAL;
	/* gs2-header: cbind-flag "," [authzid] "," then client-first-message-bare, whose
	 * first attribute (after an optional reserved "m=") is n=. */
	const char *p = (const char *)raw, *end = p + n;
	for (int commas = 0; commas < 2; p++) {
		if (p == end)
			return -EINVAL;
		if (*p == ',')
			commas++;
	}
	if (end - p >= 2 && p[0] == 'm' && p[1] == '=')
		return -EINVAL; /* no extensions are supported (RFC 5802 5.1) */
	if (end - p < 2 || p[0] != 'n' || p[1] != '=')
		return -EINVAL;
	p += 2;
	const char *comma = memchr(p, ',', (size_t)(end - p));
	if (comma == NULL)
		return -EINVAL;
	return scram_unescape(p, (size_t)(comma - p), user, userlen);
}

int scram_server_set_material(struct scram_server *x, const char *salt, unsigned iterations,
                              const char *stored_key, const char *server_key)
{
	char iter[16];
	snprintf(iter, sizeof(iter), "%u", iterations);
	if (gsasl_property_set(x->s, GSASL_SCRAM_ITER, iter) != GSASL_OK ||
	    gsasl_property_set(x->s, GSASL_SCRAM_SALT, salt) != GSASL_OK ||
	    gsasl_property_set(x->s, GSASL_SCRAM_STOREDKEY, stored_key) != GSASL_OK ||
	    gsasl_property_set(x->s, GSASL_SCRAM_SERVERKEY, server_key) != GSASL_OK)
		return -EIO;
	return 0;
}

/* HMAC-SHA-256(secret, label NUL user), so each value is fixed per process and name. */
static int scram_dummy_value(const char *label, const char *user, unsigned char out[32])
{
	gnutls_hmac_hd_t h;
	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, scram_secret, sizeof(scram_secret)) < 0)
		return -EIO;
	gnutls_hmac(h, label, strlen(label) + 1);
	gnutls_hmac(h, user, strlen(user));
	gnutls_hmac_deinit(h, out);
	return 0;
}

int scram_server_set_dummy(struct scram_server *x, const char *user)
{
	unsigned char salt[32], stored[32], server[32];
	char salt64[48], stored64[48], server64[48]; /* base64 of at most 32 bytes: 44 */
	int r = -EIO;
	if (scram_global_init() < 0 || scram_dummy_value("salt", user, salt) < 0 ||
	    scram_dummy_value("stored", user, stored) < 0 ||
	    scram_dummy_value("server", user, server) < 0)
		goto out;
	base64_encode(salt, SCRAM_DUMMY_SALT, salt64);
	base64_encode(stored, sizeof(stored), stored64);
	base64_encode(server, sizeof(server), server64);
	r = scram_server_set_material(x, salt64, SCRAM_DUMMY_ITERS, stored64, server64);
out:
	gnutls_memset(stored, 0, sizeof(stored));
	gnutls_memset(server, 0, sizeof(server));
	gnutls_memset(stored64, 0, sizeof(stored64));
	gnutls_memset(server64, 0, sizeof(server64));
	return r;
}

int scram_server_step(struct scram_server *x, const char *b64, size_t len, char **out_r)
{
	char in[SCRAM_MSG_MAX + 1];
	char *out = NULL;
	*out_r = NULL;
	if (len > SCRAM_MSG_MAX || x->steps >= 2 || memchr(b64, '\0', len) != NULL)
		return -EINVAL;
	memcpy(in, b64, len);
	in[len] = '\0';
	int rc = gsasl_step64(x->s, in, &out);
	explicit_bzero(in, len);
	x->steps++;
	if (rc == GSASL_NEEDS_MORE && x->steps == 1) {
		/* An authorization identity other than the login itself is not supported
		 * (as with PLAIN): the exchange goes on and ends like a wrong password. */
		const char *authzid = gsasl_property_fast(x->s, GSASL_AUTHZID);
		const char *authid = gsasl_property_fast(x->s, GSASL_AUTHID);
		if (authid == NULL ||
		    (authzid != NULL && authzid[0] != '\0' && strcasecmp(authzid, authid) != 0))
			x->refuse = true;
		*out_r = xstrdup(out);
		gsasl_free(out);
		return 0;
	}
	if (rc == GSASL_OK && x->steps == 2 && !x->refuse) {
		*out_r = xstrdup(out);
		gsasl_free(out);
		return 1;
	}
	gsasl_free(out);
	if (rc == GSASL_MECHANISM_PARSE_ERROR || rc == GSASL_BASE64_ERROR)
		return -EINVAL;
	return -EACCES;
}

const char *scram_server_user(struct scram_server *x)
{
	return gsasl_property_fast(x->s, GSASL_AUTHID);
}
