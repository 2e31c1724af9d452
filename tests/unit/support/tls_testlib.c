/* The test PKI and the memory client for the TLS tests (see tls_testlib.h). */
#include "tests/unit/support/tls_testlib.h"

#define PKI_ENV "SEALMAIL_TLS_TEST_PKI"

/* ----- The PKI ----- */

static char pki_dir[256];

const char *pki(const char *name)
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

void tls_test_setup(void)
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

/* ----- Contexts and a GnuTLS client over memory ----- */

struct tls_ctx *ctx_make(const char *crl, enum cfg_tls_version min)
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

/* who: NULL for no client certificate, else the stem of a .crt/.key pair. */
struct client *client_new(const char *prio, const char *who)
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

void client_free(struct client *c)
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
size_t to_client(struct tls_session *s, struct client *c)
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

void server_step(struct tls_session *s, struct server_state *st)
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
void pump(struct client *c, struct tls_session *s, struct server_state *st, size_t step)
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
int client_recv(struct client *c, struct buf *into)
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

void client_send(struct client *c, const void *data, size_t len)
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
void server_receive(struct client *c, struct tls_session *s, size_t step, struct buf *into)
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

void conv_open(struct conv *v, struct tls_ctx *ctx, enum cfg_client_cert mode, const char *prio,
               const char *who)
{
	memset(v, 0, sizeof(*v));
	v->ctx = ctx;
	v->s = tls_session_new(ctx, mode);
	v->c = client_new(prio, who);
	pump(v->c, v->s, &v->st, 0);
}

void conv_close(struct conv *v)
{
	tls_session_free(v->s);
	client_free(v->c);
}

void assert_established(struct conv *v)
{
	cr_assert_eq(v->st.hs, 1, "server handshake: %d %s", v->st.hs,
	             v->st.error ? v->st.error : "");
	cr_assert_eq(v->c->hs, 1, "client handshake: %s", gnutls_strerror(v->c->hs));
}

/* A rejected client certificate: the server failed with reason, and the client, which in
 * TLS 1.3 may have finished its handshake, reads alert. */
void assert_rejected(struct conv *v, const char *reason, gnutls_alert_description_t alert)
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
