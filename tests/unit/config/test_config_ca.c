/*
 * config/: ca_dir (where sealctl keeps the client CA, never read by sealmaild) and where
 * it resolves when not written, and tls.client_certificate_without_eku.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmalloc.h"
#include "config/config.h"

static char dir[PATH_MAX];
static char cfg_path[PATH_MAX + 32];

static void write_file(const char *rel, const char *data, size_t len)
{
	char *p = xasprintf("%s/%s", dir, rel);
	FILE *fp = fopen(p, "wb");
	cr_assert_not_null(fp, "cannot write %s", p);
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
	free(p);
}

static void setup(void)
{
	char tmpl[] = "/tmp/sealmail-config-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl));
	/* The loader does not resolve symbolic links; compare against the real folder. */
	cr_assert_not_null(realpath(tmpl, dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/sealmail.yaml", dir);
	char *p = xasprintf("%s/certs", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/data", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/data/ca", dir);
	cr_assert_eq(mkdir(p, 0700), 0);
	free(p);
	write_file("certs/server.crt", "-----BEGIN X-----\n", 18);
	write_file("certs/server.key", "-----BEGIN X-----\n", 18);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(config_ca, .init = setup, .fini = teardown);

static int load(const char *text, struct config **cfg_r, struct cfg_errors *errs)
{
	write_file("sealmail.yaml", text, strlen(text));
	return cfg_load(cfg_path, cfg_r, errs);
}

static void assert_path(const char *got, const char *rel)
{
	char *want = xasprintf("%s/%s", dir, rel);
	cr_assert_not_null(got, "%s is not set", rel);
	cr_assert_str_eq(got, want);
	free(want);
}

#define TLS "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n"
#define LISTENER                                                                                   \
	"listeners:\n  - { protocol: imap, address: 127.0.0.1, port: 993, tls: implicit }\n"

/* ca_dir is relative to the file like every path; without it the CA stays where an older
 * sealctl made it (data_dir/ca, with a warning), else the installed default. */
Test(config_ca, ca_dir_and_eku_policy)
{
	struct config *cfg;
	struct cfg_errors errs = {0};
	char *warning = NULL, *ca;
	cr_assert_eq(load("domains: [corp.example]\nca_dir: demo/ca\n"
	                  "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n"
	                  "  client_certificate_without_eku: allow\n" LISTENER,
	                  &cfg, &errs),
	             0);
	assert_path(cfg->ca_dir, "demo/ca");
	cr_assert_eq(cfg->tls.client_certificate_without_eku, CFG_NO_EKU_ALLOW);
	ca = cfg_ca_dir(cfg, &warning);
	assert_path(ca, "demo/ca");
	cr_assert_null(warning);
	free(ca);
	cfg_free(cfg);

	/* Inside data_dir, written or not, is where sealmaild could read the key. */
	cr_assert_eq(load("domains: [corp.example]\nca_dir: data/ca\n" TLS LISTENER, &cfg, &errs),
	             0);
	ca = cfg_ca_dir(cfg, &warning);
	cr_assert_not_null(warning);
	cr_expect(strstr(warning, "ca_dir: " CFG_CA_DIR_DEFAULT) != NULL, "%s", warning);
	free(warning);
	free(ca);
	cfg_free(cfg);

	cr_assert_eq(load("domains: [corp.example]\n" TLS LISTENER, &cfg, &errs), 0);
	ca = cfg_ca_dir(cfg, &warning);
	cr_expect_str_eq(ca, CFG_CA_DIR_DEFAULT);
	cr_expect_null(warning);
	free(ca);
	write_file("data/ca/ca.key", "k", 1);
	ca = cfg_ca_dir(cfg, &warning);
	assert_path(ca, "data/ca");
	cr_assert_not_null(warning);
	cr_expect(strstr(warning, "inside data_dir") != NULL, "%s", warning);
	free(warning);
	free(ca);
	cfg_free(cfg);

	cr_assert_eq(load("domains: [corp.example]\n"
	                  "tls:\n  certificate: certs/server.crt\n  key: certs/server.key\n"
	                  "  client_certificate_without_eku: maybe\n" LISTENER,
	                  &cfg, &errs),
	             -EINVAL);
	cr_assert_eq(errs.n, 1);
	cr_expect(strstr(errs.lines[0], "tls.client_certificate_without_eku") != NULL, "%s",
	          errs.lines[0]);
	cfg_errors_free(&errs);
}
