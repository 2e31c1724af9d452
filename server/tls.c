/*
 * The TLS adapter: GnuTLS over memory buffers (tls.h has the contract).
 *
 * GnuTLS reads ciphertext through tls_pull (from what tls_session_feed copied in) and writes
 * it through tls_push (into the output that tls_session_take_output hands over), so nothing
 * here blocks and nothing knows about sockets or libuv.
 *
 * Client certificates are checked by our own verify function, which runs inside the
 * handshake when the client sends a certificate and again after the handshake when it did
 * not (no certificate, or a resumed session whose certificate GnuTLS restored). The CRL's
 * nextUpdate is checked here too, because GnuTLS silently ignores an expired CRL. So is the
 * extended key usage: GnuTLS takes a certificate without one as good for any purpose, and
 * a certificate is a client's only when it says clientAuth (or, if the administrator
 * allows it, says nothing at all).
 */
#include "server/tls.h"
#include "server/tls_peer.h"
#include "server/tls_pipe.h"
#include "server/crlguard.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* TLS 1.2 is the floor: SSLv3, TLS 1.0 and 1.1 are refused. Static RSA key exchange (no
 * forward secrecy) is dropped. GnuTLS 3.7's NORMAL puts P-256 first; X25519 is faster
 * (0.29 ms against 0.46 ms per full handshake here), so it leads here. */
#define TLS_GROUPS                                                                                 \
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-X448:+GROUP-SECP384R1:"                  \
	"+GROUP-SECP521R1:+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096"
#define TLS_PRIORITY_12                                                                            \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:" TLS_GROUPS ":%SERVER_PRECEDENCE"
#define TLS_PRIORITY_13 "NORMAL:-VERS-ALL:+VERS-TLS1.3:" TLS_GROUPS ":%SERVER_PRECEDENCE"

/* Ciphertext not yet consumed by GnuTLS: 64 KiB plus one maximal TLS 1.2 record. */
#define TLS_INPUT_MAX (64 * 1024 + 5 + 16384 + 2048)
/* Files we load are certificates, keys and CRLs: a few KiB, a CRL maybe some MiB. */
#define TLS_FILE_MAX (64 * 1024 * 1024)

struct tls_ctx {
	atomic_uint refcount;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
	gnutls_datum_t ticket_key;
	bool has_crl;
	enum cfg_no_eku no_eku; /* tls.client_certificate_without_eku */
	/* Earliest nextUpdate among the CRLs, or (time_t)-1 when none has one. */
	time_t crl_next_update;
	struct crl_mark crl_mark;         /* of the file's first CRL, for the rollback check */
	time_t cert_not_after;            /* the server certificate's (the chain's first) */
	const char *crl_distrusted;       /* tls_ctx_crl_distrust's reason, or NULL */
	gnutls_x509_trust_list_t peer_tl; /* tls.peer_ca, or NULL (tls_peer.h) */
};

struct tls_session {
	struct tls_ctx *ctx;
	gnutls_session_t gs;
	enum cfg_client_cert mode;

	struct tls_pipe pipe; /* ciphertext in and out (tls_pipe.c) */

	bool handshake_done;
	bool failed;
	const char *error; /* why the session failed, for a later read */
	char error_buf[160];

	bool peer_checked;
	bool peer_verified;
	bool peer_from_peer_ca;
	const char *peer_error;
	char *peer_subject;
	char *peer_cn; /* the subject's (first) common name, "" when it has none */
	char peer_serial[41];
	unsigned char *peer_der;
	size_t peer_der_len;
	char cipher[96];
};

static _Thread_local char tls_errbuf[768];

__attribute__((format(printf, 1, 2))) static const char *tls_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_errbuf, sizeof(tls_errbuf), fmt, ap);
	va_end(ap);
	return tls_errbuf;
}

/* ----- Context ----- */

/* Reads a whole file into a gnutls datum (NUL-terminated, freed with gnutls_free) so that
 * every error can name the file and say why. */
