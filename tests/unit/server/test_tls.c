/*
 * server/tls.c against plain GnuTLS clients, both over memory buffers.
 *
 * The PKI (two CAs, server and client certificates, CRLs) is made at run time with GnuTLS's
 * X.509 API, once per test binary: the runner builds it before the first test and passes
 * the folder to the workers in the environment.
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

#define PKI_ENV "SEALMAIL_TLS_TEST_PKI"

/* ----- The PKI ----- */

static char pki_dir[256];

static const char *pki(const char *name)
{
	static char paths[16][320];
	static unsigned next;
	char *p = paths[next++ % 16];
	snprintf(p, sizeof(paths[0]), "%s/%s", pki_dir, name);
	return p;
}

static void write_datum(const char *name, const gnutls_datum_t *d)
{
	FILE *fp = fopen(pki(name), "wb");
	cr_assert_not_null(fp, "open %s", name);
	cr_assert_eq(fwrite(d->data, 1, d->size, fp), d->size);
	cr_assert_eq(fclose(fp), 0);
}

static void write_text(const char *name, const char *text)
{
	gnutls_datum_t d = {(unsigned char *)text, (unsigned)strlen(text)};
	write_datum(name, &d);
}

static gnutls_x509_privkey_t gen_key(const char *name)
{
	gnutls_x509_privkey_t key;
	cr_assert_eq(gnutls_x509_privkey_init(&key), 0);
	cr_assert_eq(gnutls_x509_privkey_generate(
	                 key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	             0);
	gnutls_datum_t d;
	cr_assert_eq(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d), 0);
	write_datum(name, &d);
	gnutls_free(d.data);
	return key;
}

enum crt_kind { CRT_CA, CRT_SERVER, CRT_CLIENT };

/* Signs a certificate, writes it as PEM and returns it re-imported from DER (a freshly
 * signed in-memory certificate answers some queries wrongly). */
static gnutls_x509_crt_t make_crt(const char *name, enum crt_kind kind, const char *dn,
                                  unsigned char serial0, gnutls_x509_privkey_t key,
                                  gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key,
                                  time_t not_before, time_t not_after)
{
	gnutls_x509_crt_t crt;
	const char *err = NULL;
	unsigned char serial[4] = {serial0, 0x0a, 0x11, 0x22};
	unsigned char id[64];
	size_t id_len = sizeof(id);

	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_set_version(crt, 3), 0);
	cr_assert_eq(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
	cr_assert_eq(gnutls_x509_crt_set_dn(crt, dn, &err), 0, "%s", err);
	cr_assert_eq(gnutls_x509_crt_set_key(crt, key), 0);
	cr_assert_eq(gnutls_x509_crt_set_activation_time(crt, not_before), 0);
	cr_assert_eq(gnutls_x509_crt_set_expiration_time(crt, not_after), 0);
	cr_assert_eq(gnutls_x509_privkey_get_key_id(key, 0, id, &id_len), 0);
	cr_assert_eq(gnutls_x509_crt_set_subject_key_id(crt, id, id_len), 0);
	switch (kind) {
	case CRT_CA:
		cr_assert_eq(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
		cr_assert_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN |
		                                                    GNUTLS_KEY_CRL_SIGN),
		             0);
		break;
	case CRT_SERVER:
		cr_assert_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
		cr_assert_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
		cr_assert_eq(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
		             0);
		cr_assert_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
		                                                  "localhost", 9, GNUTLS_FSAN_SET),
		             0);
		break;
	case CRT_CLIENT:
		cr_assert_eq(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), 0);
		cr_assert_eq(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
		cr_assert_eq(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0),
		             0);
		break;
	}
	if (issuer == NULL) {
		issuer = crt;
		issuer_key = key;
	} else {
		id_len = sizeof(id);
		cr_assert_eq(gnutls_x509_crt_get_subject_key_id(issuer, id, &id_len, NULL), 0);
		cr_assert_eq(gnutls_x509_crt_set_authority_key_id(crt, id, id_len), 0);
	}
	cr_assert_eq(gnutls_x509_crt_sign2(crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0), 0);

	gnutls_datum_t pem, der;
	cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem), 0);
	write_datum(name, &pem);
	gnutls_free(pem.data);
	cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
	gnutls_x509_crt_deinit(crt);
	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER), 0);
	gnutls_free(der.data);
	return crt;
}

static void make_crl(const char *name, gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key,
                     gnutls_x509_crt_t revoked, time_t this_update, time_t next_update)
{
	gnutls_x509_crl_t crl;
	unsigned char id[64], number[1] = {1};
	size_t id_len = sizeof(id);
	cr_assert_eq(gnutls_x509_crl_init(&crl), 0);
	cr_assert_eq(gnutls_x509_crl_set_version(crl, 2), 0);
	cr_assert_eq(gnutls_x509_crl_set_this_update(crl, this_update), 0);
	cr_assert_eq(gnutls_x509_crl_set_next_update(crl, next_update), 0);
	if (revoked != NULL)
		cr_assert_eq(gnutls_x509_crl_set_crt(crl, revoked, this_update), 0);
	cr_assert_eq(gnutls_x509_crt_get_subject_key_id(ca, id, &id_len, NULL), 0);
	cr_assert_eq(gnutls_x509_crl_set_authority_key_id(crl, id, id_len), 0);
	cr_assert_eq(gnutls_x509_crl_set_number(crl, number, sizeof(number)), 0);
	cr_assert_eq(gnutls_x509_crl_sign2(crl, ca, ca_key, GNUTLS_DIG_SHA256, 0), 0);
	gnutls_datum_t pem;
	cr_assert_eq(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &pem), 0);
	write_datum(name, &pem);
	gnutls_free(pem.data);
	gnutls_x509_crl_deinit(crl);
}

