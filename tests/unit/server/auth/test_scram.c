/*
 * server/auth/scram.c against a GNU SASL client in the same process: the material is made
 * the way the store makes it (PBKDF2, HMAC, SHA-256, base64), the messages go back and
 * forth in base64 as they would in SMTP AUTH.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gsasl.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "server/auth/scram.h"

#define USER     "alice@corp.example"
#define PASSWORD "correct horse battery staple"

struct material {
	char salt[64], stored[64], server[64];
	unsigned iterations;
};

/* As storage/sqlite/store_user.c's scram_derive, with a fixed salt. */
static void make_material(const char *password, struct material *m)
{
	unsigned char salt[16], sp[32], ck[32], sk[32], stored[32];
	gnutls_datum_t key = {.data = (unsigned char *)password,
	                      .size = (unsigned)strlen(password)};
	gnutls_datum_t sd = {.data = salt, .size = sizeof(salt)};
	memset(salt, 0x5a, sizeof(salt));
	cr_assert_eq(gnutls_pbkdf2(GNUTLS_MAC_SHA256, &key, &sd, 4096, sp, sizeof(sp)), 0);
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, sp, sizeof(sp), "Client Key", 10, ck);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, ck, sizeof(ck), stored);
	gnutls_hmac_fast(GNUTLS_MAC_SHA256, sp, sizeof(sp), "Server Key", 10, sk);
	base64_encode(salt, sizeof(salt), m->salt);
	base64_encode(stored, sizeof(stored), m->stored);
	base64_encode(sk, sizeof(sk), m->server);
	m->iterations = 4096;
}

struct client {
	Gsasl *ctx;
	Gsasl_session *s;
};

static void client_start(struct client *cl, const char *mech, const char *user,
                         const char *password, const unsigned char *cb)
{
	cr_assert_eq(gsasl_init(&cl->ctx), GSASL_OK);
	cr_assert_eq(gsasl_client_start(cl->ctx, mech, &cl->s), GSASL_OK);
	gsasl_property_set(cl->s, GSASL_AUTHID, user);
	gsasl_property_set(cl->s, GSASL_PASSWORD, password);
	if (cb != NULL) {
		char b64[64];
		base64_encode(cb, SCRAM_CB_LEN, b64);
		gsasl_property_set(cl->s, GSASL_CB_TLS_EXPORTER, b64);
	}
}

static void client_done(struct client *cl)
{
	gsasl_finish(cl->s);
	gsasl_done(cl->ctx);
}

static char *client_step(struct client *cl, const char *in, int want)
{
	char *out = NULL;
	int rc = gsasl_step64(cl->s, in, &out);
	cr_assert_eq(rc, want, "client step (in \"%s\"): %s", in, gsasl_strerror(rc));
	return out;
}

enum who { RIGHT, UNKNOWN };

/* Runs a whole exchange; returns the server's result of the final step (1 logged in).
 * tamper: a byte index into the client-final-message to flip, or -1. */
static int exchange(const char *mech, const char *password, enum who who, int tamper,
                    const unsigned char *client_cb, const unsigned char *server_cb)
{
	struct client cl;
	struct scram_server *x;
	struct material m;
	bool plus = strcmp(mech, SCRAM_MECH_PLUS) == 0;
	char *out = NULL;
	char user[128];

	client_start(&cl, mech, USER, password, client_cb);
	cr_assert_eq(scram_server_new(plus, server_cb, server_cb ? SCRAM_CB_LEN : 0, &x), 0);
	char *first = client_step(&cl, "", GSASL_NEEDS_MORE);
	cr_assert_eq(scram_client_first_user(first, strlen(first), user, sizeof(user)), 0);
	cr_assert_str_eq(user, USER);
	if (who == RIGHT) {
		make_material(PASSWORD, &m);
		cr_assert_eq(scram_server_set_material(x, m.salt, m.iterations, m.stored, m.server),
		             0);
	} else {
		cr_assert_eq(scram_server_set_dummy(x, user), 0);
	}
	int r = scram_server_step(x, first, strlen(first), &out);
	gsasl_free(first);
	if (r != 0) {
		scram_server_free(x);
		client_done(&cl);
		return r;
	}
	cr_assert_not_null(out);
	char *fin = client_step(&cl, out, GSASL_NEEDS_MORE);
	free(out);
	if (tamper >= 0 && (size_t)tamper < strlen(fin))
		fin[tamper] = fin[tamper] == 'A' ? 'B' : 'A';
	r = scram_server_step(x, fin, strlen(fin), &out);
	gsasl_free(fin);
	if (r == 1) {
		/* The client checks the server's signature too. */
		char *last = client_step(&cl, out, GSASL_OK);
		gsasl_free(last);
		free(out);
	} else {
		cr_assert_null(out);
	}
	scram_server_free(x);
	client_done(&cl);
	return r;
}