static int tls_read_file(const char *what, const char *path, gnutls_datum_t *d,
                         const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		*error_r = tls_err("tls.%s %s: %s", what, path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		close(fd);
		*error_r = tls_err("tls.%s %s: not a regular file of at most %d bytes", what, path,
		                   TLS_FILE_MAX);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size;
	unsigned char *data = gnutls_malloc(size + 1);
	if (data == NULL)
		abort();
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			gnutls_free(data);
			*error_r = tls_err("tls.%s %s: %s", what, path, strerror(e));
			return -e;
		}
		got += (size_t)n;
	}
	close(fd);
	if (size == 0) {
		gnutls_free(data);
		*error_r = tls_err("tls.%s %s: file is empty", what, path);
		return -EINVAL;
	}
	data[size] = '\0';
	d->data = data;
	d->size = (unsigned)size;
	return 0;
}

static void tls_free_datum(gnutls_datum_t *d)
{
	gnutls_free(d->data);
	d->data = NULL;
	d->size = 0;
}

static int tls_load_keypair(struct tls_ctx *ctx, const char *cert_path, const char *key_path,
                            const char **error_r)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	gnutls_x509_crt_t *crts = NULL;
	unsigned n_crts = 0;
	gnutls_x509_privkey_t pk = NULL;
	int ret, r = tls_read_file("certificate", cert_path, &cert, error_r);
	if (r < 0)
		goto out;
	r = tls_read_file("key", key_path, &key, error_r);
	if (r < 0)
		goto out;
	/* Parse each on its own first so the error names the file at fault. */
	ret = gnutls_x509_crt_list_import2(&crts, &n_crts, &cert, GNUTLS_X509_FMT_PEM, 0);
	if (ret < 0 || n_crts == 0) {
		*error_r = tls_err("tls.certificate %s: not a PEM certificate chain (%s)",
		                   cert_path, ret < 0 ? gnutls_strerror(ret) : "no certificate");
		r = -EINVAL;
		goto out;
	}
	gnutls_x509_privkey_init(&pk);
	ret = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (ret < 0) {
		*error_r = tls_err("tls.key %s: not an unencrypted PEM private key (%s)", key_path,
		                   gnutls_strerror(ret));
		r = -EINVAL;
		goto out;
	}
	ret = gnutls_certificate_set_x509_key_mem2(ctx->cred, &cert, &key, GNUTLS_X509_FMT_PEM,
	                                           NULL, 0);
	if (ret < 0) {
		if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
			*error_r = tls_err("tls.key %s does not match tls.certificate %s", key_path,
			                   cert_path);
		else
			*error_r = tls_err("tls.certificate %s with tls.key %s: %s", cert_path,
			                   key_path, gnutls_strerror(ret));
		r = -EINVAL;
		goto out;
	}
	ctx->cert_not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
	r = 0;
out:
	for (unsigned i = 0; i < n_crts; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (pk != NULL)
		gnutls_x509_privkey_deinit(pk);
	if (key.data != NULL) {
		gnutls_memset(key.data, 0, key.size);
		tls_free_datum(&key);
	}
	tls_free_datum(&cert);
	return r;
}

/* Sums up a CRL for crlguard: issuer name hash, CRL number, thisUpdate. */
static void tls_crl_mark(gnutls_x509_crl_t crl, struct crl_mark *m)
{
	memset(m, 0, sizeof(*m));
	gnutls_datum_t dn = {NULL, 0};
	unsigned char digest[32];
	if (gnutls_x509_crl_get_raw_issuer_dn(crl, &dn) == 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, dn.data, dn.size, digest) == 0) {
		static const char hex[] = "0123456789abcdef";
		for (size_t i = 0; i < sizeof(digest); i++) {
			m->issuer[2 * i] = hex[digest[i] >> 4];
			m->issuer[2 * i + 1] = hex[digest[i] & 15];
		}
	}
	gnutls_free(dn.data);
	unsigned char number[32];
	size_t number_len = sizeof(number);
	unsigned critical = 0;
	/* Numbers above 64 bits would not fit: treat them as absent rather than wrap. */
	if (gnutls_x509_crl_get_number(crl, number, &number_len, &critical) >= 0 &&
	    number_len > 0) {
		size_t i = 0;
		while (i + 1 < number_len && number[i] == 0)
			i++;
		if (number_len - i <= 8) {
			m->has_number = true;
			for (; i < number_len; i++)
				m->number = m->number << 8 | number[i];
		}
	}
	m->this_update = gnutls_x509_crl_get_this_update(crl);
}