static void pki_build(void)
{
	time_t now = time(NULL), day = 24 * 3600;
	time_t from = now - day, to = now + 30 * day;

	gnutls_x509_privkey_t ca_key = gen_key("ca.key");
	gnutls_x509_crt_t ca = make_crt("ca.crt", CRT_CA, "CN=Test Client CA,O=sealmail", 0x01,
	                                ca_key, NULL, NULL, from, to);
	gnutls_x509_privkey_t other_ca_key = gen_key("other-ca.key");
	gnutls_x509_crt_t other_ca = make_crt("other-ca.crt", CRT_CA, "CN=Other CA", 0x02,
	                                      other_ca_key, NULL, NULL, from, to);

	struct {
		const char *name, *dn;
		enum crt_kind kind;
		unsigned char serial0;
		bool other;
		time_t not_before, not_after;
	} leaves[] = {
	    {"server", "CN=localhost", CRT_SERVER, 0x10, false, from, to},
	    {"alice", "CN=alice,O=sealmail", CRT_CLIENT, 0x3f, false, from, to},
	    {"mallory", "CN=mallory", CRT_CLIENT, 0x40, true, from, to},
	    {"expired", "CN=expired", CRT_CLIENT, 0x41, false, now - 10 * day, now - day},
	    {"revoked", "CN=revoked", CRT_CLIENT, 0x42, false, from, to},
	};
	gnutls_x509_crt_t revoked = NULL;
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		char crt_name[64], key_name[64];
		snprintf(crt_name, sizeof(crt_name), "%s.crt", leaves[i].name);
		snprintf(key_name, sizeof(key_name), "%s.key", leaves[i].name);
		gnutls_x509_privkey_t key = gen_key(key_name);
		gnutls_x509_crt_t crt = make_crt(
		    crt_name, leaves[i].kind, leaves[i].dn, leaves[i].serial0, key,
		    leaves[i].other ? other_ca : ca, leaves[i].other ? other_ca_key : ca_key,
		    leaves[i].not_before, leaves[i].not_after);
		gnutls_x509_privkey_deinit(key);
		if (strcmp(leaves[i].name, "revoked") == 0)
			revoked = crt;
		else
			gnutls_x509_crt_deinit(crt);
	}
	make_crl("ca.crl", ca, ca_key, revoked, now - 3600, now + 7 * day);
	make_crl("stale.crl", ca, ca_key, revoked, now - 3 * day, now - 3600);
	make_crl("other.crl", other_ca, other_ca_key, NULL, now - 3600, now + 7 * day);
	write_text("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
	                          "-----END CERTIFICATE-----\n");
	write_text("garbage.txt", "hello, I am not a key\n");

	gnutls_x509_crt_deinit(revoked);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(other_ca);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(other_ca_key);
}

static void pki_remove(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static bool pki_owned; /* this process built it and removes it */

static void pki_make(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(pki_dir, sizeof(pki_dir), "%s/sealmail-tls-XXXXXX", tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(pki_dir));
	pki_build();
	pki_owned = true;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	pki_make();
	setenv(PKI_ENV, pki_dir, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	if (pki_owned)
		pki_remove(pki_dir);
}

static void pki_cleanup(void)
{
	if (pki_owned)
		pki_remove(pki_dir);
}

static void setup(void)
{
	if (pki_dir[0] != '\0')
		return;
	const char *dir = getenv(PKI_ENV);
	if (dir != NULL && access(dir, R_OK) == 0) {
		snprintf(pki_dir, sizeof(pki_dir), "%s", dir);
		return;
	}
	/* The runner did not share its folder: build one for this worker. */
	pki_make();
	atexit(pki_cleanup);
}

TestSuite(tls, .init = setup);

/* ----- Contexts and a GnuTLS client over memory ----- */

static struct tls_ctx *ctx_make(const char *crl, enum cfg_tls_version min)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls.certificate = (char *)pki("server.crt");
	cfg.tls.key = (char *)pki("server.key");
	cfg.tls.client_ca = (char *)pki("ca.crt");
	cfg.tls.crl = crl != NULL ? (char *)pki(crl) : NULL;
	cfg.tls.min_version = min;
	struct tls_ctx *ctx = NULL;
	const char *err = NULL;
	int r = tls_ctx_new(&cfg, &ctx, &err);
	cr_assert_eq(r, 0, "tls_ctx_new: %s", err ? err : "?");
	cr_assert_not_null(ctx);
	return ctx;
}

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

static ssize_t client_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct client *c = p;
	cr_assert_eq(buf_append(&c->out, data, len), 0);
	return (ssize_t)len;
}

