/*
 * server/tls.c against plain GnuTLS clients, both over memory buffers: handshakes,
 * versions and data. Client certificates, resumption and contexts: test_tls_certs.c.
 *
 * The PKI is made at run time once per test binary (tls_testlib.c): the runner builds it
 * before the first test and passes the folder to the workers in the environment.
 */
#include "tests/unit/support/tls_testlib.h"

TestSuite(tls, .init = tls_test_setup);

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