static int tls_load_crl(struct tls_ctx *ctx, const char *path, const gnutls_datum_t *ca,
                        const char **error_r)
{
	gnutls_datum_t data = {NULL, 0};
	gnutls_x509_crl_t *crls = NULL;
	unsigned n_crls = 0;
	gnutls_x509_crt_t *cas = NULL;
	unsigned n_cas = 0;
	int ret, r = tls_read_file("crl", path, &data, error_r);
	if (r < 0)
		goto out;
	gnutls_x509_crt_fmt_t fmt = strstr((const char *)data.data, "-----BEGIN X509 CRL") != NULL
	                                ? GNUTLS_X509_FMT_PEM
	                                : GNUTLS_X509_FMT_DER;
	ret = gnutls_x509_crl_list_import2(&crls, &n_crls, &data, fmt, 0);
	if (ret < 0 || n_crls == 0) {
		*error_r = tls_err("tls.crl %s: not a CRL (%s)", path,
		                   ret < 0 ? gnutls_strerror(ret) : "none found");
		r = -EINVAL;
		goto out;
	}
	if (ca == NULL) {
		*error_r = tls_err("tls.crl %s: a CRL needs tls.client_ca", path);
		r = -EINVAL;
		goto out;
	}
	ret = gnutls_x509_crt_list_import2(&cas, &n_cas, ca, GNUTLS_X509_FMT_PEM, 0);
	if (ret < 0) {
		*error_r = tls_err("tls.crl %s: %s", path, gnutls_strerror(ret));
		r = -EINVAL;
		goto out;
	}
	ctx->crl_next_update = (time_t)-1;
	for (unsigned i = 0; i < n_crls; i++) {
		/* A CRL the client CA did not sign would be ignored by GnuTLS: refuse it now.
		 * Its dates are ours to judge, on every handshake. */
		unsigned status = 0;
		ret = gnutls_x509_crl_verify(crls[i], cas, n_cas, GNUTLS_VERIFY_DISABLE_TIME_CHECKS,
		                             &status);
		/* GnuTLS reports a past nextUpdate here whatever the flags say. */
		unsigned dates = GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED |
		                 GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE;
		if (status & dates)
			status &= ~(dates | GNUTLS_CERT_INVALID);
		if (ret < 0 || status != 0) {
			*error_r = tls_err(
			    "tls.crl %s: not signed by a certificate in tls.client_ca", path);
			r = -EINVAL;
			goto out;
		}
		time_t next = gnutls_x509_crl_get_next_update(crls[i]);
		if (next != (time_t)-1 &&
		    (ctx->crl_next_update == (time_t)-1 || next < ctx->crl_next_update))
			ctx->crl_next_update = next;
	}
	tls_crl_mark(crls[0], &ctx->crl_mark);
	ret = gnutls_certificate_set_x509_crl_mem(ctx->cred, &data, fmt);
	if (ret < 0) {
		*error_r = tls_err("tls.crl %s: %s", path, gnutls_strerror(ret));
		r = -EINVAL;
		goto out;
	}
	ctx->has_crl = true;
	r = 0;
out:
	for (unsigned i = 0; i < n_crls; i++)
		gnutls_x509_crl_deinit(crls[i]);
	gnutls_free(crls);
	for (unsigned i = 0; i < n_cas; i++)
		gnutls_x509_crt_deinit(cas[i]);
	gnutls_free(cas);
	tls_free_datum(&data);
	return r;
}

static void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx->priority != NULL)
		gnutls_priority_deinit(ctx->priority);
	if (ctx->cred != NULL)
		gnutls_certificate_free_credentials(ctx->cred);
	if (ctx->peer_tl != NULL)
		gnutls_x509_trust_list_deinit(ctx->peer_tl, 1);
	if (ctx->ticket_key.data != NULL) {
		gnutls_memset(ctx->ticket_key.data, 0, ctx->ticket_key.size);
		tls_free_datum(&ctx->ticket_key);
	}
	free(ctx);
}

