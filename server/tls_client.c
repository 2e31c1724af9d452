/*
 * The relay's TLS client over memory buffers (tls_client.h has the contract). GnuTLS pulls
 * from what tls_client_feed copied in and pushes into the output; verification is
 * GnuTLS's own (gnutls_session_set_verify_cert: chain and host name inside the handshake),
 * so a peer that fails it never sees a byte of the envelope.
 */
#include "server/tls_client.h"
#include "server/tls_pipe.h"
#include "common/buf.h"
#include "common/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The same floor as the server (tls.c): TLS 1.2, no static RSA. */
#define TLS_CLIENT_PRIORITY  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA"
#define TLS_CLIENT_INPUT_MAX (64 * 1024 + 5 + 16384 + 2048)

struct tls_client_ctx {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t priority;
};

struct tls_client {
	gnutls_session_t gs;
	struct tls_pipe pipe; /* ciphertext in and out (tls_pipe.c) */
	bool verify;
	bool handshake_done;
	bool failed;
	char error[512];
	char cipher[96];
};

static _Thread_local char tls_client_errbuf[768];

__attribute__((format(printf, 1, 2))) static const char *tc_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_client_errbuf, sizeof(tls_client_errbuf), fmt, ap);
	va_end(ap);
	return tls_client_errbuf;
}

int tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                       struct tls_client_ctx **ctx_r, const char **error_r)
{
	struct tls_client_ctx *ctx = xcalloc(1, sizeof(*ctx));
	int ret;
	*ctx_r = NULL;
	if (gnutls_certificate_allocate_credentials(&ctx->cred) < 0)
		abort();
	if (ca_file != NULL) {
		ret =
		    gnutls_certificate_set_x509_trust_file(ctx->cred, ca_file, GNUTLS_X509_FMT_PEM);
		if (ret <= 0) {
			*error_r = tc_err("relay ca %s: no PEM CA certificate (%s)", ca_file,
			                  ret < 0 ? gnutls_strerror(ret) : "none found");
			goto fail;
		}
	} else {
		ret = gnutls_certificate_set_x509_system_trust(ctx->cred);
		if (ret < 0) {
			*error_r = tc_err("relay: system trust store: %s", gnutls_strerror(ret));
			goto fail;
		}
	}
	if (cert_file != NULL && key_file != NULL) {
		ret = gnutls_certificate_set_x509_key_file2(ctx->cred, cert_file, key_file,
		                                            GNUTLS_X509_FMT_PEM, NULL, 0);
		if (ret < 0) {
			*error_r = tc_err("relay.certificate %s with relay.key %s: %s", cert_file,
			                  key_file, gnutls_strerror(ret));
			goto fail;
		}
	}
	if (gnutls_priority_init(&ctx->priority, TLS_CLIENT_PRIORITY, NULL) < 0) {
		ctx->priority = NULL;
		*error_r = tc_err("relay: TLS priority string rejected");
		goto fail;
	}
	*ctx_r = ctx;
	return 0;
fail:
	tls_client_ctx_free(ctx);
	return -EINVAL;
}

void tls_client_ctx_free(struct tls_client_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->priority != NULL)
		gnutls_priority_deinit(ctx->priority);
	gnutls_certificate_free_credentials(ctx->cred);
	free(ctx);
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

