#ifndef SEALMAIL_TEST_TLS_TESTLIB_H
#define SEALMAIL_TEST_TLS_TESTLIB_H
/*
 * Shared by test_tls.c and test_tls_certs.c: the test PKI (two CAs, server and client
 * certificates, CRLs; made once per test binary with GnuTLS's X.509 API), server contexts
 * on it, and a plain GnuTLS client over memory buffers pumped against server/tls.c.
 */
#include "common/buf.h"
#include "server/tls.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <dirent.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRIO_13  "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define PRIO_12  "NORMAL:-VERS-ALL:+VERS-TLS1.2"
#define PRIO_ANY "NORMAL"
#define PRIO_OLD "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0"

struct client {
	gnutls_session_t gs;
	gnutls_certificate_credentials_t cred;
	gnutls_pcert_st pcert;
	gnutls_privkey_t key;
	bool has_cert;
	struct buf in;
	size_t in_off;
	struct buf out;
	int hs; /* 0 running, 1 done, <0 GnuTLS error */
};

struct server_state {
	int hs; /* 0 running, 1 done, <0 failed */
	const char *error;
};

struct conv {
	struct tls_ctx *ctx;
	struct tls_session *s;
	struct client *c;
	struct server_state st;
};

/* The suite's .init: finds (or builds) the PKI for this worker. */
void tls_test_setup(void);
const char *pki(const char *name);
struct tls_ctx *ctx_make(const char *crl, enum cfg_tls_version min);
struct client *client_new(const char *prio, const char *who);
void client_free(struct client *c);
size_t to_client(struct tls_session *s, struct client *c);
void server_step(struct tls_session *s, struct server_state *st);
void pump(struct client *c, struct tls_session *s, struct server_state *st, size_t step);
int client_recv(struct client *c, struct buf *into);
void client_send(struct client *c, const void *data, size_t len);
void server_receive(struct client *c, struct tls_session *s, size_t step, struct buf *into);
void conv_open(struct conv *v, struct tls_ctx *ctx, enum cfg_client_cert mode, const char *prio,
               const char *who);
void conv_close(struct conv *v);
void assert_established(struct conv *v);
void assert_rejected(struct conv *v, const char *reason, gnutls_alert_description_t alert);

#endif