int tls_ctx_new(const struct config *cfg, struct tls_ctx **ctx_r, const char **error_r)
{
	struct tls_ctx *ctx = xcalloc(1, sizeof(*ctx));
	gnutls_datum_t ca = {NULL, 0};
	int ret, r;
	atomic_init(&ctx->refcount, 1);
	ctx->crl_next_update = (time_t)-1;
	ctx->no_eku = cfg->tls.client_certificate_without_eku;
	*ctx_r = NULL;

	if (cfg->tls.certificate == NULL || cfg->tls.key == NULL) {
		*error_r = tls_err("tls.certificate and tls.key are required");
		r = -EINVAL;
		goto out;
	}
	ret = gnutls_certificate_allocate_credentials(&ctx->cred);
	if (ret < 0) {
		*error_r = tls_err("tls: %s", gnutls_strerror(ret));
		r = -ENOMEM;
		goto out;
	}
	r = tls_load_keypair(ctx, cfg->tls.certificate, cfg->tls.key, error_r);
	if (r < 0)
		goto out;
	if (cfg->tls.client_ca != NULL) {
		r = tls_read_file("client_ca", cfg->tls.client_ca, &ca, error_r);
		if (r < 0)
			goto out;
		ret = gnutls_certificate_set_x509_trust_mem(ctx->cred, &ca, GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			*error_r = tls_err("tls.client_ca %s: no PEM CA certificate (%s)",
			                   cfg->tls.client_ca,
			                   ret < 0 ? gnutls_strerror(ret) : "none found");
			r = -EINVAL;
			goto out;
		}
	}
	if (cfg->tls.peer_ca != NULL) {
		r = tls_peer_ca_load(ctx->cred, cfg->tls.peer_ca, &ctx->peer_tl, error_r);
		if (r < 0)
			goto out;
	}
	if (cfg->tls.crl != NULL) {
		r = tls_load_crl(ctx, cfg->tls.crl, ca.data != NULL ? &ca : NULL, error_r);
		if (r < 0)
			goto out;
	}
	/* DHE for TLS 1.2 clients that do not offer RFC 7919 groups. */
	gnutls_certificate_set_known_dh_params(ctx->cred, GNUTLS_SEC_PARAM_HIGH);

	const char *prio = cfg->tls.min_version == CFG_TLS_1_3 ? TLS_PRIORITY_13 : TLS_PRIORITY_12;
	const char *err_pos = NULL;
	ret = gnutls_priority_init(&ctx->priority, prio, &err_pos);
	if (ret < 0) {
		ctx->priority = NULL;
		*error_r = tls_err("tls: priority string rejected at \"%s\": %s",
		                   err_pos ? err_pos : "", gnutls_strerror(ret));
		r = -EINVAL;
		goto out;
	}
	/* A fresh key per context: tickets issued before a reload never resume after it. */
	ret = gnutls_session_ticket_key_generate(&ctx->ticket_key);
	if (ret < 0) {
		*error_r = tls_err("tls: session ticket key: %s", gnutls_strerror(ret));
		r = -EIO;
		goto out;
	}
	*ctx_r = ctx;
	ctx = NULL;
	r = 0;
out:
	tls_free_datum(&ca);
	if (ctx != NULL)
		tls_ctx_free(ctx);
	return r;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
	atomic_fetch_add_explicit(&ctx->refcount, 1, memory_order_relaxed);
	return ctx;
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (atomic_fetch_sub_explicit(&ctx->refcount, 1, memory_order_acq_rel) == 1)
		tls_ctx_free(ctx);
}

bool tls_ctx_crl_expired(const struct tls_ctx *ctx)
{
	return ctx->has_crl &&
	       (ctx->crl_next_update == (time_t)-1 || ctx->crl_next_update <= time(NULL));
}

const char *tls_ctx_crl_problem(const struct tls_ctx *ctx)
{
	if (ctx->crl_distrusted != NULL)
		return ctx->crl_distrusted;
	return tls_ctx_crl_expired(ctx) ? "CRL expired" : NULL;
}

bool tls_ctx_crl_mark(const struct tls_ctx *ctx, struct crl_mark *mark_r, time_t *next_update_r)
{
	if (!ctx->has_crl)
		return false;
	*mark_r = ctx->crl_mark;
	*next_update_r = ctx->crl_next_update;
	return true;
}

void tls_ctx_crl_distrust(struct tls_ctx *ctx, const char *reason)
{
	ctx->crl_distrusted = reason;
}

/* ----- Client certificates ----- */

static const char *tls_status_reason(unsigned status)
{
	if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
		return "unknown CA";
	if (status & GNUTLS_CERT_REVOKED)
		return "revoked";
	if (status & GNUTLS_CERT_EXPIRED)
		return "expired";
	if (status & GNUTLS_CERT_NOT_ACTIVATED)
		return "not yet valid";
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return "not for client authentication";
	if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
		return "bad signature";
	return "invalid";
}

