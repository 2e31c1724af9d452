/* certs/: CA creation, issuing, PKCS#12, CRL and the certificate-to-address mapping. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/pkcs12.h>
#include <gnutls/x509.h>

#include "tests/unit/support/crt_testlib.h"
#include "certs/cert.h"

extern char **environ;

static char tmpdir[64];
static char *ca_dir;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sealmail-certs-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_geq(asprintf(&ca_dir, "%s/ca", tmpdir), 0);
}

static void tmp_teardown(void)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(ca_dir);
	ca_dir = NULL;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert_geq(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s missing", path);
	return st.st_mode & 07777;
}

static char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long len;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = malloc((size_t)len + 1);
	cr_assert_eq(fread(data, 1, (size_t)len, f), (size_t)len);
	data[len] = '\0';
	fclose(f);
	if (len_r != NULL)
		*len_r = (size_t)len;
	return data;
}

/* Atomic writes leave no temporary files behind. */
static void assert_no_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	cr_assert_not_null(d, "%s", dir);
	while ((e = readdir(d)) != NULL)
		cr_assert_null(strstr(e->d_name, ".tmp."), "%s/%s left behind", dir, e->d_name);
	closedir(d);
}

static struct cert_ca *new_ca(void)
{
	struct cert_ca *ca = NULL;
	const char *error = NULL;

	cr_assert_eq(cert_ca_init(ca_dir, "Test Mail Client CA", 365, &error), 0, "%s", error);
	cr_assert_eq(cert_ca_load(ca_dir, &ca, &error), 0, "%s", error);
	return ca;
}

static gnutls_x509_crt_t crt_from_pem(const char *pem)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)strlen(pem)};
	gnutls_x509_crt_t crt;

	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	return crt;
}

static unsigned int verify_with_ca(gnutls_x509_crt_t crt, const struct cert_ca *ca)
{
	gnutls_x509_crt_t ca_crt = crt_from_pem(cert_ca_cert_pem(ca));
	unsigned int status = ~0u;

	cr_assert_eq(gnutls_x509_crt_verify(crt, &ca_crt, 1, 0, &status), 0);
	gnutls_x509_crt_deinit(ca_crt);
	return status;
}