static ssize_t client_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct client *c = p;
	size_t avail = c->in.len - c->in_off;
	if (avail == 0) {
		gnutls_transport_set_errno(c->gs, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(data, c->in.data + c->in_off, len);
	c->in_off += len;
	return (ssize_t)len;
}

/* The client always sends its certificate, even one the server's CA list does not name
 * (a GnuTLS client would otherwise keep it back), so the server's checks are what is
 * tested. */
static int client_retrieve(gnutls_session_t gs, const gnutls_datum_t *req_ca_rdn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **pcert, unsigned int *pcert_length,
                           gnutls_privkey_t *pkey)
{
	struct client *c = gnutls_session_get_ptr(gs);
	*pcert = &c->pcert;
	*pcert_length = 1;
	*pkey = c->key;
	return 0;
}

#define PRIO_13  "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define PRIO_12  "NORMAL:-VERS-ALL:+VERS-TLS1.2"
#define PRIO_ANY "NORMAL"
#define PRIO_OLD "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0"

/* who: NULL for no client certificate, else the stem of a .crt/.key pair. */
static struct client *client_new(const char *prio, const char *who)
{
	struct client *c = calloc(1, sizeof(*c));
	cr_assert_not_null(c);
	buf_init(&c->in, (size_t)-1);
	buf_init(&c->out, (size_t)-1);
	cr_assert_eq(gnutls_certificate_allocate_credentials(&c->cred), 0);
	cr_assert_gt(
	    gnutls_certificate_set_x509_trust_file(c->cred, pki("ca.crt"), GNUTLS_X509_FMT_PEM), 0);
	if (who != NULL) {
		char crt[64], key[64];
		gnutls_datum_t d;
		snprintf(crt, sizeof(crt), "%s.crt", who);
		snprintf(key, sizeof(key), "%s.key", who);
		cr_assert_eq(gnutls_load_file(pki(crt), &d), 0);
		cr_assert_eq(gnutls_pcert_import_x509_raw(&c->pcert, &d, GNUTLS_X509_FMT_PEM, 0),
		             0);
		gnutls_free(d.data);
		cr_assert_eq(gnutls_load_file(pki(key), &d), 0);
		cr_assert_eq(gnutls_privkey_init(&c->key), 0);
		cr_assert_eq(
		    gnutls_privkey_import_x509_raw(c->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
		gnutls_free(d.data);
		c->has_cert = true;
		gnutls_certificate_set_retrieve_function2(c->cred, client_retrieve);
	}
	cr_assert_eq(gnutls_init(&c->gs, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	const char *err_pos = NULL;
	cr_assert_eq(gnutls_priority_set_direct(c->gs, prio, &err_pos), 0, "%s", prio);
	cr_assert_eq(gnutls_credentials_set(c->gs, GNUTLS_CRD_CERTIFICATE, c->cred), 0);
	cr_assert_eq(gnutls_server_name_set(c->gs, GNUTLS_NAME_DNS, "localhost", 9), 0);
	gnutls_session_set_verify_cert(c->gs, "localhost", 0); /* checks our server chain */
	gnutls_session_set_ptr(c->gs, c);
	gnutls_transport_set_ptr(c->gs, c);
	gnutls_transport_set_push_function(c->gs, client_push);
	gnutls_transport_set_pull_function(c->gs, client_pull);
	gnutls_handshake_set_timeout(c->gs, 0);
	return c;
}

static void client_free(struct client *c)
{
	gnutls_deinit(c->gs);
	gnutls_certificate_free_credentials(c->cred);
	if (c->has_cert) {
		gnutls_pcert_deinit(&c->pcert);
		gnutls_privkey_deinit(c->key);
	}
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Server output into the client. */
static size_t to_client(struct tls_session *s, struct client *c)
{
	size_t len, total = 0;
	void *data;
	while ((data = tls_session_take_output(s, &len)) != NULL) {
		cr_assert_gt(len, 0);
		cr_assert_eq(buf_append(&c->in, data, len), 0);
		total += len;
		free(data);
	}
	return total;
}

struct server_state {
	int hs; /* 0 running, 1 done, <0 failed */
	const char *error;
};

static void server_step(struct tls_session *s, struct server_state *st)
{
	if (st->hs == 0)
		st->hs = tls_session_handshake(s, &st->error);
}

/* Client output into the server, step bytes at a time (0: all at once), driving the
 * server handshake after each piece. */
static size_t to_server(struct client *c, struct tls_session *s, struct server_state *st,
                        size_t step)
{
	size_t total = c->out.len;
	size_t off = 0;
	while (off < c->out.len) {
		size_t n = step == 0 ? c->out.len - off : step;
		if (n > c->out.len - off)
			n = c->out.len - off;
		cr_assert_eq(tls_session_feed(s, c->out.data + off, n), 0);
		off += n;
		server_step(s, st);
	}
	buf_reset(&c->out);
	return total;
}

/* Moves bytes both ways until nothing moves and both handshakes are over (or stuck). */
static void pump(struct client *c, struct tls_session *s, struct server_state *st, size_t step)
{
	for (int i = 0; i < 100; i++) {
		if (c->hs == 0) {
			int r = gnutls_handshake(c->gs);
			if (r == 0)
				c->hs = 1;
			else if (r != GNUTLS_E_AGAIN && gnutls_error_is_fatal(r))
				c->hs = r;
		}
		size_t moved = to_server(c, s, st, step);
		server_step(s, st);
		moved += to_client(s, c);
		if (moved == 0 && c->hs != 0 && st->hs != 0)
			return;
		if (moved == 0 && c->hs < 0)
			return;
	}
	cr_assert_fail("handshake did not settle (client %d, server %d)", c->hs, st->hs);
}

/* Reads what the client has buffered; returns the last GnuTLS result (AGAIN when all
 * was read). */
static int client_recv(struct client *c, struct buf *into)
{
	char tmp[4096];
	for (;;) {
		ssize_t n = gnutls_record_recv(c->gs, tmp, sizeof(tmp));
		if (n > 0) {
			if (into != NULL)
				cr_assert_eq(buf_append(into, tmp, (size_t)n), 0);
			continue;
		}
		/* After a ticket GnuTLS says AGAIN although more is buffered. */
		if (n == GNUTLS_E_AGAIN && c->in_off < c->in.len)
			continue;
		return (int)n;
	}
}

static void client_send(struct client *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = gnutls_record_send(c->gs, p, len);
		cr_assert_gt(n, 0, "record_send: %s", gnutls_strerror((int)n));
		p += n;
		len -= (size_t)n;
	}
}

/* Client-to-server ciphertext, fed in pieces of step bytes, read by the server as it
 * arrives. */
static void server_receive(struct client *c, struct tls_session *s, size_t step, struct buf *into)
{
	char tmp[3000];
	size_t off = 0;
	while (off < c->out.len) {
		size_t n = c->out.len - off < step ? c->out.len - off : step;
		cr_assert_eq(tls_session_feed(s, c->out.data + off, n), 0);
		off += n;
		for (;;) {
			const char *err = NULL;
			ssize_t r = tls_session_read(s, tmp, sizeof(tmp), &err);
			if (r == 0)
				break;
			cr_assert_gt(r, 0, "tls_session_read: %zd %s", r, err ? err : "");
			cr_assert_eq(buf_append(into, tmp, (size_t)r), 0);
		}
	}
	buf_reset(&c->out);
}

struct conv {
	struct tls_ctx *ctx;
	struct tls_session *s;
	struct client *c;
	struct server_state st;
};

static void conv_open(struct conv *v, struct tls_ctx *ctx, enum cfg_client_cert mode,
                      const char *prio, const char *who)
{
	memset(v, 0, sizeof(*v));
	v->ctx = ctx;
	v->s = tls_session_new(ctx, mode);
	v->c = client_new(prio, who);
	pump(v->c, v->s, &v->st, 0);
}

static void conv_close(struct conv *v)
{
	tls_session_free(v->s);
	client_free(v->c);
}

static void assert_established(struct conv *v)
{
	cr_assert_eq(v->st.hs, 1, "server handshake: %d %s", v->st.hs,
	             v->st.error ? v->st.error : "");
	cr_assert_eq(v->c->hs, 1, "client handshake: %s", gnutls_strerror(v->c->hs));
}

/* A rejected client certificate: the server failed with reason, and the client, which in
 * TLS 1.3 may have finished its handshake, reads alert. */
static void assert_rejected(struct conv *v, const char *reason, gnutls_alert_description_t alert)
{
	cr_assert_lt(v->st.hs, 0, "server accepted the client");
	cr_assert_not_null(v->st.error);
	cr_assert_not_null(strstr(v->st.error, reason), "error \"%s\" lacks \"%s\"", v->st.error,
	                   reason);
	int r = v->c->hs;
	if (r == 1)
		r = client_recv(v->c, NULL);
	cr_assert_eq(r, GNUTLS_E_FATAL_ALERT_RECEIVED, "client saw %s", gnutls_strerror(r));
	cr_assert_eq(gnutls_alert_get(v->c->gs), alert, "client got alert %s",
	             gnutls_alert_get_name(gnutls_alert_get(v->c->gs)));
	cr_assert_not(tls_session_peer_verified(v->s));
	cr_assert_null(tls_session_peer_subject(v->s));
}

/* ----- Handshakes and versions ----- */

Test(tls, tls13_handshake)
{
	struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_ANY, NULL);
	assert_established(&v);
	cr_assert_str_eq(tls_session_version(v.s), "TLSv1.3");
	cr_assert_str_eq(tls_session_cipher(v.s), "TLS_AES_256_GCM_SHA384");
	cr_assert_not(tls_session_resumed(v.s));
	cr_assert_not(tls_session_peer_verified(v.s));
	cr_assert_null(tls_session_peer_error(v.s));
	size_t len = 1;
	cr_assert_null(tls_session_peer_der(v.s, &len));
	cr_assert_eq(len, 0);
	cr_assert_eq(tls_session_handshake(v.s, &v.st.error), 1, "handshake again is done");
	/* X25519 is what a default client and our server agree on. */
	cr_assert_eq(gnutls_group_get(v.c->gs), GNUTLS_GROUP_X25519);
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, tls12_handshake)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_12, NULL);
	assert_established(&v);
	cr_assert_str_eq(tls_session_version(v.s), "TLSv1.2");
	cr_assert_not_null(strstr(tls_session_cipher(v.s), "ECDHE"), "%s", tls_session_cipher(v.s));
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, old_versions_refused)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_OLD, NULL);
	cr_assert_lt(v.st.hs, 0);
	cr_assert_lt(v.c->hs, 0);
	cr_assert_not_null(v.st.error);
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, min_version_13_refuses_12)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_3);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_12, NULL);
	cr_assert_lt(v.st.hs, 0);
	cr_assert_lt(v.c->hs, 0);
	conv_close(&v);
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_ANY, NULL);
	assert_established(&v);
	cr_assert_str_eq(tls_session_version(v.s), "TLSv1.3");
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, handshake_byte_by_byte)
{
	struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	const char *prios[] = {PRIO_13, PRIO_12};
	for (size_t i = 0; i < 2; i++) {
		struct conv v;
		memset(&v, 0, sizeof(v));
		v.s = tls_session_new(ctx, CFG_CLIENT_CERT_REQUIRED);
		v.c = client_new(prios[i], "alice");
		pump(v.c, v.s, &v.st, 1);
		assert_established(&v);
		cr_assert(tls_session_peer_verified(v.s));
		conv_close(&v);
	}
	tls_ctx_unref(ctx);
}