static gnutls_alert_description_t tls_reason_alert(const char *reason)
{
	if (strcmp(reason, "no certificate") == 0)
		return GNUTLS_A_CERTIFICATE_REQUIRED;
	if (strcmp(reason, "unknown CA") == 0)
		return GNUTLS_A_UNKNOWN_CA;
	if (strcmp(reason, "revoked") == 0)
		return GNUTLS_A_CERTIFICATE_REVOKED;
	if (strcmp(reason, "expired") == 0)
		return GNUTLS_A_CERTIFICATE_EXPIRED;
	if (strcmp(reason, "CRL expired") == 0 || strcmp(reason, "CRL rolled back") == 0)
		return GNUTLS_A_CERTIFICATE_UNKNOWN;
	return GNUTLS_A_BAD_CERTIFICATE;
}

const char *tls_client_eku_refusal(const void *der, size_t len, enum cfg_no_eku no_eku)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
	const char *why = NULL;
	unsigned n = 0;

	if (len > UINT_MAX || gnutls_x509_crt_init(&crt) < 0)
		return "invalid";
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return "invalid";
	}
	for (unsigned i = 0;; i++) {
		/* Longer OIDs than any purpose we look for are simply some other purpose. */
		char oid[128];
		size_t size = sizeof(oid);
		int ret = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &size, NULL);
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			n++;
			continue;
		}
		if (ret < 0) {
			why = "invalid";
			goto out;
		}
		n++;
		/* Exactly clientAuth: anyExtendedKeyUsage is no promise of a client. */
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			goto out;
	}
	if (n == 0)
		why = no_eku == CFG_NO_EKU_ALLOW ? NULL : TLS_EKU_NONE;
	else
		why = TLS_EKU_NOT_CLIENT;
out:
	gnutls_x509_crt_deinit(crt);
	return why;
}

/* A certificate the client sent and we did not take: said once, with the reason, so an
 * administrator can tell a wrong certificate from a missing one. */
static void tls_log_refused(const gnutls_datum_t *der, const char *reason)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {NULL, 0};
	unsigned char serial[20];
	size_t serial_len = sizeof(serial);
	char hex[2 * sizeof(serial) + 1] = "";

	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0) {
		if (gnutls_x509_crt_get_serial(crt, serial, &serial_len) == 0) {
			for (size_t i = 0; i < serial_len; i++)
				snprintf(hex + 2 * i, 3, "%02x", serial[i]);
		}
		if (gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0)
			dn.data = NULL;
	}
	/* The subject comes from the client: keep quotes and controls out of the line. */
	char subject[160] = "";
	for (size_t i = 0, o = 0; dn.data != NULL && i < dn.size && o + 1 < sizeof(subject); i++)
		subject[o++] = dn.data[i] >= 0x20 && dn.data[i] < 0x7f && dn.data[i] != '"'
		                   ? (char)dn.data[i]
		                   : '?';
	log_event(LOGL_INFO,
	          "event=client_certificate_refused reason=\"%s\" serial=%s subject=\"%s\"", reason,
	          hex[0] != '\0' ? hex : "-", subject);
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

static void tls_record_peer(struct tls_session *s, const gnutls_datum_t *der)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {NULL, 0};
	unsigned char serial[64];
	size_t serial_len = sizeof(serial);

	gnutls_x509_crt_init(&crt);
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0) {
		s->peer_error = "invalid";
		goto out;
	}
	if (gnutls_x509_crt_get_dn3(crt, &dn, 0) < 0 ||
	    gnutls_x509_crt_get_serial(crt, serial, &serial_len) < 0 || serial_len == 0 ||
	    serial_len > 20) {
		s->peer_error = "invalid";
		goto out;
	}
	/* Lowercase hex, leading zero octets dropped (certs/ writes serials the same way). */
	size_t i = 0;
	while (i + 1 < serial_len && serial[i] == 0)
		i++;
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (; i < serial_len; i++) {
		s->peer_serial[o++] = hex[serial[i] >> 4];
		s->peer_serial[o++] = hex[serial[i] & 15];
	}
	s->peer_serial[o] = '\0';
	s->peer_subject = xstrndup((const char *)dn.data, dn.size);
	char cn[256];
	size_t cn_len = sizeof(cn);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len) < 0)
		cn_len = 0;
	s->peer_cn = xstrndup(cn, cn_len);
	s->peer_der = xmalloc(der->size);
	memcpy(s->peer_der, der->data, der->size);
	s->peer_der_len = der->size;
	s->peer_verified = true;