struct tls_client *tls_client_new(struct tls_client_ctx *ctx, const char *host, bool verify)
{
	struct tls_client *c = xcalloc(1, sizeof(*c));
	c->verify = verify;
	if (gnutls_init(&c->gs, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
		abort();
	if (gnutls_priority_set(c->gs, ctx->priority) < 0 ||
	    gnutls_credentials_set(c->gs, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0)
		abort();
	tls_pipe_init(&c->pipe, c->gs, TLS_CLIENT_INPUT_MAX);
	gnutls_handshake_set_timeout(c->gs, 0); /* the relay's timer owns timeouts */
	if (!is_ip_literal(host))
		gnutls_server_name_set(c->gs, GNUTLS_NAME_DNS, host, strlen(host));
	if (verify)
		gnutls_session_set_verify_cert(c->gs, host, 0);
	return c;
}

void tls_client_free(struct tls_client *c)
{
	if (c == NULL)
		return;
	gnutls_deinit(c->gs);
	tls_pipe_free(&c->pipe);
	free(c);
}

int tls_client_feed(struct tls_client *c, const void *data, size_t len)
{
	return tls_pipe_feed(&c->pipe, data, len);
}

static void tc_fail(struct tls_client *c, int ret)
{
	c->failed = true;
	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || ret == GNUTLS_E_CERTIFICATE_ERROR) {
		unsigned status = gnutls_session_get_verify_cert_status(c->gs);
		gnutls_datum_t out = {NULL, 0};
		if (status != 0 && gnutls_certificate_verification_status_print(
		                       status, GNUTLS_CRT_X509, &out, 0) == 0) {
			snprintf(c->error, sizeof(c->error),
			         "certificate verification failed: %.*s", (int)out.size,
			         (const char *)out.data);
			gnutls_free(out.data);
			return;
		}
	}
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED) {
		snprintf(c->error, sizeof(c->error), "TLS alert received: %s",
		         gnutls_alert_get_name(gnutls_alert_get(c->gs)));
		return;
	}
	snprintf(c->error, sizeof(c->error), "TLS handshake failed: %s", gnutls_strerror(ret));
}

int tls_client_handshake(struct tls_client *c, const char **error_r)
{
	if (c->failed) {
		*error_r = c->error;
		return -EPROTO;
	}
	if (c->handshake_done)
		return 1;
	int ret;
	do {
		ret = gnutls_handshake(c->gs);
	} while (ret == GNUTLS_E_INTERRUPTED || ret == GNUTLS_E_WARNING_ALERT_RECEIVED);
	if (ret == GNUTLS_E_AGAIN)
		return 0;
	if (ret < 0) {
		tc_fail(c, ret);
		*error_r = c->error;
		return -EPROTO;
	}
	c->handshake_done = true;
	const char *suite = gnutls_ciphersuite_get(c->gs);
	snprintf(c->cipher, sizeof(c->cipher), "%s", suite != NULL ? suite : "unknown");
	return 1;
}

ssize_t tls_client_read(struct tls_client *c, void *buf, size_t len, const char **error_r)
{
	if (c->failed || !c->handshake_done) {
		*error_r = c->failed ? c->error : "read before the TLS handshake finished";
		return -EPROTO;
	}
	size_t got = 0;
	unsigned char *p = buf;
	while (got < len) {
		size_t before = tls_pipe_unread(&c->pipe);
		ssize_t n = gnutls_record_recv(c->gs, p + got, len - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return got > 0 ? (ssize_t)got : TLS_CLIENT_EOF;
		if (n == GNUTLS_E_AGAIN) {
			/* A record without data (a TLS 1.3 ticket) ends in AGAIN though more may
			 * be buffered: go on while input is being consumed. */
			size_t after = tls_pipe_unread(&c->pipe);
			if (after > 0 && after != before)
				continue;
			break;
		}
		if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n))
			continue;
		c->failed = true;
		snprintf(c->error, sizeof(c->error), "TLS: %s", gnutls_strerror((int)n));
		if (got > 0)
			break;
		*error_r = c->error;
		return -EPROTO;
	}
	return (ssize_t)got;
}

int tls_client_write(struct tls_client *c, const void *data, size_t len)
{
	if (c->failed || !c->handshake_done)
		return -EINVAL;
	int r = tls_pipe_send(&c->pipe, data, len);
	if (r < 0) {
		c->failed = true;
		snprintf(c->error, sizeof(c->error), "TLS: %s", gnutls_strerror(r));
		return -EIO;
	}
	return 0;
}

void tls_client_bye(struct tls_client *c)
{
	if (c->failed || !c->handshake_done)
		return;
	tls_pipe_bye(&c->pipe);
}

void *tls_client_take_output(struct tls_client *c, size_t *len_r)
{
	return tls_pipe_take_output(&c->pipe, len_r);
}

const char *tls_client_version(const struct tls_client *c)
{
	return tls_pipe_version(&c->pipe);
}

const char *tls_client_cipher(const struct tls_client *c)
{
	return c->cipher[0] != '\0' ? c->cipher : "unknown";
}

bool tls_client_verified(const struct tls_client *c)
{
	return c->verify && c->handshake_done;
}