/* Runs argv (argv[0] a path or a name on PATH), output into out_path; exit status. */
static int run(char *const argv[], const char *out_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int certtool_p12_info(const char *p12_path, const char *password, char **output_r)
{
	char *out_path = path_in(tmpdir, "certtool.out");
	char *pw_arg = NULL, *in_arg = NULL;
	int rc;

	cr_assert_geq(asprintf(&pw_arg, "--password=%s", password), 0);
	cr_assert_geq(asprintf(&in_arg, "--infile=%s", p12_path), 0);
	char *argv[] = {"certtool", "--p12-info", "--inder", in_arg, pw_arg, NULL};
	rc = run(argv, out_path);
	if (output_r != NULL)
		*output_r = slurp(out_path, NULL);
	free(pw_arg);
	free(in_arg);
	free(out_path);
	return rc;
}

TestSuite(certs, .init = tmp_setup, .fini = tmp_teardown, .timeout = 60);

/* ---- CA ---------------------------------------------------------------------------- */

Test(certs, ca_init_creates_files_with_modes_and_refuses_overwrite)
{
	const char *error = NULL;
	char *key = path_in(ca_dir, CERT_CA_KEY_FILE);
	char *crt = path_in(ca_dir, CERT_CA_CRT_FILE);
	char *key_before, *crt_before, *key_after, *crt_after;
	struct cert_info info;

	umask(022);
	cr_assert_eq(cert_ca_init(ca_dir, "Corp Mail Client CA", 3650, &error), 0, "%s", error);
	cr_assert_eq(file_mode(key), 0600);
	cr_assert_eq(file_mode(crt), 0644);
	cr_assert_eq(file_mode(ca_dir), 0700);
	key_before = slurp(key, NULL);
	crt_before = slurp(crt, NULL);
	cr_assert_not_null(strstr(key_before, "-----BEGIN PRIVATE KEY-----"));

	cr_assert_eq(cert_ca_init(ca_dir, "Other", 10, &error), -EEXIST);
	cr_assert_not_null(strstr(error, "already exists"), "%s", error);
	key_after = slurp(key, NULL);
	crt_after = slurp(crt, NULL);
	cr_assert_str_eq(key_before, key_after);
	cr_assert_str_eq(crt_before, crt_after);

	/* Only the certificate left: still refused, key not recreated. */
	cr_assert_eq(unlink(key), 0);
	cr_assert_eq(cert_ca_init(ca_dir, "Other", 10, &error), -EEXIST);
	cr_assert_eq(access(key, F_OK), -1);
	assert_no_tmp_files(ca_dir);

	cr_assert_eq(cert_info_from_pem(crt, &info, &error), 0, "%s", error);
	cr_assert(info.is_ca);
	cr_assert_str_eq(info.subject, "CN=Corp Mail Client CA");
	cr_assert_null(info.address);
	cr_assert_eq(strlen(info.serial), 32);
	cert_info_clear(&info);

	free(key_before);
	free(crt_before);
	free(key_after);
	free(crt_after);
	free(key);
	free(crt);
}

Test(certs, ca_certificate_is_a_ca_with_pathlen_0)
{
	struct cert_ca *ca = new_ca();
	gnutls_x509_crt_t crt = crt_from_pem(cert_ca_cert_pem(ca));
	unsigned int critical = 0, ca_flag = 0, usage = 0;
	int pathlen = -1;
	unsigned char ski[64];
	size_t ski_len = sizeof(ski);

	cr_assert_eq(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca_flag, &pathlen), 1);
	cr_assert_eq(ca_flag, 1);
	cr_assert_eq(pathlen, 0);
	cr_assert_geq(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
	cr_assert_eq(usage, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	cr_assert_eq(gnutls_x509_crt_get_subject_key_id(crt, ski, &ski_len, &critical), 0);
	cr_assert_eq(gnutls_x509_crt_get_pk_algorithm(crt, NULL), GNUTLS_PK_ECDSA);
	cr_assert_eq(verify_with_ca(crt, ca), 0);
	gnutls_x509_crt_deinit(crt);
	cert_ca_free(&ca);
	cr_assert_null(ca);
}

Test(certs, ca_load_errors)
{
	struct cert_ca *ca = NULL, *ca2 = NULL;
	const char *error = NULL;
	char *other = path_in(tmpdir, "other");
	char *key = path_in(ca_dir, CERT_CA_KEY_FILE);
	char *other_key = path_in(other, CERT_CA_KEY_FILE);

	cr_assert_eq(cert_ca_load(ca_dir, &ca, &error), -ENOENT);
	cr_assert_null(ca);
	ca = new_ca();
	cert_ca_free(&ca);
	cr_assert_eq(cert_ca_init(other, "Other CA", 30, &error), 0, "%s", error);
	/* A key from another CA does not match the certificate. */
	cr_assert_eq(rename(other_key, key), 0);
	cr_assert_eq(cert_ca_load(ca_dir, &ca2, &error), -EINVAL);
	cr_assert_null(ca2);
	cr_assert_not_null(strstr(error, "does not belong"), "%s", error);
	cr_assert_eq(cert_ca_init(tmpdir, "", 30, &error), -EINVAL);
	cr_assert_eq(cert_ca_init(tmpdir, "x", 0, &error), -EINVAL);
	free(other);
	free(key);
	free(other_key);
}

/* ---- Client certificates ------------------------------------------------------------ */

Test(certs, client_certificate_verifies_and_has_the_right_extensions)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 30};
	struct cert_issued is;
	const char *error = NULL;
	gnutls_x509_crt_t crt, ca_crt;
	unsigned int critical = 0, ca_flag = 1, usage = 0, type;
	char buf[256];
	size_t size = sizeof(buf);
	unsigned char aki[64], ski[64];
	size_t aki_len = sizeof(aki), ski_len = sizeof(ski);
	time_t now = time(NULL);

	cr_assert_eq(cert_issue_client(ca, "Alice@Example.ORG", &opt, &is, &error), 0, "%s", error);
	cr_assert_str_eq(is.name, "alice@example.org");
	cr_assert_null(is.p12_password);
	cr_assert_eq(strlen(is.serial), 32);
	for (size_t i = 0; i < 32; i++)
		cr_assert(strchr("0123456789abcdef", is.serial[i]) != NULL);
	cr_assert_not_null(strstr(is.key_pem, "BEGIN PRIVATE KEY"));

	crt = crt_from_pem(is.cert_pem);
	cr_assert_eq(verify_with_ca(crt, ca), 0);
	/* SAN rfc822Name */
	type = (unsigned int)gnutls_x509_crt_get_subject_alt_name(crt, 0, buf, &size, &critical);
	cr_assert_eq(type, GNUTLS_SAN_RFC822NAME);
	cr_assert_str_eq(buf, "alice@example.org");
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_subject_alt_name(crt, 1, buf, &size, &critical),
	             GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* EKU clientAuth only */
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(crt, 0, buf, &size, &critical), 0);
	cr_assert_str_eq(buf, GNUTLS_KP_TLS_WWW_CLIENT);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(crt, 1, buf, &size, &critical),
	             GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* CA:FALSE, digitalSignature */
	cr_assert_eq(gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca_flag, NULL), 0);
	cr_assert_eq(ca_flag, 0);
	cr_assert_geq(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
	cr_assert_eq(usage, GNUTLS_KEY_DIGITAL_SIGNATURE);
	/* subject CN and emailAddress */
	size = sizeof(buf);
	cr_assert_eq(
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size), 0);
	cr_assert_str_eq(buf, "alice@example.org");
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_PKCS9_EMAIL, 0, 0, buf, &size),
	             0);
	cr_assert_str_eq(buf, "alice@example.org");
	/* AKI = the CA's SKI */
	ca_crt = crt_from_pem(cert_ca_cert_pem(ca));
	cr_assert_eq(gnutls_x509_crt_get_authority_key_id(crt, aki, &aki_len, &critical), 0);
	cr_assert_eq(gnutls_x509_crt_get_subject_key_id(ca_crt, ski, &ski_len, &critical), 0);
	cr_assert_eq(aki_len, ski_len);
	cr_assert_eq(memcmp(aki, ski, aki_len), 0);
	/* dates */
	cr_assert_leq(labs((long)(is.not_before - (now - 300))), 5);
	cr_assert_leq(labs((long)(is.not_after - (now + 30 * 86400))), 5);
	cr_assert_eq(gnutls_x509_crt_get_pk_algorithm(crt, NULL), GNUTLS_PK_ECDSA);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_crt_deinit(crt);
	cert_issued_clear(&is);
	cert_ca_free(&ca);
}