out:
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
}

/* Decides peer_verified/peer_error once per session. */
static void tls_check_peer(struct tls_session *s)
{
	if (s->peer_checked || s->mode == CFG_CLIENT_CERT_NONE)
		return;
	s->peer_checked = true;

	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s->gs, &n);
	if (certs == NULL || n == 0) {
		s->peer_error = "no certificate";
		return;
	}
	gnutls_typed_vdata_st purpose = {
	    .type = GNUTLS_DT_KEY_PURPOSE_OID,
	    .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	    .size = 0,
	};
	unsigned status = 0;
	int ret = gnutls_certificate_verify_peers(s->gs, &purpose, 1, &status);
	if (ret < 0) {
		s->peer_error = ret == GNUTLS_E_NO_CERTIFICATE_FOUND ? "no certificate" : "invalid";
		return;
	}
	if (status != 0) {
		s->peer_error = tls_status_reason(status);
		tls_log_refused(&certs[0], s->peer_error);
		return;
	}
	/* GnuTLS drops an expired CRL without a word and would then accept a revoked
	 * certificate: fail closed instead (also when the CRL was rolled back). */
	const char *crl_problem = tls_ctx_crl_problem(s->ctx);
	if (crl_problem != NULL) {
		s->peer_error = crl_problem;
		return;
	}
	const char *eku = tls_client_eku_refusal(certs[0].data, certs[0].size, s->ctx->no_eku);
	if (eku != NULL) {
		s->peer_error = eku;
		tls_log_refused(&certs[0], eku);
		return;
	}
	s->peer_from_peer_ca = tls_peer_ca_issued(s->ctx->peer_tl, certs, n);
	tls_record_peer(s, &certs[0]);
}

/* Runs inside the handshake when the client sent its certificate: rejecting here makes a
 * TLS 1.2 client see the failure in its own handshake. */
static int tls_verify_cb(gnutls_session_t gs)
{
	struct tls_session *s = gnutls_session_get_ptr(gs);
	tls_check_peer(s);
	if (s->mode == CFG_CLIENT_CERT_REQUIRED && !s->peer_verified)
		return -1;
	return 0;
}

/* ----- Session ----- */