Test(tls, garbage_fails_with_alert)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct tls_session *s = tls_session_new(ctx, CFG_CLIENT_CERT_NONE);
	static const char junk[] = "EHLO example.org\r\nthis is not TLS at all\r\n";
	cr_assert_eq(tls_session_feed(s, junk, sizeof(junk) - 1), 0);
	const char *err = NULL;
	cr_assert_lt(tls_session_handshake(s, &err), 0);
	cr_assert_not_null(err);
	size_t len;
	void *out = tls_session_take_output(s, &len);
	cr_assert_not_null(out, "an alert is queued");
	cr_assert_eq(((unsigned char *)out)[0], 21, "content type alert");
	free(out);
	cr_assert_lt(tls_session_handshake(s, &err), 0, "failure sticks");
	tls_session_free(s);
	tls_ctx_unref(ctx);
}

Test(tls, feed_is_bounded)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct tls_session *s = tls_session_new(ctx, CFG_CLIENT_CERT_NONE);
	char chunk[1024];
	memset(chunk, 0x16, sizeof(chunk));
	int r = 0;
	size_t fed = 0;
	while (fed < 1024 * 1024 && (r = tls_session_feed(s, chunk, sizeof(chunk))) == 0)
		fed += sizeof(chunk);
	cr_assert_eq(r, -ENOBUFS);
	cr_assert_geq(fed, 64 * 1024);
	cr_assert_lt(fed, 128 * 1024);
	tls_session_free(s);
	tls_ctx_unref(ctx);
}

/* ----- Data ----- */

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 31 + seed + (i >> 8)) & 0xff);
}