Test(certs, client_rsa_key_option)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 1, .key_type = CERT_KEY_RSA_2048};
	struct cert_issued is;
	unsigned int bits = 0;
	gnutls_x509_crt_t crt;

	cr_assert_eq(cert_issue_client(ca, "old@example.org", &opt, &is, NULL), 0);
	crt = crt_from_pem(is.cert_pem);
	cr_assert_eq(gnutls_x509_crt_get_pk_algorithm(crt, &bits), GNUTLS_PK_RSA);
	cr_assert_eq(bits, 2048);
	cr_assert_eq(verify_with_ca(crt, ca), 0);
	gnutls_x509_crt_deinit(crt);
	cert_issued_clear(&is);
	cert_ca_free(&ca);
}

Test(certs, serials_are_unique_across_50_issues)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 1};
	char serials[50][CERT_SERIAL_HEX_MAX + 1];

	for (int i = 0; i < 50; i++) {
		struct cert_issued is;
		cr_assert_eq(cert_issue_client(ca, "bob@example.org", &opt, &is, NULL), 0);
		cr_assert_eq(strlen(is.serial), 32);
		/* positive: top bit of the first octet clear */
		cr_assert(is.serial[0] >= '4' && is.serial[0] <= '7', "%s", is.serial);
		memcpy(serials[i], is.serial, sizeof(serials[i]));
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(serials[i], serials[j]);
		cert_issued_clear(&is);
	}
	cert_ca_free(&ca);
}

Test(certs, client_rejects_bad_input)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 1};
	struct cert_issued is;
	const char *bad[] = {
	    "alice",         "@example.org", "alice@",    "a@b@c",        "al ice@x.org",
	    "al\tice@x.org", "../x@y",       "a/b@c.org", ".alice@x.org", ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(cert_issue_client(ca, bad[i], &opt, &is, NULL), -EINVAL, "%s", bad[i]);
		cr_assert_null(is.cert_pem);
	}
	opt.days = 0;
	cr_assert_eq(cert_issue_client(ca, "a@b.org", &opt, &is, NULL), -EINVAL);
	opt.days = 1;
	opt.out_dir = tmpdir;
	opt.p12_password = "";
	cr_assert_eq(cert_issue_client(ca, "a@b.org", &opt, &is, NULL), -EINVAL);
	cert_ca_free(&ca);
}