Test(scram, right_password_logs_in_and_server_proves_itself)
{
	cr_assert_eq(exchange(SCRAM_MECH, PASSWORD, RIGHT, -1, NULL, NULL), 1);
}

Test(scram, wrong_password_fails)
{
	cr_assert_eq(exchange(SCRAM_MECH, "Correct horse battery staple", RIGHT, -1, NULL, NULL),
	             -EACCES);
}

Test(scram, unknown_user_fails_like_a_wrong_password)
{
	cr_assert_eq(exchange(SCRAM_MECH, PASSWORD, UNKNOWN, -1, NULL, NULL), -EACCES);
}

/* The server-first-message for an unknown user has the same shape as for a real one, and
 * the same salt every time (a changing salt would tell the two apart). */
static void server_first(const char *user, bool dummy, char *salt_r, size_t len)
{
	struct scram_server *x;
	struct material m;
	char raw[512], *out = NULL;
	char cf[128];
	snprintf(raw, sizeof(raw), "n,,n=%s,r=abcdefghijklmnop", user);
	base64_encode(raw, strlen(raw), cf);
	cr_assert_eq(scram_server_new(false, NULL, 0, &x), 0);
	if (dummy) {
		cr_assert_eq(scram_server_set_dummy(x, user), 0);
	} else {
		make_material(PASSWORD, &m);
		scram_server_set_material(x, m.salt, m.iterations, m.stored, m.server);
	}
	cr_assert_eq(scram_server_step(x, cf, strlen(cf), &out), 0);
	long n = base64_decode(out, strlen(out), (unsigned char *)raw);
	cr_assert_gt(n, 0);
	raw[n] = '\0';
	char *s = strstr(raw, ",s="), *i = strstr(raw, ",i=4096");
	cr_assert_not_null(s, "%s", raw);
	cr_assert_not_null(i, "%s", raw);
	cr_assert_eq(i - s - 3, 24, "salt length: %s", raw);
	snprintf(salt_r, len, "%.*s", (int)(i - s - 3), s + 3);
	free(out);
	scram_server_free(x);
}

Test(scram, unknown_user_gets_a_stable_salt_of_the_usual_shape)
{
	char a[64], b[64], c[64], real[64];
	server_first("nobody@corp.example", true, a, sizeof(a));
	server_first("nobody@corp.example", true, b, sizeof(b));
	server_first("other@corp.example", true, c, sizeof(c));
	server_first(USER, false, real, sizeof(real));
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_eq(strlen(a), strlen(real));
}

Test(scram, tampered_final_message_fails)
{
	/* Bytes of the base64 client-final: inside c= (channel binding), r= (nonce), p=. */
	int spots[] = {2, 12, 30, 80, 100, 120};
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++)
		cr_assert_lt(exchange(SCRAM_MECH, PASSWORD, RIGHT, spots[i], NULL, NULL), 0,
		             "flip at %d", spots[i]);
}

Test(scram, plus_binds_to_the_tls_exporter)
{
	unsigned char cb[SCRAM_CB_LEN], other[SCRAM_CB_LEN];
	memset(cb, 7, sizeof(cb));
	memset(other, 8, sizeof(other));
	cr_assert_eq(exchange(SCRAM_MECH_PLUS, PASSWORD, RIGHT, -1, cb, cb), 1);
	cr_assert_lt(exchange(SCRAM_MECH_PLUS, PASSWORD, RIGHT, -1, other, cb), 0);
	cr_assert_lt(exchange(SCRAM_MECH_PLUS, "wrong", RIGHT, -1, cb, cb), 0);
	cr_assert_lt(exchange(SCRAM_MECH_PLUS, PASSWORD, UNKNOWN, -1, cb, cb), 0);
}

Test(scram, plus_needs_a_channel_binding)
{
	struct scram_server *x = (struct scram_server *)1;
	cr_assert_eq(scram_server_new(true, NULL, 0, &x), -ENOTSUP);
	cr_assert_null(x);
}