static void exchange(const char *prio, size_t feed_step)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, prio, NULL);
	assert_established(&v);
	/* Whatever the server sent after the handshake (TLS 1.3 tickets) reaches the client. */
	cr_assert_eq(client_recv(v.c, NULL), GNUTLS_E_AGAIN);

	size_t big = 100 * 1024 + 17;
	unsigned char *data = malloc(big);
	cr_assert_not_null(data);

	/* Client to server: many records, fed in pieces. */
	fill_pattern(data, big, 1);
	client_send(v.c, data, big);
	struct buf got;
	buf_init(&got, (size_t)-1);
	server_receive(v.c, v.s, feed_step, &got);
	cr_assert_eq(got.len, big);
	cr_assert_arr_eq(got.data, data, big);
	buf_reset(&got);

	/* Server to client, one write of many records. */
	fill_pattern(data, big, 7);
	cr_assert_eq(tls_session_write(v.s, data, big), 0);
	cr_assert_gt(to_client(v.s, v.c), big);
	cr_assert_eq(client_recv(v.c, &got), GNUTLS_E_AGAIN);
	cr_assert_eq(got.len, big);
	cr_assert_arr_eq(got.data, data, big);
	buf_reset(&got);

	/* A small line each way. */
	client_send(v.c, "a1 NOOP\r\n", 9);
	server_receive(v.c, v.s, 4096, &got);
	cr_assert_eq(got.len, 9);
	cr_assert_arr_eq(got.data, "a1 NOOP\r\n", 9);

	/* close_notify from the client: TLS_EOF, and again on the next call. */
	cr_assert_eq(gnutls_bye(v.c->gs, GNUTLS_SHUT_WR), 0);
	cr_assert_eq(tls_session_feed(v.s, v.c->out.data, v.c->out.len), 0);
	buf_reset(&v.c->out);
	char tmp[64];
	const char *err = NULL;
	cr_assert_eq(tls_session_read(v.s, tmp, sizeof(tmp), &err), TLS_EOF);
	cr_assert_eq(tls_session_read(v.s, tmp, sizeof(tmp), &err), TLS_EOF);

	/* close_notify from the server reaches the client. */
	tls_session_bye(v.s);
	cr_assert_gt(to_client(v.s, v.c), 0);
	cr_assert_eq(client_recv(v.c, NULL), 0, "client sees EOF");

	buf_free(&got);
	free(data);
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, data_tls13)
{
	exchange(PRIO_13, 4096);
}

Test(tls, data_tls12)
{
	exchange(PRIO_12, 4096);
}

Test(tls, data_one_byte_at_a_time)
{
	exchange(PRIO_13, 1);
}

Test(tls, data_whole_records)
{
	exchange(PRIO_12, 16 * 1024 + 29);
}

Test(tls, read_before_handshake_and_pipelined_data)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct tls_session *s = tls_session_new(ctx, CFG_CLIENT_CERT_NONE);
	struct client *c = client_new(PRIO_13, NULL);
	struct server_state st = {0, NULL};
	char tmp[64];
	const char *err = NULL;
	cr_assert_lt(tls_session_read(s, tmp, sizeof(tmp), &err), 0);
	cr_assert_lt(tls_session_write(s, "x", 1), 0);

	/* The client's Finished and its first command arrive in one piece. */
	while (c->hs == 0) {
		int r = gnutls_handshake(c->gs);
		if (r == 0)
			c->hs = 1;
		else
			cr_assert_eq(r, GNUTLS_E_AGAIN);
		if (c->hs == 1)
			client_send(c, "hello\r\n", 7);
		cr_assert_eq(tls_session_feed(s, c->out.data, c->out.len), 0);
		buf_reset(&c->out);
		server_step(s, &st);
		to_client(s, c);
	}
	cr_assert_eq(st.hs, 1, "%s", st.error ? st.error : "");
	cr_assert_eq(tls_session_read(s, tmp, sizeof(tmp), &err), 7);
	cr_assert_arr_eq(tmp, "hello\r\n", 7);
	cr_assert_eq(tls_session_read(s, tmp, sizeof(tmp), &err), 0);
	tls_session_free(s);
	client_free(c);
	tls_ctx_unref(ctx);
}

/* Client bytes into the server, then everything the server can read. */
static void feed_and_read(struct client *c, struct tls_session *s, struct buf *into)
{
	server_receive(c, s, c->out.len > 0 ? c->out.len : 1, into);
}