/* Checks a PKCS#12 file in-process: MAC, cipher schema, key and chain, friendly name. */
static void check_p12_inproc(const char *path, const char *password, bool legacy,
                             const char *address)
{
	size_t len;
	char *der = slurp(path, &len);
	gnutls_datum_t d = {(unsigned char *)der, (unsigned int)len};
	gnutls_pkcs12_t p12;
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t *chain = NULL, *extra = NULL;
	unsigned int chain_len = 0, extra_len = 0, mac_iter = 0, salt_size = 0;
	unsigned int bag_schema = 0, bag_cipher = 0, bag_iter = 0, bag_salt_size = 0;
	char *mac_oid = NULL, *bag_oid = NULL, *friendly = NULL;
	unsigned char salt[64];
	gnutls_mac_algorithm_t mac = 0;
	gnutls_pkcs12_bag_t bag;
	char buf[256];
	size_t size = sizeof(buf);

	cr_assert_eq(gnutls_pkcs12_init(&p12), 0);
	cr_assert_eq(gnutls_pkcs12_import(p12, &d, GNUTLS_X509_FMT_DER, 0), 0);
	cr_assert_eq(gnutls_pkcs12_verify_mac(p12, password), 0);
	cr_assert_lt(gnutls_pkcs12_verify_mac(p12, "wrong password"), 0);
	salt_size = sizeof(salt);
	cr_assert_geq(gnutls_pkcs12_mac_info(p12, &mac, salt, &salt_size, &mac_iter, &mac_oid), 0);
	cr_assert_eq(mac, legacy ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256);
	gnutls_free(mac_oid);

	/* The first bag is the encrypted certificate bag. */
	cr_assert_eq(gnutls_pkcs12_bag_init(&bag), 0);
	cr_assert_eq(gnutls_pkcs12_get_bag(p12, 0, bag), 0);
	bag_salt_size = sizeof(salt);
	cr_assert_geq(gnutls_pkcs12_bag_enc_info(bag, &bag_schema, &bag_cipher, salt,
	                                         &bag_salt_size, &bag_iter, &bag_oid),
	              0);
	cr_assert_eq(bag_schema, legacy ? GNUTLS_PKCS_PKCS12_3DES : GNUTLS_PKCS_PBES2_AES_256);
	cr_assert_eq(bag_cipher, legacy ? GNUTLS_CIPHER_3DES_CBC : GNUTLS_CIPHER_AES_256_CBC);
	gnutls_free(bag_oid);
	gnutls_pkcs12_bag_deinit(bag);

	cr_assert_eq(gnutls_pkcs12_simple_parse(p12, password, &key, &chain, &chain_len, &extra,
	                                        &extra_len, NULL,
	                                        GNUTLS_PKCS12_SP_INCLUDE_SELF_SIGNED),
	             0);
	cr_assert_not_null(key);
	cr_assert_eq(chain_len, 2, "chain %u extra %u", chain_len, extra_len);
	cr_assert_eq(
	    gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_PKCS9_EMAIL, 0, 0, buf, &size), 0);
	cr_assert_str_eq(buf, address);
	(void)friendly;
	gnutls_x509_privkey_deinit(key);
	for (unsigned int i = 0; i < chain_len; i++)
		gnutls_x509_crt_deinit(chain[i]);
	gnutls_free(chain);
	for (unsigned int i = 0; i < extra_len; i++)
		gnutls_x509_crt_deinit(extra[i]);
	gnutls_free(extra);

	/* A wrong password cannot open it either. */
	key = NULL;
	chain = NULL;
	cr_assert_lt(gnutls_pkcs12_simple_parse(p12, "not the password", &key, &chain, &chain_len,
	                                        NULL, NULL, NULL, 0),
	             0);
	cr_assert_null(key);
	gnutls_pkcs12_deinit(p12);
	free(der);
}

static void issue_and_check_files(bool legacy, const char *password)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {
	    .days = 30, .out_dir = tmpdir, .p12_password = password, .legacy_p12 = legacy};
	struct cert_issued is;
	const char *error = NULL;
	char *crt = path_in(tmpdir, "dave@example.org.crt");
	char *key = path_in(tmpdir, "dave@example.org.key");
	char *p12 = path_in(tmpdir, "dave@example.org.p12");
	char *out = NULL, *file_pem, *file_key;
	struct cert_info info;

	umask(022);
	cr_assert_eq(cert_issue_client(ca, "Dave@example.org", &opt, &is, &error), 0, "%s", error);
	cr_assert_eq(file_mode(key), 0600);
	cr_assert_eq(file_mode(p12), 0600);
	cr_assert_eq(file_mode(crt), 0644);
	assert_no_tmp_files(tmpdir);
	file_pem = slurp(crt, NULL);
	file_key = slurp(key, NULL);
	cr_assert_str_eq(file_pem, is.cert_pem);
	cr_assert_str_eq(file_key, is.key_pem);
	cr_assert_not_null(is.p12_password);
	if (password != NULL) {
		cr_assert_str_eq(is.p12_password, password);
	} else {
		cr_assert_eq(strlen(is.p12_password), 23, "%s", is.p12_password);
		cr_assert_eq(is.p12_password[5], '-');
	}

	cr_assert_eq(certtool_p12_info(p12, is.p12_password, &out), 0, "%s", out);
	cr_assert_not_null(strstr(out, "dave@example.org"), "%s", out);
	cr_assert_not_null(strstr(out, legacy ? "3DES" : "AES-256"), "%s", out);
	free(out);
	cr_assert_neq(certtool_p12_info(p12, "wrong-password", NULL), 0);
	check_p12_inproc(p12, is.p12_password, legacy, "dave@example.org");

	cr_assert_eq(cert_info_from_pem(crt, &info, &error), 0, "%s", error);
	cr_assert_str_eq(info.serial, is.serial);
	cr_assert_str_eq(info.address, "dave@example.org");
	cr_assert_not_null(strstr(info.subject, "CN=dave@example.org"), "%s", info.subject);
	cr_assert_eq(info.not_after, is.not_after);
	cr_assert_eq(info.not_before, is.not_before);
	cr_assert(!info.is_ca);
	cert_info_clear(&info);

	free(file_pem);
	free(file_key);
	free(crt);
	free(key);
	free(p12);
	cert_issued_clear(&is);
	cert_ca_free(&ca);
}

Test(certs, p12_modern_opens_with_certtool_and_gnutls)
{
	issue_and_check_files(false, "correct horse battery");
}

Test(certs, p12_legacy_opens_with_certtool_and_gnutls)
{
	issue_and_check_files(true, "correct horse battery");
}

Test(certs, p12_generated_password)
{
	issue_and_check_files(false, NULL);
}

