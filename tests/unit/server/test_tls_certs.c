/*
 * server/tls.c: client certificates (none, optional, required; CA, expiry, revocation,
 * stale CRLs), session resumption, contexts and their errors, and re-checking live
 * sessions after a reload.
 */
#include "tests/unit/support/tls_testlib.h"

TestSuite(tls, .init = tls_test_setup);

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
	snprintf(path, sizeof(path), "%s", pki(name));
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