struct tls_session *tls_session_new(struct tls_ctx *ctx, enum cfg_client_cert mode)
{
	struct tls_session *s = xcalloc(1, sizeof(*s));
	s->ctx = tls_ctx_ref(ctx);
	s->mode = mode;
	if (gnutls_init(&s->gs, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
		abort();
	if (gnutls_priority_set(s->gs, ctx->priority) < 0 ||
	    gnutls_credentials_set(s->gs, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0 ||
	    gnutls_session_ticket_enable_server(s->gs, &ctx->ticket_key) < 0)
		abort(); /* only fails on allocation */
	gnutls_session_set_ptr(s->gs, s);
	tls_pipe_init(&s->pipe, s->gs, TLS_INPUT_MAX);
	/* conn.c owns the handshake timeout (a libuv timer). */
	gnutls_handshake_set_timeout(s->gs, 0);
	switch (mode) {
	case CFG_CLIENT_CERT_NONE:
		gnutls_certificate_server_set_request(s->gs, GNUTLS_CERT_IGNORE);
		break;
	case CFG_CLIENT_CERT_OPTIONAL:
		gnutls_certificate_server_set_request(s->gs, GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(s->gs, tls_verify_cb);
		break;
	case CFG_CLIENT_CERT_REQUIRED:
		gnutls_certificate_server_set_request(s->gs, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_function(s->gs, tls_verify_cb);
		break;
	}
	return s;
}

void tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	gnutls_deinit(s->gs);
	tls_pipe_free(&s->pipe);
	free(s->peer_subject);
	free(s->peer_cn);
	free(s->peer_der);
	tls_ctx_unref(s->ctx);
	free(s);
}

int tls_session_feed(struct tls_session *s, const void *data, size_t len)
{
	return tls_pipe_feed(&s->pipe, data, len);
}

static void tls_fail(struct tls_session *s, const char *reason)
{
	s->failed = true;
	snprintf(s->error_buf, sizeof(s->error_buf), "%s", reason);
	s->error = s->error_buf;
}

/* Fails the handshake because of the client certificate, with an alert that says why. */
static int tls_reject_peer(struct tls_session *s, const char **error_r)
{
	const char *why = s->peer_error != NULL ? s->peer_error : "invalid";
	char reason[160];
	if (strcmp(why, "no certificate") == 0)
		snprintf(reason, sizeof(reason), "client certificate required");
	else
		snprintf(reason, sizeof(reason), "client certificate rejected: %s", why);
	/* In TLS 1.3 the client has already finished its handshake: this alert is what it
	 * reads instead of a bare close. */
	gnutls_alert_send(s->gs, GNUTLS_AL_FATAL, tls_reason_alert(why));
	tls_fail(s, reason);
	*error_r = s->error;
	return -EPROTO;
}

int tls_session_handshake(struct tls_session *s, const char **error_r)
{
	if (s->failed) {
		*error_r = s->error;
		return -EPROTO;
	}
	if (s->handshake_done)
		return 1;
	int ret;
	do {
		ret = gnutls_handshake(s->gs);
	} while (ret == GNUTLS_E_INTERRUPTED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED);
	if (ret == GNUTLS_E_AGAIN)
		return 0;
	if (ret == GNUTLS_E_CERTIFICATE_ERROR && s->peer_checked)
		return tls_reject_peer(s, error_r); /* our verify function said no */
	if (ret == GNUTLS_E_CERTIFICATE_REQUIRED || ret == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		s->peer_checked = true;
		s->peer_error = "no certificate";
		return tls_reject_peer(s, error_r);
	}
	if (ret < 0) {
		if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED)
			gnutls_alert_send_appropriate(s->gs, ret);
		tls_fail(s, gnutls_strerror(ret));
		*error_r = s->error;
		return -EPROTO;
	}
	/* No certificate message (none sent, or a resumed session): decide now. */
	tls_check_peer(s);
	if (s->mode == CFG_CLIENT_CERT_REQUIRED && !s->peer_verified)
		return tls_reject_peer(s, error_r);
	s->handshake_done = true;
	const char *suite = gnutls_ciphersuite_get(s->gs);
	if (suite == NULL)
		suite = gnutls_cipher_get_name(gnutls_cipher_get(s->gs));
	snprintf(s->cipher, sizeof(s->cipher), "%s", suite != NULL ? suite : "unknown");
	return 1;
}

ssize_t tls_session_read(struct tls_session *s, void *buf, size_t len, const char **error_r)
{
	if (s->failed) {
		*error_r = s->error;
		return -EPROTO;
	}
	if (!s->handshake_done) {
		*error_r = "read before the TLS handshake finished";
		return -EINVAL;
	}
	size_t got = 0;
	unsigned char *p = buf;
	while (got < len) {
		size_t pulled = s->pipe.pulled;
		ssize_t n = gnutls_record_recv(s->gs, p + got, len - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return got > 0 ? (ssize_t)got
			               : TLS_EOF; /* EOF is reported again next time */
		if (n == GNUTLS_E_AGAIN) {
			/* After a record that carried no data (a TLS 1.3 key update or ticket)
			 * GnuTLS says AGAIN although more may be fed already: go on while it
			 * still makes progress. */
			if (tls_pipe_unread(&s->pipe) > 0 && s->pipe.pulled != pulled)
				continue;
			break;
		}
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_WARNING_ALERT_RECEIVED)
			continue;
		if (n == GNUTLS_E_REHANDSHAKE) {
			/* A TLS 1.2 client asking to renegotiate. GnuTLS cannot go on reading
			 * past the ClientHello it buffered, so say no and end the session. */
			gnutls_alert_send(s->gs, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
			gnutls_alert_send(s->gs, GNUTLS_AL_FATAL, GNUTLS_A_HANDSHAKE_FAILURE);
			tls_fail(s, "client-initiated renegotiation refused");
		} else if (!gnutls_error_is_fatal((int)n)) {
			continue;
		} else {
			if (n != GNUTLS_E_FATAL_ALERT_RECEIVED &&
			    n != GNUTLS_E_PREMATURE_TERMINATION)
				gnutls_alert_send_appropriate(s->gs, (int)n);
			tls_fail(s, gnutls_strerror((int)n));
		}
		if (got > 0)
			break; /* the error is returned on the next call */
		*error_r = s->error;
		return -EPROTO;
	}
	return (ssize_t)got;
}

int tls_session_write(struct tls_session *s, const void *data, size_t len)
{
	if (s->failed || !s->handshake_done)
		return -EINVAL;
	int r = tls_pipe_send(&s->pipe, data, len);
	if (r < 0) {
		tls_fail(s, gnutls_strerror(r));
		return -EIO;
	}
	return 0;
}

void tls_session_bye(struct tls_session *s)
{
	if (s->failed || !s->handshake_done)
		return;
	tls_pipe_bye(&s->pipe);
}

void *tls_session_take_output(struct tls_session *s, size_t *len_r)
{
	return tls_pipe_take_output(&s->pipe, len_r);
}

const char *tls_session_version(const struct tls_session *s)
{
	return tls_pipe_version(&s->pipe);
}

const char *tls_session_cipher(const struct tls_session *s)
{
	return s->cipher[0] != '\0' ? s->cipher : "unknown";
}

bool tls_session_resumed(const struct tls_session *s)
{
	return gnutls_session_is_resumed(s->gs) != 0;
}

bool tls_session_peer_verified(const struct tls_session *s)
{
	return s->peer_verified;
}

const char *tls_session_peer_subject(const struct tls_session *s)
{
	return s->peer_verified ? s->peer_subject : NULL;
}

const char *tls_session_peer_cn(const struct tls_session *s)
{
	return s->peer_verified ? s->peer_cn : NULL;
}

const char *tls_session_peer_serial(const struct tls_session *s)
{
	return s->peer_verified ? s->peer_serial : NULL;
}

const void *tls_session_peer_der(const struct tls_session *s, size_t *len_r)
{
	if (!s->peer_verified) {
		*len_r = 0;
		return NULL;
	}
	*len_r = s->peer_der_len;
	return s->peer_der;
}

bool tls_session_peer_from_peer_ca(const struct tls_session *s)
{
	return s->peer_verified && s->peer_from_peer_ca;
}

const char *tls_session_peer_error(const struct tls_session *s)
{
	return s->peer_verified ? NULL : s->peer_error;
}

int tls_session_channel_binding(struct tls_session *s, unsigned char *out, size_t len)
{
	if (!s->handshake_done || s->failed)
		return -EINVAL;
	gnutls_datum_t cb = {NULL, 0};
	int ret = gnutls_session_channel_binding(s->gs, GNUTLS_CB_TLS_EXPORTER, &cb);
	if (ret < 0)
		return -EINVAL;
	int r = 0;
	if (cb.size != len)
		r = -EINVAL;
	else
		memcpy(out, cb.data, len);
	gnutls_memset(cb.data, 0, cb.size);
	gnutls_free(cb.data);
	return r;
}

int tls_ctx_recheck_peer(struct tls_ctx *ctx, const struct tls_session *s, const char **reason_r)
{
	if (!s->peer_verified || s->peer_der == NULL)
		return 0;
	const char *crl_problem = tls_ctx_crl_problem(ctx);
	if (crl_problem != NULL) {
		*reason_r = crl_problem;
		return -EACCES;
	}
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_certificate_get_trust_list(ctx->cred, &tl);
	if (tl == NULL) {
		*reason_r = "no client CA";
		return -EACCES;
	}
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t der = {s->peer_der, (unsigned)s->peer_der_len};
	int r = -EACCES;
	unsigned status = 0;
	gnutls_typed_vdata_st purpose = {
	    .type = GNUTLS_DT_KEY_PURPOSE_OID,
	    .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
	    .size = 0,
	};
	*reason_r = "invalid";
	if (gnutls_x509_crt_init(&crt) < 0)
		return -ENOMEM;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_trust_list_verify_crt2(tl, &crt, 1, &purpose, 1, 0, &status, NULL) == 0) {
		const char *eku = NULL;
		if (status == 0)
			eku = tls_client_eku_refusal(der.data, der.size, ctx->no_eku);
		if (status != 0)
			*reason_r = tls_status_reason(status);
		else if (eku != NULL)
			*reason_r = eku;
		else
			r = 0;
	}
	gnutls_x509_crt_deinit(crt);
	return r;
}

time_t tls_ctx_cert_not_after(const struct tls_ctx *ctx)
{
	return ctx->cert_not_after;
}