/* ---- Server certificates ------------------------------------------------------------ */

/* The relay's certificate, presented to peers that require one, needs clientAuth too. */
Test(certs, server_certificate_with_client_auth)
{
	struct cert_ca *ca = new_ca();
	struct cert_issued is;
	const char *error = NULL;
	unsigned char buf[64];
	size_t size;
	unsigned int critical;
	gnutls_x509_crt_t crt;
	gnutls_datum_t d;

	cr_assert_eq(
	    cert_issue_server(ca, "mail.example.org", NULL, 0, 90, true, tmpdir, &is, &error), 0,
	    "%s", error);
	d.data = (unsigned char *)is.cert_pem;
	d.size = (unsigned int)strlen(is.cert_pem);
	cr_assert_eq(gnutls_x509_crt_init(&crt), 0);
	cr_assert_eq(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(crt, 0, buf, &size, &critical), 0);
	cr_expect_str_eq((char *)buf, GNUTLS_KP_TLS_WWW_SERVER);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(crt, 1, buf, &size, &critical), 0);
	cr_expect_str_eq((char *)buf, GNUTLS_KP_TLS_WWW_CLIENT);
	gnutls_x509_crt_deinit(crt);
	cert_issued_clear(&is);
	cert_ca_free(&ca);
}

/* The CA certificate goes where sealmaild reads it; other certificates there stay. */
Test(certs, ca_publish_writes_only_missing_empty_or_same)
{
	struct cert_ca *ca = new_ca();
	const char *error = NULL;
	char *path = path_in(tmpdir, "client-ca.crt");

	cr_assert_eq(cert_ca_publish(ca, path, &error), 0, "%s", error);
	cr_expect_eq(file_mode(path), 0644);
	char *got = slurp(path, NULL);
	cr_expect_str_eq(got, cert_ca_cert_pem(ca));
	free(got);
	cr_expect_eq(cert_ca_publish(ca, path, &error), 0, "%s", error);

	FILE *fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	cr_expect_eq(cert_ca_publish(ca, path, &error), 0, "%s", error);
	got = slurp(path, NULL);
	cr_expect_str_eq(got, cert_ca_cert_pem(ca));
	free(got);

	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("-----BEGIN CERTIFICATE-----\nsomeone else\n-----END CERTIFICATE-----\n", fp);
	fclose(fp);
	cr_expect_eq(cert_ca_publish(ca, path, &error), -EEXIST);
	cr_expect(strstr(error, path) != NULL, "%s", error);
	got = slurp(path, NULL);
	cr_expect(strstr(got, "someone else") != NULL);
	free(got);
	free(path);
	cert_ca_free(&ca);
}

Test(certs, server_certificate_has_dns_and_ip_sans)
{
	struct cert_ca *ca = new_ca();
	const char *ips[] = {"192.0.2.7", "2001:db8::1"};
	struct cert_issued is;
	const char *error = NULL;
	char *crt_path = path_in(tmpdir, "server.crt");
	char *key_path = path_in(tmpdir, "server.key");
	char *chain_pem;
	gnutls_x509_crt_t *chain = NULL;
	unsigned int n = 0, critical;
	gnutls_datum_t d;
	unsigned char buf[256];
	size_t size;
	static const unsigned char v4[4] = {192, 0, 2, 7};
	static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	                                     0,    0,    0,    0,    0, 0, 0, 1};

	cr_assert_eq(
	    cert_issue_server(ca, "Mail.Example.org", ips, 2, 90, false, tmpdir, &is, &error), 0,
	    "%s", error);
	cr_assert_eq(file_mode(key_path), 0600);
	chain_pem = slurp(crt_path, NULL);
	d.data = (unsigned char *)chain_pem;
	d.size = (unsigned int)strlen(chain_pem);
	cr_assert_eq(gnutls_x509_crt_list_import2(&chain, &n, &d, GNUTLS_X509_FMT_PEM, 0), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(verify_with_ca(chain[0], ca), 0);
	cr_assert(gnutls_x509_crt_check_hostname(chain[0], "mail.example.org"));
	cr_assert(!gnutls_x509_crt_check_hostname(chain[0], "localhost"));
	cr_assert(gnutls_x509_crt_check_ip(chain[0], v4, 4, 0));
	cr_assert(gnutls_x509_crt_check_ip(chain[0], v6, 16, 0));

	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_subject_alt_name(chain[0], 0, buf, &size, &critical),
	             GNUTLS_SAN_DNSNAME);
	cr_assert_str_eq((char *)buf, "mail.example.org");
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_subject_alt_name(chain[0], 1, buf, &size, &critical),
	             GNUTLS_SAN_IPADDRESS);
	cr_assert_eq(size, 4);
	cr_assert_eq(memcmp(buf, v4, 4), 0);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_subject_alt_name(chain[0], 2, buf, &size, &critical),
	             GNUTLS_SAN_IPADDRESS);
	cr_assert_eq(size, 16);
	cr_assert_eq(memcmp(buf, v6, 16), 0);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_subject_alt_name(chain[0], 3, buf, &size, &critical),
	             GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(chain[0], 0, buf, &size, &critical), 0);
	cr_assert_str_eq((char *)buf, GNUTLS_KP_TLS_WWW_SERVER);
	/* Only serverAuth: sealmaild refuses it as a client certificate. */
	size = sizeof(buf);
	cr_assert_eq(gnutls_x509_crt_get_key_purpose_oid(chain[0], 1, buf, &size, &critical),
	             GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	/* A server certificate is no e-mail identity. */
	cr_assert_eq(
	    gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_PKCS9_EMAIL, 0, 0, buf, &size),
	    GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);

	for (unsigned int i = 0; i < n; i++)
		gnutls_x509_crt_deinit(chain[i]);
	gnutls_free(chain);
	free(chain_pem);
	cert_issued_clear(&is);

	const char *bad_ip[] = {"300.1.1.1"};
	cr_assert_eq(
	    cert_issue_server(ca, "mail.example.org", bad_ip, 1, 90, false, tmpdir, &is, NULL),
	    -EINVAL);
	cr_assert_eq(cert_issue_server(ca, "bad host", NULL, 0, 90, false, tmpdir, &is, NULL),
	             -EINVAL);
	free(crt_path);
	free(key_path);
	cert_ca_free(&ca);
}