Test(tls, key_update_then_data)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_13, NULL);
	assert_established(&v);
	cr_assert_eq(client_recv(v.c, NULL), GNUTLS_E_AGAIN);
	/* A KeyUpdate (asking for ours) and data in one piece: the data must not stall
	 * behind the record that carried none. */
	cr_assert_eq(gnutls_session_key_update(v.c->gs, GNUTLS_KU_PEER), 0);
	client_send(v.c, "after update\r\n", 14);
	struct buf got;
	buf_init(&got, 1024);
	feed_and_read(v.c, v.s, &got);
	cr_assert_eq(got.len, 14);
	cr_assert_arr_eq(got.data, "after update\r\n", 14);
	buf_reset(&got);
	cr_assert_eq(tls_session_write(v.s, "reply\r\n", 7), 0);
	to_client(v.s, v.c);
	cr_assert_eq(client_recv(v.c, &got), GNUTLS_E_AGAIN);
	cr_assert_str_eq(got.data, "reply\r\n");
	buf_free(&got);
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, renegotiation_refused)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_12, NULL);
	assert_established(&v);
	cr_assert_eq(gnutls_handshake(v.c->gs), GNUTLS_E_AGAIN); /* a new ClientHello */
	cr_assert_eq(tls_session_feed(v.s, v.c->out.data, v.c->out.len), 0);
	buf_reset(&v.c->out);
	/* A client-initiated renegotiation is refused: the read fails, no_renegotiation and
	 * a fatal alert go out, and the session stays failed. */
	char tmp[64];
	const char *err = NULL;
	cr_assert_lt(tls_session_read(v.s, tmp, sizeof(tmp), &err), 0);
	cr_assert_not_null(err);
	cr_assert_not_null(strstr(err, "renegotiation"), "%s", err);
	cr_assert_gt(to_client(v.s, v.c), 0, "an alert");
	cr_assert_lt(tls_session_read(v.s, tmp, sizeof(tmp), &err), 0);
	cr_assert_lt(tls_session_write(v.s, "x", 1), 0);
	int r;
	while ((r = gnutls_handshake(v.c->gs)) == GNUTLS_E_WARNING_ALERT_RECEIVED)
		cr_assert_eq(gnutls_alert_get(v.c->gs), GNUTLS_A_NO_RENEGOTIATION);
	cr_assert_eq(r, GNUTLS_E_FATAL_ALERT_RECEIVED, "%s", gnutls_strerror(r));
	cr_assert_eq(gnutls_alert_get(v.c->gs), GNUTLS_A_HANDSHAKE_FAILURE, "%s",
	             gnutls_alert_get_name(gnutls_alert_get(v.c->gs)));
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, channel_binding)
{
	struct tls_ctx *ctx = ctx_make(NULL, CFG_TLS_1_2);
	const char *prios[] = {PRIO_13, PRIO_12};
	for (size_t i = 0; i < 2; i++) {
		struct conv v;
		conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, prios[i], NULL);
		assert_established(&v);
		unsigned char ours[32];
		cr_assert_eq(tls_session_channel_binding(v.s, ours, sizeof(ours)), 0);
		gnutls_datum_t theirs;
		cr_assert_eq(
		    gnutls_session_channel_binding(v.c->gs, GNUTLS_CB_TLS_EXPORTER, &theirs), 0);
		cr_assert_eq(theirs.size, sizeof(ours));
		cr_assert_arr_eq(theirs.data, ours, sizeof(ours));
		gnutls_free(theirs.data);
		cr_assert_lt(tls_session_channel_binding(v.s, ours, 16), 0, "wrong length");
		conv_close(&v);
	}
	tls_ctx_unref(ctx);
}

/* ----- Client certificates ----- */

Test(tls, required_valid_certificate)
{
	struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	const char *prios[] = {PRIO_13, PRIO_12};
	for (size_t i = 0; i < 2; i++) {
		struct conv v;
		conv_open(&v, ctx, CFG_CLIENT_CERT_REQUIRED, prios[i], "alice");
		assert_established(&v);
		cr_assert(tls_session_peer_verified(v.s));
		cr_assert_null(tls_session_peer_error(v.s));
		cr_assert_str_eq(tls_session_peer_subject(v.s), "CN=alice,O=sealmail");
		cr_assert_str_eq(tls_session_peer_serial(v.s), "3f0a1122");
		size_t len = 0;
		const void *der = tls_session_peer_der(v.s, &len);
		cr_assert_not_null(der);
		const gnutls_datum_t *mine = gnutls_certificate_get_ours(v.c->gs);
		cr_assert_not_null(mine);
		cr_assert_eq(len, mine->size);
		cr_assert_arr_eq(der, mine->data, len);
		/* And data flows. */
		cr_assert_eq(tls_session_write(v.s, "* OK\r\n", 6), 0);
		to_client(v.s, v.c);
		struct buf got;
		buf_init(&got, 1024);
		cr_assert_eq(client_recv(v.c, &got), GNUTLS_E_AGAIN);
		cr_assert_str_eq(got.data, "* OK\r\n");
		buf_free(&got);
		conv_close(&v);
	}
	tls_ctx_unref(ctx);
}

struct reject_case {
	const char *who;
	const char *crl;
	const char *reason;
	const char *peer_error;
	gnutls_alert_description_t alert;
};

static const struct reject_case reject_cases[] = {
    {NULL, "ca.crl", "client certificate required", "no certificate",
     GNUTLS_A_CERTIFICATE_REQUIRED},
    {"mallory", "ca.crl", "unknown CA", "unknown CA", GNUTLS_A_UNKNOWN_CA},
    {"expired", "ca.crl", "expired", "expired", GNUTLS_A_CERTIFICATE_EXPIRED},
    {"revoked", "ca.crl", "revoked", "revoked", GNUTLS_A_CERTIFICATE_REVOKED},
    {"alice", "stale.crl", "CRL expired", "CRL expired", GNUTLS_A_CERTIFICATE_UNKNOWN},
    /* A server certificate (serverAuth only) is no client certificate. */
    {"server", "ca.crl", "not for client authentication", "not for client authentication",
     GNUTLS_A_BAD_CERTIFICATE},
    {"revoked", "stale.crl", "revoked", NULL, 0},
};

static void check_required_rejections(const char *prio)
{
	for (size_t i = 0; i < sizeof(reject_cases) / sizeof(reject_cases[0]); i++) {
		const struct reject_case *rc = &reject_cases[i];
		struct tls_ctx *ctx = ctx_make(rc->crl, CFG_TLS_1_2);
		struct conv v;
		conv_open(&v, ctx, CFG_CLIENT_CERT_REQUIRED, prio, rc->who);
		if (rc->peer_error == NULL) {
			/* GnuTLS ignores the expired CRL: only our own check refuses. */
			cr_assert_lt(v.st.hs, 0, "case %zu accepted", i);
		} else {
			assert_rejected(&v, rc->reason, rc->alert);
			cr_assert_str_eq(tls_session_peer_error(v.s), rc->peer_error);
		}
		conv_close(&v);
		tls_ctx_unref(ctx);
	}
}

Test(tls, required_rejections_tls13)
{
	check_required_rejections(PRIO_13);
}

Test(tls, required_rejections_tls12)
{
	check_required_rejections(PRIO_12);
}

