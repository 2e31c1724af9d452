/*
 * server/tls_client.c against the server side (server/tls.c), both in memory: verified
 * and encrypt-only sessions, host-name and CA failures, and the client certificate the
 * server sees (mutual TLS). The PKI is made with certtool in a temporary folder.
 */
#include "common/buf.h"
#include "server/tls.h"
#include "server/tls_client.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[128];

static const char *path(const char *name)
{
	static char paths[8][200];
	static unsigned next;
	char *p = paths[next++ % 8];
	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static void write_file(const char *name, const char *text)
{
	FILE *fp = fopen(path(name), "w");
	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void run(const char *cmd)
{
	char full[1024];
	snprintf(full, sizeof(full), "cd %s && %s >/dev/null 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s", cmd);
}

static void pki(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tlsclient.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_file("ca.tmpl", "cn = Test CA\nca\ncert_signing_key\nexpiration_days = 30\n");
	write_file("other.tmpl", "cn = Other CA\nca\ncert_signing_key\nexpiration_days = 30\n");
	write_file("srv.tmpl", "cn = mx.a.example\ndns_name = mx.a.example\ndns_name = localhost\n"
	                       "ip_address = 127.0.0.1\ntls_www_server\ntls_www_client\n"
	                       "signing_key\nencryption_key\nexpiration_days = 30\n");
	write_file("cli.tmpl", "cn = relay.b.example\ndns_name = relay.b.example\n"
	                       "tls_www_client\nsigning_key\nexpiration_days = 30\n");
	run("certtool -p --key-type ecdsa --outfile ca.key");
	run("certtool -s --load-privkey ca.key --template ca.tmpl --outfile ca.crt");
	run("certtool -p --key-type ecdsa --outfile other.key");
	run("certtool -s --load-privkey other.key --template other.tmpl --outfile other.crt");
	run("certtool -p --key-type ecdsa --outfile srv.key");
	run("certtool -c --load-privkey srv.key --load-ca-certificate ca.crt --load-ca-privkey "
	    "ca.key --template srv.tmpl --outfile srv.crt");
	run("certtool -p --key-type ecdsa --outfile cli.key");
	run("certtool -c --load-privkey cli.key --load-ca-certificate ca.crt --load-ca-privkey "
	    "ca.key --template cli.tmpl --outfile cli.crt");
}

static void cleanup(void)
{
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(tls_client, .init = pki, .fini = cleanup);

static struct tls_ctx *server_ctx(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.tls.certificate = (char *)path("srv.crt");
	cfg.tls.key = (char *)path("srv.key");
	cfg.tls.client_ca = (char *)path("ca.crt");
	struct tls_ctx *ctx = NULL;
	const char *err = NULL;
	cr_assert_eq(tls_ctx_new(&cfg, &ctx, &err), 0, "%s", err);
	return ctx;
}

struct pair {
	struct tls_ctx *sctx;
	struct tls_client_ctx *cctx;
	struct tls_session *srv;
	struct tls_client *cli;
	int cr, sr;
	const char *cerr, *serr;
};

static void pump(struct pair *p)
{
	for (int round = 0; round < 50; round++) {
		size_t len;
		void *d = tls_client_take_output(p->cli, &len);
		if (d != NULL) {
			tls_session_feed(p->srv, d, len);
			free(d);
		}
		if (p->sr == 0)
			p->sr = tls_session_handshake(p->srv, &p->serr);
		d = tls_session_take_output(p->srv, &len);
		if (d != NULL) {
			tls_client_feed(p->cli, d, len);
			free(d);
		}
		if (p->cr == 0)
			p->cr = tls_client_handshake(p->cli, &p->cerr);
		if (p->cr != 0 && p->sr != 0)
			break;
		if (p->cr < 0 && round > 3)
			break;
	}
}

static void pair_open(struct pair *p, const char *ca, bool with_cert, const char *host, bool verify,
                      enum cfg_client_cert mode)
{
	memset(p, 0, sizeof(*p));
	const char *err = NULL;
	p->sctx = server_ctx();
	cr_assert_eq(tls_client_ctx_new(ca != NULL ? path(ca) : NULL,
	                                with_cert ? path("cli.crt") : NULL,
	                                with_cert ? path("cli.key") : NULL, &p->cctx, &err),
	             0, "%s", err);
	p->srv = tls_session_new(p->sctx, mode);
	p->cli = tls_client_new(p->cctx, host, verify);
	p->cr = tls_client_handshake(p->cli, &p->cerr);
	pump(p);
}

static void pair_close(struct pair *p)
{
	tls_client_free(p->cli);
	tls_session_free(p->srv);
	tls_client_ctx_free(p->cctx);
	tls_ctx_unref(p->sctx);
}

Test(tls_client, verified_mutual_tls_and_data)
{
	struct pair p;
	pair_open(&p, "ca.crt", true, "mx.a.example", true, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_eq(p.cr, 1, "%s", p.cerr ? p.cerr : "");
	cr_assert_eq(p.sr, 1, "%s", p.serr ? p.serr : "");
	cr_assert(tls_client_verified(p.cli));
	cr_assert(tls_session_peer_verified(p.srv));
	cr_assert_not_null(strstr(tls_session_peer_subject(p.srv), "relay.b.example"));
	cr_assert_str_eq(tls_client_version(p.cli), "TLSv1.3");

	cr_assert_eq(tls_client_write(p.cli, "EHLO x\r\n", 8), 0);
	size_t len;
	void *d = tls_client_take_output(p.cli, &len);
	tls_session_feed(p.srv, d, len);
	free(d);
	char buf[64];
	const char *err = NULL;
	ssize_t n = tls_session_read(p.srv, buf, sizeof(buf), &err);
	cr_assert_eq(n, 8);
	cr_assert_eq(memcmp(buf, "EHLO x\r\n", 8), 0);
	tls_session_write(p.srv, "250 ok\r\n", 8);
	d = tls_session_take_output(p.srv, &len);
	tls_client_feed(p.cli, d, len);
	free(d);
	n = tls_client_read(p.cli, buf, sizeof(buf), &err);
	cr_assert_eq(n, 8);
	cr_assert_eq(memcmp(buf, "250 ok\r\n", 8), 0);
	pair_close(&p);
}

Test(tls_client, ip_address_host_verifies)
{
	struct pair p;
	pair_open(&p, "ca.crt", true, "127.0.0.1", true, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_eq(p.cr, 1, "%s", p.cerr ? p.cerr : "");
	pair_close(&p);
}

Test(tls_client, wrong_name_fails)
{
	struct pair p;
	pair_open(&p, "ca.crt", true, "mx.wrong.example", true, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_lt(p.cr, 0);
	cr_assert_not_null(strstr(p.cerr, "certificate verification failed"), "%s", p.cerr);
	cr_assert_not_null(strstr(p.cerr, "name"), "%s", p.cerr);
	pair_close(&p);
}

Test(tls_client, unknown_ca_fails)
{
	struct pair p;
	pair_open(&p, "other.crt", true, "mx.a.example", true, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_lt(p.cr, 0);
	cr_assert_not_null(strstr(p.cerr, "issuer is unknown"), "%s", p.cerr);
	pair_close(&p);
}

Test(tls_client, encrypt_only_accepts_any_certificate)
{
	struct pair p;
	pair_open(&p, "other.crt", true, "mx.wrong.example", false, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_eq(p.cr, 1, "%s", p.cerr ? p.cerr : "");
	cr_assert_not(tls_client_verified(p.cli));
	pair_close(&p);
}

Test(tls_client, no_client_certificate_is_refused_by_required_server)
{
	struct pair p;
	pair_open(&p, "ca.crt", false, "mx.a.example", true, CFG_CLIENT_CERT_REQUIRED);
	cr_assert_lt(p.sr, 0);
	pair_close(&p);
}

Test(tls_client, bad_ca_file_names_it)
{
	struct tls_client_ctx *ctx = NULL;
	const char *err = NULL;
	cr_assert_lt(tls_client_ctx_new("/nonexistent/ca.pem", NULL, NULL, &ctx, &err), 0);
	cr_assert_not_null(strstr(err, "/nonexistent/ca.pem"));
	cr_assert_eq(tls_client_ctx_new(NULL, NULL, NULL, &ctx, &err), 0, "%s", err);
	tls_client_ctx_free(ctx);
}