/* ---- CRL ---------------------------------------------------------------------------- */

static gnutls_x509_crl_t crl_from_file(const char *path)
{
	char *pem = slurp(path, NULL);
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)strlen(pem)};
	gnutls_x509_crl_t crl;

	cr_assert_eq(gnutls_x509_crl_init(&crl), 0);
	cr_assert_eq(gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_PEM), 0);
	free(pem);
	return crl;
}

Test(certs, crl_revokes_and_has_next_update)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 30};
	struct cert_issued bad, good;
	const char *error = NULL;
	char *crl_path = path_in(ca_dir, CERT_CRL_FILE);
	char *ca_path = path_in(ca_dir, CERT_CA_CRT_FILE);
	gnutls_x509_crt_t bad_crt, good_crt, ca_crt;
	gnutls_x509_crl_t crl;
	gnutls_x509_trust_list_t tl;
	struct cert_crl_info info;
	unsigned int status = 0;
	time_t now = time(NULL);
	char upper[CERT_SERIAL_HEX_MAX + 1];

	cr_assert_eq(cert_issue_client(ca, "mallory@example.org", &opt, &bad, NULL), 0);
	cr_assert_eq(cert_issue_client(ca, "alice@example.org", &opt, &good, NULL), 0);
	/* An administrator may type the serial in upper case. */
	for (size_t i = 0; i <= strlen(bad.serial); i++)
		upper[i] =
		    (char)((bad.serial[i] >= 'a' && bad.serial[i] <= 'f') ? bad.serial[i] - 32
		                                                          : bad.serial[i]);
	struct cert_revoked rev[] = {{upper, now - 60}};
	cr_assert_eq(cert_crl_write(ca, rev, 1, 7, 7, crl_path, &error), 0, "%s", error);
	cr_assert_eq(file_mode(crl_path), 0644);
	assert_no_tmp_files(ca_dir);

	crl = crl_from_file(crl_path);
	bad_crt = crt_from_pem(bad.cert_pem);
	good_crt = crt_from_pem(good.cert_pem);
	ca_crt = crt_from_pem(cert_ca_cert_pem(ca));
	cr_assert_eq(gnutls_x509_crl_verify(crl, &ca_crt, 1, 0, &status), 0);
	cr_assert_eq(status, 0);
	cr_assert_eq(gnutls_x509_crt_check_revocation(bad_crt, &crl, 1), 1);
	cr_assert_eq(gnutls_x509_crt_check_revocation(good_crt, &crl, 1), 0);
	cr_assert_leq(labs((long)(gnutls_x509_crl_get_next_update(crl) - (now + 7 * 86400))), 5);
	cr_assert_leq(labs((long)(gnutls_x509_crl_get_this_update(crl) - now)), 5);

	/* The way the server checks: a trust list with the CA and the CRL. */
	cr_assert_eq(gnutls_x509_trust_list_init(&tl, 0), 0);
	cr_assert_eq(gnutls_x509_trust_list_add_cas(tl, &ca_crt, 1, 0), 1);
	cr_assert_eq(gnutls_x509_trust_list_add_crls(tl, &crl, 1, GNUTLS_TL_VERIFY_CRL, 0), 1);
	cr_assert_eq(gnutls_x509_trust_list_verify_crt(tl, &bad_crt, 1, 0, &status, NULL), 0);
	cr_assert(status & GNUTLS_CERT_REVOKED, "status %x", status);
	cr_assert_eq(gnutls_x509_trust_list_verify_crt(tl, &good_crt, 1, 0, &status, NULL), 0);
	cr_assert_eq(status, 0, "status %x", status);
	gnutls_x509_trust_list_deinit(tl, 1); /* frees ca_crt and crl too */

	cr_assert_eq(cert_crl_info_from_file(crl_path, ca_path, &info, &error), 0, "%s", error);
	cr_assert_eq(info.number, 7);
	cr_assert_eq(info.n_revoked, 1);
	cr_assert_leq(labs((long)(info.next_update - (now + 7 * 86400))), 5);

	/* An empty CRL, a larger number with the top bit set. */
	cr_assert_eq(cert_crl_write(ca, NULL, 0, 0x80, 1, crl_path, &error), 0, "%s", error);
	cr_assert_eq(cert_crl_info_from_file(crl_path, ca_path, &info, &error), 0, "%s", error);
	cr_assert_eq(info.number, 0x80);
	cr_assert_eq(info.n_revoked, 0);

	struct cert_revoked junk[] = {{"zz", now}};
	cr_assert_eq(cert_crl_write(ca, junk, 1, 9, 7, crl_path, &error), -EINVAL);
	cr_assert_eq(cert_crl_write(ca, NULL, 0, 9, 0, crl_path, &error), -EINVAL);

	gnutls_x509_crt_deinit(bad_crt);
	gnutls_x509_crt_deinit(good_crt);
	cert_issued_clear(&bad);
	cert_issued_clear(&good);
	free(crl_path);
	free(ca_path);
	cert_ca_free(&ca);
}