Test(tls, optional_mode)
{
	struct {
		const char *who, *crl, *peer_error;
	} cases[] = {
	    {NULL, "ca.crl", "no certificate"},
	    {"mallory", "ca.crl", "unknown CA"},
	    {"expired", "ca.crl", "expired"},
	    {"revoked", "ca.crl", "revoked"},
	    {"alice", "stale.crl", "CRL expired"},
	    {"alice", "ca.crl", NULL},
	    {"alice", NULL, NULL},
	};
	const char *prios[] = {PRIO_13, PRIO_12};
	for (size_t p = 0; p < 2; p++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			struct tls_ctx *ctx = ctx_make(cases[i].crl, CFG_TLS_1_2);
			struct conv v;
			conv_open(&v, ctx, CFG_CLIENT_CERT_OPTIONAL, prios[p], cases[i].who);
			assert_established(&v);
			if (cases[i].peer_error == NULL) {
				cr_assert(tls_session_peer_verified(v.s), "case %zu", i);
				cr_assert_str_eq(tls_session_peer_subject(v.s),
				                 "CN=alice,O=sealmail");
			} else {
				cr_assert_not(tls_session_peer_verified(v.s), "case %zu", i);
				cr_assert_str_eq(tls_session_peer_error(v.s), cases[i].peer_error);
				cr_assert_null(tls_session_peer_subject(v.s));
				cr_assert_null(tls_session_peer_serial(v.s));
			}
			conv_close(&v);
			tls_ctx_unref(ctx);
		}
	}
}

Test(tls, none_mode_does_not_ask)
{
	struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_NONE, PRIO_13, "alice");
	assert_established(&v);
	cr_assert_null(gnutls_certificate_get_ours(v.c->gs), "client sent no certificate");
	cr_assert_not(tls_session_peer_verified(v.s));
	conv_close(&v);
	tls_ctx_unref(ctx);
}

Test(tls, crl_expired_flag)
{
	struct tls_ctx *ctx = ctx_make("stale.crl", CFG_TLS_1_2);
	cr_assert(tls_ctx_crl_expired(ctx));
	tls_ctx_unref(ctx);
	ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	cr_assert_not(tls_ctx_crl_expired(ctx));
	tls_ctx_unref(ctx);
	ctx = ctx_make(NULL, CFG_TLS_1_2);
	cr_assert_not(tls_ctx_crl_expired(ctx));
	tls_ctx_unref(ctx);
}

/* ----- Resumption ----- */

/* A full handshake on ctx, then the session data a client would keep. */
static gnutls_datum_t first_visit(struct tls_ctx *ctx, enum cfg_client_cert mode, const char *prio,
                                  const char *who)
{
	struct conv v;
	conv_open(&v, ctx, mode, prio, who);
	assert_established(&v);
	cr_assert_not(tls_session_resumed(v.s));
	/* TLS 1.3 tickets arrive after the handshake. */
	cr_assert_eq(client_recv(v.c, NULL), GNUTLS_E_AGAIN);
	gnutls_datum_t data;
	cr_assert_eq(gnutls_session_get_data2(v.c->gs, &data), 0);
	conv_close(&v);
	return data;
}

static struct conv revisit(struct tls_ctx *ctx, enum cfg_client_cert mode, const char *prio,
                           const char *who, const gnutls_datum_t *data)
{
	struct conv v;
	memset(&v, 0, sizeof(v));
	v.ctx = ctx;
	v.s = tls_session_new(ctx, mode);
	v.c = client_new(prio, who);
	cr_assert_eq(gnutls_session_set_data(v.c->gs, data->data, data->size), 0);
	pump(v.c, v.s, &v.st, 0);
	return v;
}

static void check_resumption(const char *prio)
{
	struct tls_ctx *a = ctx_make("ca.crl", CFG_TLS_1_2);
	gnutls_datum_t data = first_visit(a, CFG_CLIENT_CERT_NONE, prio, NULL);

	struct conv v = revisit(a, CFG_CLIENT_CERT_NONE, prio, NULL, &data);
	assert_established(&v);
	cr_assert(tls_session_resumed(v.s), "same context resumes");
	cr_assert(gnutls_session_is_resumed(v.c->gs));
	conv_close(&v);

	/* A reload builds a new context from the same files: a new ticket key. */
	struct tls_ctx *b = ctx_make("ca.crl", CFG_TLS_1_2);
	v = revisit(b, CFG_CLIENT_CERT_NONE, prio, NULL, &data);
	assert_established(&v);
	cr_assert_not(tls_session_resumed(v.s), "a ticket of another context resumed");
	cr_assert_not(gnutls_session_is_resumed(v.c->gs));
	conv_close(&v);

	gnutls_free(data.data);
	tls_ctx_unref(a);
	tls_ctx_unref(b);
}

Test(tls, resumption_tls13)
{
	check_resumption(PRIO_13);
}

Test(tls, resumption_tls12)
{
	check_resumption(PRIO_12);
}

Test(tls, resumption_rechecks_client_certificate)
{
	const char *prios[] = {PRIO_13, PRIO_12};
	for (size_t i = 0; i < 2; i++) {
		struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
		gnutls_datum_t data = first_visit(ctx, CFG_CLIENT_CERT_REQUIRED, prios[i], "alice");
		/* Resumed with a certificate: still verified, with its details. */
		struct conv v = revisit(ctx, CFG_CLIENT_CERT_REQUIRED, prios[i], "alice", &data);
		assert_established(&v);
		cr_assert(tls_session_resumed(v.s));
		cr_assert(tls_session_peer_verified(v.s));
		cr_assert_str_eq(tls_session_peer_serial(v.s), "3f0a1122");
		conv_close(&v);
		gnutls_free(data.data);

		/* A ticket from a session without a certificate does not pass a listener that
		 * requires one. */
		data = first_visit(ctx, CFG_CLIENT_CERT_NONE, prios[i], NULL);
		v = revisit(ctx, CFG_CLIENT_CERT_REQUIRED, prios[i], NULL, &data);
		cr_assert_lt(v.st.hs, 0, "resumed without a certificate");
		cr_assert_not_null(strstr(v.st.error, "client certificate required"));
		conv_close(&v);
		gnutls_free(data.data);
		tls_ctx_unref(ctx);
	}
}