Test(scram, plain_scram_without_binding_still_works_when_plus_is_offered)
{
	unsigned char cb[SCRAM_CB_LEN];
	memset(cb, 7, sizeof(cb));
	/* A client that cannot bind says "n": fine. */
	cr_assert_eq(exchange(SCRAM_MECH, PASSWORD, RIGHT, -1, NULL, cb), 1);
	/* One that could bind but thinks we cannot ("y") has seen PLUS stripped: refused.
	 * Where we have no binding (PLUS not offered), "y" is fine. */
	const char *y = "y,,n=" USER ",r=abcdefghijklmnop";
	char b64[128], *out = NULL;
	struct material m;
	make_material(PASSWORD, &m);
	base64_encode(y, strlen(y), b64);
	for (int with_cb = 0; with_cb < 2; with_cb++) {
		struct scram_server *x;
		cr_assert_eq(scram_server_new(false, with_cb ? cb : NULL, SCRAM_CB_LEN, &x), 0);
		scram_server_set_material(x, m.salt, m.iterations, m.stored, m.server);
		int r = scram_server_step(x, b64, strlen(b64), &out);
		if (with_cb)
			cr_assert_lt(r, 0);
		else
			cr_assert_eq(r, 0);
		free(out);
		out = NULL;
		scram_server_free(x);
	}
}

static int raw_first(const char *raw, size_t rawlen, char *user, size_t userlen)
{
	char b64[512];
	base64_encode(raw, rawlen, b64);
	return scram_client_first_user(b64, strlen(b64), user, userlen);
}

Test(scram, client_first_user_name)
{
	char u[64];
	cr_assert_eq(raw_first("n,,n=bob@x,r=abc", 16, u, sizeof(u)), 0);
	cr_assert_str_eq(u, "bob@x");
	cr_assert_eq(raw_first("y,a=bob@x,n=a=2Cb=3Dc,r=abc", 27, u, sizeof(u)), 0);
	cr_assert_str_eq(u, "a,b=c");
	const char *bad[] = {
	    "n,,m=ext,n=bob,r=abc", /* extensions */
	    "n,,r=abc",             /* no n= */
	    "n,,n=,r=abc",          /* empty name */
	    "n,,n=a=2Xb,r=abc",     /* bad escape */
	    "n,,n=ab=",             /* no comma after the name */
	    "n,,n=a\x01"
	    "b,r=x",         /* control byte */
	    "n,n=bob,r=abc", /* one comma in the gs2 header */
	    "n,,n=a=2",      /* truncated escape */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(raw_first(bad[i], strlen(bad[i]), u, sizeof(u)), -EINVAL, "%s",
		             bad[i]);
	cr_assert_eq(raw_first("n,,n=abcdef,r=x", 15, u, 4), -EINVAL); /* too long */
	cr_assert_eq(raw_first("n,,n=a\0b,r=x", 12, u, sizeof(u)), -EINVAL);
	cr_assert_eq(scram_client_first_user("!!!!", 4, u, sizeof(u)), -EINVAL);
	cr_assert_eq(scram_client_first_user("", 0, u, sizeof(u)), -EINVAL);
}

Test(scram, authzid_other_than_the_user_fails)
{
	struct scram_server *x;
	struct client cl;
	struct material m;
	char *out = NULL;
	client_start(&cl, SCRAM_MECH, USER, PASSWORD, NULL);
	gsasl_property_set(cl.s, GSASL_AUTHZID, "boss@corp.example");
	cr_assert_eq(scram_server_new(false, NULL, 0, &x), 0);
	make_material(PASSWORD, &m);
	scram_server_set_material(x, m.salt, m.iterations, m.stored, m.server);
	char *first = client_step(&cl, "", GSASL_NEEDS_MORE);
	cr_assert_eq(scram_server_step(x, first, strlen(first), &out), 0);
	char *fin = client_step(&cl, out, GSASL_NEEDS_MORE);
	free(out);
	cr_assert_eq(scram_server_step(x, fin, strlen(fin), &out), -EACCES);
	gsasl_free(first);
	gsasl_free(fin);
	scram_server_free(x);
	client_done(&cl);
}

Test(scram, garbage_and_extra_steps)
{
	struct scram_server *x;
	char *out = NULL;
	cr_assert_eq(scram_server_new(false, NULL, 0, &x), 0);
	cr_assert_lt(scram_server_step(x, "bm90IHNjcmFt", 12, &out), 0); /* "not scram" */
	cr_assert_null(out);
	cr_assert_lt(scram_server_step(x, "", 0, &out), 0);
	cr_assert_lt(scram_server_step(x, "", 0, &out), 0); /* past the end */
	scram_server_free(x);
}

Test(scram, mechanism_allowlist)
{
	bool plus = true;
	cr_assert(scram_mech_allowed("scram-sha-256", 13, &plus));
	cr_assert(!plus);
	cr_assert(scram_mech_allowed("SCRAM-SHA-256-PLUS", 18, &plus));
	cr_assert(plus);
	cr_assert(!scram_mech_allowed("SCRAM-SHA-1", 11, &plus));
	cr_assert(!scram_mech_allowed("DIGEST-MD5", 10, &plus));
	cr_assert(!scram_mech_allowed("SCRAM-SHA-256-PLUSX", 19, &plus));
}