Test(certs, crl_from_another_ca_does_not_verify)
{
	struct cert_ca *ca = new_ca(), *other = NULL;
	const char *error = NULL;
	char *other_dir = path_in(tmpdir, "other");
	char *crl_path = path_in(tmpdir, "other.crl");
	char *ca_path = path_in(ca_dir, CERT_CA_CRT_FILE);
	struct cert_crl_info info;

	cr_assert_eq(cert_ca_init(other_dir, "Other", 30, &error), 0);
	cr_assert_eq(cert_ca_load(other_dir, &other, &error), 0);
	cr_assert_eq(cert_crl_write(other, NULL, 0, 1, 7, crl_path, &error), 0);
	cr_assert_eq(cert_crl_info_from_file(crl_path, ca_path, &info, &error), -EBADMSG);
	cert_ca_free(&other);
	cert_ca_free(&ca);
	free(other_dir);
	free(crl_path);
	free(ca_path);
}

/* ---- Identity mapping ----------------------------------------------------------------- */

struct map_case {
	const char *name;
	const char *san[3];   /* rfc822Name entries, NULL-terminated */
	const char *dns;      /* a dNSName entry, or NULL */
	const char *email[3]; /* subject emailAddress values */
	const char *cn;
	/* One rfc822Name encoded by hand (GnuTLS refuses to encode hostile names), with its
	 * length so it may hold a NUL. */
	const char *raw_san;
	size_t raw_san_len;
	int expect;
	const char *addr;
};

/* A self-signed certificate with exactly the given names, as DER (gnutls_free). */
static gnutls_datum_t make_der(const struct map_case *c)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt = crt_test_begin(&key, c->cn);
	for (int i = 0; c->email[i] != NULL; i++)
		cr_assert_eq(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_PKCS9_EMAIL, 0,
		                                           c->email[i],
		                                           (unsigned int)strlen(c->email[i])),
		             0);
	if (c->dns != NULL)
		cr_assert_eq(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, c->dns,
		                                                  (unsigned int)strlen(c->dns),
		                                                  GNUTLS_FSAN_APPEND),
		             0);
	for (int i = 0; c->san[i] != NULL; i++)
		cr_assert_eq(gnutls_x509_crt_set_subject_alt_name(
		                 crt, GNUTLS_SAN_RFC822NAME, c->san[i],
		                 (unsigned int)strlen(c->san[i]), GNUTLS_FSAN_APPEND),
		             0, "%s", c->name);
	if (c->raw_san != NULL) {
		unsigned char ext[128];
		cr_assert_lt(c->raw_san_len, 100);
		ext[0] = 0x30;
		ext[1] = (unsigned char)(c->raw_san_len + 2);
		ext[2] = 0x81; /* [1] IMPLICIT IA5String: rfc822Name */
		ext[3] = (unsigned char)c->raw_san_len;
		memcpy(ext + 4, c->raw_san, c->raw_san_len);
		cr_assert_eq(gnutls_x509_crt_set_extension_by_oid(crt, "2.5.29.17", ext,
		                                                  c->raw_san_len + 4, 0),
		             0);
	}
	return crt_test_finish(crt, key);
}