/* ----- Context lifetime and errors ----- */

Test(tls, session_keeps_context_alive)
{
	struct tls_ctx *ctx = ctx_make("ca.crl", CFG_TLS_1_2);
	struct tls_session *s = tls_session_new(ctx, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_eq(tls_ctx_ref(ctx), ctx);
	tls_ctx_unref(ctx);
	tls_ctx_unref(ctx); /* the session holds the last reference */
	struct client *c = client_new(PRIO_13, "alice");
	struct server_state st = {0, NULL};
	pump(c, s, &st, 0);
	cr_assert_eq(st.hs, 1, "%s", st.error ? st.error : "");
	cr_assert(tls_session_peer_verified(s));
	cr_assert_eq(tls_session_write(s, "ok", 2), 0);
	tls_session_free(s); /* frees the context (ASan checks) */
	client_free(c);
	tls_ctx_unref(NULL);
	tls_session_free(NULL);
}

static const char *ctx_error(const char *cert, const char *key, const char *ca, const char *crl)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls.certificate = cert ? (char *)pki(cert) : NULL;
	cfg.tls.key = key ? (char *)pki(key) : NULL;
	cfg.tls.client_ca = ca ? (char *)pki(ca) : NULL;
	cfg.tls.crl = crl ? (char *)pki(crl) : NULL;
	struct tls_ctx *ctx = (struct tls_ctx *)&cfg; /* must be reset to NULL */
	const char *err = NULL;
	int r = tls_ctx_new(&cfg, &ctx, &err);
	cr_assert_lt(r, 0);
	cr_assert_null(ctx);
	cr_assert_not_null(err);
	return err;
}

static void assert_mentions(const char *err, const char *name)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/%s", pki_dir, name);
	cr_assert_not_null(strstr(err, path), "\"%s\" does not name %s", err, path);
}

Test(tls, context_errors_name_the_file)
{
	const char *err;
	err = ctx_error("missing.crt", "server.key", NULL, NULL);
	assert_mentions(err, "missing.crt");
	cr_assert_not_null(strstr(err, "No such file"), "%s", err);
	err = ctx_error("server.crt", "missing.key", NULL, NULL);
	assert_mentions(err, "missing.key");
	err = ctx_error("garbage.pem", "server.key", NULL, NULL);
	assert_mentions(err, "garbage.pem");
	err = ctx_error("garbage.txt", "server.key", NULL, NULL);
	assert_mentions(err, "garbage.txt");
	err = ctx_error("server.crt", "garbage.txt", NULL, NULL);
	assert_mentions(err, "garbage.txt");
	err = ctx_error("server.crt", "alice.key", NULL, NULL);
	assert_mentions(err, "alice.key");
	assert_mentions(err, "server.crt");
	err = ctx_error("server.crt", "server.key", "missing-ca.crt", NULL);
	assert_mentions(err, "missing-ca.crt");
	err = ctx_error("server.crt", "server.key", "garbage.txt", NULL);
	assert_mentions(err, "garbage.txt");
	err = ctx_error("server.crt", "server.key", "ca.crt", "missing.crl");
	assert_mentions(err, "missing.crl");
	err = ctx_error("server.crt", "server.key", "ca.crt", "garbage.txt");
	assert_mentions(err, "garbage.txt");
	err = ctx_error("server.crt", "server.key", "ca.crt", "other.crl");
	assert_mentions(err, "other.crl");
	err = ctx_error("server.crt", "server.key", NULL, "ca.crl");
	assert_mentions(err, "ca.crl");
	err = ctx_error(NULL, NULL, NULL, NULL);
	cr_assert_not_null(strstr(err, "tls.certificate"), "%s", err);
}

Test(tls, context_without_client_ca)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls.certificate = (char *)pki("server.crt");
	cfg.tls.key = (char *)pki("server.key");
	struct tls_ctx *ctx = NULL;
	const char *err = NULL;
	cr_assert_eq(tls_ctx_new(&cfg, &ctx, &err), 0, "%s", err ? err : "");
	struct conv v;
	conv_open(&v, ctx, CFG_CLIENT_CERT_OPTIONAL, PRIO_13, "alice");
	assert_established(&v);
	cr_assert_not(tls_session_peer_verified(v.s), "nothing to verify against");
	cr_assert_str_eq(tls_session_peer_error(v.s), "unknown CA");
	conv_close(&v);
	tls_ctx_unref(ctx);
}

/* A CRL reload must catch sessions that verified before the revocation. */
Test(tls, recheck_after_reload)
{
	struct tls_ctx *before = ctx_make(NULL, CFG_TLS_1_2);
	struct tls_ctx *after = ctx_make("ca.crl", CFG_TLS_1_2);
	struct tls_ctx *stale = ctx_make("stale.crl", CFG_TLS_1_2);
	const char *why = NULL;
	struct conv v, w;
	conv_open(&v, before, CFG_CLIENT_CERT_REQUIRED, PRIO_13, "revoked");
	assert_established(&v);
	cr_assert(tls_session_peer_verified(v.s));
	cr_assert_eq(tls_ctx_recheck_peer(before, v.s, &why), 0);
	cr_assert_eq(tls_ctx_recheck_peer(after, v.s, &why), -EACCES);
	cr_assert_str_eq(why, "revoked");
	conv_open(&w, before, CFG_CLIENT_CERT_REQUIRED, PRIO_13, "alice");
	assert_established(&w);
	cr_assert_eq(tls_ctx_recheck_peer(after, w.s, &why), 0);
	cr_assert_eq(tls_ctx_recheck_peer(stale, w.s, &why), -EACCES);
	cr_assert_str_eq(why, "CRL expired");
	conv_close(&v);
	conv_close(&w);
	tls_ctx_unref(before);
	tls_ctx_unref(after);
	tls_ctx_unref(stale);
}