static const struct map_case map_cases[] = {
    {.name = "san_first",
     .san = {"alice@example.org"},
     .email = {"bob@example.org"},
     .addr = "alice@example.org"},
    {.name = "email_only", .email = {"bob@example.org"}, .addr = "bob@example.org"},
    {.name = "cn_only_is_no_identity", .cn = "carol@x", .expect = -ENOENT},
    {.name = "nothing", .expect = -ENOENT},
    {.name = "dns_san_only",
     .dns = "mail.example.org",
     .cn = "dave@example.org",
     .expect = -ENOENT},
    {.name = "dns_san_then_email",
     .dns = "mail.example.org",
     .email = {"erin@example.org"},
     .addr = "erin@example.org"},
    {.name = "uppercase_normalised", .san = {"Alice@EXAMPLE.Org"}, .addr = "alice@example.org"},
    {.name = "uppercase_email_normalised", .email = {"BOB@Example.ORG"}, .addr = "bob@example.org"},
    {.name = "same_san_twice", .san = {"a@x.org", "A@X.org"}, .addr = "a@x.org"},
    {.name = "two_different_sans", .san = {"a@x.org", "b@x.org"}, .expect = -EINVAL},
    {.name = "two_different_emails", .email = {"a@x.org", "b@x.org"}, .expect = -EINVAL},
    {.name = "san_without_at", .san = {"alice"}, .expect = -EINVAL},
    /* A malformed SAN never falls through to the emailAddress. */
    {.name = "bad_san_no_fallthrough",
     .san = {"alice"},
     .email = {"bob@example.org"},
     .expect = -EINVAL},
    {.name = "san_space", .san = {"ali ce@x.org"}, .expect = -EINVAL},
    {.name = "san_two_ats", .san = {"a@b@x.org"}, .expect = -EINVAL},
    {.name = "san_empty_domain", .san = {"alice@"}, .expect = -EINVAL},
    {.name = "san_control_char",
     .raw_san = "ali\x01"
                "ce@x.org",
     .raw_san_len = 12,
     .email = {"bob@example.org"},
     .expect = -EINVAL},
    {.name = "san_embedded_nul",
     .raw_san = "alice@x.org\0.evil.example",
     .raw_san_len = 25,
     .expect = -EINVAL},
    {.name = "san_8bit", .raw_san = "al\xc3\xa9@x.org", .raw_san_len = 10, .expect = -EINVAL},
    {.name = "email_control_char", .email = {"bob\x7f@x.org"}, .expect = -EINVAL},
};

Test(certs, identity_mapping_table)
{
	for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++) {
		const struct map_case *c = &map_cases[i];
		gnutls_datum_t der = make_der(c);
		const char *error = NULL;
		char *addr = (char *)1;
		int ret = cert_identity_from_der(der.data, der.size, &addr, &error);

		cr_assert_eq(ret, c->expect, "%s: got %d (%s)", c->name, ret,
		             error != NULL ? error : "");
		if (c->addr != NULL)
			cr_assert_str_eq(addr, c->addr, "%s", c->name);
		else
			cr_assert_null(addr, "%s", c->name);
		free(addr);
		gnutls_free(der.data);
	}
}

Test(certs, identity_of_an_issued_certificate)
{
	struct cert_ca *ca = new_ca();
	struct cert_client_options opt = {.days = 1};
	struct cert_issued is;
	gnutls_x509_crt_t crt;
	gnutls_datum_t der = {NULL, 0};
	char *addr = NULL;

	cr_assert_eq(cert_issue_client(ca, "Frank@Example.org", &opt, &is, NULL), 0);
	crt = crt_from_pem(is.cert_pem);
	cr_assert_eq(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
	cr_assert_eq(cert_identity_from_der(der.data, der.size, &addr, NULL), 0);
	cr_assert_str_eq(addr, "frank@example.org");
	free(addr);
	gnutls_free(der.data);
	gnutls_x509_crt_deinit(crt);
	cert_issued_clear(&is);
	cert_ca_free(&ca);
}

Test(certs, identity_rejects_garbage)
{
	static const unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	char *addr = (char *)1;
	const char *error = NULL;

	cr_assert_eq(cert_identity_from_der(junk, sizeof(junk), &addr, &error), -EINVAL);
	cr_assert_null(addr);
	cr_assert_eq(cert_identity_from_der(NULL, 0, &addr, &error), -EINVAL);
}

Test(certs, serial_normalize_table)
{
	static const struct {
		const char *in;
		int ret;
		const char *out;
	} cases[] = {
	    {"3F0A", 0, "3f0a"},
	    {"3f:0a", 0, "3f0a"},
	    {"0x3f0a", 0, "3f0a"},
	    {"00003f0a", 0, "3f0a"},
	    {"f0a", 0, "0f0a"},
	    {"00", 0, "00"},
	    {"", -EINVAL, NULL},
	    {"xyz", -EINVAL, NULL},
	    {"3f 0a", -EINVAL, NULL},
	    {"0102030405060708090a0b0c0d0e0f1011121314", 0,
	     "0102030405060708090a0b0c0d0e0f1011121314"},
	    {"0102030405060708090a0b0c0d0e0f101112131415", -EINVAL, NULL},
	};
	char out[CERT_SERIAL_HEX_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(cert_serial_normalize(cases[i].in, out), cases[i].ret, "%s",
		             cases[i].in);
		if (cases[i].out != NULL)
			cr_assert_str_eq(out, cases[i].out, "%s", cases[i].in);
	}
}
